"""Ciphers: kcapi_hashlib.Cipher next to PyCryptodome, and libkcapi's kcapi-enc on the same kernel.

- AES-128-CBC and AES-256-CTR encryption (`AES.new(key, mode, iv/nonce).encrypt(data)`, a new object per
  operation, as applications do) of each size (64 B, 4 KiB, 1 MiB by default): kcapi_hashlib against
  PyCryptodome (AES-NI where the CPU has it; none inside user-mode-linux, whose CPU flags it does not see);
  `kcapi-enc -c cbc(aes)` / `ctr(aes)` (Debian kcapi-tools) as whole processes, start-up included, reading the
  data from a file and writing another (in /dev/shm), the key passed on a file descriptor (CBC: kcapi-enc
  adds PKCS#7 padding, one block more).
- ChaCha20 (12-byte nonce) and AES-256-CFB128 / OFB (composed from kernel block operations) against
  PyCryptodome, for the same sizes.
The syscall column (kcapi_hashlib row) is the steady state with a key used before: one sendmsg + one recv per
socket-buffer's worth of data.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable

from benchmarks._common import Case

KEY = bytes(range(32))
IV = bytes(range(16))

_data_cache: dict[int, bytes] = {}
_tmp: list[Path] = []


def _data(size: int) -> bytes:
    data = _data_cache.get(size)
    if data is None:
        data = _data_cache[size] = (bytes(range(256)) * (size // 256 + 1))[:size]
    return data


def _dir() -> Path:
    if not _tmp:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None
        path = Path(tempfile.mkdtemp(prefix="kcapi-bench-cipher-", dir=base))
        atexit.register(shutil.rmtree, str(path), True)
        _tmp.append(path)
    return _tmp[0]


def _file(name: str, content: bytes) -> str:
    path = _dir() / name
    if not path.exists():
        path.write_bytes(content)
    return str(path)


def _kcapi_enc(cipher: str, key: bytes, size: int) -> dict[str, list[str]]:
    """kcapi-enc encrypting a file of `size` bytes into another file (it refuses /dev/null: "no regular
    file"), the key read from fd 3."""
    if shutil.which("kcapi-enc") is None:
        return {}
    key_file = _file(f"key-{len(key)}", key)
    data_file = _file(f"data-{size}", _data(size))
    command = (
        f"exec kcapi-enc -q -e -c '{cipher}' --iv {IV.hex()} --keyfd 3 -i {data_file} -o {data_file}.out 3<{key_file}"
    )
    return {"kcapi-enc": ["sh", "-c", command]}


def _encrypt(make: Callable[[], Any], data: bytes) -> bytes:
    return bytes(make().encrypt(data))


def cases(sizes: list[int]) -> list[Case]:
    from Crypto.Cipher import AES as RefAES
    from Crypto.Cipher import ChaCha20 as RefChaCha20

    from kcapi_hashlib.Cipher import AES, ChaCha20

    rows: list[tuple[str, Callable[[Any], Any], str, str]] = [
        # name, constructor(module), op source for the syscall count, kernel name for kcapi-enc ("" = none)
        ("AES-128-CBC", lambda m: m.new(KEY[:16], m.MODE_CBC, IV), "AES.new(key[:16], AES.MODE_CBC, iv)", "cbc(aes)"),
        ("AES-256-CTR", lambda m: m.new(KEY, m.MODE_CTR, nonce=IV[:8]), "AES.new(key, AES.MODE_CTR, nonce=iv[:8])",
         "ctr(aes)"),
        ("AES-256-CFB128", lambda m: m.new(KEY, m.MODE_CFB, IV, segment_size=128),
         "AES.new(key, AES.MODE_CFB, iv, segment_size=128)", ""),
        ("AES-256-OFB", lambda m: m.new(KEY, m.MODE_OFB, IV), "AES.new(key, AES.MODE_OFB, iv)", ""),
        ("ChaCha20", lambda m: m.new(key=KEY, nonce=IV[:12]), "ChaCha20.new(key=key, nonce=iv[:12])", ""),
    ]  # fmt: skip
    out: list[Case] = []
    for name, make, source, kernel_name in rows:
        ours_module, ref_module = (ChaCha20, RefChaCha20) if name == "ChaCha20" else (AES, RefAES)
        for size in sizes:
            data = _data(size)
            key_len = 16 if name.startswith("AES-128") else 32
            out.append(
                Case(
                    group="cipher",
                    name=name,
                    size=size,
                    impls={
                        "kcapi_hashlib": partial(_encrypt, partial(make, ours_module), data),
                        "PyCryptodome": partial(_encrypt, partial(make, ref_module), data),
                    },
                    setup=(
                        "from kcapi_hashlib.Cipher import AES, ChaCha20\n"
                        f"key = bytes(range(32))\niv = bytes(range(16))\ndata = bytes({size})"
                    ),
                    op=f"{source}.encrypt(data)",
                    external=_kcapi_enc(kernel_name, KEY[:key_len], size) if kernel_name else {},
                )
            )
    return out
