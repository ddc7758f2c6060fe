"""AEAD: AES-GCM, AES-CCM and ChaCha20-Poly1305 from kcapi_hashlib.Cipher next to PyCryptodome, and libkcapi's
kcapi-enc on the same kernel (gcm(aes) and rfc7539(chacha20,poly1305), as whole processes: start-up, reading
the data file and writing the ciphertext and tag included; the key on a file descriptor; up to 192 KiB: beyond
the socket buffer kcapi-enc blocks forever).

Each operation is `new(key, ..., nonce).update(aad)` + `encrypt_and_digest(data)` with a new object, 16 bytes
of AAD. Up to 192 KiB this is one kernel AEAD operation (sendmsg + recvmsg with a cached key); larger
messages stream through the kernel keystream (ctr(aes), chacha20) and a kernel MAC (ghash, poly1305,
cbc(aes) CBC-MAC): see kcapi_hashlib/Cipher/_aead.py.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from benchmarks._common import Case
from benchmarks.bench_cipher import IV, KEY, _data, _file

AAD = bytes(range(16))


# kcapi-enc (libkcapi 1.4.0) sends an AEAD message in one go and blocks forever once it exceeds the socket
# buffer (observed: 1 MiB through gcm(aes) and rfc7539 never returns on 6.1), so it gets no row above this.
_KCAPI_ENC_MAX = 192 * 1024


def _kcapi_enc(cipher: str, size: int) -> dict[str, list[str]]:
    import shutil

    if shutil.which("kcapi-enc") is None or size > _KCAPI_ENC_MAX:
        return {}
    key_file = _file(f"key-{len(KEY)}", KEY)
    data_file = _file(f"data-{size}", _data(size))
    command = (
        f"exec kcapi-enc -q -e -c '{cipher}' --iv {IV[:12].hex()} --aad {AAD.hex()} --taglen 16 --keyfd 3 "
        f"-i {data_file} -o {data_file}.aead.out 3<{key_file}"
    )
    return {"kcapi-enc": ["sh", "-c", command]}


def _seal(make: Callable[[], Any], data: bytes) -> tuple[bytes, bytes]:
    c = make()
    c.update(AAD)
    ct, tag = c.encrypt_and_digest(data)
    return ct, tag


def cases(sizes: list[int]) -> list[Case]:
    from Crypto.Cipher import AES as RefAES
    from Crypto.Cipher import ChaCha20_Poly1305 as RefCP

    from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305

    rows: list[tuple[str, Callable[[Any], Any], Any, Any, str, str]] = [
        # name, constructor(module), ours, reference, op source for the syscall count, kcapi-enc cipher
        ("AES-256-GCM", lambda m: m.new(KEY, m.MODE_GCM, nonce=IV[:12]), AES, RefAES,
         "AES.new(key, AES.MODE_GCM, nonce=iv[:12])", "gcm(aes)"),
        ("AES-128-CCM", lambda m: m.new(KEY[:16], m.MODE_CCM, nonce=IV[:11]), AES, RefAES,
         "AES.new(key[:16], AES.MODE_CCM, nonce=iv[:11])", ""),
        ("ChaCha20-Poly1305", lambda m: m.new(key=KEY, nonce=IV[:12]), ChaCha20_Poly1305, RefCP,
         "ChaCha20_Poly1305.new(key=key, nonce=iv[:12])", "rfc7539(chacha20,poly1305)"),
    ]  # fmt: skip
    out: list[Case] = []
    for name, make, ours, ref, source, kernel_name in rows:
        for size in sizes:
            data = _data(size)
            out.append(
                Case(
                    group="aead",
                    name=name,
                    size=size,
                    impls={
                        "kcapi_hashlib": partial(_seal, partial(make, ours), data),
                        "PyCryptodome": partial(_seal, partial(make, ref), data),
                    },
                    setup=(
                        "from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305\n"
                        f"key = bytes(range(32))\niv = bytes(range(16))\ndata = bytes({size})\n"
                        f"aad = bytes(range(16))"
                    ),
                    op=f"c = {source}\nc.update(aad)\nc.encrypt_and_digest(data)",
                    external=_kcapi_enc(kernel_name, size) if kernel_name else {},
                )
            )
    return out
