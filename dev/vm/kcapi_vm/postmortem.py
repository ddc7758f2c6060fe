"""What to say when a VM ends without recording the command's exit status: how the kernel process ended
(a signal by name), the console's telling line, what to do, and where the whole console was kept."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional

from .exits import signame
from .xstate import FAILURE_LINE, MODE_ENV

# Console lines that tell nothing on their own: stack frames, register dumps, panic trailers.
_FRAME = re.compile(r"^\s*(\[<[0-9a-f]+>\]|Call Trace|Stack:|RIP:|RSP:|RAX:|CPU: |Modules linked in|---\[ end |\s*$)")


class Cause(NamedTuple):
    pattern: str  # a substring of the console line
    advice: str


def _xstate_advice() -> str:
    test = (
        f"({MODE_ENV}=refuse: the ptrace shim refused it, as an AMX host does) "
        if os.environ.get(MODE_ENV) == "refuse"
        else ""
    )
    return test + (
        "the host CPU's XSAVE area (AMX: Intel Sapphire Rapids and newer) is larger than this UML build passes to "
        "ptrace; the runner preloads its ptrace shim where a first boot shows the need: "
        f"{MODE_ENV}=force forces it, or use --kernel 7.2 (which sizes it itself)"
    )


#: Known causes, first match wins; the advice is a function of nothing but the environment.
CAUSES = (
    Cause(FAILURE_LINE, ""),  # advice from _xstate_advice()
    Cause("ran out of memory on the host side", "raise vm.max_map_count: sysctl -w vm.max_map_count=1048576"),
    Cause("Too few physical memory", "give the VM more memory: --mem 2G"),
    Cause("Kernel panic - not syncing:", ""),
)


def telling_line(lines: list[str]) -> tuple[str, str]:
    """The console line that says what happened and the advice for it ("" when none is known)."""
    for cause in CAUSES:
        for line in lines:
            if cause.pattern in line:
                advice = _xstate_advice() if cause.pattern == FAILURE_LINE else cause.advice
                return line.strip(), advice
    telling = [ln for ln in lines if not _FRAME.match(ln)]
    return (telling[-1].strip() if telling else "(the console is empty)"), ""


def ended(returncode: Optional[int]) -> str:
    """How the kernel process ended: "was killed by SIGABRT", "exited with status 1"."""
    if returncode is None:
        return "did not end"
    if returncode < 0:
        return f"was killed by {signame(-returncode)}"
    return f"exited with status {returncode}"


def keep_console(console: Path) -> Optional[Path]:
    """A copy of the console that outlives the run directory (None if it cannot be made)."""
    try:
        fd, name = tempfile.mkstemp(prefix="kcapi-vm-console-", suffix=".txt")
        with os.fdopen(fd, "wb") as out, open(console, "rb") as src:
            shutil.copyfileobj(src, out)
    except OSError:
        return None
    return Path(name)


def message(
    what: str,
    returncode: Optional[int],
    console: Path,
    booted: bool,
    verbose: bool,
    kernels: str,
) -> str:
    """The runner's lines for a VM (`what`: "kernel 6.1.176 (/usr/bin/linux.uml)") that recorded no status."""
    try:
        lines = console.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    when = "while the command ran, before it recorded its exit status" if booted else "before the command ran"
    line, advice = telling_line(lines)
    msg = [f"{what} {ended(returncode)} {when}", f"  console: {line}"]
    msg.append(f"  what to do: {advice or f'try another --kernel ({kernels}); --verbose shows the boot'}")
    if verbose:
        msg.append("  the whole console is above (--verbose)")
    else:
        kept = keep_console(console)
        msg.append(f"  the whole console: {kept}" if kept else "  --verbose shows the whole console")
    return "\n".join(msg)
