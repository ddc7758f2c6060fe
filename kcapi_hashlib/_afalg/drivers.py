"""Which of an algorithm's implementations ("drivers") AF_ALG binds in this process: /proc/crypto's list
(procfs, which only reads) with a bind by each driver name (core). Above both, so that neither imports the
other: used by `kcapi-hashlib list` and the hash constructors' driver= choice."""

from __future__ import annotations

import errno
from typing import Optional

from . import core, procfs


def survey(alg_type: str, name: str) -> list[tuple[procfs.Implementation, Optional[OSError]]]:
    """Every implementation of (alg_type, cra_name), highest priority first, each with None where AF_ALG
    binds it by driver name in this process, else the refusal (internal ones are not tried). One bind by
    cra_name first: that loads its modules (crypto_alg_mod_lookup asks modprobe for "crypto-<name>"), so
    /proc/crypto lists them."""
    core.probe(alg_type, name)
    found: list[tuple[procfs.Implementation, Optional[OSError]]] = []
    for impl in procfs.of(alg_type, name):
        why: Optional[OSError] = None
        if impl.internal:
            why = core.AlgUnavailable(errno.ENOENT, "bind", alg_type, impl.driver)
        else:
            why = core.probe(alg_type, impl.driver)
        found.append((impl, why))
    return found
