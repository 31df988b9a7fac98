"""`farm config show|validate`: what the farm reads from a Garden project, and whether it is sound.

The lead registers the group in farm/cli.py (`cli.add_command(config)`). Both commands catch every
error themselves, so no traceback reaches the user: 0 = fine, 2 = config errors, 1 = anything else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from farm.errors import ConfigError, FarmError


def _project_option(fn: Any) -> Any:
    return click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
                        default=".", show_default=True,
                        help="The Garden project root (holds project.garden.yml).")(fn)


def _env_option(fn: Any) -> Any:
    return click.option("--env", "env_name", default=None,
                        help="Garden environment (default: the project's defaultEnvironment).")(fn)


@click.group("config")
def config() -> None:
    """Read and check the Garden project config the farm builds from."""


def describe(project_dir: Path, env_name: str | None) -> dict[str, Any]:
    """Everything `show` prints, as plain data (also what --json emits)."""
    from farm.garden import load_project
    from farm.images import build_args, cache_refs, image_outputs
    from farm.version import compute_versions

    project = load_project(project_dir, env_name)
    versions = compute_versions(project)
    provider = project.provider
    builds = []
    for name in sorted(project.builds):
        build, version = project.builds[name], versions[name]
        outputs = image_outputs(build, provider, version.version_string)
        builds.append({
            "name": name,
            "version": version.version_string,
            "versionFull": version.version_full,
            "contentHash": version.content_hash,
            "configVersion": version.config_version,
            "dependencies": {k: v for k, v in version.dependencies},
            "outputs": {
                "localImageName": outputs.local_image_name, "localImageId": outputs.local_image_id,
                "deploymentImageName": outputs.deployment_image_name,
                "deploymentImageId": outputs.deployment_image_id,
                "deploymentImageTag": outputs.deployment_image_tag},
            "platforms": list(build.spec.platforms),
            "cacheRefs": [{"ref": c.ref, "mode": c.mode, "export": c.export} for c in cache_refs(build, provider)],
            "buildArgs": build_args(build, version.version_string),
            "dockerfile": build.spec.dockerfile,
            "targetStage": build.spec.target_stage,
            "sourceDir": str(build.source_dir),
            "configFile": str(build.config_file),
            "files": len(version.files),
            "skippedSymlinks": list(version.skipped_symlinks),
            "timeout": build.timeout,
        })
    registry = provider.deployment_registry if provider else None
    return {
        "project": project.name,
        "root": str(project.root),
        "environment": project.environment,
        "namespace": project.namespace,
        "provider": None if provider is None else {
            "name": provider.name,
            "buildMode": provider.build_mode,
            "namespace": provider.namespace.name if provider.namespace else None,
            "deploymentRegistry": None if registry is None else registry.model_dump(by_alias=True),
        },
        "buildMode": provider.build_mode if provider else "local-docker",
        "builds": builds,
    }


def _print_text(data: dict[str, Any]) -> None:
    provider = data["provider"] or {}
    registry = provider.get("deploymentRegistry")
    click.echo(f"project {data['project']}  env {data['environment']}  namespace {data['namespace']}")
    click.echo(f"  build mode  {data['buildMode']}" + ("" if provider else "  (no kubernetes provider)"))
    if registry:
        host = registry["hostname"] + (f":{registry['port']}" if registry.get("port") else "")
        ns = f"/{registry['namespace']}" if registry.get("namespace") else ""
        click.echo(f"  registry    {host}{ns}" + ("  (insecure)" if registry.get("insecure") else ""))
    if not data["builds"]:
        click.echo("  no container Builds")
    for b in data["builds"]:
        click.echo(f"\nBuild {b['name']}  {b['version']}")
        click.echo(f"  image       {b['outputs']['deploymentImageId']}")
        if b["outputs"]["localImageId"] != b["outputs"]["deploymentImageId"]:
            click.echo(f"  local       {b['outputs']['localImageId']}")
        click.echo(f"  platforms   {', '.join(b['platforms']) or '(builder default)'}")
        for dep, ver in b["dependencies"].items():
            click.echo(f"  depends on  {dep} {ver}")
        for c in b["cacheRefs"]:
            click.echo(f"  cache       {c['ref']}  mode={c['mode']}" + ("" if c["export"] else "  import-only"))
        click.echo(f"  context     {b['sourceDir']}  ({b['files']} files, {b['dockerfile']})")
        if b["files"] > 10_000:
            click.echo(f"  warning: {b['name']} has {b['files']} files in its context; consider include/exclude "
                       "or a .gardenignore", err=True)
        for link in b["skippedSymlinks"]:
            click.echo(f"  warning: symlink {link} points outside the project or is absolute; left out",
                       err=True)


def _fail(exc: Exception) -> None:
    if isinstance(exc, FarmError):
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
    sys.exit(1)


@config.command("show")
@_project_option
@_env_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def show(project_dir: Path, env_name: str | None, as_json: bool) -> None:
    """Every Build: version, image id, mode, cache refs, platforms."""
    try:
        data = describe(project_dir, env_name)
    except Exception as exc:  # noqa: BLE001 - the CLI promise: one line, never a traceback
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        _print_text(data)


@config.command("validate")
@_project_option
@click.option("--env", "env_name", default=None,
              help="Check only this environment (default: every environment of the project).")
def validate(project_dir: Path, env_name: str | None) -> None:
    """Check the config; print one error per problem with file:line and field path."""
    from farm.garden.project import environment_names

    try:
        envs = [env_name] if env_name else environment_names(project_dir)
        problems: list[ConfigError] = []
        summaries: list[str] = []
        for env in envs:
            found, summary = _check_env(project_dir, env)
            problems.extend(p for p in found if str(p) not in {str(q) for q in problems})
            if summary:
                summaries.append(summary)
    except ConfigError as exc:
        problems, summaries = [exc], []
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", err=True)
        sys.exit(2)
    for summary in summaries:
        click.echo(f"ok: {summary}")


def _check_env(project_dir: Path, env: str) -> tuple[list[ConfigError], str | None]:
    from farm.garden import load_project
    from farm.garden.project import check_project
    from farm.version import compute_versions

    problems = check_project(project_dir, env)
    if problems:
        return problems, None
    try:
        project = load_project(project_dir, env)
        compute_versions(project)  # unreadable files and git failures are problems too
    except ConfigError as exc:
        return [exc], None
    mode = project.provider.build_mode if project.provider else "local-docker"
    count = len(project.builds)
    return [], (f"{project.name} ({project.environment}): {count} container Build{'s' if count != 1 else ''}, "
                f"build mode {mode}")
