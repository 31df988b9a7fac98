"""`farm publish` (GARDEN-SPEC §10): copy each Build's image from the deployment registry to its
public name, registry to registry, the way Garden runs `regctl image copy` on the CLI host.

    public_image_id(build, tag_template) -> str      which name the image is published under (pure)
    copy_image(src, src_ref, dst, dst_ref) -> Copied  the copy: an index and every manifest it lists,
                                                      blobs mounted within one registry, streamed otherwise

No Docker daemon: manifests are copied byte for byte (so every digest, the index's too, is the
same on both sides) and blobs never touch the disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from farm.errors import RegistryError, UsageError
from farm.garden.templates import TemplateError, resolve_string
from farm.plan import PlannedBuild
from farm.registry import RegistryClient, parse_reference
from farm.registry.manifests import INDEX_TYPES

CHUNK = 1 << 20


def tag_context(build: PlannedBuild) -> dict[str, Any]:
    """What `--tag` can read: `${build.name}`, `${build.version}` (with `v-`), `${build.hash}` (without)."""
    version = build.version.version_string
    return {"build": {"name": build.name, "version": version, "hash": version.removeprefix("v-")}}


def render_tag(template: str, build: PlannedBuild) -> str:
    """The `--tag` template resolved for one Build; a bad template is a usage error naming it."""
    try:
        tag = resolve_string(template, tag_context(build))
    except TemplateError as exc:
        raise UsageError(f"--tag {template!r}: {exc} (it can read build.name, build.version, build.hash)") from None
    tag = str(tag)
    if not tag or "/" in tag or ":" in tag or "@" in tag or len(tag) > 128:
        raise UsageError(f"--tag {template!r} gives {tag!r} for {build.name}, which is not an image tag")
    return tag


def _split_tag(image: str) -> tuple[str, str | None]:
    """`name[:tag]` without Garden's default `latest`: the tag is None when the id has none."""
    image = image.split("@", 1)[0]
    head, sep, last = image.rpartition(":")
    if sep and "/" not in last and head:
        return head, last
    return image, None


def public_image_id(build: PlannedBuild, tag_template: str | None = None) -> str:
    """`publishId`'s repository with `--tag`, else its own tag, else the version; without a
    publishId, `localId` (without its tag) or else the deployment image name, with `--tag` or the version."""
    tag = render_tag(tag_template, build) if tag_template else None
    version = build.version.version_string
    publish_id = build.action.spec.publish_id
    if publish_id:
        name, own = _split_tag(publish_id)
        return f"{name}:{tag or own or version}"
    local_id = build.action.spec.local_id
    name = _split_tag(local_id)[0] if local_id else build.outputs.deployment_image_name
    return f"{name}:{tag or version}"


@dataclass
class Copied:
    """What one copy did: the digest under the new tag and how each blob got there."""

    digest: str
    manifests: list[str] = field(default_factory=list)    # every manifest digest copied, children first
    mounted: int = 0
    streamed: int = 0
    present: int = 0
    bytes_streamed: int = 0


def _blobs(body: bytes) -> list[tuple[str, int]]:
    """The blobs a single image manifest names: its config then its layers."""
    doc = json.loads(body)
    out = [(doc["config"]["digest"], int(doc["config"].get("size", 0)))] if "config" in doc else []
    return out + [(layer["digest"], int(layer.get("size", 0))) for layer in doc.get("layers") or []]


def _copy_blob(src: RegistryClient, src_repo: str, dst: RegistryClient, dst_repo: str,
               digest: str, size: int, done: Copied) -> None:
    if dst.head_blob(dst_repo, digest) is not None:
        done.present += 1
        return
    session = None
    if src.host == dst.host:
        session = dst.mount_blob(dst_repo, digest, src_repo)
        if session is None:
            done.mounted += 1
            return
    with src.open_blob(src_repo, digest) as resp:
        length = int(resp.headers.get("Content-Length") or size)
        dst.upload_stream(dst_repo, digest, length, resp.iter_bytes(CHUNK), location=session)
    done.streamed += 1
    done.bytes_streamed += length


def _copy_manifest(src: RegistryClient, src_repo: str, dst: RegistryClient, dst_repo: str,
                   ref: str, dst_ref: str, done: Copied, depth: int = 0) -> str:
    got = src.get_manifest(src_repo, ref)
    if got is None:
        raise RegistryError(f"registry {src.host} has no manifest {src_repo}:{ref} (build it first: farm build)")
    info, body = got
    if depth > 2:
        raise RegistryError(f"{src.host}/{src_repo}@{info.digest}: indexes nested too deeply")
    doc = json.loads(body)
    if info.media_type in INDEX_TYPES or "manifests" in doc:
        for child in doc.get("manifests") or []:   # attestations and unknown/unknown entries too
            _copy_manifest(src, src_repo, dst, dst_repo, child["digest"], child["digest"], done, depth + 1)
    else:
        for digest, size in _blobs(body):
            _copy_blob(src, src_repo, dst, dst_repo, digest, size, done)
    media_type = info.media_type or doc.get("mediaType", "")
    digest = dst.put_manifest(dst_repo, dst_ref, body, media_type)
    if info.digest and digest and digest != info.digest:
        raise RegistryError(f"registry {dst.host} stored {dst_repo}:{dst_ref} as {digest}, not {info.digest}")
    done.manifests.append(info.digest or digest)
    return info.digest or digest


def copy_image(src: RegistryClient, source: str, dst: RegistryClient, target: str) -> Copied:
    """Copy `source` (an index or a single image) to `target`, keeping every digest."""
    s, t = parse_reference(source), parse_reference(target)
    done = Copied(digest="")
    done.digest = _copy_manifest(src, s.repository, dst, t.repository, s.ref, t.ref, done)
    return done
