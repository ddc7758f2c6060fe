"""Declared kernel requirements of tests: the `kernel_alg` marker (conftest.py checks it).

    pytestmark = requires.kernel_alg("aead", "gcm(aes)", only="test_gcm*")   # fixed, for some tests
    pytestmark = requires.hashes("name")                                    # from a parameter's value
    pytestmark = [*requires.ciphers("make")]     # what the Cipher objects a parameter's code makes bind
    pytestmark = requires.hash_names("sha256", "hmac:sha256", only="test_x")  # hashlib names, fixed

A test whose declared algorithm the kernel refuses HERE because of af_alg_restrict (7.3+) skips, with the
restriction's sentence as the reason (conftest collects and prints them). Any other refusal (ENOENT at level 0,
EINVAL, ...) does not skip: the test runs and shows it. Where af_alg_restrict is absent or 0 nothing is probed,
so declarations change nothing there.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Union

import pytest

from kcapi_hashlib._algorithms import BY_NAME

# mode -> the kernel skcipher(s) kcapi_hashlib's Cipher builds it on (CFB binds ecb and cbc: _mode_cfb.py)
AES_MODES: dict[str, Any] = {
    "ECB": "ecb(aes)", "CBC": "cbc(aes)", "CFB": ("ecb(aes)", "cbc(aes)"), "OFB": "cbc(aes)", "CTR": "ctr(aes)",
}  # fmt: skip
TDES_MODES: dict[str, Any] = {
    "ECB": "ecb(des3_ede)", "CBC": "cbc(des3_ede)", "CFB": ("ecb(des3_ede)", "cbc(des3_ede)"),
    "OFB": "cbc(des3_ede)", "CTR": "ctr(des3_ede)",
}  # fmt: skip


def kernel_alg(
    alg_type: str,
    name: Union[str, tuple[str, ...], None] = None,
    *,
    only: Optional[str] = None,
    from_param: Optional[str] = None,
    kernel: Optional[Callable[[Any], Any]] = None,
) -> pytest.MarkDecorator:
    """The test needs the kernel to bind (alg_type, name) (a tuple: each of those names); `only`: for test
    functions matching this fnmatch pattern; `from_param`/`kernel`: the name is kernel(value of that
    parameter): a name, a tuple of names, or None (nothing needed)."""
    kwargs: dict[str, Any] = {}
    if only is not None:
        kwargs["only"] = only
    if from_param is not None:
        kwargs["from_param"] = from_param
        kwargs["kernel"] = kernel or (lambda value: value)
    args = (alg_type,) if name is None else (alg_type, name)
    return pytest.mark.kernel_alg(*args, **kwargs)


def _field(value: Any, field: Optional[str]) -> Any:
    return value[field] if field is not None else value


def hashes(param: str, field: Optional[str] = None, *, only: Optional[str] = None) -> pytest.MarkDecorator:
    """The hash named (hashlib's name) by parameter `param` (or its `field`, for vector dicts)."""

    def kernel(value: Any) -> Optional[str]:
        row = BY_NAME.get(_field(value, field))
        return row.kernel if row is not None else None

    return kernel_alg("hash", from_param=param, kernel=kernel, only=only)


def hmacs(param: str, field: Optional[str] = None, *, only: Optional[str] = None) -> pytest.MarkDecorator:
    """HMAC over the hash named by parameter `param` (or its `field`)."""

    def kernel(value: Any) -> Optional[str]:
        row = BY_NAME.get(_field(value, field))
        return f"hmac({row.kernel})" if row is not None and row.kernel else None

    return kernel_alg("hash", from_param=param, kernel=kernel, only=only)


def modes(
    param: str, table: dict[str, str], field: str = "mode", *, only: Optional[str] = None
) -> pytest.MarkDecorator:
    """The skcipher a mode (the parameter's `field`, e.g. "CBC") is built on, per `table`."""
    return kernel_alg("skcipher", from_param=param, kernel=lambda v: table.get(v[field]), only=only)


def _kernel_name(name: str) -> str:
    """A hashlib name ("sha3_256") or "hmac:NAME" as the kernel's hash name ("sha3-256", "hmac(sha3-256)")."""
    mac, _, hashname = name.rpartition(":")
    row = BY_NAME[hashname]
    assert row.kernel, f"{hashname} has no kernel algorithm"
    return f"hmac({row.kernel})" if mac == "hmac" else row.kernel


def hash_names(*names: str, only: Optional[str] = None) -> pytest.MarkDecorator:
    """Fixed hashes by hashlib's names; "hmac:sha256" for the kernel's hmac(sha256)."""
    return kernel_alg("hash", tuple(_kernel_name(n) for n in names), only=only)


# What kcapi_hashlib's Cipher binds for each mode (Cipher/_mode_*.py): CFB encrypts with ecb and decrypts with
# cbc, OFB runs on cbc, GCM and CCM probe their AEAD template and ctr (the streaming path's keystream).
_SKCIPHER_MODES = {"ECB": ("ecb",), "CBC": ("cbc",), "CTR": ("ctr",), "CFB": ("ecb", "cbc"), "OFB": ("cbc",),
                   "XTS": ("xts",), "GCM": ("ctr",), "CCM": ("ctr",)}  # fmt: skip
_AEAD_MODES = {"GCM": "gcm", "CCM": "ccm"}


def _code_text(value: Any) -> str:
    """The names a parameter's code uses: a string of code as is, a callable's co_names (a lambda's
    `m.AES.new(KEY, m.AES.MODE_CTR, ...)` -> "AES new MODE_CTR"), tuples/lists element by element."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return " ".join(_code_text(v) for v in value)
    code = getattr(value, "__code__", None)
    return " ".join(code.co_names) if code is not None else ""


def cipher_algorithms(value: Any) -> dict[str, tuple[str, ...]]:
    """alg_type -> the kernel algorithms the kcapi_hashlib.Cipher objects made by `value` (code: a string or
    a callable) bind: AES/DES3 modes, ChaCha20 (chacha20; xchacha20 is in the same module, refused alike),
    ChaCha20_Poly1305 (the kernel's rfc7539 AEAD)."""
    text = _code_text(value)
    found: dict[str, list[str]] = {"skcipher": [], "aead": []}
    cipher = "des3_ede" if re.search(r"\bDES3\b", text) else "aes"
    for mode in re.findall(r"\bMODE_([A-Z]+)\b", text):
        found["skcipher"] += [f"{m}({cipher})" for m in _SKCIPHER_MODES.get(mode, ())]
        if mode in _AEAD_MODES:
            found["aead"].append(f"{_AEAD_MODES[mode]}({cipher})")
    if re.search(r"\b(ChaCha20_Poly1305|CP)\b", text):  # CP: the tests' namespace name for it
        found["aead"].append("rfc7539(chacha20,poly1305)")
    if re.search(r"\bChaCha20\b", text):
        found["skcipher"].append("chacha20")
    return {t: tuple(dict.fromkeys(names)) for t, names in found.items() if names}


def ciphers(param: str, *, only: Optional[str] = None) -> list[pytest.MarkDecorator]:
    """What the Cipher objects made by parameter `param`'s code bind (cipher_algorithms), per type."""
    return [
        kernel_alg(t, from_param=param, kernel=lambda v, t=t: cipher_algorithms(v).get(t), only=only)
        for t in ("skcipher", "aead")
    ]


def ciphers_of(param: str, table: dict[str, Any], *, only: Optional[str] = None) -> list[pytest.MarkDecorator]:
    """As ciphers(), for a parameter that names an entry of `table` (whose value holds the code)."""
    return [
        kernel_alg(t, from_param=param, kernel=lambda v, t=t: cipher_algorithms(table[v]).get(t), only=only)
        for t in ("skcipher", "aead")
    ]


def cipher_code(code: str, *, only: Optional[str] = None) -> list[pytest.MarkDecorator]:
    """What the Cipher objects `code` (fixed) makes bind (cipher_algorithms), per type."""
    return [kernel_alg(t, names, only=only) for t, names in cipher_algorithms(code).items()]
