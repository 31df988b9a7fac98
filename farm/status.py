"""The registry status check: what of a planned Build the registry already has (Garden's getStatus)."""

from __future__ import annotations

from dataclasses import dataclass, field

from farm.plan import PlannedBuild
from farm.registry import Reference, RegistryClient, open_client, parse_reference
from farm.registry.manifests import INDEX_TYPES, index_platforms
from farm.registry.platforms import image_platforms, mismatches
from farm.settings import Settings


@dataclass(frozen=True)
class Status:
    digest: str | None                                       # the tag's digest, when complete for every platform
    platforms: dict[str, str] = field(default_factory=dict)  # per-platform images already pushed


class Clients:
    """One registry client per (host, insecure) for a whole run: its connection and what the registry
    asked for (the auth challenge) serve every Build of the project. Close it at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, bool], RegistryClient] = {}

    def for_image(self, image: str, insecure: bool) -> tuple[RegistryClient, Reference]:
        ref = parse_reference(image)
        key = (ref.host, insecure)
        if key not in self._clients:
            self._clients[key] = open_client(image, self.settings.docker_config, insecure=insecure,
                                             timeout=self.settings.registry_timeout)[0]
        return self._clients[key], ref

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_status(build: PlannedBuild, settings: Settings, clients: Clients | None = None) -> Status:
    """The tag (an image, or an index listing every requested platform) means done; otherwise which
    per-platform images are already there. `clients`: shared by the Builds of a run (else one of its own)."""
    if clients is None:
        with Clients(settings) as own:
            return check_status(build, settings, own)
    client, ref = clients.for_image(build.outputs.deployment_image_id, build.insecure)
    info = client.head_manifest(ref.repository, ref.ref)
    if info is not None:
        listed = None
        if info.media_type in INDEX_TYPES:
            got = client.get_manifest(ref.repository, ref.ref)
            listed = index_platforms(got[0].media_type, got[1]) if got else set()
        if (listed is None and len(build.platforms) == 1) or (listed is not None and set(build.platforms) <= listed):
            return Status(digest=info.digest)
    if not build.fan_out:
        return Status(digest=None)
    done = {}
    for platform, image in build.platform_images.items():
        pref = parse_reference(image)
        pinfo = client.head_manifest(pref.repository, pref.ref)
        # A per-platform tag counts only when its image is for that platform (an older farm
        # could push one platform's image under another's tag): a wrong one is built again.
        if pinfo is not None and not mismatches([platform], image_platforms(client, pref.repository, pinfo.digest)):
            done[platform] = pinfo.digest
    return Status(digest=None, platforms=done)
