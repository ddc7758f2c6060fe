"""af_alg_restrict (Linux 7.3+): the process facts, the reading of a refusal, and the test suite's declared
requirements. Meaningful at every level: where the sysctl is absent (UML 6.1/6.12/7.2) or 0 the kernel refuses
nothing for restriction's sake and these tests check that nothing claims it did; at 1 and 2 (7.3 under qemu)
they check what the kernel really answered. The level-specific suite is tests/environments/restricted/.

The sentence cases that this kernel cannot produce (the other levels, the other privilege) are checked through
restrict.reading(), the same function classify() calls with this kernel's facts."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

import conftest
import kcapi_hashlib
import kcapi_hashlib._hashes  # binds the submodule: the package imports private modules lazily
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import restrict
from kcapi_hashlib.cli.listing import algorithm_report
from tests.support import requires

ROOT = restrict.Process(0, 0, (1 << 41) - 1, True)
UNPRIVILEGED = restrict.Process(4242, 4242, 0, True)
NET_ADMIN = restrict.Process(4242, 4242, 1 << restrict.CAP_NET_ADMIN, True)
USERNS_ROOT = restrict.Process(0, 0, (1 << 41) - 1, False)  # root of a container's user namespace


def _has(name: str) -> str:
    return "/proc/crypto lists it"


def _has_not(name: str) -> None:
    return None


def _status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
    raise AssertionError(f"no {name} in /proc/self/status")


# --- the process facts ------------------------------------------------------------------------------------


def test_process_facts_are_this_process() -> None:
    proc = restrict.process()
    assert (proc.uid, proc.euid) == (os.getuid(), os.geteuid())
    assert proc.cap_eff == int(_status_field("CapEff"), 16)
    assert proc.net_admin == bool(proc.cap_eff >> 12 & 1) and proc.sys_admin == bool(proc.cap_eff >> 21 & 1)
    with open("/proc/self/uid_map") as f:
        assert proc.init_userns == (f.read().split() == ["0", "0", "4294967295"])


def test_level_is_the_sysctl() -> None:
    try:
        with open(restrict.RESTRICT_PATH) as f:
            want: int | None = int(f.read())
    except FileNotFoundError:
        want = None
    assert restrict.level() == want


_CHILD = (
    "import json; from kcapi_hashlib._afalg import restrict; p = restrict.process(); "
    "print(json.dumps([p.euid, p.net_admin, p.sys_admin, p.privileged, p.describe()]))"
)


@pytest.mark.parametrize(
    ("caps", "want"),
    [
        ("-all", [4242, False, False, False, "uid 4242 without CAP_NET_ADMIN"]),
        ("-all,+net_admin", [4242, True, False, True, "uid 4242 with CAP_NET_ADMIN"]),
    ],
)
def test_an_unprivileged_child_is_seen_as_such(caps: str, want: list[object]) -> None:
    """setpriv to a fresh uid, with no capability or with only CAP_NET_ADMIN (ambient): what the kernel's
    af_alg_capable() would see is what restrict.process() says."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to start a process as another uid (this run is uid {os.geteuid()})")
    argv = ["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", f"--inh-caps={caps}"]
    if "+" in caps:
        argv.append(f"--ambient-caps={caps}")
    starts = subprocess.run([*argv, sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=120)
    if starts.returncode != 0:
        # The interpreter itself cannot start as uid 4242: its libraries lie under a directory that uid cannot
        # search (/root, mode 0700: pyenv's shared libpython in CI, sid's Pythons and their glibc in the cache).
        # The restricted suite (tox -e restrict73) runs whole as uid 4242 under `vm --user`, which opens such
        # directories for it inside the VM.
        pytest.skip(f"{sys.executable} does not start as uid 4242: {starts.stderr.strip()[:300]}")
    result = subprocess.run(
        [*argv, sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, cwd=os.getcwd()
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == want


def test_user_namespace_root_is_not_privileged() -> None:
    # af_alg_capable checks the initial user namespace: a container's root (full CapEff inside) is not.
    assert ROOT.privileged and NET_ADMIN.privileged and not UNPRIVILEGED.privileged
    assert not USERNS_ROOT.privileged
    assert "only inside a user namespace" in USERNS_ROOT.describe()


# --- the reading of a refusal, every case ------------------------------------------------------------------


def test_nothing_is_blamed_on_the_restriction_at_level_0_or_absent() -> None:
    for lvl in (0, -1):
        assert restrict.reading(errno.ENOENT, "bind", "aead", "gcm(aes)", lvl, UNPRIVILEGED, _has) is None
    if not restrict.level():
        assert restrict.classify(errno.ENOENT, "bind", "aead", "gcm(aes)") is None
        assert restrict.classify(errno.EAFNOSUPPORT, "socket", "any", "*") is None
        assert "af_alg_restrict is" not in _afalg.explain(errno.ENOENT, "bind", "hash", "sm3")


def test_level_2_socket_is_disabled_for_everyone() -> None:
    for proc in (ROOT, UNPRIVILEGED):
        r = restrict.reading(errno.EAFNOSUPPORT, "socket", "any", "*", 2, proc, _has)
        assert r is not None and r.cause == restrict.DISABLED and r.level == 2
        for part in ("AF_ALG is disabled", "af_alg_restrict is 2", "EAFNOSUPPORT", "root included",
                     "no one may bind any algorithm at this level", "sysctl crypto.af_alg_restrict=0"):  # fmt: skip
            assert part in r.sentence, (part, r.sentence)
    r = restrict.reading(errno.ENOENT, "bind", "hash", "sha1", 2, ROOT, _has)  # a socket made before level 2
    assert r is not None and r.cause == restrict.RESTRICTED and "no one may bind any algorithm" in r.sentence


def test_level_1_unprivileged_needs_cap_net_admin_for_the_privileged_list() -> None:
    r = restrict.reading(errno.ENOENT, "bind", "hash", "sha256", 1, UNPRIVILEGED, _has)
    assert r is not None and r.cause == restrict.RESTRICTED
    assert "af_alg_restrict=1 refuses hash algorithm 'sha256' for this process (uid 4242 without" in r.sentence
    assert "needs CAP_NET_ADMIN (this process lacks it" in r.sentence
    assert "set /proc/sys/crypto/af_alg_restrict to 0" in r.sentence


def test_level_1_no_one_may_bind_what_no_list_has() -> None:
    for proc in (UNPRIVILEGED, NET_ADMIN, ROOT):
        r = restrict.reading(errno.ENOENT, "bind", "aead", "gcm(aes)", 1, proc, _has)
        assert r is not None and r.cause == restrict.RESTRICTED
        assert "no one may bind this algorithm at this level" in r.sentence, r.sentence
        assert "set /proc/sys/crypto/af_alg_restrict to 0" in r.sentence
    r = restrict.reading(errno.ENOENT, "bind", "aead", "gcm(aes)", 1, NET_ADMIN, _has)
    assert r is not None and "(this process holds CAP_NET_ADMIN)" in r.sentence


def test_level_1_without_evidence_says_it_cannot_tell() -> None:
    r = restrict.reading(errno.ENOENT, "bind", "hash", "sm3", 1, UNPRIVILEGED, _has_not)
    assert r is not None and r.cause == restrict.MAYBE_RESTRICTED
    assert "cannot tell which" in r.sentence and "not built into this kernel" in r.sentence


def test_level_1_allowed_by_the_list_but_enoent_is_not_blamed_on_it() -> None:
    # sha256 is on 7.3's privileged list: for a privileged process an ENOENT is a module's doing, or the list
    # changed; the sentence must not claim the restriction.
    r = restrict.reading(errno.ENOENT, "bind", "hash", "sha256", 1, NET_ADMIN, _has)
    assert r is not None and r.cause == restrict.MAYBE_RESTRICTED and "cannot tell which" in r.sentence


def test_other_errnos_are_not_the_restriction() -> None:
    for err, step in ((errno.EPERM, "socket"), (errno.EINVAL, "bind"), (errno.EMFILE, "socket"),
                      (errno.ENOENT, "accept")):  # fmt: skip
        assert restrict.reading(err, step, "hash", "sha256", 1, UNPRIVILEGED, _has) is None


def test_components_of_a_template_name() -> None:
    assert restrict._components("rfc7539(chacha20,poly1305)") == ["rfc7539", "chacha20", "poly1305"]
    assert restrict._components("hmac(sha256)") == ["hmac", "sha256"]


# --- what this kernel answered ---------------------------------------------------------------------------


def test_every_refusal_is_read_consistently_with_the_level() -> None:
    lvl = restrict.level()
    report = algorithm_report()
    for row in report:
        cause = row["cause"] or ""
        if not lvl:
            assert not cause.startswith("af_alg"), row
        if cause == restrict.RESTRICTED:
            assert row["errno"] == "ENOENT" and f"af_alg_restrict={lvl}" in row["reason"], row
        if cause == restrict.DISABLED:
            assert lvl == 2 and row["errno"] == "EAFNOSUPPORT", row
    if lvl == 2:
        assert all(r["cause"] == restrict.DISABLED for r in report if r["kernel"])
    if lvl == 1:  # the kernel lets everyone bind something (sha1 as posted), and the strict error says why not
        assert any(r["available"] for r in report), "af_alg_restrict=1 served nothing to this process"


def test_strict_error_carries_the_restriction() -> None:
    refused = [r for r in algorithm_report(["hash"]) if r["cause"] == restrict.RESTRICTED]
    if restrict.level() != 1:  # absent/0: nothing is; 2: socket() itself fails (DISABLED), bind never runs
        assert not refused
        return
    # at 1 the kernel has hashes no allowlist has (sha3-* as posted); the reading needs the kernel to show it
    assert refused, "af_alg_restrict=1 refused no hash this kernel has"
    name = refused[0]["name"]
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.new(name)
    exc = info.value
    assert str(exc) == f"unsupported hash type {name}"  # hashlib's message; the reason is a note
    assert isinstance(exc, kcapi_hashlib.UnsupportedAlgorithm) and exc.errno == errno.ENOENT
    assert isinstance(exc.restriction, restrict.Refusal) and f"af_alg_restrict={restrict.level()}" in str(exc.reason)


# --- declared requirements (conftest.py) ----------------------------------------------------------------


@requires.hashes("name")
@pytest.mark.parametrize("name", ["sha1", "sha3_256", "sha512_256"])
def test_declared_requirement_is_probed_before_the_test(name: str, request: pytest.FixtureRequest) -> None:
    """The declaration names the kernel hash; the test only runs where the kernel serves it or refuses it for a
    reason other than af_alg_restrict (then the test sees that refusal: nothing is turned into a skip)."""
    kernel = kcapi_hashlib._hashes.ALGORITHMS[name].kernel
    assert conftest.declared_algorithms(request.node) == ([("hash", kernel)] if kernel else [])
    if kernel is not None:
        why = _afalg.probe("hash", kernel)
        assert why is None or why.restriction is None, f"should have been skipped: {why}"
