"""The kernel ABI structures kcapi_hashlib packs itself are in the machine's byte order, and untested machines are
refused rather than guessed at.

io_uring (include/uapi/linux/io_uring.h: struct io_uring_params, io_uring_sqe, io_uring_cqe) and the AF_ALG
control messages (include/uapi/linux/if_alg.h: ALG_SET_OP's u32, struct af_alg_iv's u32 ivlen,
ALG_SET_AEAD_ASSOCLEN's u32, ALG_SET_KEY_BY_KEY_SERIAL's s32) are native: on a big-endian machine (s390x) a
little-endian packing has the kernel read byte-swapped lengths and addresses. Each packing is compared with
int.to_bytes(..., sys.byteorder) at the kernel's field offsets, and every struct format in kcapi_hashlib._afalg
is checked to be native ('=' or '@'/no prefix), which catches a '<' on a little-endian machine too, where the
bytes alone would agree. None of this needs AF_ALG."""

from __future__ import annotations

import ast
import ctypes
import errno
import platform
import struct
import sys
import threading
from pathlib import Path

import pytest

import kcapi_hashlib._afalg as afalg
from kcapi_hashlib._afalg import aead, keyring, skcipher, uring
from kcapi_hashlib._afalg.core import ALG_OP_ENCRYPT, ALG_SET_AEAD_ASSOCLEN, ALG_SET_IV, ALG_SET_OP, SOL_ALG

NATIVE = sys.byteorder


def _u(value: int, size: int, signed: bool = False) -> bytes:
    return value.to_bytes(size, NATIVE, signed=signed)


def test_struct_formats_in_afalg_are_native() -> None:
    """Every constant format given to struct.pack/pack_into/unpack/unpack_from/Struct in kcapi_hashlib._afalg."""
    found = []
    for path in sorted(Path(afalg.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            base = node.func.value
            if not (isinstance(base, ast.Name) and base.id == "struct"):
                continue
            fmt = node.args[0]
            text = fmt.value if isinstance(fmt, ast.Constant) else None
            if text is None and isinstance(fmt, ast.JoinedStr) and isinstance(fmt.values[0], ast.Constant):
                text = fmt.values[0].value  # f"={n}i"
            if isinstance(text, str):
                found.append((f"{path.name}:{node.lineno}", text))
    assert len(found) >= 8, found  # uring's Structs and packs, the cmsg payloads, the key serial
    wrong = [(where, fmt) for where, fmt in found if fmt[:1] in ("<", ">", "!")]
    assert not wrong, f"kernel ABI packed in a fixed byte order: {wrong}"


def test_uring_structs_are_native_with_the_kernel_sizes() -> None:
    for s, size in ((uring._PARAMS, 120), (uring._SQE, 64), (uring._CQE, 16), (uring._U32, 4)):
        assert s.format[:1] in ("=", "@"), s.format
        assert s.size == size, (s.format, s.size)


def test_sqe_fields_at_their_offsets() -> None:
    values = dict(opcode=27, flags=4, ioprio=0x1234, fd=-5, off=0x0102030405060708, addr=0x1122334455667788,
                  len=0x0A0B0C0D, msg_flags=0x40, user_data=0xFEDCBA9876543210, buf_index=0x2233,
                  personality=0x4455, splice_fd_in=-7, addr3=0x99AABBCCDDEEFF00, pad=3)  # fmt: skip
    packed = uring._SQE.pack(*values.values())
    want = (
        _u(27, 1) + _u(4, 1) + _u(0x1234, 2) + _u(-5, 4, True) + _u(values["off"], 8) + _u(values["addr"], 8)
        + _u(values["len"], 4) + _u(0x40, 4) + _u(values["user_data"], 8) + _u(0x2233, 2) + _u(0x4455, 2)
        + _u(-7, 4, True) + _u(values["addr3"], 8) + _u(3, 8)
    )  # fmt: skip
    assert packed == want


def test_params_fields_at_their_offsets() -> None:
    """io_uring_setup writes struct io_uring_params; Ring reads sq_entries (0), features (20), sq_off (40: head,
    tail, ring_mask, ring_entries, flags, dropped, array, resv1, u64 user_addr) and cq_off (80: ..., cqes at 100)."""
    raw = bytearray(120)
    for offset, value in ((0, 1024), (4, 2048), (8, 0x3080), (20, 0x1FFF), (40, 0), (44, 64), (48, 256),
                          (64, 0x2140), (80, 128), (84, 192), (88, 320), (100, 0x240)):  # fmt: skip
        raw[offset : offset + 4] = _u(value, 4)
    raw[72:80] = _u(0x0102030405060708, 8)
    raw[112:120] = _u(0x1112131415161718, 8)
    f = uring._PARAMS.unpack(bytes(raw))
    assert f[0:3] == (1024, 2048, 0x3080) and f[5] == 0x1FFF
    assert f[7:14] == (0, 64, 256, 0, 0, 0, 0x2140) and f[15] == 0x0102030405060708
    assert f[16:19] == (128, 192, 320) and f[21] == 0x240 and f[24] == 0x1112131415161718


def _bare_ring() -> uring.Ring:
    """A Ring object without a kernel ring: only what _sqe_template and _reap read."""
    ring = object.__new__(uring.Ring)
    ring.retired = True  # nothing to close when it goes
    ring.slots_addr = 0x7F0000001000
    ring._template = (-1, 0, 0, b"", b"")
    return ring


def test_sqe_template_native() -> None:
    sqes, expected = _bare_ring()._sqe_template(9, 32)
    send, recv = sqes[:64], sqes[64:128]
    assert send[0] == 26 and recv[0] == 27  # IORING_OP_SEND, IORING_OP_RECV
    assert send[4:8] == _u(9, 4, True) and recv[4:8] == _u(9, 4, True)
    assert send[16:24] == _u(0x7F0000001000, 8) and recv[16:24] == _u(0x7F0000001000 + 64, 8)
    assert send[24:28] == _u(32, 4) and send[32:40] == _u(0, 8) and recv[32:40] == _u(1, 8)
    assert expected[:8] == _u(32, 4, True) * 2


def test_cqe_res_read_native() -> None:
    """_reap takes the s32 res at byte 8 of each 16-byte CQE (user_data u64, res s32, flags u32)."""
    ring = _bare_ring()
    cqes = bytearray(4 * 16)
    for i, res in enumerate((32, -22, 0x01020304)):
        cqes[i * 16 : (i + 1) * 16] = _u(0xAABBCCDD00000000 + i, 8) + _u(res, 4, True) + _u(0x8000_0001, 4)
        assert uring._CQE.unpack_from(cqes, i * 16) == (0xAABBCCDD00000000 + i, res, 0x8000_0001)
    ring.cqes = memoryview(cqes)
    ring.cq_mask = 3
    ring.cq_head = ctypes.c_uint32(0)
    ring.cq_tail = ctypes.c_uint32(3)
    assert ring._reap() == _u(32, 4, True) + _u(-22, 4, True) + _u(0x01020304, 4, True)
    assert ring.cq_head.value == 3


def test_cmsg_payloads_native() -> None:
    iv = bytes(range(16))
    for build in (aead.cmsgs, skcipher.build_cmsgs):
        out = build(ALG_OP_ENCRYPT, iv, 0x01020304)
        assert out[0] == (SOL_ALG, ALG_SET_OP, _u(ALG_OP_ENCRYPT, 4)), build
        assert (SOL_ALG, ALG_SET_IV, _u(16, 4) + iv) in out, build
        assert (SOL_ALG, ALG_SET_AEAD_ASSOCLEN, _u(0x01020304, 4)) in out, build


@pytest.mark.parametrize("machine", ["riscv64", "mips64", "ppc64le", ""])
def test_untested_machine_refused_by_name(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    name = machine or "this machine"
    why = uring.untested_machine()
    assert why is not None and name in why and "not been tested" in why, why
    # The io_uring path refuses with that reason (a fresh per-thread state; not user-mode-linux for the check).
    monkeypatch.setattr(uring, "_why_not", None)
    monkeypatch.setattr(uring, "_uml", False)
    monkeypatch.setattr(uring, "_local", threading.local())
    assert uring._ring() is None
    assert uring.unavailable() == why
    # The keyring syscalls: refused before any syscall, ENOSYS with a sentence naming the machine.
    with pytest.raises(keyring.KeyringError) as e:
        keyring.request_key("user", "kcapi-hashlib-untested-machine")
    assert e.value.errno == errno.ENOSYS
    assert name in str(e.value) and "not been tested" in str(e.value), str(e.value)


def test_tested_machine_is_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert uring.untested_machine() is None
    assert keyring.untested_machine() is None
    assert "x86_64" in uring.TESTED_MACHINES and "x86_64" in keyring.TESTED_MACHINES


def test_the_struct_module_is_what_the_checks_assume() -> None:
    # '=' is native order with standard sizes and no alignment: the layouts above rely on that.
    assert struct.calcsize("=BQ") == 9 and struct.pack("=I", 1) == _u(1, 4)
