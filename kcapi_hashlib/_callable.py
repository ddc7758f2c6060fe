"""Builtin-like callables: what kcapi_hashlib's public constructors and functions are, so that they behave like
hashlib's C functions wherever code relies on that.

hashlib's constructors are builtins, and a builtin never binds as a method: Django's
`class PBKDF2PasswordHasher: digest = hashlib.sha256` then `self.digest(data)` calls sha256(data). A plain Python
function stored on a class binds (`sha256(self, data)`: TypeError). A `builtin` is a staticmethod subclass:
staticmethod's C tp_call calls the function with no extra frame, and its `__get__` returns the object
itself, as a builtin's missing `__get__` leaves it. It keeps the function's `__name__`, `__qualname__`,
`__module__`, `__doc__` and `__wrapped__` (so `inspect.signature` reads the function's signature), pickles by
qualified name like a builtin or a function does (`__reduce__` returning a name: pickle's save_global), and
`copy.copy`/`copy.deepcopy` return it unchanged (a reduction to a name is atomic for the copy module).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class builtin(staticmethod):  # type: ignore[type-arg]
    """A callable that does not bind as a method; see the module docstring."""

    def __new__(cls, func: Callable[..., Any], module: Optional[str] = None, name: Optional[str] = None) -> builtin:
        # 3.15's staticmethod.__new__ takes the function alone (TypeError: staticmethod expected 1 argument, got 3)
        return super().__new__(cls, func)  # type: ignore[call-arg]

    def __init__(self, func: Callable[..., Any], module: Optional[str] = None, name: Optional[str] = None) -> None:
        super().__init__(func)
        self.__name__ = name or func.__name__
        self.__qualname__ = name or func.__qualname__
        self.__module__ = module or func.__module__
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        return self

    def __reduce__(self) -> str:
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<kcapi_hashlib function {self.__module__}.{self.__qualname__}>"


def as_builtin(module: Optional[str] = None, name: Optional[str] = None) -> Callable[[F], F]:
    """Decorator: the function as a `builtin` (typed as the function itself, for callers and mypy)."""

    def wrap(func: F) -> F:
        return builtin(func, module, name)  # type: ignore[return-value]

    return wrap


def make_builtin(func: F, module: Optional[str] = None, name: Optional[str] = None) -> F:
    """`builtin(func, ...)`, typed as func."""
    return builtin(func, module, name)  # type: ignore[return-value]


__all__ = ["as_builtin", "builtin", "make_builtin"]
