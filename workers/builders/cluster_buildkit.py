"""The `cluster-buildkit` build mode: one buildctl invocation against a long-lived buildkitd.

`buildctl_job()` is GARDEN-SPEC §4.2 as data: the argv in Garden's order, the cache/output flags
of §6 (`buildkit_cache`, from the CacheRefs the producer resolved), build args and secrets of §4.4.
Secret *values* never enter the argv; BuilderJob.secret_env names the variables the runtime must
inject (`secret_environment()`). `run_buildctl()` runs such a job as a local process against a
reachable buildkitd (`runtimes.local`, which maps its failures onto the farm's error tree).

Garden quirks fixed here: several platforms become ONE `--opt platform=a,b` (buildctl keeps only
the last of repeated `--opt platform=` keys), and see `buildkit_cache` for the cache fixes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from farm.errors import BuildError, ConfigError, TransientBuildError
from farm.images import CacheRef, build_arg_flags
from workers.builders.base import BuilderJob
from workers.builders.buildkit_cache import image_flags
from workers.runtimes.local import execute

MODE = "cluster-buildkit"
SECRET_ENV_PREFIX = "GARDEN_BUILD_SECRET_"
SECRET_ID = re.compile(r"^[a-zA-Z0-9._-]+$")

# buildctl's messages when it cannot talk to buildkitd (gRPC Unavailable, dial errors).
_UNREACHABLE = re.compile(
    r"code = Unavailable|failed to dial|connection refused|error reading server preface"
    r"|dial (unix|tcp) \S+: connect:",
)


@dataclass(frozen=True)
class BuildSpec:
    """The fields of a Build's `spec` that shape the buildctl command line."""

    dockerfile: str = "Dockerfile"
    target_stage: str | None = None
    extra_flags: tuple[str, ...] = ()


def secret_env_names(secret_ids: Sequence[str]) -> dict[str, str]:
    """Map each secret id to its env var: `GARDEN_BUILD_SECRET_<ID>`, `_2`, `_3` … on collisions (§4.4)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for secret_id in secret_ids:
        if not SECRET_ID.match(secret_id):
            raise ConfigError(
                f"Invalid secret ID '{secret_id}'. Only alphanumeric characters (a-z, A-Z, 0-9), "
                "underscores (_), dashes (-) and dots (.) are allowed.",
                field=f"spec.secrets.{secret_id}",
            )
        base = SECRET_ENV_PREFIX + re.sub(r"[-.]", "_", secret_id.upper())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[secret_id] = name
    return names


def secret_environment(secrets: Mapping[str, str]) -> dict[str, str]:
    """The child-process environment carrying the secret values, keyed by the names in secret_env."""
    names = secret_env_names(list(secrets))
    return {names[secret_id]: value for secret_id, value in secrets.items()}


def buildctl_build_args(build_args: Mapping[str, str | None],
                        arg_env: Mapping[str, str] | None = None) -> list[str]:
    """`KEY=VALUE` items in order (§4.4): `""` omitted, a None value taken from `arg_env` or left out.

    `docker build --build-arg KEY` reads KEY from its environment; buildctl rejects a bare
    `build-arg:KEY`, which Garden passes, so the worker resolves it here.
    """
    env = arg_env or {}
    resolved = {key: env.get(key) if value is None else value for key, value in build_args.items()
                if value != ""}
    return build_arg_flags({key: value for key, value in resolved.items() if value is not None})


def buildctl_job(
    caches: Sequence[CacheRef],
    spec: BuildSpec,
    *,
    platforms: Sequence[str],
    deployment_image_id: str,
    build_args: Mapping[str, str | None],
    secret_ids: Sequence[str],
    context_dir: str,
    timeout: int = 600,
    insecure: bool = False,
    arg_env: Mapping[str, str] | None = None,
) -> BuilderJob:
    """The buildctl invocation of §4.2 for one build.

    `build_args` are complete (farm.images.build_args: GARDEN_*_VERSION first); a None value comes
    from `arg_env` (the worker's environment). `insecure` is the deployment registry's.
    """
    env_names = secret_env_names(secret_ids)
    argv = [
        "buildctl", "build", "--frontend=dockerfile.v0",
        "--local", f"context={context_dir}",
        "--local", f"dockerfile={context_dir}",
        "--opt", f"filename={spec.dockerfile or 'Dockerfile'}",
    ]
    for secret_id, env_name in env_names.items():
        argv += ["--secret", f"id={secret_id},env={env_name}"]
    argv += image_flags(caches, deployment_image_id=deployment_image_id, deployment_insecure=insecure)
    for item in buildctl_build_args(build_args, arg_env):
        argv += ["--opt", f"build-arg:{item}"]
    if spec.target_stage:
        argv += ["--opt", f"target={spec.target_stage}"]
    if platforms:
        argv += ["--opt", "platform=" + ",".join(platforms)]
    argv += list(spec.extra_flags)
    return BuilderJob(
        mode=MODE,
        argv=tuple(argv),
        context_dir=context_dir,
        timeout=timeout,
        secret_env=tuple(env_names.values()),
    )


def run_buildctl(
    job: BuilderJob,
    *,
    buildkit_host: str,
    docker_config: str | None = None,
    secret_values: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    buildctl: str = "buildctl",
) -> list[str]:
    """Run `job` locally against `buildkit_host`; return its log lines or raise a BuildError.

    `secret_values` maps the env names of `job.secret_env` to values (see `secret_environment`);
    they reach the child's environment only, and are masked in every log line.
    """
    values = dict(secret_values or {})
    missing = [name for name in job.secret_env if name not in values]
    if missing:
        raise ConfigError(f"no value for build secret env {', '.join(missing)}")
    env = {"BUILDKIT_HOST": buildkit_host, **dict(job.env), **{n: values[n] for n in job.secret_env}}
    if docker_config is not None:
        env["DOCKER_CONFIG"] = docker_config

    def unreachable(code: int, tail: Sequence[str]) -> BuildError | None:
        if any(_UNREACHABLE.search(line) for line in tail):
            return TransientBuildError(f"buildkitd at {buildkit_host} is unreachable:\n" + "\n".join(tail))
        return None

    return execute(job, on_line, env=env, drop_env_prefixes=(SECRET_ENV_PREFIX,), executable=buildctl,
                   mask=values.values(), classify=unreachable)
