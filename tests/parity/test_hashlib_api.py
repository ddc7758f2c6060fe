"""The public surface against the running interpreter's hashlib: names, signatures, attributes, types,
exception types and texts."""

from __future__ import annotations

import hashlib
import inspect
import io
import sys
import warnings

import pytest

import kcapi_hashlib
import kcapi_hashlib._hash_args  # binds the submodules: the package imports private modules lazily
import kcapi_hashlib._hashes  # binds the submodule: the package imports private modules lazily


def _stdlib_takes_data(constructor: object) -> bool:
    try:
        constructor(data=b"")  # type: ignore[operator]
    except TypeError:
        return False
    return True


# The running hashlib's surface, probed as kcapi_hashlib probes it: 3.14's data= (string= a keyword-only alias,
# hashlib.new(name, *args, **kwargs)), which Debian's 3.13.5 has too; before, string= and positional-only blake2.
DATA_KEYWORD = _stdlib_takes_data(hashlib.sha256)
BLAKE2_DATA_KEYWORD = _stdlib_takes_data(hashlib.blake2b)

KERNEL_NAMES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
                "sha3_512", "blake2b"]  # fmt: skip


def test_hashlib_names_exist() -> None:
    for name in hashlib.__all__:
        if name in ("pbkdf2_hmac", "scrypt"):
            continue  # KDFs (pbkdf2_hmac: tests/kernel/test_kdf_vectors.py); scrypt has no kernel implementation
        assert hasattr(kcapi_hashlib, name), name


@pytest.mark.parametrize("name", ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "shake_128"])
def test_constructor_signature(name: str) -> None:
    ours = inspect.signature(getattr(kcapi_hashlib, name))
    theirs = getattr(hashlib, name).__text_signature__  # e.g. ($module, /, string=b'', *, usedforsecurity=True)
    assert ours == inspect.signature(getattr(hashlib, name))
    if DATA_KEYWORD:  # data= (string= kept as a keyword-only alias)
        assert list(ours.parameters) == ["data", "usedforsecurity", "string"]
        assert "data=b''" in theirs and "string=None" in theirs
    else:
        assert list(ours.parameters) == ["string", "usedforsecurity"]
        assert "string=b''" in theirs and "usedforsecurity=True" in theirs
    assert ours.parameters["usedforsecurity"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", ["blake2b", "blake2s"])
def test_blake2_signature_and_constants(name: str) -> None:
    ours, theirs = getattr(kcapi_hashlib, name), getattr(hashlib, name)
    params = inspect.signature(ours).parameters
    assert inspect.signature(ours) == inspect.signature(theirs)
    # 3.14+: data may be given by name (or as string=); before, it is positional-only
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if BLAKE2_DATA_KEYWORD else inspect.Parameter.POSITIONAL_ONLY
    assert next(iter(params)) == "data" and params["data"].kind is kind
    for kw in ("digest_size", "key", "salt", "person", "fanout", "depth", "leaf_size", "node_offset",
               "node_depth", "inner_size", "last_node", "usedforsecurity"):  # fmt: skip
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY
    for const in ("SALT_SIZE", "PERSON_SIZE", "MAX_KEY_SIZE", "MAX_DIGEST_SIZE"):
        assert getattr(ours, const) == getattr(theirs, const)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_object_attributes(name: str) -> None:
    ours, theirs = kcapi_hashlib.new(name, b"abc"), hashlib.new(name, b"abc")
    assert isinstance(ours, kcapi_hashlib.HASH)
    assert (ours.name, ours.digest_size, ours.block_size) == (theirs.name, theirs.digest_size, theirs.block_size)
    assert type(ours.digest()) is bytes and type(ours.hexdigest()) is str
    assert ours.update(b"") is None
    assert repr(ours).startswith(f"<{name} kcapi_hashlib.HASH object @ 0x")


@pytest.mark.parametrize(
    "spelling", ["SHA256", "Sha256", "sha-256", "SHA3-256", "sha3-256", "RIPEMD160", "MD5", "SHA1"]
)
def test_new_accepts_what_hashlib_accepts(spelling: str) -> None:
    ours, theirs = kcapi_hashlib.new(spelling, b"x"), hashlib.new(spelling, b"x")
    assert ours.name == theirs.name
    assert ours.digest() == theirs.digest()


def _error(fn: object) -> tuple[type[BaseException], str]:
    try:
        fn()  # type: ignore[operator]
    except BaseException as e:
        return type(e), str(e)
    raise AssertionError("no exception")


def _same_error(ours: object, theirs: object) -> None:
    our_type, our_text = _error(ours)
    their_type, their_text = _error(theirs)
    assert issubclass(our_type, their_type), (our_type, their_type)
    assert our_text == their_text


@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.new("no-such-hash"),
        lambda h: h.new(123),
        lambda h: h.new(b"sha256"),
        lambda h: h.new("sha256", b"x", string=b"x"),
        lambda h: h.sha256(b"x", string=b"x"),
        lambda h: h.sha256(b"x", data=b"x"),
        lambda h: h.sha256(b"x", b"y"),
        lambda h: h.sha256(b"x", foo=1),
        *([lambda h: h.new("sha256", b"x", b"y")] if DATA_KEYWORD else []),  # before: "__hash_new()"
        lambda h: h.new("blake2b", b"x", string=b"x"),
        lambda h: h.blake2s(b"x", data=b"x"),
        lambda h: h.blake2b(b"x", b"y"),
        lambda h: h.sha256("text"),
        lambda h: h.sha256().update("text"),
        lambda h: h.sha256().update(12),
        lambda h: h.sha256(memoryview(b"abcdef")[::2]),
        lambda h: h.blake2b(digest_size=65),
        lambda h: h.blake2b(digest_size=0),
        lambda h: h.blake2b(key=b"k" * 65),
        lambda h: h.blake2b(salt=b"s" * 17),
        lambda h: h.blake2b(person=b"p" * 17),
        lambda h: h.blake2b(fanout=256),
        lambda h: h.blake2b(depth=0),
        lambda h: h.blake2b(leaf_size=-1),
        lambda h: h.blake2b(leaf_size=1 << 32),
        lambda h: h.blake2b(""),
        lambda h: h.blake2b(key="k"),
    ],
)
def test_errors_match_hashlib(call: object) -> None:
    _same_error(lambda: call(kcapi_hashlib), lambda: call(hashlib))  # type: ignore[operator]


def test_sha256_positional_limit() -> None:
    with pytest.raises(TypeError):
        kcapi_hashlib.sha256(b"", b"")
    if DATA_KEYWORD:
        assert kcapi_hashlib.sha256(data=b"abc").digest() == hashlib.sha256(b"abc").digest()
    else:
        with pytest.raises(TypeError):
            kcapi_hashlib.sha256(data=b"")


@pytest.mark.parametrize("name", ["sha256", "sha3_256", "blake2b", "md5"])
def test_data_and_string_keywords_as_the_running_python(name: str) -> None:
    """3.14+: data= and string= (3.15: string= warns, with the same DeprecationWarning text); before: string=."""
    ours, theirs = getattr(kcapi_hashlib, name), getattr(hashlib, name)
    calls: list[tuple[str, str]] = []  # (constructor or new, keyword)
    if DATA_KEYWORD:
        calls = [(how, kw) for how in ("constructor", "new") for kw in ("data", "string")]
    elif not name.startswith("blake2"):
        calls = [("constructor", "string")]  # new(name, string=) is refused: new() passes data positionally
    for how, keyword in calls:
        results = []
        for module, ctor in ((kcapi_hashlib, ours), (hashlib, theirs)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                h = ctor(**{keyword: b"abc"}) if how == "constructor" else module.new(name, **{keyword: b"abc"})
            results.append((h.digest(), [(w.category, str(w.message)) for w in caught], caught))
        (got, our_warnings, ours_caught), (expected, their_warnings, _) = results
        assert got == expected and our_warnings == their_warnings, (how, keyword)
        assert all(w.filename == __file__ for w in ours_caught)  # attributed to the caller
        if sys.version_info >= (3, 15) and keyword == "string":
            assert [c for c, _ in their_warnings] == [DeprecationWarning]
    assert ours is not theirs


def test_hash_type_is_not_instantiable_nor_mutable() -> None:
    with pytest.raises(TypeError, match=r"cannot create 'kcapi_hashlib\._hash_object\.HASH' instances"):
        kcapi_hashlib.HASH()
    with pytest.raises(TypeError, match="immutable type"):
        kcapi_hashlib.HASH.value = False  # type: ignore[attr-defined]


def test_hash_objects_do_not_pickle() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(kcapi_hashlib.sha256(b"x"))


def test_file_digest_semantics() -> None:
    data = b"file contents" * 1000
    assert kcapi_hashlib.file_digest(io.BytesIO(data), "sha256").digest() == hashlib.sha256(data).digest()
    assert kcapi_hashlib.file_digest(io.BytesIO(data), kcapi_hashlib.sha1).digest() == hashlib.sha1(data).digest()
    assert kcapi_hashlib.file_digest(io.BytesIO(data), hashlib.md5).digest() == hashlib.md5(data).digest()
    with pytest.raises(ValueError, match="is not a file-like object in binary reading mode"):
        kcapi_hashlib.file_digest(io.StringIO("text"), "sha256")
    with pytest.raises(ValueError, match=kcapi_hashlib._hash_args.UNSUPPORTED + "nope"):
        kcapi_hashlib.file_digest(io.BytesIO(b""), "nope")


def test_file_digest_large_file_from_its_position(tmp_path: object) -> None:
    import os

    path = os.path.join(str(tmp_path), "f")
    data = os.urandom(3 << 20)
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        f.read(12345)  # a buffered reader reads ahead: splice must start at the logical position
        h = kcapi_hashlib.file_digest(f, "sha512")
        assert f.read() == b""  # left at EOF, as the read loop would
    assert h.digest() == hashlib.sha512(data[12345:]).digest()
    with open(path, "rb", buffering=0) as f:
        assert kcapi_hashlib.file_digest(f, "sha256").digest() == hashlib.sha256(data).digest()


def test_file_digest_pipe_uses_the_read_loop() -> None:
    import os

    r, w = os.pipe()
    os.write(w, b"through a pipe")
    os.close(w)
    with open(r, "rb") as f:
        assert kcapi_hashlib.file_digest(f, "sha256").digest() == hashlib.sha256(b"through a pipe").digest()


def test_usedforsecurity_is_accepted() -> None:
    assert kcapi_hashlib.md5(b"a", usedforsecurity=False).digest() == hashlib.md5(b"a").digest()
    assert kcapi_hashlib.new("sha1", b"a", usedforsecurity=False).digest() == hashlib.sha1(b"a").digest()
