"""Splitting an image reference into what the distribution API addresses: host, repository, tag/digest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    host: str            # "127.0.0.1:5050", "gcr.io", "docker.io"
    repository: str      # "demo/api"
    tag: str | None = None
    digest: str | None = None

    @property
    def ref(self) -> str:
        """The tag or digest to address a manifest by (digest wins)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(image: str) -> Reference:
    """Parse `host[:port]/path/name[:tag][@digest]`; a first part without a dot, colon or `localhost` is a Docker Hub path."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, remainder
    else:
        host, repository = "docker.io", rest if "/" in rest else f"library/{rest}"
    return Reference(host=host, repository=repository, tag=tag, digest=digest or None)
