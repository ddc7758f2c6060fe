"""What `doctor` reads about this host: process status and capabilities, the kernel's build configuration, its
module loader and modprobe rules, and whether this is a container. Reads files only; no socket call."""

from __future__ import annotations

import gzip
import os
import re
from typing import NamedTuple, Optional

from .proc import read

CONFIG_OPTIONS = (
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

MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d",
                 "/usr/lib/modprobe.d")  # fmt: skip


def proc_status() -> dict[str, str]:
    fields = {}
    for line in (read("/proc/self/status") or "").splitlines():
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
        for option in CONFIG_OPTIONS:
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
    raw = read("/proc/sys/kernel/modprobe")
    helper = raw.strip() if raw is not None else None
    config_dirs: list[str] = []
    roots: list[str] = []
    if helper:
        script = read(helper, 1 << 16)
        if script is not None and script.startswith("#!"):
            for m in re.finditer(r"(?:-C|--config)[ =]'?([^'\s]+)", script):
                config_dirs.append(m.group(1))
            for m in re.finditer(r"(?:-d|--dirname)[ =]'?([^'\s]+)", script):
                roots.append(m.group(1))
    if not config_dirs:
        config_dirs = list(MODPROBE_DIRS)
    disabled = (read("/proc/sys/kernel/modules_disabled") or "0").strip() == "1"
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
    loaded = {line.split()[0] for line in (read("/proc/modules") or "").splitlines() if line.strip()}
    if name in loaded:
        return "loaded"
    dirs = _module_dirs(loader)
    if not dirs:
        return f"unknown (no /lib/modules/{os.uname().release} here: a container sees the host's kernel only)"
    pattern = re.compile(rf"(^|/){re.escape(name)}\.ko(\.[a-z]+)?:?$")
    for d in dirs:
        for index in ("modules.builtin", "modules.dep"):
            for line in (read(os.path.join(d, index), 1 << 24) or "").splitlines():
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
            for number, line in enumerate((read(path) or "").splitlines(), 1):
                text = line.strip()
                if text and not text.startswith("#") and re.search(r"af_alg|algif|net-pf-38", text):
                    hits.append(f"{path}:{number}: {text}")
    return hits


def root_filesystem() -> Optional[str]:
    """The type of the filesystem mounted on / (/proc/self/mounts), e.g. "9p", "hostfs", "overlay"."""
    fstype = None
    for line in (read("/proc/self/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "/":
            fstype = fields[2]  # the last mount on / is the one in effect
    return fstype


_HOST_FILES = ("9p", "hostfs", "virtiofs")


def vm_guest() -> Optional[str]:
    """The VM this kernel runs in when its root is another system's files, as kcapi_hashlib's vm runs it
    ("user-mode-linux", "qemu (DMI: QEMU ...), / over 9p"), else None. Such a kernel is the VM's own: the
    host's container, kernel and modprobe.d do not decide what it serves. (A cloud VM with its own disk is
    an ordinary machine here: None.)"""
    if in_uml():
        return "user-mode-linux"
    fstype = root_filesystem()
    if fstype not in _HOST_FILES:
        return None
    vendor = " ".join(
        (read(f"/sys/class/dmi/id/{field}", 256) or "").strip() for field in ("sys_vendor", "product_name")
    ).strip()
    if "QEMU" in vendor:
        return f"qemu (DMI: {vendor}), / over {fstype}"
    flags = re.search(r"^flags\s*:(.*)$", read("/proc/cpuinfo") or "", re.M)
    if flags is not None and "hypervisor" in flags.group(1).split():
        return f"a virtual machine (/proc/cpuinfo: hypervisor{'; DMI: ' + vendor if vendor else ''}), / over {fstype}"
    return None


def _container_marks() -> Optional[str]:
    if os.path.exists("/.dockerenv"):
        return "docker (/.dockerenv)"
    if os.path.exists("/run/.containerenv"):
        return "podman (/run/.containerenv)"
    env = os.environ.get("container")
    if env:
        return f"{env} ($container)"
    cgroup = read("/proc/1/cgroup") or ""
    for word in ("kubepods", "docker", "containerd", "lxc", "libpod"):
        if word in cgroup:
            return f"{word} (/proc/1/cgroup)"
    return None


def container() -> Optional[str]:
    """A guess at the container runtime this process is in, or None. None inside a VM guest whose root is the
    host's files (kcapi_hashlib's VMs mount the host's / over 9p or hostfs): /.dockerenv or $container seen
    there belong to the host, whose container is not this kernel's (see host_container())."""
    if vm_guest() is not None:
        return None
    return _container_marks()


def host_container() -> Optional[str]:
    """Inside a VM guest running on the host's files: the container the HOST is in (its /.dockerenv, seen
    through 9p/hostfs), or None. This kernel is the VM's own: that container limits the host, not this."""
    if vm_guest() is None:
        return None
    marks = _container_marks()
    # /proc/1/cgroup is this kernel's (the VM's init): only the host's files can say
    return marks if marks is not None and "/proc/1/cgroup" not in marks else None


def in_uml() -> bool:
    """True under user-mode-linux (the kernel is then the VM's own, whatever the host is)."""
    return "UML" in (read("/proc/cpuinfo") or "")
