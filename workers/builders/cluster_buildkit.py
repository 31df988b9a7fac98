"""The `cluster-buildkit` build mode: one buildctl invocation against a long-lived buildkitd.

`buildctl_job()` is GARDEN-SPEC §4.2 as data: the argv in Garden's order, the cache/output flags
of §6 (`buildkit_cache`), build args and secrets of §4.4. Secret *values* never enter the argv;
BuilderJob.secret_env names the variables the runtime must inject (`secret_environment()`).
`run_buildctl()` runs such a job as a local process against a reachable buildkitd and maps its
failures onto the farm's error tree.

Garden quirks fixed here: several platforms become ONE `--opt platform=a,b` (buildctl keeps only
the last of repeated `--opt platform=` keys), and see `buildkit_cache` for the cache fixes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from farm.errors import ConfigError, PermanentBuildError, TransientBuildError
from workers.builders.base import BuilderJob
from workers.builders.buildkit_cache import DEFAULT_CACHE, CacheConfig, image_flags
from workers.runtimes import process

MODE = "cluster-buildkit"
SECRET_ENV_PREFIX = "GARDEN_BUILD_SECRET_"
SECRET_ID = re.compile(r"^[a-zA-Z0-9._-]+$")
LOG_TAIL_LINES = 30

# buildctl's messages when it cannot talk to buildkitd (gRPC Unavailable, dial errors).
_UNREACHABLE = re.compile(
    r"code = Unavailable|failed to dial|connection refused|error reading server preface"
    r"|dial (unix|tcp) \S+: connect:",
)


@dataclass(frozen=True)
class ClusterBuildkitSettings:
    """The provider's `clusterBuildkit` block, as far as a build needs it."""

    cache: tuple[CacheConfig, ...] = DEFAULT_CACHE
    rootless: bool = False
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, object], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)


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


def docker_build_args(build_args: Mapping[str, str | None], version: str | None = None) -> list[str]:
    """`KEY=VALUE` items (§4.4): the GARDEN_*_VERSION args first, `""` omitted, None passes just KEY."""
    merged: dict[str, str | None] = {}
    if version is not None:
        merged = {"GARDEN_MODULE_VERSION": version, "GARDEN_ACTION_VERSION": version}
    merged.update(build_args)
    items = []
    for key, value in merged.items():
        if value == "":
            continue
        items.append(key if value is None else f"{key}={value}")
    return items


def buildctl_job(
    settings: ClusterBuildkitSettings,
    spec: BuildSpec,
    *,
    platforms: Sequence[str],
    deployment_image_id: str,
    deployment_image_name: str,
    local_image_name: str,
    build_args: Mapping[str, str | None],
    secrets: Mapping[str, str],
    context_dir: str,
    timeout: int = 600,
    insecure: bool = False,
    version: str | None = None,
    arg_env: Mapping[str, str] | None = None,
) -> BuilderJob:
    """The buildctl invocation of §4.2 for one build; only the keys of `secrets` are used.

    A build arg whose value is None takes its value from `arg_env` (the worker's environment, as
    `docker build --build-arg KEY` would) and is left out when absent there: buildctl rejects a
    bare `build-arg:KEY`, which Garden passes.
    """
    env_names = secret_env_names(list(secrets))
    argv = [
        "buildctl", "build", "--frontend=dockerfile.v0",
        "--local", f"context={context_dir}",
        "--local", f"dockerfile={context_dir}",
        "--opt", f"filename={spec.dockerfile or 'Dockerfile'}",
    ]
    for secret_id, env_name in env_names.items():
        argv += ["--secret", f"id={secret_id},env={env_name}"]
    argv += image_flags(
        settings.cache,
        deployment_image_id=deployment_image_id,
        deployment_image_name=deployment_image_name,
        local_image_name=local_image_name,
        deployment_insecure=insecure,
    )
    for item in docker_build_args(build_args, version):
        if "=" not in item:
            if arg_env is None or item not in arg_env:
                continue
            item = f"{item}={arg_env[item]}"
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
    argv = list(job.argv)
    if argv and argv[0] == "buildctl":
        argv[0] = buildctl

    masked = [v for v in values.values() if v]
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    lines: list[str] = []

    def emit(line: str) -> None:
        for value in masked:
            line = line.replace(value, "***")
        lines.append(line)
        tail.append(line)
        if on_line is not None:
            on_line(line)

    try:
        result = process.run(argv, cwd=job.context_dir, env=env, timeout=job.timeout, on_line=emit,
                             drop_env_prefixes=(SECRET_ENV_PREFIX,))
    except FileNotFoundError as exc:
        raise TransientBuildError(f"buildctl not found: {exc.filename}") from exc
    if result.timed_out:
        raise TransientBuildError(f"buildctl timed out after {job.timeout} s")
    if result.exit_code == 0:
        return lines
    last = "\n".join(tail)
    if result.exit_code in (137, -9):
        raise TransientBuildError(
            f"buildctl was killed (exit {result.exit_code}), most likely out of memory:\n{last}")
    if any(_UNREACHABLE.search(line) for line in tail):
        raise TransientBuildError(f"buildkitd at {buildkit_host} is unreachable:\n{last}")
    raise PermanentBuildError(f"buildctl failed with exit code {result.exit_code}:\n{last}")
