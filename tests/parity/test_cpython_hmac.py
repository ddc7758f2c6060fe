"""CPython's own test.test_hmac, from the running interpreter's stdlib, with kcapi_hashlib installed in place of
hashlib and hmac (install(): the test module's `hmac` and `hashlib` are ours), in a fresh interpreter under
the strict policy. Zero failures; the set of skipped tests must equal SKIPS below, each with its reason.

One adaptation, not a skip: install() also swaps the attributes of OpenSSL's C module `_hashlib` that are
the very objects hashlib exported (`_hashlib.openssl_sha256 is hashlib.sha256` in CPython), because it
replaces every reference to a replaced constructor. test_hmac's vector tests end by checking OpenSSL's own
C HMAC, `_hashlib.hmac_new(key, msg, digestmod=_hashlib.openssl_<name>)`, which cannot take kcapi_hashlib's
constructor (nor can any other caller of `_hashlib.hmac_new` in an installed process). The runner puts
`_hashlib`'s own functions back after install(), so those lines test OpenSSL as CPython meant, while every
`hmac.*` call in the same tests (HMAC, new, digest, _init_hmac, _init_old, with names and with
`hashlib.<name>` constructors) runs through kcapi_hashlib's kernel HMAC.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

from kcapi_hashlib import hmac as kcapi_hmac
from tests.support import cpython_suite, requires

_EXPECTED = "6c845b47f52b3b47f6590c502db7825aad757bf4fadc8fa972f7cd2e76a5bdeb"  # test_hmac.ConstructorTestCase

_RUNNER = r"""
import json, sys, unittest
import _hashlib as openssl
import kcapi_hashlib
from kcapi_hashlib import _afalg
saved = dict(vars(openssl))
kcapi_hashlib.install()
restored = [name for name, value in vars(openssl).items() if saved.get(name) is not value]
for name in restored:
    setattr(openssl, name, saved[name])
from test import test_hmac
import hmac, hashlib
assert hmac.new is kcapi_hashlib.hmac.new and hmac.HMAC is kcapi_hashlib.hmac.HMAC
assert hmac.digest is kcapi_hashlib.hmac.digest and hashlib.sha256 is kcapi_hashlib.sha256
assert test_hmac.hmac is hmac and test_hmac.hashlib is hashlib
if hasattr(test_hmac, "PyModuleMixin"):  # 3.14+: the Python-level tests take a freshly imported stdlib hmac
    def set_up_class(cls):
        super(test_hmac.PyModuleMixin, cls).setUpClass()
        cls.hmac = kcapi_hashlib.hmac
    test_hmac.PyModuleMixin.setUpClass = classmethod(set_up_class)
SKIPS = json.loads(sys.argv[1])
suite = unittest.defaultTestLoader.loadTestsFromModule(test_hmac)
def mark(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            mark(t)
        else:
            # by method name, or by "Class.method" where the same name also tests OpenSSL's or HACL*'s own objects
            why = SKIPS.get(type(t).__name__ + "." + t._testMethodName) or SKIPS.get(t._testMethodName)
            if why:
                setattr(t, t._testMethodName, unittest.skip(why)(getattr(t, t._testMethodName)))
mark(suite)
before = _afalg.stats()
r = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=Watchdog).run(suite)
after = _afalg.stats()
def names(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from names(t)
        else:
            yield from (t._testMethodName, type(t).__name__ + "." + t._testMethodName)
print(json.dumps({
    "tests": sorted(names(unittest.defaultTestLoader.loadTestsFromModule(test_hmac))),
    "run": r.testsRun,
    "failures": [(t.id(), tb) for t, tb in r.failures + r.errors],
    "skipped": [(t.id(), why) for t, why in r.skipped],
    "restored": restored,
    "binds": after["bind"] - before["bind"],
    "kernel_ops": sum(after.values()) - sum(before.values()),
    "policy": kcapi_hashlib.get_policy(),
    "fallbacks": kcapi_hashlib.fallback_counts(),
}))
"""

# Tests skipped on purpose, by name, with the reason (only those whose test exists in this Python's test_hmac).
_OURS = {
    "test_with_fallback": "injects hashlib.sha256 under the name 'foo' into the stdlib hashlib's private "
    "__builtin_constructor_cache and expects hmac.digest(..., 'foo') to use it; kcapi_hashlib knows hash "
    "names, not that cache, and refuses a name it cannot map to a kernel hash (ValueError, like hashlib.new)",
}
if sys.version_info >= (3, 14):
    _OURS["PySanityTestCase.test_repr"] = (
        "expects repr() to start with '<hmac.HMAC object at': the class is kcapi_hashlib.hmac.HMAC, and its repr "
        "names the module it lives in (so do isinstance checks and tracebacks)"
    )

# Skips CPython's test_hmac makes by itself in this environment.
_CPYTHON = {}
if sys.version_info >= (3, 11) and importlib.util.find_spec("_sha256") is None:
    _CPYTHON["test_with_sha256_module"] = "need _sha256"  # 3.12+ calls the module _sha2

SKIPS = {**_OURS, **_CPYTHON}
# 3.14's bigmem tests (-M, 8 GiB: the VM has 2 GiB) skip themselves with this reason, whatever their names.
_BIGMEM = "not enough memory"


def _skip_key(test_id: str) -> str:
    cls_method = ".".join(test_id.split(".")[-2:])
    return cls_method if cls_method in SKIPS else cls_method.split(".")[1]


# the suite and this process use hmac(sha256): under af_alg_restrict it skips naming the refusal.
pytestmark = requires.hash_names("hmac:sha256")


def test_cpython_test_hmac_passes_with_kcapi_installed() -> None:
    # The suite runs in a child interpreter; this process checks one MAC through the kernel itself too.
    assert kcapi_hmac.new(b"key", b"hash this!", "sha256").hexdigest() == _EXPECTED
    env = dict(os.environ, KCAPI_HASHLIB_POLICY="strict")
    result = cpython_suite.run(_RUNNER, [json.dumps(_OURS)], timeout=600, env=env)
    assert result["policy"] == "strict" and result["fallbacks"] == {}
    assert result["failures"] == [], "\n".join(f"{t}\n{tb}" for t, tb in result["failures"])
    skipped = {_skip_key(t): why for t, why in result["skipped"]}
    bigmem = {name for name, why in skipped.items() if why.startswith(_BIGMEM)}
    assert {n: w for n, w in skipped.items() if n not in bigmem} == {
        name: why for name, why in SKIPS.items() if name in result["tests"]
    }
    assert result["run"] >= 25
    # Only OpenSSL's own functions were put back, and the kernel computed the MACs (a keyed tfm per key).
    # (none at all if install() stops swapping references inside _hashlib)
    assert all(n.startswith("openssl_") or n == "pbkdf2_hmac" for n in result["restored"])
    assert result["binds"] >= 20 and result["kernel_ops"] > 200
