"""Descriptor exhaustion for real: transient errors are never cached.

In a fresh child interpreter (so the call is the algorithm's first use in the process), RLIMIT_NOFILE is
lowered and the descriptor table filled with dup() until EMFILE, leaving `free` slots (0: socket() fails; 1:
socket() works and accept() fails; 2: one more step gets through). Then one operation runs:
sha256(b'abc').digest(), a streaming sha256, hmac.new(key, msg, 'sha256').digest(), AES-GCM
encrypt_and_digest, Random.get_random_bytes(48). The descriptors are given back and the same operation runs
twice more.

The behaviour required:
- during exhaustion, strict: an OSError whose errno is EMFILE (never ValueError 'unsupported hash type': the
  kernel has the algorithm, the process is out of descriptors), or the right answer computed by the kernel
  if the free slots sufficed;
- during exhaustion, fallback: the same, or the right answer computed in userspace and counted in
  fallback_counts();
- afterwards, both policies: the right answer from the kernel (kernel operations counted) with no fallback
  counted: the failure was not remembered;
- no descriptor left behind once the library's caches are cleared.
"""

from __future__ import annotations

import errno
import json
from typing import Any

import pytest

import kcapi_hashlib
from tests.support import requires, stress

CASES = [
    ("hash", "strict", 0), ("hash", "strict", 1), ("hash", "strict", 2), ("hash-stream", "strict", 1),
    ("hash", "fallback", 0), ("hash", "fallback", 1),
    ("hmac", "strict", 0), ("hmac", "strict", 1), ("hmac", "fallback", 0),
    ("gcm", "strict", 0), ("gcm", "strict", 1), ("gcm", "fallback", 0),
    ("random", "strict", 0), ("random", "fallback", 0),
]  # fmt: skip
# What each primitive binds (stress.exhaust_workload); every test first reaches the kernel with sha256.
_NEEDS: dict[str, dict[str, tuple[str, ...]]] = {
    "hash": {"hash": ("sha256",)},
    "hash-stream": {"hash": ("sha256",)},
    "hmac": {"hash": ("sha256", "hmac(sha256)")},
    "gcm": {"hash": ("sha256",), "aead": ("gcm(aes)",), "skcipher": ("ctr(aes)",)},
    "random": {"hash": ("sha256",), "rng": ("stdrng",)},
}
pytestmark = [
    requires.kernel_alg(t, from_param="primitive", kernel=lambda p, t=t: _NEEDS[p].get(t))
    for t in ("hash", "aead", "skcipher", "rng")
]


def _kernel_answer(a: dict[str, Any]) -> bool:
    return bool(a["outcome"] == "returned" and a["correct"] and a["kernel_ops_delta"] > 0 and a["fallback_delta"] == 0)


def _emfile(a: dict[str, Any]) -> bool:
    return (
        a["outcome"] == "raised"
        and "OSError" in a["mro"]
        and "ValueError" not in a["mro"]
        and a["errno"] in (errno.EMFILE, errno.ENFILE)
    )


@pytest.mark.parametrize(("primitive", "policy", "free"), CASES)
def test_exhaustion_is_transient(primitive: str, policy: str, free: int) -> None:
    assert kcapi_hashlib.sha256(b"abc").digest()  # this session reaches the kernel (conftest's check)
    run = stress.run_child(["exhaust", "--primitive", primitive, "--policy", policy, "--free", str(free)], 60)
    if run.hung:
        pytest.fail(f"deadlock/hang under descriptor exhaustion\n{run.describe()}")
    assert run.result is not None, f"the child died without a result\n{run.describe()}"
    r = run.result
    report = f"{primitive}, policy={policy}, free slots={free}:\n" + "\n".join(
        f"  {k}: {json.dumps(r[k])}" for k in ("during", "after", "again", "fds_start", "fds_end", "fd_kinds_end")
    )
    print(report)
    problems = []
    during = r["during"]
    if policy == "strict":
        if not (_emfile(during) or _kernel_answer(during)):
            problems.append("during exhaustion: neither an OSError with errno EMFILE nor the kernel's right answer")
    else:
        counted = during["outcome"] == "returned" and during["correct"] and during["fallback_delta"] >= 1
        if not (_emfile(during) or _kernel_answer(during) or counted):
            problems.append(
                "during exhaustion: neither EMFILE, nor the kernel's answer, nor a right answer counted as fallback"
            )
    for phase in ("after", "again"):
        if not _kernel_answer(r[phase]):
            problems.append(f"{phase} the descriptors were freed: not the kernel's right answer (failure cached?)")
    if r["fds_end"] > r["fds_start"]:
        problems.append(f"descriptors: {r['fds_start']} before, {r['fds_end']} after clearing the caches")
    assert not problems, "; ".join(problems) + "\n" + report
