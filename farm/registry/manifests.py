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


# Platforms that name the same thing: Docker normalises arm64 to arm64/v8 and arm to arm/v7.
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


def normal_platform(platform: str) -> str:
    """`linux/arm64/v8` -> `linux/arm64`; `linux/arm` -> `linux/arm/v7`: one spelling per platform."""
    os_, arch, *variant = (platform.strip().lower().split("/") + [""])[:3]
    arch = {"aarch64": "arm64", "x86_64": "amd64"}.get(arch, arch)
    v = variant[0] if variant else ""
    default = _DEFAULT_VARIANT.get(arch, "")
    if arch == "arm":
        v = v or default
    elif v == default:
        v = ""
    return "/".join(x for x in (os_, arch, v) if x)


def same_platform(a: str, b: str) -> bool:
    return normal_platform(a) == normal_platform(b)


def config_platform(body: bytes) -> str:
    """The platform an image config says it is for (`os`, `architecture`, `variant`)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "unknown"
    if not isinstance(doc, dict):
        return "unknown"
    return platform_string({k: str(doc[k]) for k in ("os", "architecture", "variant") if doc.get(k)}) or "unknown"


def manifest_config(body: bytes) -> str | None:
    """The config digest of an image manifest (None for an index or garbage)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    config = doc.get("config") if isinstance(doc, dict) else None
    return str(config["digest"]) if isinstance(config, dict) and config.get("digest") else None
