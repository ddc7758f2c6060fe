"""AEAD messages larger than one kernel AEAD operation may carry, in a process without CAP_NET_ADMIN (so the
socket buffers cannot be forced past net.core.wmem_max): where the kernel has a streaming MAC (ghash,
poly1305: 6.1, 6.12) the kernel computes everything; where it has none (7.x), the tag follows the policy:
strict raises UnsupportedAlgorithm with the kernel's EMSGSIZE, fallback computes it with PyCryptodome."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kcapi_hashlib import _afalg
from tests.support import requires

# The child encrypts with both AEADs (and the kernel MACs where the kernel streams them).
pytestmark = [*requires.cipher_code("AES.MODE_GCM ChaCha20_Poly1305")]

_CHILD = r"""
import json, os, sys, warnings
import kcapi_hashlib
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305
from Crypto.Cipher import AES as PA, ChaCha20_Poly1305 as PC
kcapi_hashlib.set_policy(sys.argv[1])
warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
key, nonce, aad, pt = b"k" * 32, b"n" * 12, b"header", os.urandom(int(sys.argv[2]))
out = {}
for name, ours, ref in (
    ("gcm", lambda: AES.new(key, AES.MODE_GCM, nonce=nonce), lambda: PA.new(key, PA.MODE_GCM, nonce=nonce)),
    ("chacha", lambda: ChaCha20_Poly1305.new(key=key, nonce=nonce), lambda: PC.new(key=key, nonce=nonce)),
):
    c, r = ours(), ref()
    c.update(aad); r.update(aad)
    try:
        got = c.encrypt_and_digest(pt)
    except ValueError as e:
        out[name] = ["raised", type(e).__name__, str(e), str(getattr(e, "reason", ""))]
        continue
    want = r.encrypt_and_digest(pt)
    d = ours(); d.update(aad)
    plain = d.decrypt_and_verify(*got)
    out[name] = ["ok", got == want, plain == pt]
out["fallbacks"] = kcapi_hashlib.fallback_counts()
print(json.dumps(out))
"""


def _run(policy: str) -> dict:  # type: ignore[type-arg]
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop CAP_NET_ADMIN"
    # Bigger than any socket buffer an unprivileged process can set: SO_SNDBUF is capped at 2 * wmem_max
    # (212992 on 6.1, 4 MiB on 7.2).
    with open("/proc/sys/net/core/wmem_max") as f:
        size = max(1 << 20, 2 * int(f.read()) + (1 << 20))
    drop = ["--bounding-set=-net_admin", "--inh-caps=-net_admin"]
    cmd = [setpriv, *drop, sys.executable, "-c", _CHILD, policy, str(size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("policy", ["strict", "fallback"])
def test_large_aead_without_cap_net_admin(policy: str) -> None:
    out = _run(policy)
    for name, mac in (("gcm", "ghash"), ("chacha", "poly1305")):
        if _afalg.probe("hash", mac) is None:
            assert out[name] == ["ok", True, True]  # streamed: kernel keystream + kernel MAC
            continue
        if policy == "strict":
            kind, exc_type, text, reason = out[name]
            assert kind == "raised" and exc_type == "UnsupportedAlgorithm", out[name]
            assert text.startswith("unsupported cipher type ") and "message of" in text
            assert "EMSGSIZE" in reason or "ENOMEM" in reason or "does not fit the socket buffer" in reason
        else:
            assert out[name] == ["ok", True, True]
            assert any("message of" in k for k in out["fallbacks"]), out["fallbacks"]
    if policy == "strict":
        assert out["fallbacks"] == {}
