"""`farm gc`: delete stale branch cache tags and context-store objects no live job needs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from farm.cli._common import env_option, err, project_option
from farm.cli.build import size
from farm.errors import UsageError


def _duration(text: str, option: str) -> float:
    from farm.history import parse_since

    try:
        return parse_since(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a duration such as 36h, 14d or 2w") from None


def _storages(given: tuple[str, ...]) -> dict[str, Path]:
    """HOST=DIR pairs from --registry-storage and $FARM_REGISTRY_STORAGE; the local stack's registry
    (FARM_REGISTRY, storage under FARM_STATE_DIR) is known without either."""
    out: dict[str, Path] = {}
    stack = os.environ.get("FARM_REGISTRY")
    data = Path(os.environ.get("FARM_STATE_DIR", ".farm")) / "registry" / "data"
    if stack and data.is_dir():
        out[stack] = data
    env = [p for p in os.environ.get("FARM_REGISTRY_STORAGE", "").split(",") if p.strip()]
    for item in [*env, *given]:
        host, sep, path = item.partition("=")
        if not sep or not host.strip() or not path.strip():
            raise UsageError(f"--registry-storage {item!r}: expected HOST=DIR")
        out[host.strip()] = Path(path.strip())
    return out


@click.command()
@project_option
@env_option
@click.option("--older-than", default="14d", show_default=True,
              help="Delete branch cache tags not written for this long (30m, 36h, 14d, 2w).")
@click.option("--keep-branch", "keep_branches", multiple=True, default=("main",), show_default=True,
              help="Never delete this branch's cache tags (repeatable).")
@click.option("--grace", default="1d", show_default=True,
              help="Context-store objects written more recently than this are kept, whatever refers to them.")
@click.option("--registry-storage", "storages", multiple=True, metavar="HOST=DIR",
              help="Where a Distribution registry keeps its files, to read tag ages ($FARM_REGISTRY_STORAGE).")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
def gc(project_dir: Path, env_name: str | None, older_than: str, keep_branches: tuple[str, ...], grace: str,
       storages: tuple[str, ...], dry_run: bool) -> None:
    """Delete the project's branch cache tags not written for --older-than (not those of --keep-branch),
    and context-store objects past --grace that no queued or running job needs; print what goes and
    the space it frees."""
    import time

    from farm import gc as collect
    from farm.broker import check_broker, redis_client
    from farm.context.sweep import open_swept_store, sweep
    from farm.registry import client_for
    from farm.settings import get_settings

    age, grace_s = _duration(older_than, "--older-than"), _duration(grace, "--grace")
    settings = get_settings()
    paths = _storages(storages)
    verb = "would delete" if dry_run else "delete"
    now = time.time()

    # Registry: the branch cache tags.
    patterns = collect.branch_patterns(collect.project_cache_refs(project_dir, env_name, collect.PROBE))
    keep = {ref.ref.rpartition(":")[2] for branch in keep_branches
            for ref in collect.project_cache_refs(project_dir, env_name, branch)}
    if not patterns:
        err("registry: no cache tag of this project names its branch; no cache tags to collect")

    def storage(host: str) -> collect.DistributionStorage | None:
        return collect.DistributionStorage(paths[host]) if host in paths else None

    tags = collect.sweep_cache_tags(
        patterns, keep, now - age, storage,
        lambda host, insecure: client_for(host, settings.docker_config, insecure=insecure,
                                          timeout=settings.registry_timeout),
        dry_run=dry_run, say=lambda line: click.echo(line))
    for image, tag in tags.deleted:
        click.echo(f"{verb} {image}:{tag.name} (last written {(now - tag.written) / 86400:.1f} days ago)")
    for line in tags.skipped:
        err(f"skipped {line}")

    # Context store: only with the broker reachable, since live jobs decide what stays.
    client = redis_client(settings)
    check_broker(client, settings.broker_url)
    store = open_swept_store(settings.context_store_url)
    live = collect.live_contexts(client, store.url)
    swept = sweep(store, live, grace_s, now=now, dry_run=dry_run)
    for m in swept.manifests:
        click.echo(f"{verb} context sha256:{m.name} ({size(m.size)})")
    click.echo(f"{verb} {len(swept.blobs)} context blob(s) ({size(sum(b.size for b in swept.blobs))})")
    click.echo(f"registry: {len(tags.deleted)} tag(s), {size(tags.freed)} no other tag names (freed when the "
               f"registry's own garbage-collect runs); context store: {size(swept.bytes)} "
               f"{'would be ' if dry_run else ''}freed; kept {swept.kept_live} context(s) of live jobs")


COMMANDS = [gc]
