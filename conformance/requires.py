"""Declared kernel requirements of conformance tests: the `kernel_alg` marker (conftest.py checks it).

    pytestmark = requires.kernel_alg("aead", "gcm(aes)", only="test_gcm*")   # fixed, for some tests
    pytestmark = requires.hashes("name")                                    # from a parameter's value

A test whose declared algorithm the kernel refuses HERE because of af_alg_restrict (7.3+) skips, with the
restriction's sentence as the reason (conftest collects and prints them). Any other refusal (ENOENT at level 0,
EINVAL, ...) does not skip: the test runs and shows it. Where af_alg_restrict is absent or 0 nothing is probed,
so declarations change nothing there.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest

from kcapi_hashlib._algorithms import BY_NAME

# mode -> the kernel skcipher(s) kcapi_hashlib's Cipher builds it on (CFB binds ecb and cbc: _mode_cfb.py)
AES_MODES: dict[str, Any] = {
    "ECB": "ecb(aes)", "CBC": "cbc(aes)", "CFB": ("ecb(aes)", "cbc(aes)"), "OFB": "cbc(aes)", "CTR": "ctr(aes)",
}  # fmt: skip
TDES_MODES: dict[str, Any] = {
    "ECB": "ecb(des3_ede)", "CBC": "cbc(des3_ede)", "CFB": ("ecb(des3_ede)", "cbc(des3_ede)"),
    "OFB": "cbc(des3_ede)", "CTR": "ctr(des3_ede)",
}  # fmt: skip


def kernel_alg(
    alg_type: str,
    name: Optional[str] = None,
    *,
    only: Optional[str] = None,
    from_param: Optional[str] = None,
    kernel: Optional[Callable[[Any], Any]] = None,
) -> pytest.MarkDecorator:
    """The test needs the kernel to bind (alg_type, name); `only`: for test functions matching this fnmatch
    pattern; `from_param`/`kernel`: the name is kernel(value of that parameter): a name, a tuple of names, or None
    (nothing needed)."""
    kwargs: dict[str, Any] = {}
    if only is not None:
        kwargs["only"] = only
    if from_param is not None:
        kwargs["from_param"] = from_param
        kwargs["kernel"] = kernel or (lambda value: value)
    args = (alg_type,) if name is None else (alg_type, name)
    return pytest.mark.kernel_alg(*args, **kwargs)


def _field(value: Any, field: Optional[str]) -> Any:
    return value[field] if field is not None else value


def hashes(param: str, field: Optional[str] = None, *, only: Optional[str] = None) -> pytest.MarkDecorator:
    """The hash named (hashlib's name) by parameter `param` (or its `field`, for vector dicts)."""

    def kernel(value: Any) -> Optional[str]:
        row = BY_NAME.get(_field(value, field))
        return row.kernel if row is not None else None

    return kernel_alg("hash", from_param=param, kernel=kernel, only=only)


def hmacs(param: str, field: Optional[str] = None, *, only: Optional[str] = None) -> pytest.MarkDecorator:
    """HMAC over the hash named by parameter `param` (or its `field`)."""

    def kernel(value: Any) -> Optional[str]:
        row = BY_NAME.get(_field(value, field))
        return f"hmac({row.kernel})" if row is not None and row.kernel else None

    return kernel_alg("hash", from_param=param, kernel=kernel, only=only)


def modes(
    param: str, table: dict[str, str], field: str = "mode", *, only: Optional[str] = None
) -> pytest.MarkDecorator:
    """The skcipher a mode (the parameter's `field`, e.g. "CBC") is built on, per `table`."""
    return kernel_alg("skcipher", from_param=param, kernel=lambda v: table.get(v[field]), only=only)
