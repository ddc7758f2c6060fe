"""The XSAVE ptrace shim for user-mode-linux kernels that pass a fixed-size NT_X86_XSTATE buffer.

Debian's UML 6.1 and 6.12 set a guest process's FPU state with ``ptrace(PTRACE_SETREGSET, pid,
NT_X86_XSTATE, iov)`` and a buffer of a size fixed when they were built (2696 bytes for 6.1.176); the host
kernel's xstateregs_set() (arch/x86/kernel/fpu/regset.c) refuses with EFAULT any buffer shorter than its
own full user XSAVE size, which AMX (Intel Sapphire Rapids and newer) makes ~11 KiB. Those kernels then die
at boot ("userspace - ptrace set fp regs failed, errno = 14"). UML 7.2 sizes the buffer at run time.

Where it is needed, the C source below (SOURCE: a string, since the wheel ships Python files only), built
once with the host's gcc into the cache, is preloaded into the UML process and widens those calls (see its
comment). Whether it is needed is measured, not assumed: each kernel is booted once per host CPU (flags)
and host kernel with ``init=/bin/true``, and the verdict (did the console say "ptrace set fp regs failed")
is cached.

``KCAPI_HASHLIB_XSTATE_SHIM``: ``auto`` (default) as above; ``off`` never; ``force`` always, and the shim
widens every NT_X86_XSTATE SETREGSET, short or not (to test it on any host); ``refuse`` always, and the
shim fails every such call with EFAULT as an AMX host does (to test the runner's diagnosis on any host).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from .cache import cache_dir
from .exits import VMError, say
from .guest import Kernel
from .packages import ensure_packages, run_quiet, which

MODE_ENV = "KCAPI_HASHLIB_XSTATE_SHIM"
MODES = ("auto", "off", "force", "refuse")
#: What UML prints when the host refused its FPU state (arch/um/os-Linux/skas/process.c, userspace()).
FAILURE_LINE = "ptrace set fp regs failed"
PROBE_TIMEOUT = 60.0


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto") or "auto"
    if value not in MODES:
        raise VMError(f"{MODE_ENV}={value!r}: choose from {', '.join(MODES)}", 2)
    return value


def _host_signature() -> str:
    """What decides the host's XSAVE size: the CPU's feature flags and the host kernel."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return hashlib.sha256((flags + os.uname().release).encode()).hexdigest()[:16]


def _dir() -> Path:
    return cache_dir() / "xstate"


def _probe(kernel: Kernel, env: dict[str, str]) -> bool:
    """Boot `kernel` with init=/bin/true and no shim: True when the host refused its FPU state."""
    with tempfile.TemporaryDirectory(prefix="kcapi-xstate-") as tmp:
        console = Path(tmp) / "console"
        argv = [str(kernel.binary), "quiet", "mem=64M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/"]
        argv += ["ro", "init=/bin/true", "con=null", "con0=null,fd:2", f"uml_dir={tmp}", "umid=probe"]
        with open(console, "wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=tmp, env=env, start_new_session=True
            )
            try:
                proc.wait(timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            finally:
                try:
                    os.killpg(proc.pid, 9)
                except OSError:
                    pass
                proc.wait()
        return FAILURE_LINE in console.read_text(errors="replace")


def needed(kernel: Kernel, env: dict[str, str]) -> bool:
    """Whether `kernel` needs the shim on this host (measured once per kernel, host CPU and host kernel)."""
    key = hashlib.sha256(f"{kernel.binary.resolve()}:{kernel.version}".encode()).hexdigest()[:12]
    verdict = _dir() / f"{kernel.version}-{key}-{_host_signature()}.json"
    try:
        return bool(json.loads(verdict.read_text())["needed"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = _probe(kernel, {k: v for k, v in env.items() if k != "LD_PRELOAD"})
    verdict.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=verdict.parent, prefix=".verdict.")
    with os.fdopen(fd, "w") as f:
        json.dump({"kernel": kernel.version, "binary": str(kernel.binary), "needed": result}, f)
    os.replace(part, verdict)
    return result


def build() -> Path:
    """The shim, compiled with the host's gcc into the cache the first time (installed with apt-get as root,
    else named)."""
    source = SOURCE.encode()
    lib = _dir() / f"xstate_shim-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if lib.exists():
        return lib
    # libc6-dev: the headers (gcc alone, installed without recommends, has none).
    ensure_packages({"gcc": "gcc", "/usr/include/stdio.h": "libc6-dev"})
    gcc = which("gcc") or "gcc"
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent, prefix=".build.") as tmp:
        src = Path(tmp) / "xstate_shim.c"
        src.write_bytes(source)
        out = Path(tmp) / "xstate_shim.so"
        # No -ldl: dlsym is in libc since glibc 2.34, and a libdl.so.2 from the host's ld.so.cache would not
        # match the newer glibc that the fetched kernels (6.12, 7.2) run on.
        run_quiet([gcc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(out), str(src)], "gcc (the XSAVE ptrace shim)")
        out.chmod(0o755)
        os.replace(out, lib)
    return lib


def uml_env(kernel: Kernel, env: dict[str, str], verbose: bool) -> dict[str, str]:
    """`env` for the UML process, with the shim preloaded where this host needs it for `kernel` (or where
    KCAPI_HASHLIB_XSTATE_SHIM asks for it)."""
    how = mode()
    if how == "off" or (how == "auto" and not needed(kernel, env)):
        return env
    try:
        lib = build()
    except VMError as exc:
        raise VMError(
            f"kernel {kernel.version} needs the XSAVE ptrace shim on this host (its CPU's XSAVE area, AMX, is "
            f"larger than this UML passes to ptrace), which is built with gcc: {exc}; or use --kernel 7.2",
            exc.code,
        ) from None
    if verbose:
        why = {
            "auto": f"this host refuses kernel {kernel.version}'s fixed-size XSAVE state (AMX?)",
            "force": f"{MODE_ENV}=force",
            "refuse": f"{MODE_ENV}=refuse: every XSAVE state set fails, as on an AMX host without the shim",
        }[how]
        say(f"{why}: UML runs with the ptrace shim {lib}")
    preload = " ".join(p for p in (str(lib), env.get("LD_PRELOAD", "")) if p)
    return {**env, "LD_PRELOAD": preload, MODE_ENV: how}


SOURCE = r"""/* LD_PRELOAD shim for Debian's user-mode-linux 6.1 and 6.12 on hosts whose XSAVE area is larger than the
 * fixed buffer those kernels pass to ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, iov) (AMX: ~11 KiB).
 *
 * The host kernel's xstateregs_set() (arch/x86/kernel/fpu/regset.c) returns -EFAULT unless the buffer is
 * exactly its full user XSAVE size (fpu_user_cfg.max_size; ptrace_regset() in kernel/ptrace.c clamps a longer
 * iov down to it, never a shorter one up), so UML's put_fp_registers() fails and it dies with
 * "userspace - ptrace set fp regs failed, errno = 14". A GETREGSET with a short buffer is fine (the kernel
 * copies what fits). So for a SETREGSET of NT_X86_XSTATE shorter than the host's size, this reads the tracee's
 * full state into a host-sized buffer, lays UML's bytes over its start and sets the whole buffer: the
 * components UML does not know of (AMX tile state, which no guest process can enable) keep their values.
 *
 * KCAPI_HASHLIB_XSTATE_SHIM=force takes that path for every NT_X86_XSTATE SETREGSET, short or not (the
 * runner's test of this code on hosts that do not need it); =refuse fails every such call with EFAULT, as a
 * host with a larger XSAVE area does (the runner's test of its diagnosis). The first widened call is reported
 * once on stderr (UML's console). Built by dev/vm/kcapi_vm/xstate.py with the host's gcc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define PROBE_SIZE 65536 /* larger than any XSAVE area: the kernel clamps iov_len to its own size */

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

/* Per host thread: UML's ptrace calls for one tracee come from one thread; nothing is shared. */
static __thread unsigned char *full_buf;
static __thread int reported;

long ptrace(enum __ptrace_request request, ...)
{
    static ptrace_fn real; /* set once; a racing second lookup stores the same pointer */
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    if (request != PTRACE_SETREGSET || (long)addr != NT_X86_XSTATE || data == NULL)
        return real(request, pid, addr, data);

    struct iovec *iov = data;
    const char *mode = getenv("KCAPI_HASHLIB_XSTATE_SHIM");
    int force = mode && strcmp(mode, "force") == 0;
    if (mode && strcmp(mode, "refuse") == 0) {
        errno = EFAULT;
        return -1;
    }
    if (!full_buf && !(full_buf = malloc(PROBE_SIZE)))
        return real(request, pid, addr, data);
    struct iovec full = {full_buf, PROBE_SIZE};
    int saved = errno;
    if (real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &full) < 0) {
        errno = saved;
        return real(request, pid, addr, data);
    }
    if (full.iov_len <= iov->iov_len && !force)
        return real(request, pid, addr, data);
    size_t uml = iov->iov_len < full.iov_len ? iov->iov_len : full.iov_len;
    memcpy(full_buf, iov->iov_base, uml);
    if (!reported) {
        reported = 1;
        fprintf(stderr, "xstate shim: NT_X86_XSTATE SETREGSET of %zu bytes set as the host's %zu%s\n",
                (size_t)iov->iov_len, (size_t)full.iov_len, force ? " (forced)" : "");
    }
    errno = saved;
    return real(request, pid, addr, &full);
}
"""
