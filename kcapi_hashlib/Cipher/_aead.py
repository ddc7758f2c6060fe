"""What the AEAD modes (GCM, CCM, ChaCha20-Poly1305) share: PyCryptodome's incremental API on top of the
kernel's one-shot AEAD operation.

The kernel takes a whole message per operation (algif_aead), while PyCryptodome lets a caller feed the AAD
in pieces, call encrypt()/decrypt() several times (each returning its output at once) and ask for the tag
at the end. Each object therefore runs one of two strategies, chosen at its first encrypt()/decrypt():

- buffered (small messages, and the only one for encrypt_and_digest/decrypt_and_verify of up to _ONESHOT
  bytes): the first encrypt() is one kernel AEAD operation over AAD||PT, which gives the ciphertext and the
  tag of the message so far; later calls get their output from the kernel's keystream (ctr(aes), chacha20)
  at the right offset, and keep a copy of their plaintext, so that digest()/verify() can run one more AEAD
  operation over the whole message when the first tag no longer covers it. A first decrypt() gets its
  plaintext from an AEAD *encryption* of the ciphertext (same keystream; the tag is ignored).
  decrypt_and_verify() of a fresh object is one kernel decryption: the kernel checks the tag (EBADMSG).
- streaming (messages larger than _ONESHOT, and the modes with no kernel AEAD template: GCM with a nonce
  other than 12 bytes, XChaCha20-Poly1305): the output comes from the kernel keystream and the tag from a
  kernel MAC fed as data arrives (GHASH: the 'ghash' hash; Poly1305: the 'poly1305' hash; CCM: CBC-MAC
  through cbc(aes)), so memory stays bounded. Where the kernel lacks that MAC the object stays buffered and
  the final AEAD operation raises the socket buffers to fit the message (see _afalg.aead).

Every cryptographic operation is the kernel's; userspace only XORs 16-byte values the kernel produced (the
GCM pre-counter block), formats lengths and compares tags (hmac.compare_digest, constant time).
"""

from __future__ import annotations

from hmac import compare_digest
from threading import get_ident
from typing import Any, Callable, Optional, Union, overload

from .._afalg import AlgUnavailable, HashStream, KernelError
from .._afalg import aead as _k
from .._afalg import skcipher as _sk
from . import _keystream
from ._common import MessageTooLongError, Stateful, finish, io_views, nbytes, new_output, too_long
from ._common import c_buffer as flat
from ._common import is_buffer as is_buffer
from ._common import is_writeable_buffer as is_writeable_buffer
from ._state_machine import Method

Buffer = Union[bytes, bytearray, memoryview]
Writable = Union[bytearray, memoryview]

# Messages (AAD + data + tag) up to this size go through one kernel AEAD operation; it is below the
# default socket buffers (net.core.wmem_default/rmem_default, 208 KiB) so no setsockopt is needed.
_ONESHOT = 192 * 1024
# CCM's CBC-MAC operations are issued in pieces of this size (a multiple of every block size); keystream pieces
# are Cipher._keystream's.
_CHUNK = 128 * 1024


def c_buffer(x: object) -> None:
    """PyCryptodome's c_uint8_ptr check: data for its C code must be a bytes-like object."""
    if not is_buffer(x):
        raise TypeError(f"Object type {type(x)} cannot be passed to C code")


def xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def zero(out: Optional[Writable]) -> None:
    """Wipe an output buffer (that may hold unverified plaintext); one that is not a writable contiguous
    buffer (a bad output= argument, refused before anything was written) is left alone."""
    if out is None:
        return
    try:
        view = memoryview(out)
        if view.readonly:
            return
        view = flat(view)
    except (TypeError, ValueError, BufferError):
        return
    view[:] = bytes(view.nbytes)


class Mac:
    """A tag computed by the kernel as data arrives: aad() once, then data() any number of times."""

    def aad(self, data: Buffer) -> None:
        raise NotImplementedError

    def data(self, data: Buffer) -> None:
        raise NotImplementedError

    def digest(self) -> bytes:
        raise NotImplementedError


class PaddedHashMac(Mac):
    """The streaming MAC of GCM (GHASH) and ChaCha20-Poly1305 (Poly1305): a kernel hash stream over
    A || pad16 || C || pad16 || the lengths block, fed as the AAD and data arrive; the digest finalizes a clone
    (HashStream.peek) with the last padding and the lengths, then closes the stream. A mode gives the stream,
    the lengths block (_lengths) and what is done to the hash's 16 bytes (_finish)."""

    def __init__(self, stream: HashStream) -> None:
        self._stream = stream
        self._alen = 0
        self._clen = 0

    def _lengths(self) -> bytes:
        """The final block: the lengths of A and C as the MAC encodes them."""
        raise NotImplementedError

    def _finish(self, s: bytes) -> bytes:
        return s

    def aad(self, data: Buffer) -> None:
        self._alen = len(data)
        if self._alen:
            self._stream.update([data, bytes(-self._alen % 16)])

    def data(self, data: Buffer) -> None:
        if len(data):
            self._stream.update([data])
            self._clen += len(data)

    def digest(self) -> bytes:
        s = self._stream.peek(bytes(-self._clen % 16) + self._lengths(), 16)
        self._stream.close()
        return self._finish(s)


class Native:
    """The kernel AEAD template serving an object: its name, tag size (None = default 16) and IV."""

    __slots__ = ("name", "authsize", "iv", "exact")

    def __init__(self, name: str, authsize: Optional[int], iv: bytes, exact: bool) -> None:
        self.name = name
        self.authsize = authsize
        self.iv = iv
        self.exact = exact  # the kernel's tag is exactly mac_len bytes (else: 16, truncated here)


class AeadCipher(Stateful):
    """The strategies described in the module docstring; the modes add their API and checks.

    Thread-safe: every public method runs under the object's lock. Any call that stops part-way after it
    began changing the message state (AAD, data offset, the kernel MAC being fed) marks the object broken:
    every later call raises InterruptedCipherError rather than reuse key stream or produce a wrong tag."""

    _key: bytes
    _mac_len: int
    _next: Any
    _aad: list[Any]
    _aad_len: int
    _data_len: int
    _plain: list[bytes]
    _ctkeep: Optional[bytes]
    _mac: Optional[Mac]
    _streaming: bool
    _no_stream: bool
    _cand: Optional[tuple[int, bytes]]
    _tag: Optional[bytes]

    # Plaintext (CCM) or ciphertext (GCM, Poly1305) is what the MAC covers.
    _MAC_PLAINTEXT = False

    def _setup(self, key: bytes, mac_len: int) -> None:
        self._key = key
        self._mac_len = mac_len
        self._aad = []
        self._aad_len = 0
        self._data_len = 0
        self._plain = []
        self._ctkeep = None
        self._mac = None
        self._streaming = False
        self._no_stream = False
        self._cand = None
        self._tag = None
        self._init_lock()

    # --- PyCryptodome's encrypt()/decrypt() ---

    @overload
    def encrypt(self, plaintext: Buffer) -> bytes: ...

    @overload
    def encrypt(self, plaintext: Buffer, output: Writable) -> None: ...

    @overload
    def encrypt(self, plaintext: Buffer, output: Optional[Writable] = None) -> Optional[bytes]: ...

    def encrypt(self, plaintext: Buffer, output: Optional[Writable] = None) -> Optional[bytes]:
        """Encrypt a piece of the message (as PyCryptodome's mode: after the AAD, before the tag). Into `output`
        if given (then returns None)."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._pre_encrypt(plaintext)
            return self._crypt(plaintext, output, True)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    @overload
    def decrypt(self, ciphertext: Buffer) -> bytes: ...

    @overload
    def decrypt(self, ciphertext: Buffer, output: Writable) -> None: ...

    @overload
    def decrypt(self, ciphertext: Buffer, output: Optional[Writable] = None) -> Optional[bytes]: ...

    def decrypt(self, ciphertext: Buffer, output: Optional[Writable] = None) -> Optional[bytes]:
        """Decrypt a piece of the message (as PyCryptodome's mode: after the AAD, before verify()). Into `output`
        if given (then returns None)."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._pre_decrypt(ciphertext)
            return self._crypt(ciphertext, output, False)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    # --- the tag: PyCryptodome's digest()/verify() and their hex forms ---

    _DIGEST_REFUSED = "digest() cannot be called when decrypting or validating a message"

    def _digest(self) -> bytes:
        """The tag, after the mode's own end-of-message checks (CCM: the declared lengths)."""
        return self._final_tag()

    def digest(self) -> bytes:
        """Compute the binary MAC tag."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._step(Method.DIGEST, (Method.DIGEST,), self._DIGEST_REFUSED)
            return self._digest()
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def hexdigest(self) -> str:
        """Compute the printable MAC tag."""
        return self.digest().hex()

    def _pre_verify(self) -> None:
        self._step(Method.VERIFY, (Method.VERIFY,), "verify() cannot be called when encrypting a message")

    def verify(self, received_mac_tag: Buffer) -> None:
        """Validate the binary MAC tag; ValueError("MAC check failed") if it does not match."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._pre_verify()
            self._digest()
            self._check_tag(received_mac_tag)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def hexverify(self, hex_mac_tag: str) -> None:
        """Validate the printable MAC tag."""
        from binascii import unhexlify

        self.verify(unhexlify(hex_mac_tag))

    # --- per-mode hooks ---

    def _pre_encrypt(self, plaintext: Any) -> None:
        """The mode's state machine step and checks before encrypt() (raises as PyCryptodome's mode)."""
        raise NotImplementedError

    def _pre_decrypt(self, ciphertext: Any) -> None:
        """The same before decrypt() (and decrypt_and_verify's one kernel decryption)."""
        raise NotImplementedError

    def _crypt(self, data: Buffer, output: Optional[Writable], encrypting: bool) -> Optional[bytes]:
        """What encrypt()/decrypt() run after the checks (CCM wraps it)."""
        return self._process(data, output, encrypting)

    def _native(self) -> Optional[Native]:
        """The kernel AEAD template for this object, or None (no template: always streaming)."""
        raise NotImplementedError

    def _xor(self, data: Buffer, offset: int, out: memoryview) -> None:
        """out = data XOR the mode's keystream from byte `offset` of the message."""
        raise NotImplementedError

    def _new_mac(self) -> Mac:
        """A streaming MAC; raises AlgUnavailable when the kernel lacks what it needs."""
        raise NotImplementedError

    def _reference_tag(self, aad: bytes, plain: bytes, reason: KernelError) -> bytes:
        """The full tag of aad/plain from PyCryptodome, under the fallback policy (strict raises): for a message
        too big for one kernel AEAD operation when the kernel has no streaming MAC. Modes that always have a
        streaming MAC (CCM: cbc(aes)) never get here."""
        raise reason

    # --- helpers for the modes ---

    def _stream_xor(
        self,
        name: str,
        bs: int,
        iv_at: Callable[[int], bytes],
        data: Buffer,
        offset: int,
        out: memoryview,
        boundary: Optional[Callable[[int], Optional[int]]] = None,
    ) -> None:
        """out = data XOR the keystream of skcipher `name` (block size bs) from byte `offset` of the message:
        Cipher._keystream.xor on the cached tfm for (name, key), a large message in raised pieces. iv_at(block)
        is the IV of a block, boundary(block) where a kernel message must end after it (None: nowhere)."""
        _keystream.xor(_sk.keyed(name, self._key), flat(data), out, offset, bs, iv_at, boundary, self._key)

    def _aad_joined(self) -> bytes:
        return b"".join(self._aad)

    def _native_encrypt(
        self, native: Native, aad: list[Any], aad_len: int, data: list[Any], out: Optional[memoryview]
    ) -> bytes:
        """One kernel AEAD encryption of aad||data; the ciphertext goes to `out` (or is dropped); returns the
        kernel's tag."""
        data_len = sum(nbytes(d) for d in data)
        tag = bytearray(native.authsize or 16)
        outs: list[memoryview] = []
        if out is None:
            if aad_len + data_len:
                outs.append(memoryview(bytearray(aad_len + data_len)))
        else:
            if aad_len:
                outs.append(memoryview(bytearray(aad_len)))
            if data_len:
                outs.append(out)
        outs.append(memoryview(tag))
        _k.aead_once(native.name, self._key, native.authsize, True, native.iv, aad_len, [*aad, *data], outs)
        return bytes(tag)

    def _start_stream(self) -> None:
        try:
            mac = self._new_mac()
        except AlgUnavailable:
            if self._native() is None:
                raise
            self._no_stream = True  # stay buffered: the final AEAD operation raises the socket buffers
            return
        mac.aad(self._aad_joined())
        if self._plain:
            plain = b"".join(self._plain)
            if self._MAC_PLAINTEXT:
                mac.data(plain)
            else:
                ct = bytearray(len(plain))
                self._xor(plain, 0, memoryview(ct))
                mac.data(ct)
        self._plain = []
        self._cand = None
        self._mac = mac
        self._streaming = True

    def _out_view(
        self, data: Any, output: Optional[Writable]
    ) -> tuple[Optional[Union[bytes, bytearray]], memoryview, memoryview]:
        """PyCryptodome's output checks (then the data check), and where the result goes: (the object to return
        through finish(), or None; the output view; the input view), both views flat bytes. A large result is
        a new bytes object written in place (_common.new_output): no second copy of a multi-MiB message."""
        src, dst = io_views(data, output)
        if dst is None:
            result, view = new_output(len(src))
            return result, view, src
        return None, dst, src

    def _process(self, data: Buffer, output: Optional[Writable], encrypting: bool) -> Optional[bytes]:
        """encrypt()/decrypt() of the modes (the caller holds the lock and checked _usable and the order)."""
        result, out, src = self._out_view(data, output)
        n = len(src)
        if n == 0:
            return None if output is not None else b""
        self._broken = "encrypt" if encrypting else "decrypt"
        offset = self._data_len
        self._data_len = offset + n  # reserved: the key stream of [offset, offset + n) is this call's
        if self._ctkeep is not None:
            self._recover_plain()
        native = self._native()
        if not self._streaming and not self._no_stream:
            if native is None or self._aad_len + offset + n + 16 > _ONESHOT:
                self._start_stream()
        if self._streaming:
            mac = self._mac
            assert mac is not None
            # Order matters when output aliases the input (in-place): MAC the input before overwriting it.
            if encrypting == self._MAC_PLAINTEXT:
                mac.data(src)
                self._xor(src, offset, out)
            else:
                self._xor(src, offset, out)
                mac.data(out)
        else:
            assert native is not None
            keep = src.tobytes() if encrypting else None  # copied before `out` (maybe the input) is written
            if offset == 0:
                try:
                    if encrypting:
                        tag = self._native_encrypt(native, self._aad, self._aad_len, [src], out)
                        self._cand = (n, tag)
                    else:
                        self._native_encrypt(native, [], 0, [src], out)
                except KernelError as e:
                    if not _k.too_big(e):
                        raise
                    self._xor(src, 0, out)  # the keystream has no size limit; the tag is _final_tag's problem
            else:
                self._xor(src, offset, out)
            self._plain.append(keep if keep is not None else bytes(out))
        self._broken = None
        return finish(result) if result is not None else None

    def _recover_plain(self) -> None:
        # After a failed one-shot decrypt_and_verify: the plaintext was never kept; rebuild it.
        ct, self._ctkeep = self._ctkeep, None
        assert ct is not None
        pt = bytearray(len(ct))
        if ct:
            self._xor(ct, 0, memoryview(pt))
        self._plain = [bytes(pt)]

    def _final_tag(self) -> bytes:
        """The tag of the message so far (mac_len bytes), computed once."""
        if self._tag is None:
            self._broken = "digest"
            if self._ctkeep is not None:
                self._recover_plain()
            native = self._native()
            if not self._streaming and native is None:
                self._start_stream()
            if self._streaming:
                assert self._mac is not None
                full = self._mac.digest()
            elif self._cand is not None and self._cand[0] == self._data_len:
                full = self._cand[1]
            else:
                self._broken = None  # the state is whole, and nothing below changes it until the tag is set
                assert native is not None
                try:
                    full = self._native_encrypt(native, self._aad, self._aad_len, self._plain, None)
                except KernelError as e:
                    if not _k.too_big(e):
                        raise
                    # No streaming MAC in this kernel (7.x has no ghash/poly1305 hash) and the message is more
                    # than one AEAD operation may carry: the policy decides (strict raises; fallback computes
                    # the tag with PyCryptodome, counted).
                    full = self._reference_tag(self._aad_joined(), b"".join(self._plain), e)
            self._tag = full[: self._mac_len]
            self._plain = []
            self._broken = None
        return self._tag

    def _check_tag(self, received_mac_tag: Any) -> None:
        tag = self._final_tag()
        if not compare_digest(tag, flat(received_mac_tag) if is_buffer(received_mac_tag) else received_mac_tag):
            raise ValueError("MAC check failed")

    def _dav_ok(self, ciphertext: Any, received_mac_tag: Any) -> bool:
        """Whether decrypt_and_verify of this (fresh) object can be one kernel decryption, in which the kernel
        checks the tag: a template with the exact tag size, a well-formed tag, a non-empty output (recv(0)
        does not run an operation) and a message within _ONESHOT."""
        native = self._native()
        if native is None or not native.exact or self._streaming or self._data_len or self._ctkeep is not None:
            return False
        if not is_buffer(ciphertext) or not is_buffer(received_mac_tag) or nbytes(received_mac_tag) != self._mac_len:
            return False
        n = nbytes(ciphertext)
        return 0 < self._aad_len + n and self._aad_len + n + self._mac_len <= _ONESHOT

    def _dav_run(self, ciphertext: Buffer, received_mac_tag: Buffer, out: memoryview) -> bool:
        native = self._native()
        assert native is not None
        keep = flat(ciphertext).tobytes()
        tag = flat(received_mac_tag).tobytes()
        n = len(keep)
        outs = [memoryview(bytearray(self._aad_len))] if self._aad_len else []
        if n:
            outs.append(out)
        self._broken = "decrypt_and_verify"
        try:
            _k.aead_once(
                native.name, self._key, native.authsize, False, native.iv, self._aad_len,
                [*self._aad, keep, tag], outs,
            )  # fmt: skip
        except _k.BadTag:
            self._data_len = n
            self._ctkeep = keep  # a later verify() with another tag needs the message
            self._broken = None
            return False
        self._data_len = n
        self._tag = tag
        self._broken = None
        return True


class NistAeadCipher(AeadCipher):
    """encrypt_and_digest() and decrypt_and_verify() as PyCryptodome's GCM and CCM modes have them (with output=;
    ChaCha20_Poly1305 has its own, without)."""

    @overload
    def encrypt_and_digest(self, plaintext: Buffer) -> tuple[bytes, bytes]: ...

    @overload
    def encrypt_and_digest(self, plaintext: Buffer, output: Writable) -> tuple[None, bytes]: ...

    def encrypt_and_digest(self, plaintext: Buffer, output: Optional[Writable] = None) -> tuple[Optional[bytes], bytes]:
        """Perform encrypt() and digest() in one step."""
        return self.encrypt(plaintext, output=output), self.digest()

    @overload
    def decrypt_and_verify(self, ciphertext: Buffer, received_mac_tag: Buffer) -> bytes: ...

    @overload
    def decrypt_and_verify(self, ciphertext: Buffer, received_mac_tag: Buffer, output: Writable) -> None: ...

    def decrypt_and_verify(
        self, ciphertext: Buffer, received_mac_tag: Buffer, output: Optional[Writable] = None
    ) -> Optional[bytes]:
        """Perform decrypt() and verify() in one step; on a bad tag no plaintext is returned and `output` is
        zeroed."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            if self._dav_ok(ciphertext, received_mac_tag):
                self._pre_decrypt(ciphertext)
                try:
                    result, out, _ = self._out_view(ciphertext, output)
                except (TypeError, ValueError, BufferError):
                    self._broken = None  # nothing changed yet (CCM's _pre_decrypt marked the object)
                    raise
                ok = self._dav_run(ciphertext, received_mac_tag, out)
                self._pre_verify()
                if not ok:
                    raise ValueError("MAC check failed")
                return finish(result) if result is not None else None
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        try:
            plaintext = self.decrypt(ciphertext, output=output)
            self.verify(received_mac_tag)
        except BaseException:  # a bad tag, or anything else before the tag was checked (an interrupt)
            zero(output)  # never leave unverified plaintext behind
            raise
        return plaintext


__all__ = ["AeadCipher", "Mac", "NistAeadCipher", "MessageTooLongError", "Native", "PaddedHashMac", "too_long"]
