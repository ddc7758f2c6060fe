"""The one loader of published test vectors (data files under tests/support/vectors/).

Two formats, chosen by extension:
- `.json`: {"source": "...", "vectors": [{field: value, ...}, ...]}. String values that start with "hex:"
  are decoded to bytes; other values are kept as they are.
- `.rsp`: NIST CAVP response files. `[SECTION]` headers and `key = value` lines; a blank line ends a vector.
  Values that are hex (all fields except Len/Count-like integers) are decoded to bytes; each vector gets the
  current section in "section".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "vectors"
_INT_FIELDS = {"count", "len", "klen", "mlen", "tlen", "plen", "alen", "nlen", "ivlen", "ptlen", "aadlen", "taglen"}


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _load_rsp(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    section = ""
    current: dict[str, Any] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            if current:
                out.append(current)
                current = {}
            continue
        m = re.fullmatch(r"\[(.*)\]", line)
        if m:
            if current:
                out.append(current)
                current = {}
            section = m.group(1)
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if not current:
            current["section"] = section
        if key.lower() in _INT_FIELDS:
            current[key] = int(value)
        elif value == "" or (re.fullmatch(r"[0-9a-fA-F]+", value) and len(value) % 2 == 0):
            current[key] = bytes.fromhex(value)
        else:
            current[key] = value
    if current:
        out.append(current)
    return out


def load(name: str) -> list[dict[str, Any]]:
    """Vectors from tests/support/vectors/<name> (.json or .rsp); fails loudly if the file is missing."""
    path = HERE / name
    if path.suffix == ".rsp":
        return _load_rsp(path)
    data = json.loads(path.read_text())
    vectors = data["vectors"] if isinstance(data, dict) else data
    if not vectors:
        raise ValueError(f"{path} holds no vectors")
    return [_decode(v) for v in vectors]


def ids(vectors: list[dict[str, Any]], field: str = "name") -> list[str]:
    return [str(v.get(field, i)) for i, v in enumerate(vectors)]
