"""The fan-in of a multi-platform build: an OCI image index over the per-platform images, pushed
under the Build's tag through the registry API alone (no daemon, any worker can do it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from farm.errors import PermanentBuildError
from farm.jobs import MergeRequest
from farm.registry import open_client, parse_reference
from farm.registry.manifests import OCI_INDEX, IndexEntry, image_index
from farm.registry.platforms import image_platforms, mismatches


def push_index(req: MergeRequest, docker_config: Path, log: Callable[[str], None]) -> str:
    """GET each platform's manifest, PUT the index under the tag; returns the index digest.

    Idempotent: the same per-platform manifests give the same index bytes and digest.
    """
    entries: list[IndexEntry] = []
    client, target = open_client(req.image, docker_config, insecure=req.insecure)
    with client:
        for platform, image in req.platform_images.items():
            ref = parse_reference(image)
            got = client.get_manifest(ref.repository, ref.ref)
            if got is None:
                raise PermanentBuildError(f"{platform}: {image} is not in the registry")
            info, _ = got
            # Never an index entry whose image disagrees with the platform it is listed under.
            wrong = mismatches([platform], image_platforms(client, ref.repository, info.digest))
            if wrong:
                raise PermanentBuildError(f"{image}: {'; '.join(wrong)}, not {platform}; the index was not pushed")
            entries.append(IndexEntry(platform, info.digest, info.media_type, info.size))
            log(f"index: {platform} -> {info.digest}")
        digest = client.put_manifest(target.repository, target.ref, image_index(entries), OCI_INDEX)
    log(f"index: pushed {req.image}@{digest}")
    return digest
