"""Manifest deltas: a context stored as the difference from one the store already holds.

A one-file change in a 10,000-file context used to re-send the whole manifest (~1.1 MB, most of the
bytes of a sync). A delta names its base context and the entries put and removed; the reader rebuilds
the canonical manifest and checks it against the digest that names the context, so a delta can only
ever produce the manifest its key promises. Chains are short (`MAX_DEPTH`): the producer sends a
full manifest again when its base is that deep.

    {"base": "<hex>", "delta": 1, "depth": 3, "put": [[path, mode, size, sha256, target], ...], "remove": [path, ...]}
"""

from __future__ import annotations

import json
from typing import Any

from farm.errors import ContextError

from .manifest import ContextManifest, _parse_entry
from .safety import is_blob_hex

MAX_DEPTH = 8
DELTA_FORMAT = 1
Rows = list[list[Any]]


def rows(manifest: ContextManifest) -> Rows:
    return [[e.path, e.mode, e.size, e.sha256, e.target] for e in manifest.entries]


def make_delta(base_hex: str, base_rows: Rows, depth: int, new: ContextManifest) -> bytes:
    """The delta from a base (its rows, as its canonical JSON lists them) to `new`."""
    before = {r[0]: tuple(r) for r in base_rows}
    put = [list(e) for e in new.entries if before.get(e.path) != e]  # an entry is a tuple: compared as one
    names = {e.path for e in new.entries}
    remove = [p for p in before if p not in names]
    doc = {"base": base_hex, "delta": DELTA_FORMAT, "depth": depth, "put": put, "remove": remove}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def parse_delta(data: bytes) -> tuple[str, int, Rows, list[str]] | None:
    """(base hex, depth, put rows, removed paths) of a delta; None when `data` is not one."""
    if not data.startswith(b'{"base":'):  # a full manifest starts {"entries":
        return None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("delta") != DELTA_FORMAT:
        return None
    base, depth, put, remove = doc.get("base"), doc.get("depth"), doc.get("put"), doc.get("remove")
    if not is_blob_hex(base) or type(depth) is not int or not isinstance(put, list) or not isinstance(remove, list) \
            or not all(isinstance(p, str) for p in remove):
        raise ContextError("context manifest delta is malformed")
    return str(base), depth, put, [str(p) for p in remove]


def apply_delta(base: ContextManifest, put: Rows, remove: list[str]) -> ContextManifest:
    """The manifest `base` becomes with these entries put (added or replaced) and removed."""
    by_path = {e.path: e for e in base.entries}
    for p in remove:
        by_path.pop(p, None)
    for i, item in enumerate(put):
        e = _parse_entry(i, item)
        by_path[e.path] = e
    return ContextManifest(entries=tuple(by_path[p] for p in sorted(by_path)))
