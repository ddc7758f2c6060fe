"""Anchors for benchmarks/run.py: how fast the same kernel does the same algorithm without kcapi_hashlib, in the
same run on the same kernel, for each case that has a kernel counterpart (KERNEL below).

- in-kernel: the kernel's own speed test, tcrypt (`modprobe tcrypt mode=N sec=1`: it runs in the kernel, writes
  its results to the kernel log and then refuses to load, by design). Hashes: mode 300 with alg=NAME (one
  algorithm, ~22 s under UML); AEAD: mode 211 (gcm(aes) and rfc4106, all key sizes: ~60 s under UML, so only
  with --tcrypt all). tcrypt's blocks stop at 8 KiB: the row is tcrypt's largest block <= the case's size (its
  smallest above), named in the row. There is no single-algorithm skcipher speed mode (mode 200 runs every AES
  mode, minutes), so ciphers get no tcrypt row.
- libkcapi: benchmarks/anchor_kcapi.c compiled against Debian's libkcapi-dev (gcc + kcapi.h + -lkcapi): one
  handle reused across messages, and libkcapi's one-shot helpers (a handle per message).
- raw AF_ALG loop: a Python loop on one op socket (bound and keyed once): sendmsg + recv per message, nothing
  else: the userspace floor of any Python AF_ALG library.

Every anchor degrades to a row saying "n/a: why" (no tcrypt module, no libkcapi-dev, a message larger than one
socket buffer for an interface that needs it whole, ...). Benchmarks print; they never assert.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple, Optional

HERE = Path(__file__).resolve().parent


class Kernel(NamedTuple):
    kind: str  # md, cipher, aead (libkcapi's words)
    name: str  # the kernel algorithm name
    keylen: int  # key bytes (0: none)
    tcrypt_mode: int  # 0: no tcrypt speed mode for it
    tcrypt_alg: str  # alg= for mode 300; the section name for mode 211
    quick: bool  # tcrypt in the default (quick) selection


# (group, case name) -> the kernel algorithm the case runs (keys and IVs as in bench_cipher/bench_aead)
KERNEL: dict[tuple[str, str], Kernel] = {
    ("hash", "sha256"): Kernel("md", "sha256", 0, 300, "sha256", True),
    ("hash", "sha1"): Kernel("md", "sha1", 0, 300, "sha1", False),
    ("hash", "sha512"): Kernel("md", "sha512", 0, 300, "sha512", False),
    ("cipher", "AES-128-CBC"): Kernel("cipher", "cbc(aes)", 16, 0, "", False),
    ("cipher", "AES-256-CTR"): Kernel("cipher", "ctr(aes)", 32, 0, "", False),
    ("aead", "AES-256-GCM"): Kernel("aead", "gcm(aes)", 32, 211, "gcm(aes)", False),
}

AF_ALG = 38
SOL_ALG = 279


class Anchor(NamedTuple):
    label: str
    seconds: Optional[float]  # per operation
    note: str  # "n/a: why" when seconds is None, else a detail


# --- tcrypt ------------------------------------------------------------------------------------------------

_tcrypt_runs: dict[tuple[int, str], tuple[Optional[str], str]] = {}  # (mode, alg) -> (log text or None, why)


def _modprobe() -> Optional[str]:
    try:
        path = Path("/proc/sys/kernel/modprobe").read_text().strip()  # the VM points it at its own wrapper
    except OSError:
        path = ""
    return path if path and os.access(path, os.X_OK) else shutil.which("modprobe")


def _tcrypt_log(mode: int, alg: str) -> tuple[Optional[str], str]:
    key = (mode, alg)
    if key not in _tcrypt_runs:
        _tcrypt_runs[key] = _run_tcrypt(mode, alg)
    return _tcrypt_runs[key]


def _run_tcrypt(mode: int, alg: str) -> tuple[Optional[str], str]:
    modprobe, dmesg = _modprobe(), shutil.which("dmesg")
    if modprobe is None or dmesg is None:
        return None, "n/a: no modprobe or dmesg here"
    if os.geteuid() != 0:
        return None, "n/a: loading tcrypt needs root"
    subprocess.run([dmesg, "-C"], capture_output=True)
    args = [modprobe, "tcrypt", f"mode={mode}", "sec=1"] + ([f"alg={alg}"] if mode == 300 else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900)
    log = subprocess.run([dmesg, "-c"], capture_output=True, text=True)
    # tcrypt always fails to load (-EAGAIN after its tests); "not found" means the kernel has no tcrypt.ko
    if "not found" in proc.stderr or "tcrypt" not in log.stdout:
        return None, f"n/a: tcrypt: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no output'}"
    return log.stdout, ""


def _clean(log: str) -> str:
    # dmesg lines "[   12.34] tcrypt: text" (a long result may continue on the next line): one text
    return " ".join(re.sub(r"^\[[^\]]*\]\s*(tcrypt:\s*)?", "", line).strip() for line in log.splitlines())


def tcrypt_speeds(k: Kernel) -> tuple[dict[int, float], str]:
    """{block bytes: bytes/s} of the kernel's tcrypt run for k (one update per block; encryption, k's key
    size), and the driver tcrypt reported, or ({}, "n/a: why")."""
    if not k.tcrypt_mode:
        return {}, "n/a: tcrypt has no single-algorithm speed mode for this (mode 200 runs every AES mode)"
    log, why = _tcrypt_log(k.tcrypt_mode, k.tcrypt_alg)
    if log is None:
        return {}, why
    text = _clean(log)
    out: dict[int, float] = {}
    if k.tcrypt_mode == 300:
        m = re.search(r"testing speed of (\S+) \((\S+)\)", text)
        for b, p, y in re.findall(r"\(\s*(\d+) byte blocks,\s*(\d+) bytes per update,\s*\d+ updates\):\s*\d+ "
                                  r"opers/sec,\s*(\d+) bytes/sec", text):  # fmt: skip
            if b == p:
                out[int(b)] = float(y)
        return out, m.group(2) if m else ""
    driver = ""
    for section in re.split(r"(?=testing speed of )", text):
        m = re.match(r"testing speed of (?:\S+ )?(\S+) \((\S+)\) encryption", section)
        if m is None or m.group(1) != k.tcrypt_alg:
            continue
        driver = m.group(2)
        for bits, b, y, s in re.findall(r"\((\d+) bit key, (\d+) byte blocks\): \d+ operations in (\d+) seconds "
                                        r"\((\d+) bytes\)", section):  # fmt: skip
            if int(bits) == 8 * k.keylen:
                out[int(b)] = float(y) / float(s)
        break
    return out, driver


def _tcrypt_anchor(k: Kernel, size: int) -> Anchor:
    speeds, note = tcrypt_speeds(k)
    if not speeds:
        return Anchor("in-kernel (tcrypt)", None, note or "n/a: no tcrypt result parsed")
    below = [b for b in speeds if b <= size]
    block = max(below) if below else min(speeds)
    return Anchor(f"in-kernel (tcrypt, {block} B blocks)", size / speeds[block], note)


# --- libkcapi ----------------------------------------------------------------------------------------------

_binary: list[tuple[Optional[str], str]] = []


def _libkcapi_binary() -> tuple[Optional[str], str]:
    if not _binary:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            _binary.append((None, "n/a: no C compiler"))
        elif not Path("/usr/include/kcapi.h").exists():
            _binary.append((None, "n/a: libkcapi-dev is not installed (apt-get install libkcapi-dev)"))
        else:
            out = os.path.join(tempfile.mkdtemp(prefix="kcapi-anchor-"), "anchor_kcapi")
            proc = subprocess.run([cc, "-O2", "-o", out, str(HERE / "anchor_kcapi.c"), "-lkcapi"],
                                  capture_output=True, text=True)  # fmt: skip
            if proc.returncode != 0:
                _binary.append((None, f"n/a: compiling anchor_kcapi.c failed: {proc.stderr.strip()[-200:]}"))
            else:
                _binary.append((out, ""))
    return _binary[0]


def _libkcapi_anchor(k: Kernel, size: int, how: str, min_time: float) -> Anchor:
    label = "libkcapi C (reused handle)" if how == "handle" else "libkcapi C (one-shot helper)"
    if k.kind == "aead" and size > 192 * 1024:
        # kcapi_aead_encrypt sends the whole message at once: beyond the socket buffer the send blocks forever
        return Anchor(label, None, "n/a: libkcapi blocks on an AEAD message beyond one socket buffer")
    binary, why = _libkcapi_binary()
    if binary is None:
        return Anchor(label, None, why)
    try:
        proc = subprocess.run([binary, k.kind, k.name, str(size), str(min_time), how],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Anchor(label, None, "n/a: timed out")
    if proc.returncode != 0:
        return Anchor(label, None, f"n/a: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    ops, seconds = proc.stdout.split()
    return Anchor(label, float(seconds) / int(ops), "")


# --- the raw socket loop -----------------------------------------------------------------------------------


def _raw_loop(k: Kernel, size: int) -> Callable[[], object]:
    tfm = socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0)
    tfm.bind(({"md": "hash", "cipher": "skcipher", "aead": "aead"}[k.kind], k.name))
    if k.keylen:
        tfm.setsockopt(SOL_ALG, 1, bytes(range(k.keylen)))
    op, _ = tfm.accept()
    data = bytes(size)
    if k.kind == "md":

        def md() -> object:
            op.sendall(data)
            return op.recv(64)

        return md
    extra = 32 if k.kind == "aead" else 0
    for opt in (32, 33):  # SO_SNDBUFFORCE, SO_RCVBUFFORCE (root); else SO_SNDBUF/SO_RCVBUF up to *mem_max
        try:
            op.setsockopt(socket.SOL_SOCKET, opt, size + extra + 8192)
        except PermissionError:
            op.setsockopt(socket.SOL_SOCKET, opt - 25, size + extra + 8192)
    if op.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < size + extra:
        raise OSError("the message does not fit one socket buffer")
    out = bytearray(size + extra)
    if k.kind == "cipher":
        cmsg = [(SOL_ALG, 3, struct.pack("I", 1)), (SOL_ALG, 2, struct.pack("I", 16) + bytes(16))]
        parts = [data]
    else:
        cmsg = [(SOL_ALG, 3, struct.pack("I", 1)), (SOL_ALG, 2, struct.pack("I", 12) + bytes(12)),
                (SOL_ALG, 4, struct.pack("I", 16))]  # fmt: skip
        parts = [bytes(16), data]

    def crypt() -> object:
        op.sendmsg(parts, cmsg)
        return op.recv_into(out)

    crypt()  # a refusal (ENOMEM beyond optmem_max) shows here, not in the timing
    return crypt


def _raw_anchor(k: Kernel, size: int, timer: Callable[[Callable[[], object]], float]) -> Anchor:
    label = "raw AF_ALG loop (Python)"
    try:
        fn = _raw_loop(k, size)
    except OSError as e:
        return Anchor(label, None, f"n/a: {e.strerror or e}")
    return Anchor(label, timer(fn), "")


# --- entry point -------------------------------------------------------------------------------------------


def anchors(
    group: str, name: str, size: int, tcrypt: str, min_time: float, timer: Callable[[Callable[[], object]], float]
) -> list[Anchor]:
    """The anchor rows of one case (none where it has no kernel counterpart). tcrypt: none, quick, all."""
    k = KERNEL.get((group, name))
    if k is None:
        return []
    rows = []
    if tcrypt == "all" or (tcrypt == "quick" and k.quick):
        rows.append(_tcrypt_anchor(k, size))
    else:
        why = f"n/a: not selected (--tcrypt all runs mode {k.tcrypt_mode})" if k.tcrypt_mode else ""
        rows.append(Anchor("in-kernel (tcrypt)", None, why or "n/a: tcrypt has no single-algorithm speed mode"))
    rows.append(_libkcapi_anchor(k, size, "handle", min_time))
    rows.append(_libkcapi_anchor(k, size, "oneshot", min_time))
    rows.append(_raw_anchor(k, size, timer))
    return rows
