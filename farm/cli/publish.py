"""`farm publish NAMES… [--tag TEMPLATE]`: copy built images to their public names (GARDEN-SPEC §10)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from farm.cli._common import env_option, err, json_option, project_option


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or name.startswith("127.")


@click.command()
@click.argument("names", nargs=-1)
@project_option
@env_option
@click.option("--tag", "tag_template", default=None, metavar="TEMPLATE",
              help="Tag to publish under, a template: ${build.name}, ${build.version} (v-…), ${build.hash}.")
@click.option("--insecure", "insecure_hosts", multiple=True, metavar="HOST",
              help="This destination registry speaks plain HTTP (repeatable; loopback hosts always do).")
@json_option
def publish(names: tuple[str, ...], project_dir: Path, env_name: str | None, tag_template: str | None,
            insecure_hosts: tuple[str, ...], as_json: bool) -> None:
    """Copy the Builds' images (all, or NAMES) from the deployment registry to their publishId, registry
    to registry: the index and every platform manifest, digests unchanged, no Docker daemon."""
    from farm import plan as planning
    from farm.errors import FarmError
    from farm.publish import copy_image, public_image_id
    from farm.registry import client_for, parse_reference
    from farm.settings import get_settings

    settings = get_settings()
    project, versions = planning.load(project_dir, env_name)
    planning.require_buildable(project)
    planned = planning.plan(project, versions, names)
    wanted = set(names) or {b.name for b in planned.builds}
    results: list[dict[str, Any]] = []
    failed = False
    for build in (b for b in planned.builds if b.name in wanted):
        if not build.action.allow_publish:
            err(f"{build.name}: allowPublish is false, not published")
            results.append({"name": build.name, "status": "skipped"})
            continue
        source = build.outputs.deployment_image_id
        target = public_image_id(build, tag_template)
        src_ref, dst_ref = parse_reference(source), parse_reference(target)
        insecure = build.insecure if dst_ref.host == src_ref.host else \
            dst_ref.host in insecure_hosts or _loopback(dst_ref.host)
        try:
            with client_for(src_ref.host, settings.docker_config, insecure=build.insecure,
                            timeout=settings.registry_timeout) as src, \
                    client_for(dst_ref.host, settings.docker_config, insecure=insecure,
                               timeout=settings.registry_timeout) as dst:
                done = copy_image(src, source, dst, target)
        except FarmError as exc:
            err(f"{build.name}: FAILED: {exc}")
            results.append({"name": build.name, "status": "failed", "source": source, "target": target,
                            "error": str(exc)})
            failed = True
            continue
        err(f"{build.name}: {source} -> {target}: {len(done.manifests)} manifest(s); blobs: {done.mounted} "
            f"mounted, {done.streamed} streamed ({done.bytes_streamed} bytes), {done.present} already there")
        results.append({"name": build.name, "status": "published", "source": source, "target": target,
                        "digest": done.digest, "manifests": done.manifests, "mounted": done.mounted,
                        "streamed": done.streamed, "present": done.present,
                        "bytes_streamed": done.bytes_streamed})
        if not as_json:
            click.echo(f"{target}@{done.digest}")
    if as_json:
        click.echo(json.dumps({"published": results}, indent=2))
    if failed:
        sys.exit(1)


COMMANDS = [publish]
