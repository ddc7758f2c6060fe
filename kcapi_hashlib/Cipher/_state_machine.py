"""The order in which the methods of a cipher object can be called (PyCryptodome's Crypto.Cipher._state_machine).

Each cipher object keeps in ``self._next`` the methods the caller may invoke next. Each method calls
``self._step(method, after, message)`` (Cipher._common.Stateful): it raises ``TypeError(message)`` unless
`method` is allowed now, then allows only `after`.
"""

from __future__ import annotations

import enum


class Method(enum.Enum):
    """A method of a cipher object."""

    UPDATE = "update"
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    DIGEST = "digest"
    VERIFY = "verify"


ALL = (Method.UPDATE, Method.ENCRYPT, Method.DECRYPT, Method.DIGEST, Method.VERIFY)

__all__ = ["ALL", "Method"]
