"""Is a pushed image what its platform says? Each image's config names its `os`, `architecture` and
`variant`; a per-platform tag or an index entry whose image disagrees is a wrong image, refused
before it is recorded or merged (a shared engine's cache can hand one platform another's layers)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from farm.registry.client import RegistryClient
from farm.registry.manifests import INDEX_TYPES, config_platform, manifest_config, same_platform


@dataclass(frozen=True)
class Found:
    listed: str | None      # the platform an index entry claims (None: a single image)
    actual: str             # what the image's config says
    digest: str


def image_platforms(client: RegistryClient, repository: str, ref: str) -> list[Found]:
    """The platform of the image at `ref`, or of every image an index at `ref` lists."""
    got = client.get_manifest(repository, ref)
    if got is None:
        return []
    info, body = got
    if info.media_type in INDEX_TYPES or b'"manifests"' in body:
        out = []
        for entry in json.loads(body).get("manifests", []):
            p = entry.get("platform") or {}
            listed = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            out.append(Found(listed, _single(client, repository, entry["digest"]), entry["digest"]))
        return out
    return [Found(None, _config(client, repository, body), info.digest)]


def _single(client: RegistryClient, repository: str, digest: str) -> str:
    got = client.get_manifest(repository, digest)
    return _config(client, repository, got[1]) if got else "missing"


def _config(client: RegistryClient, repository: str, body: bytes) -> str:
    config = manifest_config(body)
    return config_platform(client.get_blob(repository, config)) if config else "unknown"


def mismatches(wanted: list[str], found: list[Found]) -> list[str]:
    """One line per image that is not what it should be: `linux/arm64: the image is linux/amd64`."""
    if not found:
        return [f"{', '.join(wanted)}: no image was pushed"]
    out = []
    if len(found) == 1 and found[0].listed is None:
        if len(wanted) != 1 or not same_platform(wanted[0], found[0].actual):
            out.append(f"{', '.join(wanted)}: the pushed image {found[0].digest} is {found[0].actual}")
        return out
    for f in found:
        if f.listed is None or not same_platform(f.listed, f.actual):
            out.append(f"{f.listed}: the index lists {f.digest}, an image for {f.actual}")
    listed = {f.listed for f in found if f.listed}
    missing = [w for w in wanted if not any(same_platform(w, x) for x in listed)]
    if missing:
        out.append(f"{', '.join(missing)}: not in the pushed index")
    return out
