"""`farm config show|validate`: what the farm reads from a Garden project, and whether it is sound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from farm.cli._common import env_option, json_option, project_option
from farm.errors import ConfigError, ConfigErrors


@click.group("config")
def config() -> None:
    """Read and check the Garden project config the farm builds from."""


def describe(project_dir: Path, env_name: str | None) -> dict[str, Any]:
    """Everything `show` prints, as plain data (also what --json emits): the planned Builds."""
    from farm import plan

    project, versions = plan.load(project_dir, env_name)
    provider = project.provider
    planned = sorted(plan.plan(project, versions).builds, key=lambda b: b.name)
    builds = []
    for b in planned:
        build, version, outputs = b.action, b.version, b.outputs
        builds.append({
            "name": b.name,
            "version": version.version_string,
            "versionFull": version.version_full,
            "contentHash": version.content_hash,
            "configVersion": version.config_version,
            "dependencies": dict(version.dependencies),
            "outputs": {
                "localImageName": outputs.local_image_name, "localImageId": outputs.local_image_id,
                "deploymentImageName": outputs.deployment_image_name,
                "deploymentImageId": outputs.deployment_image_id,
                "deploymentImageTag": outputs.deployment_image_tag},
            "platforms": list(build.spec.platforms),
            "cacheRefs": [{"ref": c.ref, "mode": c.mode, "export": c.export} for c in b.cache],
            "buildArgs": dict(b.build_args),
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


@config.command("show")
@project_option
@env_option
@json_option
def show(project_dir: Path, env_name: str | None, as_json: bool) -> None:
    """Every Build: version, image id, mode, cache refs, platforms."""
    data = describe(project_dir, env_name)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        _print_text(data)


@config.command("validate")
@project_option
@click.option("--env", "env_name", default=None,
              help="Check only this environment (default: every environment of the project).")
def validate(project_dir: Path, env_name: str | None) -> None:
    """Check the config; print one error per problem with file:line and field path.

    It reports everything `farm build` would refuse (the same checks, `farm.checks`), in every
    environment: Garden's rules and the farm's own limits."""
    from farm import checks, plan
    from farm.garden import default_environment_problem, environment_names
    from farm.settings import get_settings

    settings = get_settings()
    envs = [env_name] if env_name else environment_names(project_dir)
    problems: list[ConfigError] = []
    if env_name is None and (wrong := default_environment_problem(project_dir)) is not None:
        problems.append(wrong)
    summaries: list[str] = []
    for env in envs:
        found = plan.problems(project_dir, env)
        if not found:
            project, versions = plan.load(project_dir, env)
            try:
                found = checks.problems(plan.plan(project, versions), settings)
            except ConfigError as exc:
                found = [exc]
            if not found:
                summaries.append(_summary(project))
        problems.extend(p for p in found if str(p) not in {str(q) for q in problems})
    if problems:
        raise ConfigErrors(problems)
    for summary in summaries:
        click.echo(f"ok: {summary}")


def _summary(project: Any) -> str:
    mode = project.provider.build_mode if project.provider else "local-docker"
    count = len(project.builds)
    return (f"{project.name} ({project.environment}): {count} container Build{'s' if count != 1 else ''}, "
            f"build mode {mode}")


COMMANDS = [config]
