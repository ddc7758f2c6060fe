"""`kcapi-hashlib doctor`: is AF_ALG usable here, and if not, exactly why and what to do.

survey() asks the kernel once (through kcapi_hashlib._afalg: af_alg_status, probe) and reads the host (host.py).
Each finding is one small function of that Survey; FINDINGS lists them in the order they print. What a kernel
refusal means, and what to do about it, is the AF_ALG layer's to say (the AlgUnavailable's str(), summary, cause
and remedy: _afalg.core.Explanation); doctor formats that, adds what it sees around it (modules, modprobe rules,
module loading, the kernel configuration, af_alg_restrict's level) and a verdict naming the likeliest cause.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

from .. import _afalg, _policy
from .._afalg import procfs
from .._afalg import restrict as _restrict
from . import host
from .listing import algorithm_report
from .output import PROG, TRY_VM, errname, out
from .proc import read

# AF_ALG types and an algorithm each that any kernel with that algif module can bind.
DOCTOR_PROBES = (("hash", "sha256"), ("skcipher", "cbc(aes)"), ("aead", "gcm(aes)"), ("rng", "stdrng"))

_PRIVILEGED = ("cap_sys_admin", "cap_net_admin")


class Finding(NamedTuple):
    topic: str
    status: str  # "ok", "FAIL", "warn", "info"
    detail: str
    advice: tuple[str, ...] = ()


@dataclass(frozen=True)
class Survey:
    """What the kernel and this host said, gathered once, in the order doctor asks (binding loads modules)."""

    uname: os.uname_result
    container: Optional[str]
    in_uml: bool
    vm_guest: Optional[str]  # host.vm_guest(): the VM this kernel runs in, if any
    host_container: Optional[str]  # in such a VM on the host's files: the container the host is in
    socket_error: Optional[_afalg.AlgUnavailable]  # af_alg_status(): None when socket(AF_ALG) works
    loader: host.ModuleLoader
    status: dict[str, str]  # /proc/self/status
    restrict_level: Optional[str]  # /proc/sys/crypto/af_alg_restrict; None where the kernel has none
    caps: list[str]
    type_errors: dict[str, Optional[_afalg.AlgUnavailable]]  # DOCTOR_PROBES' results (empty: not probed)
    crypto: str  # /proc/crypto's text after the probes
    config_path: Optional[str]
    config: dict[str, str]
    af_alg_state: str
    rules: list[str]  # modprobe.d lines mentioning af_alg/algif
    process: _restrict.Process  # what af_alg_capable() looks at
    report: list[dict[str, Any]]  # listing.algorithm_report(): every algorithm, probed (empty: not probed)

    @property
    def privileged(self) -> list[str]:
        return [c for c in _PRIVILEGED if c in self.caps]

    @property
    def hash_ok(self) -> bool:
        """Some hash binds (under af_alg_restrict=1 an unprivileged process gets sha1 but not sha256)."""
        if self.socket_error is not None:
            return False
        return self.type_errors.get("hash") is None or any(r["available"] for r in self.report if r["kind"] == "hash")

    @property
    def built_without_hash(self) -> bool:
        """The kernel configuration was read and says CONFIG_CRYPTO_USER_API_HASH is not set."""
        return self.config_path is not None and self.config.get("CONFIG_CRYPTO_USER_API_HASH", "n") == "n"

    def socket_refused(self, *codes: int) -> bool:
        return self.socket_error is not None and self.socket_error.errno in codes


def survey() -> Survey:
    socket_error = _afalg.af_alg_status()
    loader = host.module_loader()
    status = host.proc_status()
    restrict = read("/proc/sys/crypto/af_alg_restrict")
    type_errors: dict[str, Optional[_afalg.AlgUnavailable]] = {}
    crypto = ""
    report: list[dict[str, Any]] = []
    if socket_error is None:
        for alg_type, name in DOCTOR_PROBES:
            type_errors[alg_type] = _afalg.probe(alg_type, name)
        report = algorithm_report()
        crypto = procfs.read()
    config_path, config = host.kernel_config()
    return Survey(
        uname=os.uname(),
        container=host.container(),
        in_uml=host.in_uml(),
        vm_guest=host.vm_guest(),
        host_container=host.host_container(),
        socket_error=socket_error,
        loader=loader,
        status=status,
        restrict_level=restrict.strip() if restrict is not None else None,
        caps=host.capabilities(status.get("CapEff", "")),
        type_errors=type_errors,
        crypto=crypto,
        config_path=config_path,
        config=config,
        af_alg_state=host.module_state("af_alg", loader),
        rules=host.modprobe_rules(loader),
        process=_restrict.process(),
        report=report,
    )


# --- the findings, one function each -------------------------------------------------------------------


def about_kernel(s: Survey) -> Finding:
    detail = f"{s.uname.sysname} {s.uname.release} {s.uname.machine}"
    if s.vm_guest:
        detail += f" (a VM guest: {s.vm_guest}; its own kernel)"
    if s.host_container:
        detail += f"; the host's files say {s.host_container}: that container is the host's, not this kernel's"
    if s.container and not s.vm_guest:  # in a VM the kernel is the VM's own, whatever the host is
        detail += f"; in a container: {s.container} (the host's kernel, modules and modprobe.d decide)"
    return Finding("kernel", "info", detail)


def about_socket(s: Survey) -> Finding:
    if s.socket_error is None:
        return Finding("socket(AF_ALG)", "ok", "socket(AF_ALG, SOCK_SEQPACKET) works")
    return Finding("socket(AF_ALG)", "FAIL", f"{errname(s.socket_error.errno)}: {s.socket_error}")


def about_algif(alg_type: str, name: str) -> Callable[[Survey], Finding]:
    """The finding for one algif module: does (alg_type, name) bind, and to which driver."""
    module = f"algif_{alg_type}"

    def finding(s: Survey) -> Finding:
        if s.socket_error is not None:
            state = host.module_state(module, s.loader)
            return Finding(module, "info", f"not probed (no AF_ALG socket); module {state}")
        failure = s.type_errors[alg_type]
        if failure is None:
            entry = procfs.chosen(alg_type, name, s.crypto)
            driver = f" -> {entry.driver} (priority {entry.priority}, selftest {entry.selftest})" if entry else ""
            return Finding(module, "ok", f"binds {alg_type} {name!r}{driver}")
        state = host.module_state(module, s.loader)
        hints: list[str] = []
        if failure.restriction is not None:  # af_alg_restrict's doing (or maybe): its sentence says what to do
            status_word = "warn" if alg_type != "hash" or s.hash_ok else "FAIL"
            return Finding(module, status_word, f"{alg_type} {name!r}: {errname(failure.errno)}: {failure}")
        if failure.errno == errno.ENOENT:
            if state == "loaded" or state == "built in":
                hints.append(f"{module} is {state}: the algorithm {name!r} itself is missing or its module refused")
            else:
                hints.append(f"load it as root: modprobe {module} (module {state}); see the modprobe rules below")
        status_word = "FAIL" if alg_type == "hash" else "warn"
        return Finding(module, status_word, f"{alg_type} {name!r}: {errname(failure.errno)}: {failure}", tuple(hints))

    finding.__name__ = f"about_{module}"
    return finding


def about_kernel_config(s: Survey) -> Finding:
    # The kernel configuration and modules: the causes of EAFNOSUPPORT.
    if s.config_path is None:
        return Finding("kernel config", "info", f"not readable (no /proc/config.gz or /boot/config-{s.uname.release})")
    shown = ", ".join(f"{k}={s.config.get(k, 'absent')}" for k in host.CONFIG_OPTIONS)
    advice = (
        ("this kernel is built without CONFIG_CRYPTO_USER_API_HASH: the host needs a kernel with it (=y or =m)",)
        if s.built_without_hash else ()
    )  # fmt: skip
    return Finding("kernel config", "FAIL" if s.built_without_hash else "ok", f"{s.config_path}: {shown}", advice)


def about_af_alg_module(s: Survey) -> Finding:
    advice: tuple[str, ...] = ()
    if s.socket_refused(errno.EAFNOSUPPORT) and s.af_alg_state.startswith("available"):
        advice = ("load it as root: modprobe af_alg algif_hash (if that fails, see the modprobe rules below)",)
    return Finding("af_alg module", "info", s.af_alg_state, advice)


def about_module_loader(s: Survey) -> Finding:
    loader = s.loader
    if loader.helper is None:
        detail = "/proc/sys/kernel/modprobe not readable"
        status = "info"
    elif loader.helper == "":
        detail = "module autoloading is off (/proc/sys/kernel/modprobe is empty)"
        status = "warn"
    else:
        detail = f"/proc/sys/kernel/modprobe = {loader.helper}"
        if loader.config_dirs != host.MODPROBE_DIRS:
            detail += f" (rules from {', '.join(loader.config_dirs)})"
        status = "info"
    if loader.disabled:
        detail += "; module loading disabled (/proc/sys/kernel/modules_disabled = 1)"
        status = "warn"
    return Finding("module loader", status, detail)


def about_modprobe_rules(s: Survey) -> Finding:
    if s.rules:
        return Finding(
            "modprobe rules",
            "warn",
            "; ".join(s.rules),
            ("these rules refuse AF_ALG modules (blacklist/install /bin/false): remove them to allow AF_ALG",),
        )
    return Finding("modprobe rules", "ok", f"none mention af_alg/algif in {', '.join(s.loader.config_dirs)}")


def about_seccomp(s: Survey) -> Finding:
    # Process restrictions: seccomp (EPERM), af_alg_restrict and capabilities.
    mode = s.status.get("Seccomp")
    mode_text = {"0": "disabled", "1": "strict", "2": "filter"}.get(mode or "", "unknown")
    filters = s.status.get("Seccomp_filters", "?")
    detail = f"Seccomp: {mode} ({mode_text}), Seccomp_filters: {filters}, NoNewPrivs: {s.status.get('NoNewPrivs', '?')}"
    advice: tuple[str, ...] = ()
    status = "ok" if mode == "0" else "info"
    if s.socket_error is not None and s.socket_refused(errno.EPERM, errno.EACCES):
        # the refusal read the same Seccomp field: its cause names the filter or the LSM, its remedy the way out
        status = "FAIL" if mode == "2" else status
        advice = (f"{s.socket_error.cause}: {s.socket_error.remedy}",)
    return Finding("seccomp", status, detail, advice)


def about_af_alg_restrict(s: Survey) -> Finding:
    level = s.restrict_level
    if level is None:
        return Finding("af_alg_restrict", "ok", "absent (this kernel has no AF_ALG restriction support: unrestricted)")
    meaning = {
        "0": "unrestricted",
        "1": "limited: unprivileged processes bind only an allowlist, privileged ones a longer one",
        "2": "AF_ALG disabled",
    }.get(level, "unknown level")
    advice: tuple[str, ...] = ()
    if level == "2":
        advice = ("as root: sysctl crypto.af_alg_restrict=0 (or 1) to allow AF_ALG",)
    elif level == "1" and not s.process.privileged:
        advice = (
            "this process is unprivileged for AF_ALG (" + s.process.describe() + "): run it with CAP_NET_ADMIN "
            "in the initial user namespace for the longer allowlist, or, as root: sysctl crypto.af_alg_restrict=0",
        )
    elif level == "1":
        advice = ("this process holds the privilege the kernel checks; beyond its allowlist: "
                  "sysctl crypto.af_alg_restrict=0 (as root)",)  # fmt: skip
    return Finding("af_alg_restrict", "warn" if level != "0" else "ok", f"{level} ({meaning})", advice)


def about_served_here(s: Survey) -> Finding:
    """For THIS process: which algorithms the kernel serves, and why not the others, grouped by cause."""
    if not s.report:
        return Finding("served here", "info", "not probed (no AF_ALG socket)")
    served = [r for r in s.report if r["available"]]
    refused = [r for r in s.report if not r["available"] and r["kernel"] is not None]
    groups: dict[tuple[str, str], list[str]] = {}
    for r in refused:
        groups.setdefault((r["cause"] or r["errno"] or "?", r["remedy"] or ""), []).append(r["kernel"])
    advice = tuple(
        f"{cause}: {', '.join(dict.fromkeys(names))}" + (f" -> {remedy}" if remedy else "")
        for (cause, remedy), names in groups.items()
    )
    restricted = any(cause.startswith("af_alg") for cause, _ in groups)
    detail = (
        f"the kernel serves {len(served)} of {len(s.report)} algorithms kcapi_hashlib knows to this process "
        f"({s.process.describe()})"
    )
    return Finding("served here", "warn" if restricted else ("ok" if not refused else "info"), detail, advice)


def about_capabilities(s: Survey) -> Finding:
    cap_eff = s.status.get("CapEff", "?")
    held = ", ".join(s.privileged) if s.privileged else "neither cap_sys_admin nor cap_net_admin"
    return Finding("capabilities", "info", f"CapEff {cap_eff}: {len(s.caps)} capabilities; {held}")


def about_policy(s: Survey) -> Finding:
    policy = _policy.get_policy()
    env = os.environ.get(_policy.ENV)
    source = f"{_policy.ENV}={env}" if env else "default"
    effect = (
        "unavailable algorithms raise ValueError" if policy == "strict"
        else "unavailable algorithms are computed by the standard library (counted, warned once)"
    )  # fmt: skip
    return Finding("policy", "info", f"{policy} ({source}): {effect}")


#: Every finding, in the order doctor prints them.
FINDINGS: tuple[Callable[[Survey], Finding], ...] = (
    about_kernel,
    about_socket,
    *(about_algif(alg_type, name) for alg_type, name in DOCTOR_PROBES),
    about_kernel_config,
    about_af_alg_module,
    about_module_loader,
    about_modprobe_rules,
    about_seccomp,
    about_af_alg_restrict,
    about_capabilities,
    about_served_here,
    about_policy,
)


# --- the verdict ----------------------------------------------------------------------------------------


def causes(s: Survey) -> list[str]:
    """Where socket(AF_ALG) fails with EAFNOSUPPORT: what on this host most likely stands between this process and
    AF_ALG, most specific first; the refusal's own remedy where doctor sees nothing more specific."""
    found = []
    if s.rules:
        found.append("modprobe rules refuse its modules (see above)")
    if s.loader.helper == "" or s.loader.disabled:
        found.append("module loading is off")
    if s.af_alg_state.startswith("available"):
        found.append("load af_alg and algif_hash (modprobe, as root)")
    if s.built_without_hash:
        found.append("the kernel is built without CONFIG_CRYPTO_USER_API_HASH")
    if not found:
        return [s.socket_error.remedy] if s.socket_error is not None else []
    if not s.vm_guest:  # the VM itself is no way out from inside the VM
        found.append(f"only to try the package here, {TRY_VM}")
    return found


def verdict(s: Survey) -> str:
    if s.hash_ok:
        served = [t for t, e in s.type_errors.items() if e is None]
        missing = [t for t, e in s.type_errors.items() if e is not None]
        extra = f"; not {', '.join(missing)} (see above)" if missing else ""
        restricted = [r for r in s.report if (r["cause"] or "").startswith("af_alg")]
        if restricted:
            count = sum(r["available"] for r in s.report)
            return (
                f"OK: AF_ALG works here, limited by af_alg_restrict={s.restrict_level}: the kernel serves "
                f"{count} of {len(s.report)} algorithms to this process ({s.process.describe()}); "
                f"{len(restricted)} refused by the restriction (see 'served here')."
            )
        return f"OK: AF_ALG works here: the kernel serves {', '.join(served) or 'hash'}{extra}."
    failure = s.socket_error
    if failure is not None:  # the refusal says what happened and what to do (af_alg_restrict=2's included)
        remedy = failure.remedy
        if failure.errno == errno.EAFNOSUPPORT and failure.restriction is None:
            remedy = "; ".join(causes(s))  # no AF_ALG at all: doctor knows this host's likeliest way to it
        return f"NOT USABLE: {failure.summary} ({errname(failure.errno)})" + (f": {remedy}" if remedy else "")
    return f"NOT USABLE: AF_ALG sockets work but no hash binds: {s.type_errors.get('hash')}"


def diagnose() -> tuple[bool, list[Finding], str]:
    """(AF_ALG usable for hashing, findings, one-line verdict)."""
    s = survey()
    return s.hash_ok, [finding(s) for finding in FINDINGS], verdict(s)


# --- doctor --fips ---------------------------------------------------------------------------------------


def _userspace(kind: str) -> str:
    """What the fallback policy computes `kind` with, outside the kernel (and its FIPS module)."""
    if kind in ("hash", "hmac", "part"):
        try:
            import _hashlib  # CPython's OpenSSL binding: what hashlib.new() uses where it has the name

            mode = f", OpenSSL FIPS mode {_hashlib.get_fips_mode()}"
        except (ImportError, AttributeError, ValueError):
            mode = ""
        import ssl

        return f"the standard library's hashlib ({ssl.OPENSSL_VERSION}{mode}; its builtin code where OpenSSL lacks it)"
    if kind == "rng":
        return "os.urandom (getrandom(2): the kernel's CRNG, not its DRBG)"
    from ..Cipher import real_package

    return f"PyCryptodome ({real_package() or 'Crypto, not installed'})"


def fips_report(report: list[dict[str, Any]], wanted: Optional[list[str]] = None) -> dict[str, Any]:
    """doctor --fips: is the kernel in FIPS mode, which of the `wanted` algorithms (names as list shows them,
    or kernel names; None: all) its implementations are FIPS-allowed for, and what the fallback policy would
    compute in userspace for the ones the kernel does not serve."""
    enabled = procfs.fips_enabled()
    rows = [r for r in report if not wanted or r["name"] in wanted or r["kernel"] in wanted]
    unknown = [w for w in wanted or () if not any(w in (r["name"], r["kernel"]) for r in report)]
    policy = _policy.get_policy()
    entries = []
    for r in rows:
        impl = procfs.chosen(r["alg_type"], r["kernel"]) if r["kernel"] else None
        allowed = impl.fips_allowed if impl is not None else None
        if r["available"]:
            fallback = None
        elif policy == "fallback":
            fallback = _userspace(r["kind"])
        else:
            fallback = f"nothing: policy strict raises (under fallback: {_userspace(r['kind'])})"
        entries.append(
            {
                "kind": r["kind"],
                "name": r["name"],
                "kernel": r["kernel"],
                "driver": impl.driver if impl is not None else None,
                "fips_allowed": allowed,
                "served_by_kernel": r["available"],
                "fallback": fallback,
            }
        )
    return {
        "fips_enabled": enabled,
        "path": procfs.FIPS_ENABLED,
        "policy": policy,
        "unknown": unknown,
        "algorithms": entries,
    }


def _fips_lines(fips: dict[str, Any]) -> list[str]:
    enabled = fips["fips_enabled"]
    if enabled is None:
        state = f"{fips['path']} absent: the kernel has no FIPS mode (CONFIG_CRYPTO_FIPS unset); not in FIPS mode"
    elif enabled:
        state = (f"{fips['path']} = 1: the kernel is in FIPS mode; it serves only FIPS-allowed implementations "
                 "(others fail their self-test and do not bind)")  # fmt: skip
    else:
        state = f"{fips['path']} = 0: the kernel is not in FIPS mode (/proc/crypto reports fips_allowed only in it)"
    lines = [f"FIPS: {state}"]
    for name in fips["unknown"]:
        lines.append(f"  {name}: no algorithm of that name (see '{PROG} list')")
    for e in fips["algorithms"]:
        allowed = {True: "fips_allowed", False: "NOT fips_allowed", None: "fips_allowed not reported"}[
            e["fips_allowed"]
        ]
        where = f"{e['kernel']} -> {e['driver']}" if e["driver"] else (e["kernel"] or "no kernel algorithm")
        served = (
            "served by the kernel" if e["served_by_kernel"] else f"not served by the kernel; fallback: {e['fallback']}"
        )
        lines.append(f"  {e['name']}: {where}: {allowed}; {served}")
    return lines


def cmd_doctor(args: argparse.Namespace) -> int:
    s = survey()
    ok, findings, conclusion = s.hash_ok, [finding(s) for finding in FINDINGS], verdict(s)
    fips = fips_report(s.report, args.algorithm) if args.fips else None
    if args.json:
        doc: dict[str, Any] = {"usable": ok, "verdict": conclusion, "findings": [f._asdict() for f in findings]}
        if fips is not None:
            doc["fips"] = fips
        out(json.dumps(doc, indent=2))
        return 0 if ok else 1
    width = max(len(f.topic) for f in findings)
    for f in findings:
        out(f"{f.topic.ljust(width)}  [{f.status}] {f.detail}")
        for advice in f.advice:
            out(f"{' ' * width}    -> {advice}")
    if fips is not None:
        out()
        for line in _fips_lines(fips):
            out(line)
    out()
    out(conclusion)
    return 0 if ok else 1
