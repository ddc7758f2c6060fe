"""The `kcapi-hashlib` command (also `python -m kcapi_hashlib`).

    kcapi-hashlib list [--json] [--kind KIND]   algorithms: kernel name, driver, priority, self-test, availability
    kcapi-hashlib doctor [--json]               is AF_ALG usable here, and if not exactly why and what to do
    kcapi-hashlib sum [-a ALGO] [-c] FILE...    sha256sum-compatible digests and check mode, by the kernel
    kcapi-hashlib vm [options] -- CMD...        run CMD under a real Linux kernel (kcapi_hashlib._vm)
    kcapi-hashlib demo [FILE]                   doctor, list, and a kernel-served digest next to hashlib's

This module makes no socket call: it asks kcapi_hashlib._afalg (af_alg_status, probe) and reads /proc.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, Callable, NamedTuple, NoReturn, Optional

PROG = "kcapi-hashlib"

# --- small helpers ----------------------------------------------------------------------------------------


def _read(path: str, limit: int = 1 << 20) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _errname(err: Optional[int]) -> str:
    return errno.errorcode.get(err or 0, str(err))


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stdout.flush()  # keep stdout and stderr in the order they were written
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def _write_bytes(data: bytes) -> None:
    buf = getattr(sys.stdout, "buffer", None)
    if buf is not None:
        buf.write(data)
    else:  # a text stream without a buffer (e.g. io.StringIO in a caller's test)
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))


# --- /proc/crypto -----------------------------------------------------------------------------------------

# /proc/crypto "type" values that each AF_ALG type binds (crypto/algif_*.c look up these frontends).
_PROC_TYPES = {
    "hash": ("shash", "ahash"),
    "skcipher": ("skcipher", "lskcipher"),
    "aead": ("aead",),
    "rng": ("rng",),
}


def proc_crypto(text: Optional[str] = None) -> list[dict[str, str]]:
    """The blocks of /proc/crypto: blank-line separated `key : value` lines, one dict per block."""
    if text is None:
        text = _read("/proc/crypto", 1 << 24) or ""
    blocks: list[dict[str, str]] = []
    block: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
                block = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip()] = value.strip()
    if block:
        blocks.append(block)
    return blocks


def _priority(block: dict[str, str]) -> int:
    try:
        return int(block.get("priority", "0"))
    except ValueError:
        return 0


def crypto_entry(blocks: list[dict[str, str]], alg_type: str, name: str) -> Optional[dict[str, str]]:
    """The /proc/crypto block the kernel would pick for (alg_type, name): the highest-priority, non-internal
    implementation of that name (crypto_alg_lookup prefers tested, higher-priority algorithms)."""
    candidates = [b for b in blocks if b.get("name") == name and b.get("internal", "no") != "yes"]
    typed = [b for b in candidates if b.get("type") in _PROC_TYPES.get(alg_type, ())]
    pool = typed or candidates
    if not pool:
        return None
    return max(pool, key=lambda b: (b.get("selftest", "passed") == "passed", _priority(b)))


# --- `list` ---------------------------------------------------------------------------------------------


class Row(NamedTuple):
    """One algorithm this package offers, as `list` shows it."""

    kind: str  # "hash", "hmac", "cmac", "cipher", ...
    name: str  # the name callers use (hashlib.new's, Crypto's)
    alg_type: str  # the AF_ALG type bound for it: "hash", "skcipher", "aead", "rng"
    kernel: Optional[str]  # the kernel's algorithm name; None where the kernel has none
    note: str = ""  # why there is no kernel algorithm (when kernel is None)


def _hash_rows() -> list[Row]:
    from ._hashlib import ALGORITHMS

    return [
        Row("hash", name, "hash", alg.kernel, "" if alg.kernel else f"the kernel has no AF_ALG hash for {name}")
        for name, alg in ALGORITHMS.items()
    ]


# kind -> its rows. Modules adding algorithms (HMAC, CMAC, ciphers, ...) add their kind here.
ROW_SOURCES: dict[str, Callable[[], list[Row]]] = {
    "hash": _hash_rows,
}


def algorithm_report(kinds: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
    """One dict per algorithm: bound first (binding makes the kernel load its module, so it shows up in
    /proc/crypto), then described from /proc/crypto."""
    from . import _afalg, _policy

    rows = [row for kind, source in ROW_SOURCES.items() if kinds is None or kind in kinds for row in source()]
    failures: dict[tuple[str, str], Optional[_afalg.AlgUnavailable]] = {}
    for row in rows:
        if row.kernel is not None:
            failures[(row.alg_type, row.kernel)] = _afalg.probe(row.alg_type, row.kernel)
    blocks = proc_crypto()
    policy = _policy.get_policy()
    report = []
    for row in rows:
        entry = crypto_entry(blocks, row.alg_type, row.kernel) if row.kernel else None
        why: Optional[BaseException] = failures.get((row.alg_type, row.kernel)) if row.kernel else None
        available = row.kernel is not None and why is None
        reason = "" if available else (str(why) if why is not None else row.note)
        report.append(
            {
                "kind": row.kind,
                "name": row.name,
                "alg_type": row.alg_type,
                "kernel": row.kernel,
                "driver": entry.get("driver") if entry else None,
                "module": entry.get("module") if entry else None,
                "priority": _priority(entry) if entry else None,
                "selftest": entry.get("selftest") if entry else None,
                "available": available,
                "errno": _errname(why.errno) if isinstance(why, OSError) else None,
                "reason": reason,
                "served_by": "kernel" if available else ("stdlib" if policy == "fallback" else None),
            }
        )
    return report


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for r in [header, *rows]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from . import _policy

    report = algorithm_report(args.kind or None)
    if args.json:
        _out(json.dumps(report, indent=2))
        return 0
    kinds = {r["kind"] for r in report}
    header = (["KIND"] if len(kinds) > 1 else []) + ["NAME", "KERNEL", "DRIVER", "PRIORITY", "SELFTEST", "AVAILABLE"]
    rows = []
    for r in report:
        if r["available"]:
            avail = "yes"
        elif r["kernel"] is None:
            avail = "no (none in kernel)"
        else:
            avail = f"no ({r['errno']})"
        rows.append(
            ([r["kind"]] if len(kinds) > 1 else [])
            + [
                r["name"],
                r["kernel"] or "-",
                r["driver"] or "-",
                "-" if r["priority"] is None else str(r["priority"]),
                r["selftest"] or "-",
                avail,
            ]
        )
    for line in _table(header, rows):
        _out(line)
    missing = [r for r in report if not r["available"]]
    if missing:
        policy = _policy.get_policy()
        consequence = "served by the standard library (counted, warned)" if policy == "fallback" else "raise"
        _out()
        _out(f"Unavailable (policy {policy}: these {consequence}):")
        for r in missing:
            _out(f"  {r['name']}: {r['reason']}")
    return 0


# --- `doctor` ---------------------------------------------------------------------------------------------

# AF_ALG types and an algorithm each that any kernel with that algif module can bind.
DOCTOR_PROBES = (("hash", "sha256"), ("skcipher", "cbc(aes)"), ("aead", "gcm(aes)"), ("rng", "stdrng"))

_CONFIG_OPTIONS = (
    "CONFIG_CRYPTO_USER_API",
    "CONFIG_CRYPTO_USER_API_HASH",
    "CONFIG_CRYPTO_USER_API_SKCIPHER",
    "CONFIG_CRYPTO_USER_API_AEAD",
    "CONFIG_CRYPTO_USER_API_RNG",
)

_CAP_NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
    "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
    "checkpoint_restore",
)  # fmt: skip

_MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d",
                  "/usr/lib/modprobe.d")  # fmt: skip


class Finding(NamedTuple):
    topic: str
    status: str  # "ok", "FAIL", "warn", "info"
    detail: str
    advice: tuple[str, ...] = ()


def proc_status() -> dict[str, str]:
    fields = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def capabilities(cap_hex: str) -> list[str]:
    """Capability names set in a /proc/self/status Cap* mask."""
    try:
        mask = int(cap_hex, 16)
    except ValueError:
        return []
    names = []
    for bit in range(mask.bit_length()):
        if mask >> bit & 1:
            names.append("cap_" + _CAP_NAMES[bit] if bit < len(_CAP_NAMES) else f"cap_{bit}")
    return names


def kernel_config() -> tuple[Optional[str], dict[str, str]]:
    """(where it was read, CONFIG_CRYPTO_USER_API* values) from /proc/config.gz or /boot/config-RELEASE."""
    release = os.uname().release
    for path in ("/proc/config.gz", f"/boot/config-{release}", f"/lib/modules/{release}/build/.config"):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rt", errors="replace") as f:
                    text = f.read()
            else:
                with open(path, errors="replace") as f:
                    text = f.read()
        except OSError:
            continue
        values = {}
        for option in _CONFIG_OPTIONS:
            m = re.search(rf"^(?:{option}=(\S+)|# {option} is not set)$", text, re.M)
            if m:
                values[option] = m.group(1) or "n"
        return path, values
    return None, {}


class ModuleLoader(NamedTuple):
    helper: Optional[str]  # /proc/sys/kernel/modprobe ("" = autoloading off, None = unreadable)
    config_dirs: tuple[str, ...]  # modprobe.d-style directories its rules come from
    module_roots: tuple[str, ...]  # directories holding lib/modules/RELEASE (the -d option)
    disabled: bool  # /proc/sys/kernel/modules_disabled = 1


def module_loader() -> ModuleLoader:
    """How the kernel loads modules on demand (request_module runs /proc/sys/kernel/modprobe). A wrapper
    script passing -C/--config or -d/--dirname (as kcapi_hashlib's VM does) is followed."""
    raw = _read("/proc/sys/kernel/modprobe")
    helper = raw.strip() if raw is not None else None
    config_dirs: list[str] = []
    roots: list[str] = []
    if helper:
        script = _read(helper, 1 << 16)
        if script is not None and script.startswith("#!"):
            for m in re.finditer(r"(?:-C|--config)[ =]'?([^'\s]+)", script):
                config_dirs.append(m.group(1))
            for m in re.finditer(r"(?:-d|--dirname)[ =]'?([^'\s]+)", script):
                roots.append(m.group(1))
    if not config_dirs:
        config_dirs = list(_MODPROBE_DIRS)
    disabled = (_read("/proc/sys/kernel/modules_disabled") or "0").strip() == "1"
    return ModuleLoader(helper, tuple(config_dirs), tuple(roots or ["/"]), disabled)


def _module_dirs(loader: ModuleLoader) -> list[str]:
    release = os.uname().release
    dirs = [os.path.join(root, "lib/modules", release) for root in loader.module_roots]
    dirs += [f"/lib/modules/{release}", f"/usr/lib/modules/{release}"]
    seen: list[str] = []
    for d in dirs:
        if os.path.isdir(d) and os.path.realpath(d) not in (os.path.realpath(s) for s in seen):
            seen.append(d)
    return seen


def module_state(name: str, loader: ModuleLoader) -> str:
    """'loaded', 'built in', 'available (DIR)', 'not in DIR' or 'unknown (...)' for a kernel module."""
    loaded = {line.split()[0] for line in (_read("/proc/modules") or "").splitlines() if line.strip()}
    if name in loaded:
        return "loaded"
    dirs = _module_dirs(loader)
    if not dirs:
        return f"unknown (no /lib/modules/{os.uname().release} here: a container sees the host's kernel only)"
    pattern = re.compile(rf"(^|/){re.escape(name)}\.ko(\.[a-z]+)?:?$")
    for d in dirs:
        for index in ("modules.builtin", "modules.dep"):
            for line in (_read(os.path.join(d, index), 1 << 24) or "").splitlines():
                path = line.split(":", 1)[0] + (":" if index == "modules.dep" else "")
                if pattern.search(path.strip()):
                    return "built in" if index == "modules.builtin" else f"available, not loaded ({d})"
    return f"not found in {', '.join(dirs)}"


def modprobe_rules(loader: ModuleLoader) -> list[str]:
    """modprobe.d lines that mention af_alg/algif (blacklist, install /bin/false, ...), as 'FILE:LINE: text'."""
    hits = []
    for d in loader.config_dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for fname in names:
            if not fname.endswith(".conf"):
                continue
            path = os.path.join(d, fname)
            for number, line in enumerate((_read(path) or "").splitlines(), 1):
                text = line.strip()
                if text and not text.startswith("#") and re.search(r"af_alg|algif|net-pf-38", text):
                    hits.append(f"{path}:{number}: {text}")
    return hits


def container() -> Optional[str]:
    """A guess at the container runtime this process is in, or None."""
    if os.path.exists("/.dockerenv"):
        return "docker (/.dockerenv)"
    if os.path.exists("/run/.containerenv"):
        return "podman (/run/.containerenv)"
    env = os.environ.get("container")
    if env:
        return f"{env} ($container)"
    cgroup = _read("/proc/1/cgroup") or ""
    for word in ("kubepods", "docker", "containerd", "lxc", "libpod"):
        if word in cgroup:
            return f"{word} (/proc/1/cgroup)"
    return None


def diagnose() -> tuple[bool, list[Finding], str]:
    """(AF_ALG usable for hashing, findings, one-line verdict)."""
    from . import _afalg, _policy

    findings: list[Finding] = []
    uname = os.uname()
    where = container()
    in_uml = "UML" in (_read("/proc/cpuinfo") or "")
    kernel_detail = f"{uname.sysname} {uname.release} {uname.machine}"
    if in_uml:
        kernel_detail += " (user-mode-linux)"
    if where and not in_uml:  # under user-mode-linux the kernel is the VM's own, whatever the host is
        kernel_detail += f"; in a container: {where} (the host's kernel, modules and modprobe.d decide)"
    findings.append(Finding("kernel", "info", kernel_detail))

    sock_error = _afalg.af_alg_status()
    if sock_error is None:
        findings.append(Finding("socket(AF_ALG)", "ok", "socket(AF_ALG, SOCK_SEQPACKET) works"))
    else:
        findings.append(Finding("socket(AF_ALG)", "FAIL", f"{_errname(sock_error.errno)}: {sock_error}"))

    loader = module_loader()
    status = proc_status()
    restrict = _read("/proc/sys/crypto/af_alg_restrict")
    restrict_level = restrict.strip() if restrict is not None else None
    caps = capabilities(status.get("CapEff", ""))
    privileged = [c for c in ("cap_sys_admin", "cap_net_admin") if c in caps]

    # Which algif types bind (each bind loads algif_<type> and the algorithm's module on demand).
    blocks: list[dict[str, str]] = []
    type_errors: dict[str, Optional[_afalg.AlgUnavailable]] = {}
    if sock_error is None:
        for alg_type, name in DOCTOR_PROBES:
            type_errors[alg_type] = _afalg.probe(alg_type, name)
        blocks = proc_crypto()
    for alg_type, name in DOCTOR_PROBES:
        module = f"algif_{alg_type}"
        if sock_error is not None:
            findings.append(
                Finding(module, "info", f"not probed (no AF_ALG socket); module {module_state(module, loader)}")
            )
            continue
        failure = type_errors[alg_type]
        if failure is None:
            entry = crypto_entry(blocks, alg_type, name)
            driver = (
                f" -> {entry.get('driver')} (priority {entry.get('priority')}, selftest {entry.get('selftest')})"
                if entry
                else ""
            )
            findings.append(Finding(module, "ok", f"binds {alg_type} {name!r}{driver}"))
            continue
        state = module_state(module, loader)
        hints: list[str] = []
        if failure.errno == errno.ENOENT:
            if state == "loaded" or state == "built in":
                hints.append(f"{module} is {state}: the algorithm {name!r} itself is missing or its module refused")
            else:
                hints.append(f"load it as root: modprobe {module} (module {state}); see the modprobe rules below")
            if restrict_level not in (None, "0"):
                hints.append(f"af_alg_restrict={restrict_level} may keep {name!r} off this process's allowlist")
        status_word = "FAIL" if alg_type == "hash" else "warn"
        findings.append(
            Finding(module, status_word, f"{alg_type} {name!r}: {_errname(failure.errno)}: {failure}", tuple(hints))
        )

    # Kernel configuration and modules: the causes of EAFNOSUPPORT.
    config_path, config = kernel_config()
    if config_path is None:
        findings.append(
            Finding("kernel config", "info", f"not readable (no /proc/config.gz or /boot/config-{uname.release})")
        )
    else:
        shown = ", ".join(f"{k}={config.get(k, 'absent')}" for k in _CONFIG_OPTIONS)
        off = config.get("CONFIG_CRYPTO_USER_API_HASH", "n") == "n"
        advice = (
            (f"this kernel is built without CONFIG_CRYPTO_USER_API_HASH: use a kernel with it (=y or =m), or "
             f"run under the kernel VM: {PROG} vm -- CMD",)
            if off else ()
        )  # fmt: skip
        findings.append(Finding("kernel config", "FAIL" if off else "ok", f"{config_path}: {shown}", advice))

    af_state = module_state("af_alg", loader)
    af_advice: tuple[str, ...] = ()
    if sock_error is not None and sock_error.errno == errno.EAFNOSUPPORT and af_state.startswith("available"):
        af_advice = ("load it as root: modprobe af_alg algif_hash (if that fails, see the modprobe rules below)",)
    findings.append(Finding("af_alg module", "info", af_state, af_advice))

    if loader.helper is None:
        loader_detail = "/proc/sys/kernel/modprobe not readable"
        loader_status = "info"
    elif loader.helper == "":
        loader_detail = "module autoloading is off (/proc/sys/kernel/modprobe is empty)"
        loader_status = "warn"
    else:
        loader_detail = f"/proc/sys/kernel/modprobe = {loader.helper}"
        if loader.config_dirs != _MODPROBE_DIRS:
            loader_detail += f" (rules from {', '.join(loader.config_dirs)})"
        loader_status = "info"
    if loader.disabled:
        loader_detail += "; module loading disabled (/proc/sys/kernel/modules_disabled = 1)"
        loader_status = "warn"
    findings.append(Finding("module loader", loader_status, loader_detail))

    rules = modprobe_rules(loader)
    if rules:
        findings.append(
            Finding(
                "modprobe rules",
                "warn",
                "; ".join(rules),
                ("these rules refuse AF_ALG modules (blacklist/install /bin/false): remove them to allow AF_ALG",),
            )
        )
    else:
        findings.append(
            Finding("modprobe rules", "ok", f"none mention af_alg/algif in {', '.join(loader.config_dirs)}")
        )

    # Process restrictions: seccomp (EPERM), af_alg_restrict and capabilities.
    mode = status.get("Seccomp")
    mode_text = {"0": "disabled", "1": "strict", "2": "filter"}.get(mode or "", "unknown")
    filters = status.get("Seccomp_filters", "?")
    seccomp_detail = (
        f"Seccomp: {mode} ({mode_text}), Seccomp_filters: {filters}, NoNewPrivs: {status.get('NoNewPrivs', '?')}"
    )
    seccomp_advice: tuple[str, ...] = ()
    seccomp_status = "ok" if mode == "0" else "info"
    if sock_error is not None and sock_error.errno in (errno.EPERM, errno.EACCES):
        if mode == "2":
            seccomp_status = "FAIL"
            seccomp_advice = (
                "a seccomp filter refuses socket(AF_ALG): container runtimes' default profiles do (Docker 29+, "
                "containerd). Allow socket() with family 38 (AF_ALG) in the profile: docker/podman run "
                "--security-opt seccomp=PROFILE.json (seccomp=unconfined to confirm), Kubernetes: "
                "securityContext.seccompProfile",
            )
        else:
            seccomp_advice = (
                "no seccomp filter here: an LSM (SELinux, AppArmor) denies it; see the audit log "
                "(ausearch -m avc, dmesg | grep -i denied)",
            )
    findings.append(Finding("seccomp", seccomp_status, seccomp_detail, seccomp_advice))

    if restrict_level is None:
        findings.append(
            Finding("af_alg_restrict", "ok", "absent (this kernel has no AF_ALG restriction support: unrestricted)")
        )
    else:
        meaning = {
            "0": "unrestricted",
            "1": "limited: unprivileged processes bind only an allowlist, privileged ones a longer one",
            "2": "AF_ALG disabled",
        }.get(restrict_level, "unknown level")
        advice = (
            ("as root: sysctl crypto.af_alg_restrict=0 (or 1) to allow AF_ALG",)
            if restrict_level == "2"
            else (f"run with more privilege ({', '.join(['cap_sys_admin', 'cap_net_admin'])}) or ask for level 0",)
            if restrict_level == "1" and not privileged
            else ()
        )
        findings.append(
            Finding(
                "af_alg_restrict", "warn" if restrict_level != "0" else "ok", f"{restrict_level} ({meaning})", advice
            )
        )

    cap_eff = status.get("CapEff", "?")
    held = ", ".join(privileged) if privileged else "neither cap_sys_admin nor cap_net_admin"
    findings.append(Finding("capabilities", "info", f"CapEff {cap_eff}: {len(caps)} capabilities; {held}"))

    policy = _policy.get_policy()
    env = os.environ.get(_policy.ENV)
    source = f"{_policy.ENV}={env}" if env else "default"
    effect = (
        "unavailable algorithms raise ValueError" if policy == "strict"
        else "unavailable algorithms are computed by the standard library (counted, warned once)"
    )  # fmt: skip
    findings.append(Finding("policy", "info", f"{policy} ({source}): {effect}"))

    hash_ok = sock_error is None and type_errors.get("hash") is None
    # What most likely stands between this process and AF_ALG, most specific first (for the verdict).
    causes = []
    if rules:
        causes.append("modprobe rules refuse its modules (see above)")
    if loader.helper == "" or loader.disabled:
        causes.append("module loading is off")
    if af_state.startswith("available"):
        causes.append("load af_alg and algif_hash (modprobe, as root)")
    if config_path is not None and config.get("CONFIG_CRYPTO_USER_API_HASH", "n") == "n":
        causes.append("the kernel is built without CONFIG_CRYPTO_USER_API_HASH")
    if restrict_level == "2":
        causes.append("af_alg_restrict is 2 (disabled)")
    if not causes:
        causes.append("enable CONFIG_CRYPTO_USER_API_HASH or load af_alg/algif_hash")
    if not in_uml:  # the VM itself is no way out from inside the VM
        causes.append(f"or run under the project's kernel VM: {PROG} vm -- CMD")
    verdict = _verdict(sock_error, type_errors, status, hash_ok, causes)
    return hash_ok, findings, verdict


def _verdict(
    sock_error: Optional[BaseException],
    type_errors: dict[str, Any],
    status: dict[str, str],
    hash_ok: bool,
    causes: list[str],
) -> str:
    if hash_ok:
        served = [t for t, e in type_errors.items() if e is None]
        missing = [t for t, e in type_errors.items() if e is not None]
        extra = f"; not {', '.join(missing)} (see above)" if missing else ""
        return f"OK: AF_ALG works here: the kernel serves {', '.join(served)}{extra}."
    err = getattr(sock_error, "errno", None)
    if err == errno.EAFNOSUPPORT:
        return f"NOT USABLE: this kernel has no AF_ALG (EAFNOSUPPORT): {'; '.join(causes)}"
    if err in (errno.EPERM, errno.EACCES):
        why = "a seccomp filter" if status.get("Seccomp") == "2" else "a security policy (LSM)"
        return (
            f"NOT USABLE: socket(AF_ALG) is blocked by {why} ({_errname(err)}); "
            "allow AF_ALG (address family 38) for this process"
        )
    if sock_error is not None:
        return f"NOT USABLE: socket(AF_ALG) failed: {sock_error}"
    failure = type_errors.get("hash")
    return f"NOT USABLE: AF_ALG sockets work but no hash binds: {failure}"


def cmd_doctor(args: argparse.Namespace) -> int:
    ok, findings, verdict = diagnose()
    if args.json:
        _out(json.dumps({"usable": ok, "verdict": verdict, "findings": [f._asdict() for f in findings]}, indent=2))
        return 0 if ok else 1
    width = max(len(f.topic) for f in findings)
    for f in findings:
        _out(f"{f.topic.ljust(width)}  [{f.status}] {f.detail}")
        for advice in f.advice:
            _out(f"{' ' * width}    -> {advice}")
    _out()
    _out(verdict)
    return 0 if ok else 1


# --- `sum` (sha256sum-compatible) -------------------------------------------------------------------------

# The BSD tag (--tag, and what -c accepts) per algorithm; coreutils' own where it has the algorithm.
_TAGS = {
    "md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256", "sha384": "SHA384",
    "sha512": "SHA512", "blake2b": "BLAKE2b", "blake2s": "BLAKE2s", "sm3": "SM3",
    "sha3_224": "SHA3-224", "sha3_256": "SHA3-256", "sha3_384": "SHA3-384", "sha3_512": "SHA3-512",
    "ripemd160": "RIPEMD160", "md4": "MD4", "whirlpool": "WHIRLPOOL",
    "streebog256": "STREEBOG256", "streebog512": "STREEBOG512",
}  # fmt: skip

_HEX = frozenset(b"0123456789abcdefABCDEF")
# Characters gnulib's shell quoting leaves alone (quotef: shell-escape style, ':' quoted too).
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%+,-./@_]")
_C_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}


def quotef(name: bytes) -> str:
    """A file name as coreutils' error messages show it (gnulib quotef: shell-escape quoting)."""
    text = name.decode("utf-8", "surrogateescape")
    if not text:
        return "''"

    def plain(i: int, ch: str) -> bool:
        if ch in _SHELL_SAFE:
            return True
        if ch in "#~":
            return i > 0
        if ch in "{}":
            return len(text) > 1
        return ord(ch) >= 0x80 and ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF

    if all(plain(i, ch) for i, ch in enumerate(text)):
        return text
    printable = all(ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)
    if printable:
        if "'" not in text:
            return f"'{text}'"
        if not any(c in text for c in '"$`\\!'):
            return f'"{text}"'
        return "'" + text.replace("'", "'\\''") + "'"
    parts: list[str] = []
    literal = ""
    for ch in text:
        if ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF:
            literal += "'\\''" if ch == "'" else ch
            continue
        if literal:
            parts.append(f"'{literal}'")
            literal = ""
        code = ord(ch) - 0xDC00 if 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch)
        parts.append("$'\\" + (_C_ESCAPES.get(ch) or f"{code:03o}") + "'")
    if literal:
        parts.append(f"'{literal}'")
    return "".join(parts)


def _escape_name(name: bytes) -> bytes:
    return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


def _unescape_name(name: bytes) -> Optional[bytes]:
    """coreutils' filename_unescape: only \\\\ and \\n are valid escapes; a NUL is invalid."""
    out = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == 0x5C:  # backslash
            if i == len(name) - 1:
                return None
            i += 1
            nxt = name[i]
            if nxt == ord("n"):
                out.append(0x0A)
            elif nxt == 0x5C:
                out.append(0x5C)
            else:
                return None
        elif c == 0:
            return None
        else:
            out.append(c)
        i += 1
    return bytes(out)


class _UsageError(Exception):
    pass


class _Summer:
    """coreutils' md5sum.c (digest.c in 9.x) behaviour with the kernel computing the digests."""

    def __init__(self, algorithm: str, bits: Optional[int]) -> None:
        import kcapi_hashlib

        from ._hashlib import ALGORITHMS, canonical_name

        name = canonical_name(algorithm)
        if name is None or ALGORITHMS[name].digest_size == 0:
            raise _UsageError(f"unsupported algorithm {algorithm!r} (choose from {', '.join(sum_algorithms())})")
        self.name = name
        self.tag = _TAGS.get(name, name.upper())
        self.max_size = ALGORITHMS[name].digest_size
        self.blake2 = name in ("blake2b", "blake2s")
        if bits is not None:
            if not self.blake2:
                raise _UsageError("--length is only supported with blake2b and blake2s")
            if bits % 8 or not 0 < bits <= self.max_size * 8:
                raise _UsageError(f"invalid length: {bits}; it must be a multiple of 8, at most {self.max_size * 8}")
        self.size = (bits // 8) if bits else self.max_size
        self._module = kcapi_hashlib
        self.bsd_reversed = -1  # split_3's static: -1 unknown, 0 standard lines seen, 1 "hex name" lines

    def constructor(self, size: Optional[int] = None) -> Callable[[], Any]:
        size = size or self.size
        if self.blake2:
            ctor = getattr(self._module, self.name)
            return lambda: ctor(digest_size=size)
        name = self.name
        return lambda: self._module.new(name)

    def check_available(self) -> None:
        """Raise the policy's error (UnsupportedAlgorithm) now if the kernel cannot serve the algorithm."""
        self.constructor()()

    def digest(self, path: bytes, size: Optional[int] = None) -> bytes:
        """The digest of a file ('-' = stdin); raises OSError like open()/read()."""
        ctor = self.constructor(size)
        if path == b"-":
            stdin = sys.stdin
            if stdin is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            f: IO[bytes] = stdin.buffer
            return bytes(self._module.file_digest(f, ctor).digest())
        with open(path, "rb") as f:
            return bytes(self._module.file_digest(f, ctor).digest())

    def tag_prefix(self, size: int) -> str:
        return f"{self.tag}-{size * 8}" if self.blake2 and size != self.max_size else self.tag

    # -- generating --

    def output_line(self, name: bytes, digest: bytes, binary: bool, tagged: bool, zero: bool) -> bytes:
        # md5sum.c output_file: a leading backslash marks a name with '\\' or '\n' escaped (not with -z).
        needs_escape = not zero and (b"\\" in name or b"\n" in name)
        shown = _escape_name(name) if needs_escape else name
        out = b"\\" if needs_escape else b""
        if tagged:
            out += self.tag_prefix(len(digest)).encode() + b" (" + shown + b") = " + digest.hex().encode()
        else:
            out += digest.hex().encode() + (b" *" if binary else b"  ") + shown
        return out + (b"\0" if zero else b"\n")

    # -- checking --

    def _is_hex(self, s: bytes, hexlen: int) -> bool:
        return len(s) == hexlen and all(c in _HEX for c in s)

    def split_3(self, s: bytes) -> Optional[tuple[bytes, bytes, int]]:
        """coreutils' split_3: (hex digest, file name, digest size) of a check line, None if malformed."""
        n = len(s)
        i = 0
        while i < n and s[i] in b" \t":
            i += 1
        escaped = False
        if s[i : i + 1] == b"\\":
            i += 1
            escaped = True
        size = self.size
        tag = self.tag.encode()
        if s.startswith(tag, i):
            i += len(tag)
            if self.blake2 and s[i : i + 1] == b"-":
                m = re.match(rb"-(\d+)", s[i:])
                if m is None:
                    return None
                bits = int(m.group(1))
                if bits % 8 or not 0 < bits <= self.max_size * 8:
                    return None
                size = bits // 8
                i += m.end()
            if s[i : i + 1] == b" ":
                i += 1
            if s[i : i + 1] != b"(":
                return None
            return self._bsd_split_3(s[i + 1 :], escaped, size)
        hexlen = size * 2
        if n - i < hexlen + 2 + (s[i : i + 1] == b"\\"):
            return None
        digest = s[i : i + hexlen]
        i += hexlen
        if s[i : i + 1] not in (b" ", b"\t"):
            return None
        i += 1
        if not self._is_hex(digest, hexlen):
            return None
        if n - i == 1 or s[i : i + 1] not in (b" ", b"*"):
            # "hex name" (BSD reversed); never mixed with the standard form in one run.
            if self.bsd_reversed == 0:
                return None
            self.bsd_reversed = 1
        elif self.bsd_reversed != 1:
            self.bsd_reversed = 0
            i += 1  # the ' ' (text) or '*' (binary) marker
        name = _unescape_name(s[i:]) if escaped else s[i:]
        if name is None:
            return None
        return digest, name, size

    def _bsd_split_3(self, s: bytes, escaped: bool, size: int) -> Optional[tuple[bytes, bytes, int]]:
        if not s:
            return None
        j = len(s) - 1
        while j and s[j] != 0x29:  # ')'
            j -= 1
        if s[j] != 0x29:
            return None
        name = _unescape_name(s[:j]) if escaped else s[:j]
        if name is None:
            return None
        i = j + 1
        while s[i : i + 1] in (b" ", b"\t"):
            i += 1
        if s[i : i + 1] != b"=":
            return None
        i += 1
        while s[i : i + 1] in (b" ", b"\t"):
            i += 1
        digest = s[i:]
        if not self._is_hex(digest, size * 2):
            return None
        return digest, name, size


def _lines(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = f.readline()
        if not line:
            return
        yield line


def _check_file(summer: _Summer, listing: bytes, opts: argparse.Namespace) -> bool:
    """coreutils' digest_check for one checksum list; True if every listed file matched."""
    status_only = opts.check_output == "status"
    quiet = opts.check_output == "quiet"
    warn = opts.check_output == "warn"
    is_stdin = listing == b"-"
    shown = "'standard input'" if is_stdin else quotef(listing)
    try:
        if is_stdin:
            if sys.stdin is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            stream: IO[bytes] = sys.stdin.buffer
            lines = list(_lines(stream))
        else:
            with open(listing, "rb") as f:
                lines = list(_lines(f))
    except IsADirectoryError:
        # fopen() of a directory succeeds in C and the first read fails: coreutils says "read error".
        _err(f"{shown}: read error")
        return False
    except OSError as e:
        _err(f"{shown}: {os.strerror(e.errno or errno.EIO)}")
        return False

    misformatted = read_failures = mismatched = 0
    properly_formatted = matched = False
    for number, raw in enumerate(lines, 1):
        if raw.startswith(b"#"):
            continue
        line = raw[:-1] if raw.endswith(b"\n") else raw
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            continue
        parsed = summer.split_3(line)
        if parsed is None or (is_stdin and parsed[1] == b"-"):
            misformatted += 1
            if warn:
                _err(f"{shown}: {number}: improperly formatted {summer.tag} checksum line")
            continue
        expected, name, size = parsed
        properly_formatted = True
        needs_escape = not status_only and b"\n" in name
        label = (b"\\" + _escape_name(name)) if needs_escape else name
        try:
            actual = summer.digest(name, size)
        except OSError as e:
            if opts.ignore_missing and e.errno == errno.ENOENT:
                continue
            _err(f"{quotef(name)}: {os.strerror(e.errno or errno.EIO)}")
            read_failures += 1
            if not status_only:
                sys.stdout.flush()
                _write_bytes(label + b": FAILED open or read\n")
            continue
        ok = actual.hex().encode() == expected.lower()
        if ok:
            matched = True
        else:
            mismatched += 1
        if not status_only and (not ok or not quiet):
            _write_bytes(label + (b": OK\n" if ok else b": FAILED\n"))

    if not properly_formatted:
        _err(f"{shown}: no properly formatted checksum lines found")
    elif not status_only:

        def plural(n: int, one: str, many: str) -> str:
            return (one if n == 1 else many).replace("%d", str(n))

        if misformatted:
            _err(
                plural(
                    misformatted,
                    "WARNING: %d line is improperly formatted",
                    "WARNING: %d lines are improperly formatted",
                )
            )
        if read_failures:
            _err(
                plural(
                    read_failures,
                    "WARNING: %d listed file could not be read",
                    "WARNING: %d listed files could not be read",
                )
            )
        if mismatched:
            _err(
                plural(
                    mismatched,
                    "WARNING: %d computed checksum did NOT match",
                    "WARNING: %d computed checksums did NOT match",
                )
            )
        if opts.ignore_missing and not matched:
            _err(f"{shown}: no file was verified")
    return (
        properly_formatted and matched and mismatched == 0 and read_failures == 0 and not (opts.strict and misformatted)
    )


def sum_algorithms() -> list[str]:
    from ._hashlib import ALGORITHMS

    return [name for name, alg in ALGORITHMS.items() if alg.digest_size]


def cmd_sum(args: argparse.Namespace) -> int:
    from ._policy import UnsupportedAlgorithm

    files = [os.fsencode(f) for f in args.files] or [b"-"]
    try:
        if args.check:
            if args.tag:
                raise _UsageError("the --tag option is meaningless when verifying checksums")
            if args.mode is not None:
                raise _UsageError("the --binary and --text options are meaningless when verifying checksums")
            if args.zero:
                raise _UsageError("the --zero option is not supported when verifying checksums")
        else:
            if args.tag and args.mode == "text":
                raise _UsageError("--tag does not support --text mode")
            if args.ignore_missing:
                raise _UsageError("the --ignore-missing option is meaningful only when verifying checksums")
            if args.check_output is not None:
                raise _UsageError(f"the --{args.check_output} option is meaningful only when verifying checksums")
            if args.strict:
                raise _UsageError("the --strict option is meaningful only when verifying checksums")
        summer = _Summer(args.algorithm, args.length)
    except _UsageError as e:
        _err(str(e))
        sys.stderr.write(f"Try '{PROG} sum --help' for more information.\n")
        return 1
    try:
        summer.check_available()
    except UnsupportedAlgorithm as e:
        _err(f"{e}: {e.reason}")
        return 1
    except ValueError as e:  # fallback policy, and the stdlib lacks it too (e.g. sm3 without OpenSSL's)
        _err(str(e))
        return 1

    ok = True
    if args.check:
        for listing in files:
            ok = _check_file(summer, listing, args) and ok
        return 0 if ok else 1
    binary = args.mode == "binary"
    for name in files:
        try:
            digest = summer.digest(name)
        except OSError as e:
            _err(f"{quotef(name)}: {os.strerror(e.errno or errno.EIO)}")
            ok = False
            continue
        _write_bytes(summer.output_line(name, digest, binary, args.tag, args.zero))
    return 0 if ok else 1


# --- `demo` -----------------------------------------------------------------------------------------------


def _interpreter_binary() -> str:
    """The running interpreter's binary: the executable, or libpython where that holds the code (shared builds
    leave a small executable; the larger file shows the zero-copy splice path)."""
    import sysconfig

    candidates = [sys.executable]
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and library:
        candidates.append(os.path.join(libdir, library))
    existing = [c for c in candidates if os.path.isfile(c)]
    return max(existing, key=os.path.getsize) if existing else sys.executable


def cmd_demo(args: argparse.Namespace) -> int:
    import hashlib

    import kcapi_hashlib

    from . import _afalg

    _out("== kcapi-hashlib doctor ==")
    ok, findings, verdict = diagnose()
    for finding in findings:
        _out(f"  {finding.topic}: [{finding.status}] {finding.detail}")
    _out(f"  {verdict}")
    if not ok:
        _out()
        _out(f"The kernel cannot serve digests here. Run the demo under a real kernel: {PROG} vm -- {PROG} demo")
        _out(f"  (or: {sys.executable} -m kcapi_hashlib vm -- {sys.executable} -m kcapi_hashlib demo)")
        return 1
    _out()
    _out("== kcapi-hashlib list ==")
    for r in algorithm_report(["hash"]):
        state = "yes" if r["available"] else f"no ({r['errno'] or 'none in kernel'})"
        _out(f"  {r['name']:<12} {r['kernel'] or '-':<12} {r['driver'] or '-':<18} {state}")
    _out()
    path = os.path.realpath(args.file or _interpreter_binary())
    algorithm = args.algorithm
    _out(f"== {algorithm} of {path} ({os.path.getsize(path)} bytes) ==")
    before = _afalg.stats()
    with open(path, "rb") as f:
        kernel_digest = kcapi_hashlib.file_digest(f, algorithm).hexdigest()
    after = _afalg.stats()
    used = ", ".join(f"{k} {after[k] - before[k]}" for k in after if after[k] != before[k]) or "none"
    with open(path, "rb") as f:
        h = hashlib.new(algorithm)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        stdlib_digest = h.hexdigest()
    from ._hashlib import ALGORITHMS

    kname = ALGORITHMS[algorithm].kernel or algorithm
    entry = crypto_entry(proc_crypto(), "hash", kname)
    driver = entry.get("driver", "?") if entry else "?"
    _out(f"  kernel  ({kname}, driver {driver}): {kernel_digest}")
    _out(f"  hashlib ({algorithm}):{' ' * max(0, len(kname) + len(driver) + 10 - len(algorithm))} {stdlib_digest}")
    _out(f"  kernel operations: {used}")
    match = kernel_digest == stdlib_digest
    _out(f"  match: {'yes' if match else 'NO'}")
    return 0 if match else 1


# --- argument parsing -------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with the exit status of a usage error chosen per subcommand (coreutils' sum says 1)."""

    def __init__(self, *args: Any, usage_status: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_status = usage_status

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(self.usage_status)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Hashing by the Linux kernel crypto API (AF_ALG), from the shell.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="algorithms: kernel name, driver, priority, self-test, availability")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--kind", action="append", choices=sorted(ROW_SOURCES), help="only this kind (repeatable)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("doctor", help="is AF_ALG usable here; if not, why and what to do (exit 1)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "sum",
        usage_status=1,
        help="sha256sum-compatible digests and checking, computed by the kernel",
        description="Print or check checksums, as sha256sum does, computed by the kernel. With no FILE, or "
        "when FILE is -, read standard input.",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("-a", "--algorithm", default="sha256", metavar="ALGO",
                   help=f"digest algorithm (default sha256): {', '.join(sum_algorithms())}")  # fmt: skip
    p.add_argument("-l", "--length", type=int, metavar="BITS", help="digest length in bits (blake2b/blake2s)")
    p.add_argument("-b", "--binary", dest="mode", action="store_const", const="binary", help="read in binary mode")
    p.add_argument("-t", "--text", dest="mode", action="store_const", const="text", help="read in text mode (default)")
    p.add_argument("-c", "--check", action="store_true", help="read checksums from the FILEs and check them")
    p.add_argument("--tag", action="store_true", help="create a BSD-style checksum")
    p.add_argument("-z", "--zero", action="store_true", help="end each output line with NUL, not newline")
    p.add_argument("--ignore-missing", action="store_true", help="don't fail or report status for missing files")
    p.add_argument("--quiet", dest="check_output", action="store_const", const="quiet",
                   help="don't print OK for each successfully verified file")  # fmt: skip
    p.add_argument("--status", dest="check_output", action="store_const", const="status",
                   help="don't output anything, status code shows success")  # fmt: skip
    p.add_argument("--strict", action="store_true", help="exit non-zero for improperly formatted checksum lines")
    p.add_argument("-w", "--warn", dest="check_output", action="store_const", const="warn",
                   help="warn about improperly formatted checksum lines")  # fmt: skip
    p.set_defaults(func=cmd_sum, mode=None, check_output=None)

    sub.add_parser("vm", add_help=False, help="run a command under a real Linux kernel: vm [options] -- CMD...")

    p = sub.add_parser("demo", help="doctor, list, and a kernel-served digest of a file next to hashlib's")
    p.add_argument("file", nargs="?", metavar="FILE", help="file to hash (default: the Python interpreter)")
    p.add_argument("-a", "--algorithm", default="sha256", choices=sum_algorithms(), metavar="ALGO")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str]) -> int:
    """Run the command line `argv` (without the program name); returns the exit status."""
    argv = list(argv)
    if argv[:1] == ["vm"]:
        from . import _vm  # lazily: the runner is only needed here

        return _vm.main(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) and usage errors
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`kcapi-hashlib sum ... | head -1`): stop quietly, as coreutils dies of SIGPIPE.
        # Point stdout at /dev/null so the interpreter's final flush doesn't complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return status


def main_entry() -> None:
    """The `kcapi-hashlib` console script."""
    try:
        status = main(sys.argv[1:])
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)
