"""The `cluster-buildkit` build mode: one buildctl invocation against a long-lived buildkitd.

`buildctl_job()` is GARDEN-SPEC §4.2 as data: the argv in Garden's order, the cache/output flags
of §6 (`buildkit_cache`, from the CacheRefs the producer resolved), build args and secrets of §4.4.
Secret *values* never enter the argv; BuilderJob.secret_env names the variables the runtime must
inject (`secret_environment()`). buildkitd pushes the image and exports the caches itself.

Garden quirks fixed here: several platforms become ONE `--opt platform=a,b` (buildctl keeps only
the last of repeated `--opt platform=` keys), and see `buildkit_cache` for the cache fixes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm.errors import ConfigError, TransientBuildError
from farm.images import CacheRef, build_arg_flags
from farm.jobs import BuildRequest
from workers.builder_job import BuilderJob, Workspace
from workers.builders.buildkit_cache import image_flags

MODE = "cluster-buildkit"
SECRET_ENV_PREFIX = "GARDEN_BUILD_SECRET_"
SECRET_ID = re.compile(r"^[a-zA-Z0-9._-]+$")

# buildctl's messages when it cannot talk to buildkitd (gRPC Unavailable, dial errors).
UNREACHABLE = (r"code = Unavailable|failed to dial|connection refused|error reading server preface"
               r"|dial (unix|tcp) \S+: connect:")


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
    buildkit_host: str = "",
    docker_config: str | None = None,
    buildctl: str = "buildctl",
    ref_file: str | None = None,
) -> BuilderJob:
    """The buildctl invocation of §4.2 for one build, against the buildkitd at `buildkit_host`.

    `build_args` are complete (farm.images.build_args: GARDEN_*_VERSION first); a None value comes
    from `arg_env` (the worker's environment). `insecure` is the deployment registry's.
    """
    env_names = secret_env_names(secret_ids)
    argv = [
        buildctl, "build", "--frontend=dockerfile.v0",
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
    if ref_file:
        argv += ["--ref-file", ref_file]      # the build record's ref, so the worker can delete it
    argv += list(spec.extra_flags)
    env = (("BUILDKIT_HOST", buildkit_host),) + ((("DOCKER_CONFIG", docker_config),) if docker_config else ())
    return BuilderJob(
        mode=MODE,
        argv=tuple(argv),
        context_dir=context_dir,
        timeout=timeout,
        env=env,
        secret_env=tuple(env_names.values()),
        unreachable=UNREACHABLE,
        daemon=f"buildkitd at {buildkit_host}",
    )


class ClusterBuildkit:
    """buildctl against the worker's buildkitd; it pushes (and exports caches) itself."""

    mode = MODE

    def jobs(self, req: BuildRequest, ws: Workspace) -> list[BuilderJob]:
        if not ws.buildkit_host:
            raise TransientBuildError("this worker has no buildkitd (set BUILDKIT_HOST, or "
                                      "`farm stack up --with buildkitd`)")
        spec = BuildSpec(dockerfile=req.dockerfile, target_stage=req.target, extra_flags=tuple(req.extra_flags))
        return [buildctl_job(
            req.cache, spec, platforms=req.platforms or [req.platform], deployment_image_id=req.image,
            build_args=req.build_args, secret_ids=req.secret_ids, context_dir=ws.context_dir,
            timeout=req.timeout, insecure=req.insecure, arg_env=ws.arg_env, buildkit_host=ws.buildkit_host,
            docker_config=str(ws.docker_config), buildctl=ws.buildctl, ref_file=_ref_file(ws))]

    def forget(self, req: BuildRequest, ws: Workspace) -> BuilderJob | None:
        """Delete the build's record from buildkitd's history (its logs and provenance) once the job
        record has it: the farm's log stream is the one copy, and it expires with the job."""
        path = Path(_ref_file(ws))
        try:
            ref = path.read_text().strip()
            path.unlink()
        except OSError:
            return None
        if not ref:
            return None
        return BuilderJob(mode=MODE, argv=(ws.buildctl, "debug", "ctl", "--delete", ref), context_dir=ws.context_dir,
                          timeout=60, env=(("BUILDKIT_HOST", ws.buildkit_host),), unreachable=UNREACHABLE,
                          daemon=f"buildkitd at {ws.buildkit_host}")

    def secret_env(self, values: Mapping[str, str]) -> dict[str, str]:
        return secret_environment(values)

    def digest(self, lines: Sequence[str]) -> str | None:
        return None     # the registry says what the tag now names


def _ref_file(ws: Workspace) -> str:
    """Beside the build's context directory (unique per build), not in it: it is not context."""
    return ws.context_dir.rstrip("/") + ".buildkit-ref"


BUILDER = ClusterBuildkit()
