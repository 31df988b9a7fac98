"""GARDEN-SPEC §4.2/§4.4/§9: the buildctl command line as data, and buildctl failure mapping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from farm.errors import ConfigError, PermanentBuildError, TransientBuildError
from farm.images import CacheRef
from farm.jobs import BuildRequest
from workers.builder_job import Workspace
from workers.builders.cluster_buildkit import (
    BUILDER,
    MODE,
    BuildSpec,
    buildctl_build_args,
    buildctl_job,
    secret_env_names,
    secret_environment,
)
from workers.runtimes import process

REG = "ghcr.io/namespace"


def cache(ref: str, mode: str = "max", export: bool = True, insecure: bool = False) -> CacheRef:
    return CacheRef(ref=ref, mode=mode, export=export, insecure=insecure, image_manifest=False)  # type: ignore[arg-type]


DEFAULT_CACHE = (cache(f"{REG}/api:_buildcache"),)   # what farm.images.cache_refs gives for ghcr.io


def job(**overrides):  # type: ignore[no-untyped-def]
    params = dict(
        caches=DEFAULT_CACHE,
        spec=BuildSpec(),
        platforms=(),
        deployment_image_id=f"{REG}/api:v-0123456789",
        build_args={},
        secret_ids=(),
        context_dir="/ctx/api",
        timeout=600,
        insecure=False,
    )
    params.update(overrides)
    caches, spec = params.pop("caches"), params.pop("spec")
    return buildctl_job(caches, spec, **params)


def test_full_command_in_gardens_order() -> None:
    j = job(
        spec=BuildSpec(dockerfile="docker/Dockerfile.prod", target_stage="runtime",
                       extra_flags=("--progress=plain", "--no-cache")),
        platforms=["linux/amd64", "linux/arm64"],
        build_args={"GARDEN_MODULE_VERSION": "v-0123456789", "GARDEN_ACTION_VERSION": "v-0123456789",
                    "A": "1", "EMPTY": ""},
        secret_ids=["npm-token", "api.key"],
    )
    assert j.argv == (
        "buildctl", "build", "--frontend=dockerfile.v0",
        "--local", "context=/ctx/api", "--local", "dockerfile=/ctx/api",
        "--opt", "filename=docker/Dockerfile.prod",
        "--secret", "id=npm-token,env=GARDEN_BUILD_SECRET_NPM_TOKEN",
        "--secret", "id=api.key,env=GARDEN_BUILD_SECRET_API_KEY",
        "--output", f'type=image,"name={REG}/api:v-0123456789",push=true',
        "--import-cache", f"type=registry,ref={REG}/api:_buildcache",
        "--export-cache", f"type=registry,ref={REG}/api:_buildcache,mode=max",
        "--opt", "build-arg:GARDEN_MODULE_VERSION=v-0123456789",
        "--opt", "build-arg:GARDEN_ACTION_VERSION=v-0123456789",
        "--opt", "build-arg:A=1",
        "--opt", "target=runtime",
        "--opt", "platform=linux/amd64,linux/arm64",
        "--progress=plain", "--no-cache",
    )
    assert j.mode == "cluster-buildkit"
    assert j.context_dir == "/ctx/api"
    assert j.timeout == 600
    assert j.secret_env == ("GARDEN_BUILD_SECRET_NPM_TOKEN", "GARDEN_BUILD_SECRET_API_KEY")


def test_secret_ids_only_name_env_vars() -> None:
    j = job(secret_ids=["tok"])
    assert j.secret_env == ("GARDEN_BUILD_SECRET_TOK",)
    assert "id=tok,env=GARDEN_BUILD_SECRET_TOK" in j.argv


def test_minimal_command() -> None:
    j = job(caches=())
    assert j.argv == (
        "buildctl", "build", "--frontend=dockerfile.v0",
        "--local", "context=/ctx/api", "--local", "dockerfile=/ctx/api",
        "--opt", "filename=Dockerfile",
        "--output", f'type=image,"name={REG}/api:v-0123456789",push=true',
    )
    assert j.secret_env == ()


def test_single_platform() -> None:
    assert job(platforms=["linux/arm64"]).argv[-2:] == ("--opt", "platform=linux/arm64")


def test_insecure_registry_and_inline_cache() -> None:
    j = job(caches=(cache("10.0.0.5:5000/team/api:_buildcache", mode="inline", insecure=True),),
            deployment_image_id="10.0.0.5:5000/team/api:v-1", insecure=True)
    assert j.argv[9:] == (
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=10.0.0.5:5000/team/api:v-1,10.0.0.5:5000/team/api:_buildcache",'
                    "push=true,registry.insecure=true",
        "--import-cache", "type=registry,ref=10.0.0.5:5000/team/api:_buildcache,registry.insecure=true",
    )


def test_branch_pattern_in_the_command() -> None:
    caches = (cache(f"{REG}/api:_buildcache-feature-x"), cache(f"{REG}/api:_buildcache-main", export=False))
    j = job(caches=caches)
    assert j.argv[9:] == (
        "--output", f'type=image,"name={REG}/api:v-0123456789",push=true',
        "--import-cache", f"type=registry,ref={REG}/api:_buildcache-feature-x",
        "--export-cache", f"type=registry,ref={REG}/api:_buildcache-feature-x,mode=max",
        "--import-cache", f"type=registry,ref={REG}/api:_buildcache-main",
    )


def test_build_arg_rules() -> None:
    # the producer's farm.images.build_args already put GARDEN_*_VERSION first (tests/unit/test_images.py)
    args = {"GARDEN_ACTION_VERSION": "v-1", "A": "x", "B": "", "C": None, "D": "0", "E": None}
    assert buildctl_build_args(args, {"C": "from-env"}) == [
        "GARDEN_ACTION_VERSION=v-1", "A=x", "C=from-env", "D=0"]
    assert buildctl_build_args({"A": "x", "C": None}) == ["A=x"]


def test_null_build_arg_comes_from_the_worker_env_or_is_left_out() -> None:
    j = job(build_args={"FROM_ENV": None, "NOT_SET": None}, arg_env={"FROM_ENV": "val"})
    assert "build-arg:FROM_ENV=val" in j.argv
    assert not any("NOT_SET" in a for a in j.argv)


def test_secret_env_names_and_collisions() -> None:
    assert secret_env_names(["a-b", "a.b", "A_B", "x"]) == {
        "a-b": "GARDEN_BUILD_SECRET_A_B",
        "a.b": "GARDEN_BUILD_SECRET_A_B_2",
        "A_B": "GARDEN_BUILD_SECRET_A_B_3",
        "x": "GARDEN_BUILD_SECRET_X",
    }
    assert secret_environment({"a-b": "1", "a.b": "2"}) == {
        "GARDEN_BUILD_SECRET_A_B": "1", "GARDEN_BUILD_SECRET_A_B_2": "2"}


@pytest.mark.parametrize("bad", ["has space", "slash/no", "", "semi;colon"])
def test_invalid_secret_id(bad: str) -> None:
    with pytest.raises(ConfigError, match="Invalid secret ID"):
        secret_env_names([bad])


# The job run by the process runtime against a fake buildctl: its environment and the buildctl-specific
# failure (the process runtime's own tests cover exits, timeouts and masking in general).

def fake_buildctl(tmp_path: Path, script: str) -> str:
    path = tmp_path / "buildctl"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_run_streams_lines_env_cwd_and_masks_secrets(tmp_path: Path) -> None:
    exe = fake_buildctl(tmp_path, 'echo "host=$BUILDKIT_HOST cfg=$DOCKER_CONFIG pwd=$(pwd)"\n'
                                  'echo "tok=$GARDEN_BUILD_SECRET_TOK" >&2\n')
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    seen: list[str] = []
    before = dict(os.environ)
    j = job(secret_ids=["tok"], context_dir=str(ctx), buildkit_host="tcp://b:1234", docker_config="/cfg",
            buildctl=exe)
    lines = process.run(j, secret_environment({"tok": "hunter2"}), seen.append)
    assert seen == lines == [f"host=tcp://b:1234 cfg=/cfg pwd={ctx}", "tok=***"]
    assert dict(os.environ) == before                    # the child's env only


def test_nonzero_exit_names_buildctl_and_its_last_line(tmp_path: Path) -> None:
    exe = fake_buildctl(tmp_path, "echo 'ERROR: failed to solve: process did not complete'; exit 1")
    with pytest.raises(PermanentBuildError, match="^cluster-buildkit: .*buildctl exited with code 1: ERROR: failed"):
        process.run(job(context_dir=str(tmp_path), buildkit_host="x", buildctl=exe), {}, None)


def test_unreachable_daemon_is_transient(tmp_path: Path) -> None:
    exe = fake_buildctl(tmp_path, 'echo \'error: failed to get status: rpc error: code = Unavailable desc = '
                                  'connection error: desc = "transport: Error while dialing: dial unix '
                                  '/x.sock: connect: no such file or directory"\' >&2; exit 1')
    with pytest.raises(TransientBuildError, match="^buildkitd at unix:///x.sock is unreachable"):
        process.run(job(context_dir=str(tmp_path), buildkit_host="unix:///x.sock", buildctl=exe), {}, None)


def test_a_worker_without_buildkitd_is_told_so() -> None:
    req = BuildRequest(job_id="j", project="p", build="api", version="v-0123456789", platform="linux/amd64",
                       mode=MODE, image=f"{REG}/api:v-0123456789", context="sha256:" + "0" * 64,
                       context_store="file:///s")
    with pytest.raises(TransientBuildError, match="this worker has no buildkitd"):
        BUILDER.jobs(req, Workspace(context_dir="/ctx", docker_config=Path("/cfg")))
    (j,) = BUILDER.jobs(req, Workspace(context_dir="/ctx", docker_config=Path("/cfg"), buildkit_host="tcp://b:1"))
    assert ("BUILDKIT_HOST", "tcp://b:1") in j.env and ("DOCKER_CONFIG", "/cfg") in j.env
    assert j.argv[-4:] == ("--opt", "platform=linux/amd64", "--ref-file", "/ctx.buildkit-ref")


def test_the_build_record_is_deleted_from_buildkits_history(tmp_path: Path) -> None:
    ws = Workspace(context_dir=str(tmp_path / "ctx"), docker_config=Path("/cfg"), buildkit_host="tcp://b:1",
                   buildctl="/bin/buildctl")
    req = BuildRequest(job_id="j", project="p", build="api", version="v-0123456789", platform="linux/amd64",
                       mode=MODE, image=f"{REG}/api:v-0123456789", context="sha256:" + "0" * 64,
                       context_store="file:///s")
    assert BUILDER.forget(req, ws) is None                     # the build never started: no record
    (tmp_path / "ctx.buildkit-ref").write_text("qk2v1t8f2n3\n")
    job = BUILDER.forget(req, ws)
    assert job is not None and job.argv == ("/bin/buildctl", "debug", "ctl", "--delete", "qk2v1t8f2n3")
    assert ("BUILDKIT_HOST", "tcp://b:1") in job.env and not (tmp_path / "ctx.buildkit-ref").exists()
