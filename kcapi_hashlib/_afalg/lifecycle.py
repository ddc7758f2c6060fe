"""What happens to every tfm and op socket of the process at fork and at exit: the os.register_at_fork hooks
that run the hooks the op-socket owners registered with core.on_fork()/core.at_fork_in_child() (hash streams,
keyed caches, skcipher streams, rng) and drop the idle pooled op sockets in a child, and the atexit handler that
lets go of them at the interpreter's exit.

Registered when kcapi_hashlib/_afalg/__init__.py imports this module, right after core (the package's __init__
runs before any of its submodules is imported from outside): at the place, among the process's fork and exit
handlers, where core registered them when they lived there.
"""

from __future__ import annotations

import atexit
import os

from . import core


def _before_fork() -> None:
    for before, _, _ in core.fork_hooks:
        before()


def _after_fork_parent() -> None:
    for _, parent, _ in reversed(core.fork_hooks):
        parent()


def _after_fork_child() -> None:
    for _, _, child in reversed(core.fork_hooks):
        child()
    # Idle pooled op sockets are shared with the parent: the child must never use them.
    for t in core.live_tfms():
        t.drop_idle()
    for hook in core.child_hooks:
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


def _forget_at_exit() -> None:
    """At the main interpreter's exit, let go of every cached tfm and pooled op socket without close(); at a
    subinterpreter's exit, close them.

    The kernel releases a process's descriptors when it exits; closing each one first is a syscall per
    tfm spent for nothing (the keyed caches hold dozens), and leaving them to garbage collection during
    teardown would close them one by one too. Detaching drops Python's ownership (no ResourceWarning).
    A subinterpreter's exit (its atexit callbacks run when it is closed) is not the process's: detaching there
    would leave its sockets, keyed transforms' keys included, in the kernel for the life of the process.

    Which interpreter: get_current() against get_main() of _interpreters (3.13+; 3.12: _xxsubinterpreters), the
    C module concurrent.interpreters (PEP 734) wraps with the same two calls. Not the public module itself:
    importing it loads its queue and pickling machinery, 0.56 s at every exit under user-mode-linux. Where
    neither module exists, no subinterpreter can be made from Python: the main one. If the check fails, close:
    always correct, only slower.
    """
    main = True
    try:
        try:
            import _interpreters as interps  # type: ignore[import-not-found]
        except ImportError:
            import _xxsubinterpreters as interps  # type: ignore[import-not-found]
        current, first = interps.get_current(), interps.get_main()
        # 3.13+: (id, whence) tuples; 3.12: InterpreterID objects (int-like)
        main = int(current[0] if isinstance(current, tuple) else current) == int(
            first[0] if isinstance(first, tuple) else first
        )
    except ImportError:
        pass
    except Exception:
        main = False
    for t in core.live_tfms():
        if main:
            t.forget()
        else:
            t.close()


atexit.register(_forget_at_exit)
