"""What an errno from AF_ALG means: the one place that turns a refusal into a sentence (explain), its parts
(Explanation: cause, summary, sentence, remedy, as list and doctor show them), and the exceptions the layer
raises (AlgUnavailable: the kernel cannot serve an algorithm; KernelError: an operation failed after the bind;
KeyUnusable: a keyring key refused). Reads /proc and the af_alg_restrict facts (restrict, procfs) to say which
cause applies; no socket call. core re-exports every name here.
"""

from __future__ import annotations

import errno
import functools
import os
from typing import Callable, NamedTuple, Optional

from . import keyring, procfs, restrict
from .keyring import KeyringError


class Explanation(NamedTuple):
    """What an errno from AF_ALG means for one step and algorithm, in the parts its readers use. One place says
    it per errno (_explanation); the CLI only formats these (doctor's findings and verdict, list's cause column).

    - cause: a short name to group refusals by (list --json's "cause"): "no AF_ALG", "blocked (seccomp)", "not in
      kernel", restrict.RESTRICTED, ...
    - summary: what happened, one clause (doctor's verdict: "NOT USABLE: {summary} ({ERRNO}): ...")
    - sentence: str() of the error: what failed, with which errno, the likely causes, and what to do
    - remedy: what would change the answer ("" where nothing but trying again would)
    """

    cause: str
    summary: str
    sentence: str
    remedy: str


# Where socket(AF_ALG) fails with EAFNOSUPPORT: every way to a kernel that has AF_ALG (alg_create is af_alg.ko's).
_NO_AF_ALG = (
    "the host needs a kernel built with CONFIG_CRYPTO_USER_API_HASH (and _SKCIPHER, _AEAD, _RNG for the others) "
    "with those modules loaded (as root: modprobe af_alg algif_hash); in a container, AF_ALG is the host "
    "kernel's, and its seccomp profile must allow socket(AF_ALG)"
)


def _said(cause: str, summary: str, body: str, remedy: str = "") -> Explanation:
    """An Explanation whose sentence is `body` (it starts with the summary) and then the remedy."""
    return Explanation(cause, summary, f"{body}; {remedy}" if remedy else body, remedy)


def _seccomp_mode() -> Optional[str]:
    """/proc/self/status's Seccomp field ("0" none, "1" strict, "2" filter), or None where it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def explanation(
    err: int, step: str, alg_type: str, alg_name: str, has: Optional[Callable[[str], Optional[str]]] = None
) -> Explanation:
    """Why the kernel refused `step` for (alg_type, alg_name), and what to do, in parts (see Explanation). `has`:
    where the kernel shows it has a name (restrict.kernel_has, the default; it reads /proc/crypto and the module
    index), which tells a refused module from a missing algorithm for ENOENT; it changes only cause and remedy."""
    refusal = restrict.classify(err, step, alg_type, alg_name)
    return _explanation(err, step, alg_type, alg_name, refusal, restrict.kernel_has if has is None else has)


def explain(err: int, step: str, alg_type: str, alg_name: str) -> str:
    """A sentence saying why the kernel refused `step` for (alg_type, alg_name), and what to do."""
    refusal = restrict.classify(err, step, alg_type, alg_name)
    return _explanation(err, step, alg_type, alg_name, refusal, None).sentence


def _explanation(
    err: int,
    step: str,
    alg_type: str,
    alg_name: str,
    refusal: Optional[restrict.Refusal],
    has: Optional[Callable[[str], Optional[str]]],
) -> Explanation:
    """explanation() for a known af_alg_restrict reading; has=None: do not look (the sentence is the same)."""
    what = f"{alg_type} algorithm {alg_name!r}"
    name = errno.errorcode.get(err, str(err))
    if refusal is not None:  # af_alg_restrict >= 1 refused it, or may have (7.3+: see restrict.py)
        summary = {
            restrict.DISABLED: f"AF_ALG is disabled by af_alg_restrict={refusal.level} for every process",
            restrict.RESTRICTED: f"af_alg_restrict={refusal.level} refuses {what} to this process",
            restrict.MAYBE_RESTRICTED: f"the kernel cannot bind {what} (af_alg_restrict={refusal.level}, or not built)",
        }.get(refusal.cause, refusal.sentence)
        return Explanation(refusal.cause, summary, refusal.sentence, refusal.remedy)
    if step.startswith("setsockopt(ALG_SET_KEY_BY_KEY_SERIAL"):
        by_serial = _explain_serial(err, step, what)
        if by_serial is not None:
            return Explanation(name, by_serial, by_serial, "")
    level = restrict.level()
    restricted = f" (/proc/sys/crypto/af_alg_restrict is {level})" if level else ""
    if err == errno.EAFNOSUPPORT:
        summary = "this kernel has no AF_ALG sockets"
        return _said(
            "no AF_ALG",
            summary,
            f"{summary}: socket(AF_ALG) failed with EAFNOSUPPORT (kernel built without CONFIG_CRYPTO_USER_API, the "
            f"af_alg module is missing or refused, or af_alg_restrict=2){restricted}",
            _NO_AF_ALG,
        )
    if err in (errno.EPERM, errno.EACCES):
        return _explain_blocked(step, name, _seccomp_mode(), restricted)
    if err == errno.ENOENT and step == "bind" and procfs.fips_enabled():
        # FIPS mode (fips=1): the kernel lists every algorithm but finds only the FIPS-allowed ones
        # (procfs.fips_refused cites where). Said whether or not /proc/crypto shows which part is refused.
        return _explain_fips(what, alg_name, procfs.fips_refused(alg_name))
    if err == errno.ENOENT:
        # crypto_alloc_* found no such algorithm (crypto/api.c: crypto_alg_mod_lookup after request_module
        # "crypto-<name>"): not built, or its module missing or refused. Which, only the kernel's lists can say.
        evidence = has(alg_name) if has is not None and step == "bind" else None
        return _explain_enoent(what, alg_type, alg_name, restricted, has is not None, evidence)
    if err == errno.ENOKEY:
        return _said(name, f"{what} needs a key and none was set", f"{what} needs a key and none was set: ENOKEY")
    summary = f"{what}: {step}() failed with {name}"
    if err == errno.EBUSY:
        return _said(name, summary, f"{summary} (the tfm already has operation sockets)")
    if err in (errno.ENOMEM, errno.ENOBUFS):
        return _said(
            name,
            summary,
            f"{summary} (the kernel's socket option memory, net.core.optmem_max, or memory is exhausted; "
            "transient: the next call tries again)",
        )
    if err in (errno.EMFILE, errno.ENFILE):
        table = "this process's descriptor table (RLIMIT_NOFILE)" if err == errno.EMFILE else "the system's file table"
        return _said(
            name, summary, f"{summary}: {table} is full (transient: nothing is remembered, the next call tries again)"
        )
    return _said(name, summary, f"{summary}: {os.strerror(err)}")


def _explain_blocked(step: str, name: str, seccomp: Optional[str], restricted: str) -> Explanation:
    """EPERM/EACCES from socket() or bind(). crypto/af_alg.c gives neither (alg_create answers only
    ESOCKTNOSUPPORT, EPROTONOSUPPORT or ENOMEM; af_alg_restrict answers ENOENT, see restrict.py): a seccomp filter
    does, at the syscall, or an LSM through security_socket_create/security_socket_bind. /proc/self/status's
    Seccomp field tells which of the two it can be."""
    failed = f"{step}() failed with {name}"
    if seccomp == "2":
        summary = "AF_ALG is blocked for this process by a seccomp filter"
        return _said(
            "blocked (seccomp)",
            summary,
            f"{summary}: {failed} (this process runs under a seccomp filter, as container runtimes' default "
            f"profiles install: Docker 29+, containerd){restricted}",
            "allow socket() with address family 38 (AF_ALG) in the seccomp profile: docker/podman run "
            "--security-opt seccomp=PROFILE.json (seccomp=unconfined to confirm), Kubernetes: "
            "securityContext.seccompProfile",
        )
    if seccomp == "0":
        summary = "AF_ALG is blocked for this process by a security module"
        return _said(
            "blocked (LSM)",
            summary,
            f"{summary}: {failed} (no seccomp filter is installed here: an LSM policy such as SELinux or AppArmor "
            f"denies it){restricted}",
            "allow AF_ALG sockets in that policy; its denials are in the audit log (ausearch -m avc, "
            "dmesg | grep -i denied)",
        )
    summary = "AF_ALG is blocked for this process"
    return _said(
        "blocked (LSM or seccomp)",
        summary,
        f"{summary}: {failed} (a seccomp profile such as Docker's or containerd's default, or an LSM policy)"
        f"{restricted}",
        "allow socket() with address family 38 (AF_ALG) in the seccomp profile or security policy that refuses it",
    )


def _explain_fips(what: str, alg_name: str, refused: Optional[str]) -> Explanation:
    """ENOENT from bind() while the kernel is in FIPS mode; `refused`: the part /proc/crypto marks "fips: no"."""
    summary = f"the kernel is in FIPS mode and does not allow {what}"
    if refused is not None:
        shown = "it" if refused == alg_name else repr(refused)
        body = f"{summary}: ENOENT (fips_enabled=1, and /proc/crypto marks every implementation of {shown} 'fips: no')"
    else:
        body = (
            f"{summary}: ENOENT (fips_enabled=1: only FIPS-allowed algorithms bind; it is not built, refused, or "
            "not allowed)"
        )
    remedy = (
        "use a FIPS-approved algorithm ('kcapi-hashlib doctor --fips -a NAME' shows which are), or a kernel not "
        "booted with fips=1; the fallback policy would compute it outside the kernel's FIPS boundary"
    )
    return _said("not FIPS-allowed", summary, body, remedy)


def _explain_enoent(
    what: str, alg_type: str, alg_name: str, restricted: str, looked: bool, evidence: Optional[str]
) -> Explanation:
    """ENOENT outside af_alg_restrict. The sentence is the same whatever the evidence (AlgUnavailable's str() does
    not look); `looked` and `evidence` (restrict.kernel_has's answer) choose the cause and remedy list shows."""
    summary = f"the kernel cannot bind {what}"
    body = (
        f"{summary}: ENOENT (not built into this kernel, or its module is missing or refused/blacklisted){restricted}"
    )
    remedy = (
        "use a kernel built with it, or load its module as root (modprobe crypto-NAME; 'kcapi-hashlib doctor' "
        "shows the modprobe rules that refuse one)"
    )
    if not looked:
        return Explanation("not in kernel or refused", summary, f"{body}; {remedy}", remedy)
    sentence = f"{body}; {remedy}"
    if evidence is None:
        return Explanation("not in kernel", summary, sentence, "use a kernel built with it")
    if evidence == "/proc/crypto lists it":  # registered, yet no implementation of it binds as this type
        return Explanation(
            "not bindable",
            summary,
            sentence,
            f"{evidence}, but no implementation AF_ALG binds as {alg_type} (internal ones only, or another type): "
            "'kcapi-hashlib list' shows its implementations",
        )
    return Explanation(  # the remedy names no algorithm: doctor's "served here" groups refusals by it
        "module refused",
        summary,
        sentence,
        f"{evidence}, but it did not load: as root, modprobe crypto-NAME (each name in a template such as "
        "hmac(NAME)) says why (a blacklist or install rule in modprobe.d, module loading off)",
    )


def _explain_serial(err: int, step: str, what: str) -> Optional[str]:
    """ALG_SET_KEY_BY_KEY_SERIAL's own errnos (crypto/af_alg.c: alg_setkey_by_key_serial, Linux >= 6.2).

    Its lookup is lookup_key -> lookup_user_key(serial, 0, KEY_NEED_SEARCH): EINVAL for a serial below 1 that is
    no KEY_SPEC_* value, ENOKEY for an unknown or dead one (key_lookup); wait_for_key_construction -> key_validate:
    ENOKEY once invalidated, EKEYREVOKED, EKEYEXPIRED (EIO while not instantiated); key_task_permission: EACCES
    without search permission (read is never needed: a "logon" key works). ENOPROTOOPT is three things: a kernel
    before 6.2 has no case for option 7 in alg_setsockopt's switch and returns the ENOPROTOOPT it set before it; a
    kernel without CONFIG_KEYS has the stub that returns ENOPROTOOPT; and 6.2+ answers it for a key type it takes
    no payload from (anything but user, logon, encrypted, trusted). EINVAL is also an optlen other than 4, or the
    algorithm's setkey refusing the payload's size; ENOMEM a payload above net.core.optmem_max (sock_kmalloc)."""
    key = step[len("setsockopt(ALG_SET_KEY_BY_KEY_SERIAL") : -1].removeprefix(", ")
    key = key or "the keyring key"
    if err == errno.ENOPROTOOPT:
        release = os.uname().release
        if not keyring.serial_keys_known():
            return (
                f"{what}: this kernel ({release}) is too old for keyring keys: setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) "
                "failed with ENOPROTOOPT; ALG_SET_KEY_BY_KEY_SERIAL arrived in Linux 6.2 (give the key as bytes, "
                "or run a newer kernel)"
            )
        return (
            f"{what}: setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) of {key} failed with ENOPROTOOPT: AF_ALG takes only "
            "'logon', 'user', 'encrypted' and 'trusted' keys (the last two where the kernel has that key type), "
            "or this kernel was built without CONFIG_KEYS"
        )
    if err == errno.ENOKEY:
        return f"{what}: {key} is not reachable: ENOKEY (no such key in this process's keyrings, or it was invalidated)"
    if err == errno.EKEYREVOKED:
        return f"{what}: {key} was revoked: EKEYREVOKED (a revoked key can never be used again; add a new one)"
    if err == errno.EKEYEXPIRED:
        return f"{what}: {key} has expired: EKEYEXPIRED (its timeout passed; add a new one)"
    if err == errno.EACCES:
        return (
            f"{what}: this process may not use {key}: EACCES (AF_ALG needs the key's search permission: "
            "keyctl setperm, or possess it through a keyring this process holds)"
        )
    if err == errno.EIO:
        return f"{what}: {key} is not instantiated yet: EIO (its construction has not finished)"
    if err == errno.EINVAL:
        return (
            f"{what}: the kernel refused the payload of {key} as a key: EINVAL (a key size this algorithm does not "
            "take)"
        )
    return None


# errnos that say "not now" rather than "not this algorithm": a descriptor table or memory that is full now,
# an interrupted or would-block call. Never cached as the kernel's answer about an algorithm.
TRANSIENT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS, errno.EINTR, errno.EAGAIN})


class AlgUnavailable(OSError):
    """The kernel cannot serve an algorithm. errno is the kernel's; str() says exactly why and what to do, and
    cause, summary and remedy are its parts (Explanation) as list and doctor show them."""

    def __init__(self, err: int, step: str, alg_type: str, alg_name: str) -> None:
        refusal = restrict.classify(err, step, alg_type, alg_name)
        super().__init__(err, _explanation(err, step, alg_type, alg_name, refusal, None).sentence)
        self._err = err
        self.step = step
        self.alg_type = alg_type
        self.alg_name = alg_name
        #: af_alg_restrict's part in this refusal (cause, level, the process's facts, remedy), or None
        self.restriction: Optional[restrict.Refusal] = refusal

    @functools.cached_property
    def explanation(self) -> Explanation:
        """str()'s parts; for ENOENT, cause and remedy from what the kernel shows it has (restrict.kernel_has:
        /proc/crypto and the module index, read on first use, not when the refusal is made)."""
        return _explanation(self._err, self.step, self.alg_type, self.alg_name, self.restriction, restrict.kernel_has)

    @property
    def cause(self) -> str:
        return self.explanation.cause

    @property
    def summary(self) -> str:
        return self.explanation.summary

    @property
    def remedy(self) -> str:
        return self.explanation.remedy

    @property
    def transient(self) -> bool:
        """True for a refusal about resources, not the algorithm (EMFILE, ENOMEM, ...): never remembered."""
        return self.errno in TRANSIENT

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.errno, self.step, self.alg_type, self.alg_name))


class KernelError(OSError):
    """A kernel operation failed after the algorithm was bound (ENOKEY, EBADMSG, EINVAL, short send, ...)."""


class KeyUnusable(KernelError, KeyringError):
    """setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) refused the keyring key itself (ENOKEY, EKEYREVOKED, EKEYEXPIRED,
    EKEYREJECTED, EACCES, EIO: the lookup in alg_setkey_by_key_serial): both a KernelError and a KeyringError."""


# lookup_user_key's answers about the key (see _explain_serial), not about the algorithm or the kernel
_KEY_STATE = frozenset(
    {errno.ENOKEY, errno.EKEYREVOKED, errno.EKEYEXPIRED, errno.EKEYREJECTED, errno.EACCES, errno.EIO}
)


def kernel_error(e: OSError, step: str, alg_type: str, alg_name: str) -> KernelError:
    err = e.errno if e.errno is not None else errno.EIO
    return KernelError(err, explain(err, step, alg_type, alg_name))
