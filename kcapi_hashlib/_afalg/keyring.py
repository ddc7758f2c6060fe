"""The kernel keyring syscalls (add_key(2), keyctl(2), request_key(2)) through libc's syscall(), and their errnos.

AF_ALG takes a key from the keyring with setsockopt(SOL_ALG, ALG_SET_KEY_BY_KEY_SERIAL, &serial, 4) (Linux >= 6.2;
crypto/af_alg.c: alg_setkey_by_key_serial, see core.Tfm.setkey). Everything else a keyring key needs (making one,
finding one by description, revoking, asking whether it is still usable) is here, so that the public module
(kcapi_hashlib.keyring) never makes a syscall itself.

glibc has no wrappers for these calls (libkeyutils does; it is not a dependency): they go through syscall(3) with
the numbers of the running architecture.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
from typing import Optional, Union

Buffer = Union[bytes, bytearray, memoryview]

# (add_key, request_key, keyctl) per architecture (arch/*/include/uapi/asm/unistd*.h; asm-generic for the new ones).
# Only the machines in TESTED_MACHINES, whose keyring suites have run under a real kernel here, are used: on any
# other the calls are refused with a sentence naming the machine, never made with numbers no test has checked.
TESTED_MACHINES = frozenset({"x86_64", "aarch64", "s390x"})
_SYSCALLS = {
    "x86_64": (248, 249, 250),
    "amd64": (248, 249, 250),
    "aarch64": (217, 218, 219),
    "arm64": (217, 218, 219),
    "riscv64": (217, 218, 219),
    "loongarch64": (217, 218, 219),
    "i386": (286, 287, 288),
    "i686": (286, 287, 288),
    "armv7l": (309, 310, 311),
    "ppc64le": (269, 270, 271),
    "ppc64": (269, 270, 271),
    "s390x": (278, 279, 280),
}

# include/uapi/linux/keyctl.h
KEY_SPEC_THREAD_KEYRING = -1
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_UPDATE = 2
KEYCTL_REVOKE = 3
KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_INVALIDATE = 21

KEYRINGS = {
    "thread": KEY_SPEC_THREAD_KEYRING,
    "process": KEY_SPEC_PROCESS_KEYRING,
    "session": KEY_SPEC_SESSION_KEYRING,
    "user": KEY_SPEC_USER_KEYRING,
    "user-session": KEY_SPEC_USER_SESSION_KEYRING,
}

# The key types alg_setkey_by_key_serial takes the payload of (crypto/af_alg.c, Linux >= 6.2): "user" and "logon"
# (key_data_ptr_user: the user_key_payload, key->datalen bytes), "encrypted" (key_data_ptr_encrypted: the decrypted
# data) and "trusted" (key_data_ptr_trusted: the unsealed key), the last two only where CONFIG_ENCRYPTED_KEYS /
# CONFIG_TRUSTED_KEYS are reachable. Any other type (a keyring, "asymmetric", ...) is answered with ENOPROTOOPT, as
# is a payload already gone (IS_ERR_OR_NULL: EKEYREVOKED). It finds the key with lookup_key ->
# lookup_user_key(serial, 0, KEY_NEED_SEARCH): serial < 1 that is no KEY_SPEC_* is EINVAL, an unknown or dead serial
# ENOKEY (key_lookup), then wait_for_key_construction -> key_validate (ENOKEY once invalidated, EKEYREVOKED,
# EKEYEXPIRED; a negatively instantiated key its reject_error, an uninstantiated one EIO), then
# key_task_permission(KEY_NEED_SEARCH): EACCES without the search bit for possessor/user/group/other (the kernel's
# userspace-if.rst says EPERM; the code answers EACCES, or an LSM's own errno). Only search is needed, never read:
# so a "logon" key, which userspace can never read (no ->read method), works. The payload is copied under key->sem
# into sock_kmalloc'ed memory (bounded by net.core.optmem_max: ENOMEM above it), set with the type's setkey (its
# EINVAL for a size the algorithm does not take) and freed zeroed (sock_kzfree_s).
ALG_KEY_TYPES = ("logon", "user", "encrypted", "trusted")

_libc: Optional[ctypes.CDLL] = None

#: the first release with ALG_SET_KEY_BY_KEY_SERIAL (commit 7984ceb134bf, "crypto: af_alg - Support symmetric
#: encryption via keyring keys")
KEY_SERIAL_SINCE = (6, 2)


def kernel_version(release: Optional[str] = None) -> Optional[tuple[int, int]]:
    """(major, minor) of a kernel release string (os.uname().release by default: "6.1.176", "7.3-amd64",
    "6.12.0-rc1+"), or None if it does not start with two numbers."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release if release is None else release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def serial_keys_known() -> bool:
    """Whether this kernel's release is one that has ALG_SET_KEY_BY_KEY_SERIAL (6.2+; an unparsable release:
    assumed new enough, and the kernel's own ENOPROTOOPT then says otherwise)."""
    version = kernel_version()
    return version is None or version >= KEY_SERIAL_SINCE


def untested_machine() -> Optional[str]:
    """Why the keyring syscalls are refused on this machine (None on a tested one): the reason names it."""
    machine = platform.machine()
    if machine in TESTED_MACHINES:
        return None
    known = "their numbers there are in the table but unchecked" if machine in _SYSCALLS else "no numbers known"
    return (
        f"the keyring syscalls are not used on {machine or 'this machine'}: kcapi_hashlib has not been tested there "
        f"(tested: {', '.join(sorted(TESTED_MACHINES))}; {known}), so no syscall number is guessed"
    )


def _syscall(index: int, *args: object) -> int:
    global _libc
    why = untested_machine()
    if why is not None:
        raise KeyringError(errno.ENOSYS, why)
    numbers = _SYSCALLS[platform.machine()]
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _libc = lib
    ctypes.set_errno(0)
    r = int(_libc.syscall(ctypes.c_long(numbers[index]), *args))
    if r < 0:
        err = ctypes.get_errno() or errno.EIO
        raise OSError(err, os.strerror(err))
    return r


class KeyringError(OSError):
    """A keyring syscall failed. errno is the kernel's; str() says what happened and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


def explain(err: int, step: str, what: str) -> str:
    """A sentence for errno `err` of keyring operation `step` on `what` (a key or description)."""
    if err == errno.ENOKEY:
        return (
            f"{what}: {step} failed with ENOKEY: no such key is reachable from this process's keyrings (it never "
            "existed, was invalidated or unlinked and garbage-collected, or lives in a keyring this process has "
            "not joined)"
        )
    if err == errno.EKEYREVOKED:
        return f"{what}: {step} failed with EKEYREVOKED: the key was revoked (keyctl revoke); add a new key"
    if err == errno.EKEYEXPIRED:
        return f"{what}: {step} failed with EKEYEXPIRED: the key's timeout passed (keyctl timeout); add a new key"
    if err == errno.EKEYREJECTED:
        return f"{what}: {step} failed with EKEYREJECTED: the key's construction was rejected"
    if err == errno.EACCES:
        return (
            f"{what}: {step} failed with EACCES: this process lacks the permission the key's mask requires "
            "(search for use by AF_ALG, view to describe it, write to update, setattr to revoke or time it out)"
        )
    if err == errno.EPERM:
        return f"{what}: {step} failed with EPERM (a seccomp profile or LSM policy forbids the keyring syscalls)"
    if err == errno.ENOSYS:
        return f"{what}: {step} failed with ENOSYS: this kernel has no keyring (built without CONFIG_KEYS)"
    if err == errno.EDQUOT:
        return (
            f"{what}: {step} failed with EDQUOT: this user's key quota is full (/proc/sys/kernel/keys/maxkeys, "
            "maxbytes); unlink keys no longer needed"
        )
    if err == errno.ENODEV:
        return f"{what}: {step} failed with ENODEV: this kernel has no such key type (its module is not loaded)"
    if err == errno.EINVAL:
        return f"{what}: {step} failed with EINVAL: the kernel refused the key's type, description or payload"
    if err == errno.EOPNOTSUPP:
        return f"{what}: {step} failed with EOPNOTSUPP: this key type cannot be read from userspace (a 'logon' key)"
    if err == errno.EIO:
        return f"{what}: {step} failed with EIO: the key is not instantiated yet (its construction has not finished)"
    name = errno.errorcode.get(err, str(err))
    return f"{what}: {step} failed with {name}: {os.strerror(err)}"


def _call(index: int, step: str, what: str, *args: object) -> int:
    try:
        return _syscall(index, *args)
    except KeyringError:
        raise
    except OSError as e:
        err = e.errno or errno.EIO
        raise KeyringError(err, explain(err, step, what)) from None


def add_key(key_type: str, description: str, payload: Buffer, keyring: int) -> int:
    """add_key(2): the new (or updated: same type and description in that keyring) key's serial.

    `payload` is any C-contiguous buffer. The kernel copies it (key_create_or_update); this function keeps no
    reference to it, and makes no copy of its own except for a read-only buffer that is not bytes (a read-only
    memoryview, say: ctypes cannot point into it), whose temporary copy is zeroed before returning."""
    view = memoryview(payload)
    if not view.c_contiguous:
        raise BufferError("add_key: the payload must be a C-contiguous buffer")
    n = view.nbytes
    scratch: Optional[bytearray] = None
    arg: object
    if isinstance(payload, bytes):
        arg = ctypes.c_char_p(payload)  # points into the bytes object itself
    elif not view.readonly:
        arg = (ctypes.c_char * n).from_buffer(view.cast("B")) if n else ctypes.c_char_p(b"")
    else:
        scratch = bytearray(view.cast("B"))
        arg = (ctypes.c_char * n).from_buffer(scratch) if n else ctypes.c_char_p(b"")
    try:
        return _call(
            0,
            "add_key",
            f"{key_type} key {description!r}",
            key_type.encode(),
            description.encode(),
            arg,
            ctypes.c_size_t(n),
            ctypes.c_int(keyring),
        )
    finally:
        del arg
        view.release()
        if scratch is not None:
            scratch[:] = bytes(n)


def request_key(key_type: str, description: str, keyring: int = 0) -> int:
    """request_key(2) without a callout: searches the thread, process and session keyrings (and the user ones)."""
    return _call(
        1,
        "request_key",
        f"{key_type} key {description!r}",
        key_type.encode(),
        description.encode(),
        ctypes.c_char_p(None),
        ctypes.c_int(keyring),
    )


def _keyctl(op: int, step: str, serial: int, *args: object) -> int:
    return _call(2, f"keyctl({step})", f"key {serial}", ctypes.c_int(op), ctypes.c_int(serial), *args)


def search(keyring: int, key_type: str, description: str) -> int:
    """keyctl(KEYCTL_SEARCH): a key of key_type and description in keyring (recursively)."""
    return _call(
        2,
        "keyctl(KEYCTL_SEARCH)",
        f"{key_type} key {description!r}",
        ctypes.c_int(KEYCTL_SEARCH),
        ctypes.c_int(keyring),
        key_type.encode(),
        description.encode(),
        ctypes.c_int(0),
    )


def check(serial: int) -> None:
    """Raise KeyringError unless `serial` is usable by AF_ALG now.

    keyctl(KEYCTL_GET_KEYRING_ID, serial, 0) does the lookup alg_setkey_by_key_serial does (keyctl_get_keyring_ID:
    lookup_user_key(id, 0, KEY_NEED_SEARCH), whose wait_for_key_construction key_validate()s: EKEYREVOKED,
    EKEYEXPIRED, ENOKEY once invalidated; then key_task_permission: EACCES) for any key type, not only keyrings,
    and changes nothing: one syscall."""
    _keyctl(KEYCTL_GET_KEYRING_ID, "KEYCTL_GET_KEYRING_ID", serial, ctypes.c_int(0))


def describe(serial: int) -> tuple[str, str]:
    """(type, description) of a key (KEYCTL_DESCRIBE: "type;uid;gid;perm;description"; needs view permission)."""
    buf = ctypes.create_string_buffer(4096)
    n = _keyctl(KEYCTL_DESCRIBE, "KEYCTL_DESCRIBE", serial, buf, ctypes.c_size_t(len(buf)))
    text = buf.raw[: max(0, min(n, len(buf)) - 1)].decode(errors="replace")
    parts = text.split(";", 4)
    if len(parts) != 5:
        raise KeyringError(errno.EINVAL, f"key {serial}: KEYCTL_DESCRIBE answered {text!r}")
    return parts[0], parts[4]


def payload_size(serial: int) -> int:
    """The payload's length in bytes, with none of it copied: keyctl(KEYCTL_READ) with a NULL buffer
    (keyctl_read_key: "!buffer || !buflen" asks the type's ->read for the length only). Needs read permission
    (or possession); a "logon" key has no ->read: EOPNOTSUPP. For "encrypted"/"trusted" keys the length is
    that of their sealed blob, not of the key AF_ALG gets."""
    return _keyctl(KEYCTL_READ, "KEYCTL_READ", serial, ctypes.c_void_p(None), ctypes.c_size_t(0))


def revoke(serial: int) -> None:
    _keyctl(KEYCTL_REVOKE, "KEYCTL_REVOKE", serial)


def invalidate(serial: int) -> None:
    _keyctl(KEYCTL_INVALIDATE, "KEYCTL_INVALIDATE", serial)


def set_timeout(serial: int, seconds: int) -> None:
    _keyctl(KEYCTL_SET_TIMEOUT, "KEYCTL_SET_TIMEOUT", serial, ctypes.c_uint(seconds))


def setperm(serial: int, perm: int) -> None:
    _keyctl(KEYCTL_SETPERM, "KEYCTL_SETPERM", serial, ctypes.c_uint32(perm))


def unlink(serial: int, keyring: int) -> None:
    _keyctl(KEYCTL_UNLINK, "KEYCTL_UNLINK", serial, ctypes.c_int(keyring))


def update(serial: int, payload: bytes) -> None:
    _keyctl(KEYCTL_UPDATE, "KEYCTL_UPDATE", serial, ctypes.c_char_p(payload), ctypes.c_size_t(len(payload)))


class Serial:
    """What core.Tfm.setkey takes in place of key bytes: a keyring key's serial (ALG_SET_KEY_BY_KEY_SERIAL)."""

    __slots__ = ("serial",)

    def __init__(self, serial: int) -> None:
        self.serial = serial

    def __repr__(self) -> str:
        return f"Serial({self.serial})"
