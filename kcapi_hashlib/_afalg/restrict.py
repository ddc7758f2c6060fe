"""Linux 7.3's af_alg_restrict, the process facts it depends on, and what a refusal means for this process.

The kernel (crypto/af_alg.c, 7.3; patch "crypto: af_alg - Add af_alg_restrict sysctl, defaulting to 1"):

- /proc/sys/crypto/af_alg_restrict (registered by af_alg_init, so it exists once af_alg is loaded):
  0 = unrestricted, 1 = allowlists (the default), 2 = disabled.
- alg_create: level 2 -> socket(AF_ALG) fails with EAFNOSUPPORT, for every process, root included.
- af_alg_check_restriction(name, allowlist), called by hash_bind/skcipher_bind/aead_bind/rng_bind BEFORE
  crypto_alloc_*: level 0 allows all; level 1 allows an exact-name match (the cra_name string as given to bind)
  whose entry is unprivileged, or privileged and af_alg_capable(); anything else (level 2 included, for a socket
  made before the sysctl changed) is -ENOENT, chosen on purpose to look like "algorithm not found", with no log.
- af_alg_capable(): ns_capable_noaudit(&init_user_ns, CAP_NET_ADMIN) || capable(CAP_SYS_ADMIN): capabilities in
  the INITIAL user namespace. A process in a container's user namespace (rootless podman, unshare -r) is
  unprivileged here whatever its CapEff says.

So an ENOENT from bind at level >= 1 is the restriction or a missing algorithm, and the kernel does not say
which. classify() decides from evidence that the kernel has the algorithm: /proc/crypto lists it, or its module
index has it (a `crypto-NAME` alias, loadable or built in): then the restriction is what refused it. Without such
evidence it says it cannot tell. Whether a missing capability is what stands in the way cannot be probed from an
unprivileged process; that advice comes from the allowlist as posted for 7.3 (POSTED_7_3, cited as such: never
used to decide what is available, which is always the kernel's answer to a bind).

Reads files only; no socket call. Safe to call on any kernel (every fact degrades to "not present"/unknown).
"""

from __future__ import annotations

import errno
import os
import re
from typing import Callable, NamedTuple, Optional

from . import procfs
from .files import read as _read

RESTRICT_PATH = "/proc/sys/crypto/af_alg_restrict"
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

# The allowlists as posted for Linux 7.3 (True: privileged only, i.e. CAP_NET_ADMIN or CAP_SYS_ADMIN). Used
# ONLY to word advice to an unprivileged process, which cannot probe what privilege would change; the list
# grows (xts(camellia|serpent|twofish), cbc(paes) were posted later), so every sentence built from it says so.
POSTED_7_3: dict[str, dict[str, bool]] = {
    "hash": {
        "cmac(aes)": True, "hmac(md5)": True, "hmac(sha1)": True, "hmac(sha224)": True, "hmac(sha256)": True,
        "hmac(sha384)": True, "hmac(sha512)": True, "md4": True, "md5": True, "sha1": False, "sha224": True,
        "sha256": True, "sha384": True, "sha512": True,
    },
    "skcipher": {
        "adiantum(xchacha12,aes)": False, "adiantum(xchacha20,aes)": False, "cbc(aes)": True, "cbc(des)": True,
        "cbc(des3_ede)": True, "ctr(aes)": True, "ecb(aes)": True, "ecb(des)": True, "hctr2(aes)": False,
        "xts(aes)": False,
    },
    "aead": {"ccm(aes)": True},
    "rng": {},
}  # fmt: skip


def level() -> Optional[int]:
    """The af_alg_restrict level now, or None where the kernel has no such sysctl (before 7.3: unrestricted)."""
    text = _read(RESTRICT_PATH)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


class Process(NamedTuple):
    """What af_alg_capable() looks at, for this process."""

    uid: int
    euid: int
    cap_eff: Optional[int]  # /proc/self/status CapEff; None if unreadable
    init_userns: Optional[bool]  # in the initial user namespace (/proc/self/uid_map "0 0 4294967295")

    @property
    def net_admin(self) -> bool:
        return self.cap_eff is not None and bool(self.cap_eff >> CAP_NET_ADMIN & 1)

    @property
    def sys_admin(self) -> bool:
        return self.cap_eff is not None and bool(self.cap_eff >> CAP_SYS_ADMIN & 1)

    @property
    def privileged(self) -> bool:
        """af_alg_capable(): CAP_NET_ADMIN or CAP_SYS_ADMIN, held in the initial user namespace."""
        return (self.net_admin or self.sys_admin) and self.init_userns is not False

    def capability_names(self) -> list[str]:
        return [name for name, held in (("CAP_NET_ADMIN", self.net_admin), ("CAP_SYS_ADMIN", self.sys_admin)) if held]

    def describe(self) -> str:
        """e.g. 'uid 4242 without CAP_NET_ADMIN', 'uid 0 with CAP_NET_ADMIN, CAP_SYS_ADMIN'."""
        who = f"uid {self.euid}"
        if self.cap_eff is None:
            return f"{who} (capabilities unknown)"
        held = self.capability_names()
        if held and self.init_userns is False:
            return f"{who} with {', '.join(held)} only inside a user namespace (the kernel checks the initial one)"
        return f"{who} with {', '.join(held)}" if held else f"{who} without CAP_NET_ADMIN"


def process() -> Process:
    cap_eff: Optional[int] = None
    for line in (_read("/proc/self/status") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "CapEff":
            try:
                cap_eff = int(value.strip(), 16)
            except ValueError:
                cap_eff = None
    uid_map = _read("/proc/self/uid_map")
    init_userns = None if uid_map is None else uid_map.split() == ["0", "0", "4294967295"]
    return Process(os.getuid(), os.geteuid(), cap_eff, init_userns)


# --- does the kernel have it? ---------------------------------------------------------------------------


def _components(name: str) -> list[str]:
    """'rfc7539(chacha20,poly1305)' -> ['rfc7539', 'chacha20', 'poly1305']: the template and algorithm names
    crypto_alloc_* would look up (each its own module: crypto-NAME)."""
    return [part for part in re.split(r"[(),]", name) if part]


def _module_roots() -> list[str]:
    # request_module runs /proc/sys/kernel/modprobe; a wrapper passing -d ROOT (the project's VMs do) points
    # at another module tree. cli/host.py reads the same wrapper for doctor.
    roots = ["/"]
    helper = (_read("/proc/sys/kernel/modprobe") or "").strip()
    if helper:
        script = _read(helper)
        if script is not None and script.startswith("#!"):
            roots = [m.group(1) for m in re.finditer(r"(?:-d|--dirname)[ =]'?([^'\s]+)", script)] + roots
    return roots


_aliases: list[frozenset[str]] = []


def module_aliases() -> frozenset[str]:
    """Every `crypto-NAME` alias of this kernel's module index (modules.alias: loadable; modules.builtin.modinfo:
    built in), NAME only. Read once per process (only refusals ask)."""
    if _aliases:
        return _aliases[0]
    release = os.uname().release
    found: set[str] = set()
    read_any = False
    for root in _module_roots():
        base = os.path.join(root, "lib/modules", release)
        aliases = _read(os.path.join(base, "modules.alias"), 1 << 25)
        builtin = _read(os.path.join(base, "modules.builtin.modinfo"), 1 << 25)
        read_any = read_any or aliases is not None or builtin is not None
        for line in (aliases or "").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "alias" and parts[1].startswith("crypto-"):
                found.add(parts[1][len("crypto-") :])
        for entry in (builtin or "").split("\0"):
            _, _, value = entry.partition(".alias=crypto-")
            if value:
                found.add(value)
    result = frozenset(found)
    if read_any:  # a failed read (no index there, or a transient error) is not remembered: the next refusal asks again
        _aliases.append(result)
    return result


def _proc_crypto_names() -> set[str]:
    return procfs.names()  # the one /proc/crypto parser


def kernel_has(name: str) -> Optional[str]:
    """Where this kernel shows it has `name` (a sentence), or None when nothing does."""
    listed = _proc_crypto_names()
    if name in listed:
        return "/proc/crypto lists it"
    aliases = module_aliases()
    missing = []
    for part in _components(name):
        if part in listed or part in aliases or any(n.startswith(part + "(") for n in listed):
            continue
        missing.append(part)
    if missing:
        return None
    return "its modules are in this kernel's module index" if aliases else "/proc/crypto lists its parts"


# --- what a refusal means -------------------------------------------------------------------------------

# Causes, as list --json and the test summary name them.
RESTRICTED = "af_alg_restrict"  # refused by the allowlist (level 1) or at level 2
MAYBE_RESTRICTED = "af_alg_restrict or not built"  # ENOENT at level >= 1, no evidence either way
DISABLED = "af_alg disabled"  # level 2: socket() EAFNOSUPPORT


class Refusal(NamedTuple):
    cause: str  # RESTRICTED, MAYBE_RESTRICTED or DISABLED
    level: int
    process: Process
    sentence: str  # what explain() says
    remedy: str  # what would change the answer


_SET_0 = "set /proc/sys/crypto/af_alg_restrict to 0 (as root: sysctl crypto.af_alg_restrict=0)"


def _needs(alg_type: str, name: str, proc: Process) -> str:
    """What would change the answer at level 1 for a process the allowlist refused `name`."""
    if proc.privileged:
        held = ", ".join(proc.capability_names())
        return f"no one may bind this algorithm at this level (this process holds {held}); {_SET_0}"
    posted = POSTED_7_3.get(alg_type, {}).get(name)
    if posted is True:
        return (
            "needs CAP_NET_ADMIN (this process lacks it; it is on the privileged allowlist as posted for "
            f"Linux 7.3) or {_SET_0}"
        )
    if posted is False:  # posted for everyone, yet refused: this kernel's list differs
        return f"this kernel's allowlist differs from 7.3's as posted (open to everyone there); {_SET_0}"
    return (
        "no one may bind this algorithm at this level (not on the allowlist as posted for Linux 7.3, even with "
        f"CAP_NET_ADMIN); {_SET_0}"
    )


def classify(err: int, step: str, alg_type: str, name: str) -> Optional[Refusal]:
    """The af_alg_restrict reading of a socket()/bind() refusal, or None when af_alg_restrict is not the
    (possible) cause: no such sysctl, level 0, or an errno the restriction never gives."""
    lvl = level()
    if lvl is None or lvl == 0 or step not in ("socket", "bind"):
        return None
    return reading(err, step, alg_type, name, lvl, process(), kernel_has)


def reading(
    err: int,
    step: str,
    alg_type: str,
    name: str,
    lvl: int,
    proc: Process,
    has: Callable[[str], Optional[str]],
) -> Optional[Refusal]:
    """classify() for given facts: the level, the process, and `has` (kernel_has: evidence the kernel has a
    name). Separate so that every case can be checked on any kernel; classify() passes this kernel's facts."""
    if lvl <= 0:
        return None
    what = f"{alg_type} algorithm {name!r}"
    if err == errno.EAFNOSUPPORT and lvl >= 2:
        remedy = "set /proc/sys/crypto/af_alg_restrict to 1 or 0 (as root: sysctl crypto.af_alg_restrict=0)"
        sentence = (
            f"AF_ALG is disabled: /proc/sys/crypto/af_alg_restrict is {lvl}, so socket(AF_ALG) fails with "
            f"EAFNOSUPPORT for every process, root included (this is {proc.describe()}); no one may bind any "
            f"algorithm at this level: {remedy}"
        )
        return Refusal(DISABLED, lvl, proc, sentence, remedy)
    if err != errno.ENOENT or step != "bind":
        return None
    if lvl >= 2:  # a socket made before the level changed: af_alg_check_restriction refuses every name
        remedy = "set /proc/sys/crypto/af_alg_restrict to 1 or 0 (as root: sysctl crypto.af_alg_restrict=0)"
        sentence = (
            f"af_alg_restrict={lvl} refuses {what} (ENOENT): no one may bind any algorithm at this level; {remedy}"
        )
        return Refusal(RESTRICTED, lvl, proc, sentence, remedy)
    evidence = has(name)
    remedy = _needs(alg_type, name, proc)
    posted = POSTED_7_3.get(alg_type, {}).get(name)
    if evidence is not None and (posted is False or (posted and proc.privileged)):
        # The allowlist as posted lets this process bind it: ENOENT then more likely comes from crypto_alloc_*
        # (a refused or failing module) than from af_alg_check_restriction; do not claim either.
        sentence = (
            f"the kernel cannot bind {what}: ENOENT at af_alg_restrict={lvl}, although the allowlist as posted for "
            f"Linux 7.3 lets this process ({proc.describe()}) bind it and the kernel has it ({evidence}): its "
            f"module is probably refused or failed to load (or this kernel's allowlist differs): cannot tell "
            f"which; if it is the allowlist: {_SET_0}"
        )
        return Refusal(MAYBE_RESTRICTED, lvl, proc, sentence, _SET_0)
    if evidence is not None:
        sentence = (
            f"af_alg_restrict={lvl} refuses {what} for this process ({proc.describe()}): bind() failed with "
            f"ENOENT although the kernel has it ({evidence}); {remedy}"
        )
        return Refusal(RESTRICTED, lvl, proc, sentence, remedy)
    sentence = (
        f"the kernel cannot bind {what}: ENOENT, and with af_alg_restrict={lvl} that means either not on the "
        f"allowlist for this process ({proc.describe()}) or not built into this kernel (neither /proc/crypto nor "
        f"the module index lists it): cannot tell which; if it is the allowlist: {remedy}"
    )
    return Refusal(MAYBE_RESTRICTED, lvl, proc, sentence, remedy)
