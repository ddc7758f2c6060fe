"""What runs inside the VM, whichever backend boots it: a guest whose root filesystem is the host's own ``/``
runs a generated init (PID 1) from a private run directory, with the kernel's modprobe pointed at a wrapper
that refuses the --refuse modules; the command's stdout/stderr/exit status are files in that directory,
streamed to ours while the VM runs (Guest.supervise).

Options (GuestOptions) the guest applies before the command, whatever the backend: sysctls (--sysctl), and
running the command as another user (--user) with only some capabilities (--cap), via setpriv from the
host's util-linux.

A backend supplies the kernel (Kernel) and starts the VM process; everything else is here.
"""

from __future__ import annotations

import codecs
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Optional

from .exits import EXIT_SETUP, EXIT_TIMEOUT, EXIT_VM_FAILURE, PREFIX, VMError, say, signame
from .packages import SBIN_PATH, ensure_packages, which

# The VM must come up and run the init script within this many seconds, else
# it is treated as a boot failure (a wedged VM would otherwise sit there
# until --timeout, 30 minutes by default).
BOOT_TIMEOUT = 120.0
_CONSOLE_TAIL = 40

# Lines the kernels print on every boot/shutdown, on the console, even with
# "quiet".  They are hidden unless --verbose; anything else on the console is
# shown when the command dies by a signal (OOM killer and the like).
_NOISE = re.compile(
    r"^(SELinux: |mmapper_init - find_iomem failed|"
    r"Failed to initialize ubd device|Powering off\.|reboot: |sysrq: |"
    r"Checking |\s*$)"
)


class Kernel(NamedTuple):
    binary: Path  # what the backend boots (linux.uml)
    modules: Path  # .../lib/modules/<version>-like directory
    version: str  # uname -r inside, e.g. "6.1.176"
    cache: Optional[Path] = None  # the cache directory it was fetched into (remove it to refetch)


# --------------------------------------------------------------------------
# --refuse


def _norm(name: str) -> str:
    return name.replace("-", "_")


def check_refuse_names(refuse: Sequence[str]) -> None:
    for name in refuse:
        if not re.fullmatch(r"[^\s#]+", name):
            raise VMError(f"bad --refuse name {name!r}", EXIT_SETUP)


def refuse_warnings(kernel: Kernel, refuse: Sequence[str]) -> list[str]:
    """Explain --refuse names that cannot take effect on this kernel."""

    def names(fname: str, alias: bool = False) -> set[str]:
        try:
            text = (kernel.modules / fname).read_text(errors="replace")
        except OSError:
            return set()
        out = set()
        for line in text.splitlines():
            if alias:
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "alias":
                    out.add(_norm(parts[1]))
                continue
            path = line.split(":", 1)[0].strip()
            if path:
                base = path.rsplit("/", 1)[-1]
                out.add(_norm(base.split(".ko", 1)[0]))
        return out

    dep, builtin = names("modules.dep"), names("modules.builtin")
    aliases: Optional[set[str]] = None
    warnings = []
    for name in refuse:
        key = _norm(name)
        if key in dep:
            continue
        if key in builtin:
            warnings.append(f"--refuse {name}: built into kernel {kernel.version}; it cannot be refused")
            continue
        if aliases is None:
            aliases = names("modules.alias", alias=True)
        if key not in aliases:
            warnings.append(f"--refuse {name}: kernel {kernel.version} has no module or alias by that name")
    return warnings


# --------------------------------------------------------------------------
# --sysctl, --user, --cap

#: Capability names as setpriv(1) takes them (linux/capability.h, CAP_CHOWN = 0 ...).
CAPABILITIES = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
    "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot "
    "sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease "
    "audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read "
    "perfmon bpf checkpoint_restore"
).split()


@dataclass(frozen=True)
class GuestOptions:
    """What the guest sets up before the command: sysctls written in order (key in sysctl(8)'s dotted form),
    the uid to run it as (None: root), its capabilities (None: unchanged; () none at all), and paths the
    command must be able to write as that uid (given to it on the host for the run). tmpfs_tmpdir is the
    backend's: $TMPDIR is a tmpfs inside the VM (qemu: see Qemu.run)."""

    sysctls: tuple[tuple[str, str], ...] = ()
    user: Optional[int] = None
    caps: Optional[tuple[str, ...]] = None
    writable: tuple[str, ...] = ()
    tmpfs_tmpdir: bool = False
    fips: bool = False  # booted with fips=1 (the backend adds it to the kernel command line); init checks it took


def parse_sysctl(item: str) -> tuple[str, str]:
    """``crypto.af_alg_restrict=1`` -> (key, value); VMError (usage) for anything else."""
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+([./][A-Za-z0-9_-]+)*", key) or not re.fullmatch(r"[^\n]+", value):
        raise VMError(f"bad --sysctl {item!r} (use KEY=VALUE, e.g. crypto.af_alg_restrict=1)", EXIT_SETUP)
    return key, value


def parse_cap(name: str) -> str:
    """A capability name as setpriv takes it: ``net_admin``, ``CAP_NET_ADMIN`` -> ``net_admin``."""
    cap = name.strip().lower().removeprefix("cap_")
    if cap not in CAPABILITIES:
        raise VMError(f"unknown capability {name!r} (e.g. net_admin, sys_admin)", EXIT_SETUP)
    return cap


def sysctl_path(key: str) -> str:
    # sysctl(8): dots separate the levels (a key with slashes is already a path)
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def setpriv_argv(setpriv: str, user: Optional[int], caps: Optional[Sequence[str]]) -> list[str]:
    """setpriv(1) options for running as `user` (None: root) holding exactly `caps` (None: unchanged).

    A non-root uid gets `caps` as ambient capabilities (kept across its execve, as systemd's
    AmbientCapabilities= does), and no supplementary groups. Root keeps its uid, with `caps` as its
    bounding set: how a container limits root (docker's root lacks CAP_NET_ADMIN by default)."""
    if user is None and caps is None:
        return []
    argv = [setpriv]
    wanted = ",".join(f"+{c}" for c in caps or ())
    if user is not None and user != 0:
        argv += [f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        if wanted:
            argv += [f"--inh-caps=-all,{wanted}", f"--ambient-caps=-all,{wanted}"]
    if caps is not None:
        argv += [f"--bounding-set=-all{',' + wanted if wanted else ''}"]
    return [*argv, "--"]


def closed_directories(paths: Sequence[str], uid: int) -> list[str]:
    """The directories among `paths` and their ancestors that `uid` (with gid `uid`, no other groups) may
    not traverse, shallowest first: e.g. /root (0700) when the interpreter is under /root/.pyenv."""
    closed: list[str] = []
    for path in paths:
        if not path.startswith("/"):
            continue
        parts = os.path.normpath(path).split("/")[1:]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            try:
                st = os.stat(d)
            except OSError:
                break
            if not os.path.isdir(d):
                break
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid == uid:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok and d not in closed:
                closed.append(d)
    return sorted(closed, key=lambda d: (d.count("/"), d))


def _needed_paths(cmd: Sequence[str], cwd: str, env: dict[str, str]) -> list[str]:
    """Where the command will look: its working directory, executable, PATH, Python's prefixes and paths."""
    paths = [cwd, sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    found = shutil.which(cmd[0], path=env.get("PATH", os.defpath)) if cmd else None
    if found:
        paths += [os.path.abspath(found), os.path.realpath(found)]
    for var in ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYENV_ROOT"):
        paths += [p for p in env.get(var, "").split(os.pathsep) if p]
    paths += [p for p in sys.path if p]
    return paths


def _options_lines(tmp: Path, options: GuestOptions, closed: Sequence[str], setpriv: str) -> list[str]:
    """Shell lines of the init that apply `options` (after /proc is up and modprobe points at the wrapper)."""
    q = shlex.quote
    lines = []

    def fail(message: str, code: int) -> list[str]:
        return [f'  echo {q(PREFIX + message)} >>"$T/err"', f'  echo {code} > "$T/rc"; off']

    if options.fips:
        # fips=1 on the command line sets fips_enabled only where the kernel has CONFIG_CRYPTO_FIPS
        # (crypto/fips.c: fips_enable; without it the parameter is ignored and /proc/sys/crypto/fips_enabled
        # is absent), so a run that asked for FIPS mode and did not get it fails instead of testing nothing.
        lines += ['if [ "$(cat /proc/sys/crypto/fips_enabled 2>/dev/null)" != 1 ]; then']
        why = "is not in FIPS mode with fips=1 (no CONFIG_CRYPTO_FIPS)"
        lines += [f'  echo "{PREFIX}--fips: kernel $(uname -r) {why}" >>"$T/err"']
        lines += [f'  echo {EXIT_SETUP} > "$T/rc"; off']
        lines += ["fi"]
    for key, value in options.sysctls:
        path = sysctl_path(key)
        if path.startswith("/proc/sys/crypto/af_alg"):
            # Kernel quirk: crypto.af_alg_restrict (Linux 7.3) is registered by af_alg.ko itself, so it
            # exists only once the module is in; load it first (a --refuse'd af_alg stays out).
            lines += [f'[ -e {q(path)} ] || "$T/modprobe" -q af_alg 2>/dev/null']
        # (key and path are letters, digits and _-./ only, parse_sysctl made sure: safe in double quotes)
        lines += [f"if [ ! -e {q(path)} ]; then"]
        lines += [f'  echo "{PREFIX}--sysctl {key}: kernel $(uname -r) has no {path}" >>"$T/err"']
        lines += [f'  echo {EXIT_SETUP} > "$T/rc"; off']
        lines += ["fi", f"if ! printf '%s\n' {q(value)} > {q(path)}; then"]
        lines += fail(f"--sysctl {key}={value}: the kernel refused the value", EXIT_SETUP)
        lines += ["fi"]
    if options.tmpfs_tmpdir:
        lines += ['mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$T/tmp" || {']
        lines += fail("cannot mount a tmpfs for $TMPDIR", EXIT_VM_FAILURE)
        lines += ["}"]
    if options.user is not None:
        # A directory the user may not traverse (/root, 0700, holding pyenv's Pythons) becomes traversable
        # inside the VM only: a tmpfs over it with each of its entries bind-mounted back, so the entries
        # keep their own permissions and what is written through them reaches the host.
        for n, d in enumerate(closed):
            keep = f"$T/opened/{n}"
            lines += [
                f'mkdir -p "{keep}" && mount --bind {q(d)} "{keep}" && mount -t tmpfs -o mode=0755 tmpfs {q(d)} || {{',
                *fail(f"--user: cannot open {d} for uid {options.user}", EXIT_VM_FAILURE),
                "}",
                f'for e in "{keep}"/* "{keep}"/.[!.]* "{keep}"/..?*; do',
                '  [ -e "$e" ] || [ -L "$e" ] || continue',
                f'  t={q(d)}/"${{e##*/}}"',
                '  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$t"',
                '  elif [ -d "$e" ]; then mkdir "$t" && mount --bind "$e" "$t"',
                '  else : > "$t" && mount --bind "$e" "$t"; fi',
                "done",
            ]
    argv = setpriv_argv(setpriv, options.user, options.caps)
    if argv:
        # Check that setpriv can do it, so that a failure is the runner's (125), not the command's status.
        lines += [f'if ! {" ".join(q(a) for a in argv)} /bin/true 2>>"$T/err"; then']
        lines += fail("cannot run the command with the asked-for user/capabilities (setpriv failed)", EXIT_VM_FAILURE)
        lines += ["fi"]
    return lines


def cpu_crypto_modules(kernel: Kernel) -> list[str]:
    """The kernel's CPU crypto driver modules (arch/x86/crypto/, arch/arm64/crypto/, ...), by module name:
    what the guest loads for its CPU at boot, as udev would (the init script intersects them with the CPU's
    modalias)."""
    try:
        text = (kernel.modules / "modules.dep").read_text(errors="replace")
    except OSError:
        return []
    names = []
    for line in text.splitlines():
        path = line.split(":", 1)[0]
        if re.search(r"/arch/[^/]+/crypto/", path):
            names.append(_norm(path.rsplit("/", 1)[-1].split(".ko", 1)[0]))
    return sorted(set(names))


# --------------------------------------------------------------------------
# the run directory: init, modprobe wrapper, and the command's output files


def _private_tmp_parent() -> str:
    # The directory must be reachable at the same path inside the VM (the
    # guest's root is the host's /), so not under the VM's own /dev, /proc or
    # /sys, and without whitespace (its path goes on the kernel command line).
    parent = os.path.realpath(tempfile.gettempdir())
    if re.search(r"\s", parent) or any(
        parent == top or parent.startswith(top + "/") for top in ("/dev", "/proc", "/sys")
    ):
        parent = "/tmp"
    return parent


def init_script(
    tmp: Path,
    cmd: Sequence[str],
    cwd: str,
    env: dict[str, str],
    options: GuestOptions = GuestOptions(),
    closed: Sequence[str] = (),
    setpriv: str = "setpriv",
) -> str:
    q = shlex.quote
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lim(value: int) -> str:
        return "unlimited" if value == resource.RLIM_INFINITY else str(value)

    try:
        nr_open = Path("/proc/sys/fs/nr_open").read_text().strip()
    except OSError:
        nr_open = ""
    umask = os.umask(0o22)
    os.umask(umask)
    envargs = " ".join(q(f"{k}={v}") for k, v in env.items())
    argv = " ".join(q(a) for a in cmd)
    if "=" in cmd[0]:  # env(1) would take it for one more NAME=VALUE
        argv = "/bin/sh -c 'exec \"$@\"' sh " + argv
    privileges = setpriv_argv(setpriv, options.user, options.caps)
    if privileges:
        argv = " ".join(q(a) for a in privileges) + " " + argv
    lines = [
        "#!/bin/sh",
        "# Generated by kcapi_vm: PID 1 inside the VM.",
        f"PATH={SBIN_PATH}; export PATH",
        f"T={q(str(tmp))}",
        'echo up > "$T/booted"',
        "off() {",
        "  sync",
        # sysrq 'o' powers off at once and needs no halt binary (systemctl's
        # halt is absent from minimal images); halt -f -p is the fallback.
        "  echo o > /proc/sysrq-trigger 2>/dev/null && sleep 10",
        "  halt -f -p 2>/dev/null || poweroff -f 2>/dev/null",
        "  sleep 100000",
        "}",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        # Debian's UML kernels mount devtmpfs on /dev by themselves
        # (CONFIG_DEVTMPFS_MOUNT); mounting again fails noisily, so check.
        "grep -q '^[^ ]* /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev",
        "mkdir -p /dev/shm /dev/pts",
        # multiprocessing's semaphores need a tmpfs on /dev/shm.
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm",
        "mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts",
        "[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd",
        "[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin",
        "[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout",
        "[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr",
        'echo "$T/modprobe" > /proc/sys/kernel/modprobe',
        f"echo {q(socket.gethostname()[:64] or 'kcapi-vm')} > /proc/sys/kernel/hostname",
        "command -v ip >/dev/null && ip link set lo up",
        # As udev does at boot on a real machine, load the modules for this CPU's features, here only the
        # x86 crypto drivers among them (listed in $T/cpu-crypto-modules from the kernel's module tree):
        # aesni_intel, sha256_ssse3 (sha256-avx2), ghash_clmulni_intel, ...  An algorithm built in
        # (sha256-generic on Debian's 6.1) is found without the kernel ever asking modprobe
        # (crypto_larval_lookup() calls request_module() only for a missing one), so the faster driver a
        # distribution boots with would otherwise never register. user-mode-linux has no CPU modalias.
        'if [ -r /sys/devices/system/cpu/modalias ] && [ -s "$T/cpu-crypto-modules" ]; then',
        '  "$T/modprobe" -q -a $("$T/modprobe" -q -R "$(cat /sys/devices/system/cpu/modalias)" 2>/dev/null |'
        ' tr - _ | grep -x -F -f "$T/cpu-crypto-modules") 2>/dev/null',
        "fi",
    ]
    if nr_open.isdigit():
        lines.append(f"echo {nr_open} > /proc/sys/fs/nr_open")
    lines += [
        f"ulimit -H -n {lim(hard)} 2>/dev/null",
        f"ulimit -S -n {lim(soft)} 2>/dev/null",
        f"umask {umask:03o}",
        *_options_lines(tmp, options, closed, setpriv),
        f"if ! cd {q(cwd)}; then",
        f'  echo {q(PREFIX + "cannot change to directory " + cwd + " inside the VM")} >>"$T/err"',
        f'  echo {EXIT_VM_FAILURE} > "$T/rc"; off',
        "fi",
        # env -i: exactly the caller's environment, including names that are
        # not shell identifiers.  stdin is /dev/null, stdout/stderr are files
        # in $T that the host side streams while the VM runs (writes to the
        # host's filesystem go straight through to the host file).
        f'env -i {envargs} {argv} </dev/null >>"$T/out" 2>>"$T/err"',
        'echo $? > "$T/rc"',
        "off",
        "",
    ]
    return "\n".join(lines)


def modprobe_wrapper(modprobe: str, confdir: Path, modroot: Path) -> str:
    # -C: our own (possibly empty) config instead of the host's
    # /etc/modprobe.d; -d: modules come from <modroot>/lib/modules/<uname -r>.
    # (kcapi-hashlib doctor reads these two options back from the wrapper.)
    return (
        f'#!/bin/sh\nexec {shlex.quote(modprobe)} -C {shlex.quote(str(confdir))} -d {shlex.quote(str(modroot))} "$@"\n'
    )


def give_writable(paths: Sequence[str], uid: int) -> list[tuple[str, int, int]]:
    """Let `uid` write each of `paths` for the run (--writable): a missing one is created (a directory when
    it ends in "/", else an empty file; its parent must exist), then owned by `uid`. Returns what take_back()
    needs to restore the owners (a path created here goes to the caller)."""
    given: list[tuple[str, int, int]] = []
    try:
        for raw in paths:
            path = os.path.abspath(raw)
            if not os.path.lexists(path):
                if raw.endswith("/"):
                    os.mkdir(path)
                else:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                old = (os.getuid(), os.getgid())
            else:
                st = os.lstat(path)
                old = (st.st_uid, st.st_gid)
            os.lchown(path, uid, uid)
            given.append((path, *old))
    except OSError as exc:
        take_back(given)
        message = f"--writable {exc.filename}: {exc.strerror} (giving a path to --user needs root)"
        raise VMError(message, EXIT_SETUP) from exc
    return given


def take_back(given: Sequence[tuple[str, int, int]]) -> None:
    for path, uid, gid in given:
        try:
            os.lchown(path, uid, gid)
        except OSError:
            pass  # removed by the command, say


class _Pump:
    """Copy what a file gains to a stream, as it grows."""

    def __init__(self, path: Path, stream: IO[str]) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.stream = stream
        self.broken = False
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def pump(self) -> bool:
        moved = False
        while True:
            data = os.read(self.fd, 1 << 16)
            if not data:
                return moved
            moved = True
            if self.broken:
                continue
            try:
                buf = getattr(self.stream, "buffer", None)
                if buf is not None:
                    self.stream.flush()
                    buf.write(data)
                    buf.flush()
                else:
                    # a text-only stream (e.g. one a test framework swapped in)
                    self.stream.write(self.decoder.decode(data))
                    self.stream.flush()
            except (OSError, ValueError):
                self.broken = True  # reader went away; keep draining

    def close(self) -> None:
        os.close(self.fd)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The VM's processes share the group that start_new_session gave the
    # kernel process (UML runs each guest process as a host process), so kill
    # the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def _console_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


class Guest:
    """A prepared run directory: init, modprobe wrapper and refuse rules, the command's out/err/rc files and
    the kernel console, with the pumps copying out/err (and with --verbose the console) to ours."""

    def __init__(self, tmp: Path, pumps: list[_Pump]) -> None:
        self.dir = tmp
        self.init = tmp / "init"
        self.console = tmp / "console"
        self.pumps = pumps

    @classmethod
    @contextmanager
    def prepared(
        cls,
        kernel: Kernel,
        cmd: Sequence[str],
        cwd: str,
        env: dict[str, str],
        refuse: Sequence[str],
        verbose: bool,
        options: GuestOptions = GuestOptions(),
    ) -> Iterator[Guest]:
        modprobe = which("modprobe") or "/sbin/modprobe"
        setpriv = "setpriv"
        if options.user is not None or options.caps is not None:
            ensure_packages({"setpriv": "util-linux"})
            setpriv = which("setpriv") or setpriv
        tmp = Path(tempfile.mkdtemp(prefix="kcapi-vm-", dir=_private_tmp_parent()))
        pumps: list[_Pump] = []
        given: list[tuple[str, int, int]] = []
        closed: list[str] = []
        try:
            if options.user is not None or options.tmpfs_tmpdir:
                # A fresh temporary directory in the run directory, world-writable and sticky like /tmp, as
                # $TMPDIR: one the --user can write (pytest's tmp_path, tempfile), or the mount point of
                # the VM's own tmpfs.
                tmp.chmod(0o711)
                (tmp / "tmp").mkdir()
                (tmp / "tmp").chmod(0o1777)
                env = {**env, "TMPDIR": str(tmp / "tmp")}
            if options.user is not None:
                # The kernel's module index too (the kernel cache, under $HOME): on a host /lib/modules is
                # world-readable, and restrict.kernel_has reads it as this user to tell an algorithm refused
                # by af_alg_restrict from one the kernel lacks.
                needed = [*_needed_paths(cmd, cwd, env), str(kernel.modules), *options.writable]
                closed = closed_directories(needed, options.user)
                given = give_writable(options.writable, options.user)
            confdir = tmp / "modprobe.d"
            confdir.mkdir()
            (confdir / "refuse.conf").write_text("".join(f"install {name} /bin/false\n" for name in refuse))
            modroot = tmp / "modroot"
            (modroot / "lib/modules").mkdir(parents=True)
            (modroot / "lib/modules" / kernel.version).symlink_to(kernel.modules)
            wrapper = tmp / "modprobe"
            wrapper.write_text(modprobe_wrapper(modprobe, confdir, modroot))
            init = tmp / "init"
            init.write_text(init_script(tmp, cmd, cwd, env, options, closed, setpriv))
            (tmp / "cpu-crypto-modules").write_text("".join(n + "\n" for n in cpu_crypto_modules(kernel)))
            wrapper.chmod(0o755)
            init.chmod(0o755)
            for name in ("out", "err", "console"):
                (tmp / name).write_bytes(b"")
            pumps = [_Pump(tmp / "out", sys.stdout), _Pump(tmp / "err", sys.stderr)]
            if verbose:
                pumps.append(_Pump(tmp / "console", sys.stderr))
            yield cls(tmp, pumps)
        finally:
            for p in pumps:
                p.close()
            take_back(given)
            shutil.rmtree(tmp, ignore_errors=True)

    def _pump(self) -> bool:
        moved = False
        for p in self.pumps:
            moved = p.pump() or moved
        return moved

    def supervise(
        self,
        proc: subprocess.Popen[bytes],
        kernel: Kernel,
        timeout: float,
        verbose: bool,
        started: float,
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> int:
        """Stream the command's output while the VM runs, enforce the boot timeout (seconds to reach the
        init script) and --timeout, and return the command's exit status (EXIT_TIMEOUT on timeout; VMError
        when none was recorded)."""
        booted_at: Optional[float] = None
        delay = 0.01
        while True:
            moved = self._pump()
            if proc.poll() is not None:
                break
            now = time.monotonic()
            if booted_at is None and (self.dir / "booted").exists():
                booted_at = now
                if verbose:
                    say(f"kernel {kernel.version} booted in {now - started:.2f} s")
            if timeout > 0 and now - started > timeout:
                kill_group(proc)
                self._pump()
                say(f"kernel VM timed out after {timeout:g} s")
                return EXIT_TIMEOUT
            if booted_at is None and now - started > boot_timeout:
                kill_group(proc)
                raise VMError(f"kernel {kernel.version} did not start init within {boot_timeout:g} s")
            delay = 0.01 if moved else min(delay * 2, 0.1)
            time.sleep(delay)
        kill_group(proc)  # leftovers, if any
        self._pump()
        if verbose:
            say(f"VM ran {time.monotonic() - started:.2f} s in all")
        return self._status(proc, kernel, verbose)

    def _status(self, proc: subprocess.Popen[bytes], kernel: Kernel, verbose: bool) -> int:
        try:
            status_text = (self.dir / "rc").read_text().strip()
        except OSError:
            status_text = ""
        lines = _console_lines(self.console)
        if not status_text.isdigit():
            from .backend import all_kernels  # backend imports this module
            from .postmortem import message

            what = f"kernel {kernel.version} ({kernel.binary})"
            booted = (self.dir / "booted").exists()
            msg = message(what, proc.returncode, self.console, booted, verbose, ", ".join(all_kernels()))
            if kernel.cache is not None:
                msg += f"\n  (a broken cache? remove {kernel.cache} to refetch)"
            raise VMError(msg)
        status = int(status_text)
        if status > 128:
            say(f"command killed by {signame(status - 128)} inside the VM (exit status {status})")
            extra = [ln for ln in lines if not _NOISE.match(ln)]
            if extra and not verbose:
                say("kernel console:\n" + "\n".join(f"  | {ln}" for ln in extra[-_CONSOLE_TAIL:]))
            if any("ran out of memory on the host side" in ln for ln in lines):
                say(max_map_count_hint())
        return status


MAX_MAP_COUNT = "/proc/sys/vm/max_map_count"
WANTED_MAP_COUNT = 1 << 20


def max_map_count_hint() -> str:
    """What to do when UML's host-side mmap fails: UML maps guest pages into the host process one by one, so
    a guest process with a large, fragmented heap (a long pytest run with big AEAD buffers on 7.2) needs more
    mappings than the default vm.max_map_count of 65530 allows."""
    try:
        with open(MAX_MAP_COUNT) as f:
            now = f.read().strip()
    except OSError:
        now = "unknown"
    return (
        f"user-mode-linux could not map guest memory on the host (vm.max_map_count is {now}): raise it, e.g. "
        f"`sysctl -w vm.max_map_count={WANTED_MAP_COUNT}` (.ci/run does)"
    )
