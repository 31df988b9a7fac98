"""OCI manifests as data: image indexes and the platforms they list (pure functions)."""

from __future__ import annotations

import json
from dataclasses import dataclass

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass(frozen=True)
class IndexEntry:
    platform: str        # "linux/arm64" or "linux/arm/v7"
    digest: str
    media_type: str
    size: int


def platform_dict(platform: str) -> dict[str, str]:
    os_, arch, *variant = platform.split("/")
    out = {"architecture": arch, "os": os_}
    if variant:
        out["variant"] = variant[0]
    return out


def platform_string(p: dict[str, str]) -> str:
    return "/".join(x for x in (p.get("os", ""), p.get("architecture", ""), p.get("variant", "")) if x)


def image_index(entries: list[IndexEntry]) -> bytes:
    """The OCI image index over per-platform manifests, in the order given, serialised canonically."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": e.media_type, "digest": e.digest, "size": e.size, "platform": platform_dict(e.platform)}
            for e in entries
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def index_platforms(media_type: str, body: bytes) -> set[str] | None:
    """The platforms an index lists, or None when the manifest is a single image, not an index."""
    if media_type not in INDEX_TYPES:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if "manifests" not in doc:
            return None
    else:
        doc = json.loads(body)
    return {platform_string(m.get("platform") or {}) for m in doc.get("manifests", [])}
