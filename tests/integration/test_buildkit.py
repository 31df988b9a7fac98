"""cluster-buildkit against the stack's REAL buildkitd (OCI worker, runc) and REAL registry (CNCF
Distribution with htpasswd), through the farm's own job and process runtime.

The binaries come from scripts/install-buildkit.sh (cached under ~/.cache/farm). Nothing can be pulled
from the internet: the RUN steps use the stack's busybox base image. "A fresh daemon" is the stack's
buildkitd with its local cache pruned, so only a registry cache can give hits. These tests never
skip: when a service can't start, the stack fixture fails with its log.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from farm.errors import PermanentBuildError, TransientBuildError
from farm.garden.models import BuildAction, KubernetesProvider
from farm.images import CacheRef, cache_refs, image_outputs
from farm.registry import load_credentials
from workers.builders.cluster_buildkit import BuildSpec, buildctl_job, secret_environment
from workers.runtimes import process

pytestmark = pytest.mark.integration
# Every run pushes to repositories of its own: the stack's registry outlives a test session, and a
# cache left by an earlier run would turn a "first build" into a cache hit.
NS = f"bk{uuid.uuid4().hex[:8]}"

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


@dataclass
class Registry:
    host: str               # 127.0.0.1:<port>
    auth: tuple[str, str]

    def get(self, path: str, accept: str = ACCEPT) -> httpx.Response:
        return httpx.get(f"http://{self.host}/v2/{path}", headers={"Accept": accept}, auth=self.auth,
                         follow_redirects=True, trust_env=False, timeout=30)

    def manifest(self, repo: str, ref: str) -> dict:
        return self.get(f"{repo}/manifests/{ref}").raise_for_status().json()

    def digest(self, repo: str, ref: str) -> str | None:
        resp = self.get(f"{repo}/manifests/{ref}")
        return None if resp.status_code == 404 else resp.raise_for_status().headers["Docker-Content-Digest"]

    def files(self, repo: str, ref: str) -> dict[str, bytes]:
        """The regular files of a single-platform image, all layers merged."""
        out: dict[str, bytes] = {}
        for layer in self.manifest(repo, ref)["layers"]:
            blob = self.get(f"{repo}/blobs/{layer['digest']}", accept="*/*").raise_for_status().content
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        data = tar.extractfile(member)
                        assert data is not None
                        out[member.name.lstrip("./")] = data.read()
        return out


@dataclass
class Daemon:
    addr: str
    buildctl: str
    docker_config: str


@pytest.fixture(scope="session")
def registry(stack_env: dict[str, str]) -> Registry:
    creds = load_credentials(Path(stack_env["DOCKER_CONFIG"]), stack_env["FARM_REGISTRY"])
    assert creds is not None
    return Registry(stack_env["FARM_REGISTRY"], (creds.username, creds.password))


@pytest.fixture(scope="session")
def daemon(stack_env: dict[str, str]) -> Daemon:
    return Daemon(stack_env["BUILDKIT_HOST"], stack_env["FARM_BUILDCTL"], stack_env["DOCKER_CONFIG"])


@pytest.fixture
def fresh_daemon(daemon: Daemon) -> Callable[[], Daemon]:
    """The stack's buildkitd with every local cache record dropped: as good as an empty --root."""
    def fresh() -> Daemon:
        subprocess.run([daemon.buildctl, "--addr", daemon.addr, "prune", "--all"], check=True,
                       capture_output=True, timeout=120)
        return daemon
    return fresh


@pytest.fixture(scope="session")
def base_image(stack_env: dict[str, str]) -> str:
    return stack_env["FARM_BASE_IMAGE"]


# ---------------------------------------------------------------------------------------------
# Building through the farm's own job + runner

def cache(image_name: str, mode: str, tag: str = "_buildcache", export: bool = True) -> CacheRef:
    """A resolved cache on the test registry (127.0.0.1:<port> resolves `auto` to inline)."""
    return CacheRef(ref=f"{image_name}:{tag}", mode=mode, export=export,  # type: ignore[arg-type]
                    insecure=True, image_manifest=False)


def build(daemon: Daemon, ctx: Path, image_name: str, tag: str, *,
          cache: tuple[CacheRef, ...] = (), spec: BuildSpec = BuildSpec(), timeout: int = 120,
          build_args: dict[str, str | None] | None = None, secrets: dict[str, str] | None = None,
          platforms: tuple[str, ...] = ()) -> list[str]:
    job = buildctl_job(
        cache, spec,
        platforms=platforms,
        deployment_image_id=f"{image_name}:{tag}",
        build_args=build_args or {},
        secret_ids=list(secrets or {}),
        context_dir=str(ctx),
        timeout=timeout,
        insecure=True,
        buildkit_host=daemon.addr,
        docker_config=daemon.docker_config,
        buildctl=daemon.buildctl,
    )
    return process.run(job, secret_environment(secrets or {}), None)


def context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, content in files.items():
        (ctx / name).write_text(content)
    return ctx


def cached_steps(lines: list[str]) -> list[str]:
    """The titles of the steps BuildKit reported as CACHED (plain progress: `#N CACHED`)."""
    titles: dict[str, str] = {}
    cached = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].startswith("#") and parts[1].startswith("["):
            titles.setdefault(parts[0], parts[1] + " " + parts[2])
        elif len(parts) == 2 and parts[1] == "CACHED":
            cached.append(titles.get(parts[0], parts[0]))
    return cached


def ran(lines: list[str], output: str) -> bool:
    """Whether a RUN step printed `output` (plain progress: `#N <seconds> <output>`), i.e. it executed."""
    return any(re.fullmatch(rf"#\d+ [\d.]+ {re.escape(output)}", line) for line in lines)


# ---------------------------------------------------------------------------------------------
# The tests

def test_multistage_scratch_build_is_pushed(tmp_path: Path, fresh_daemon, registry: Registry) -> None:
    ctx = context(tmp_path, "FROM scratch AS a\nCOPY hello.txt /a/\n"
                            "FROM scratch\nCOPY --from=a /a/hello.txt /hello.txt\nCOPY other.txt /\n",
                  **{"hello.txt": "hello\n", "other.txt": "other\n"})
    # the default cache, resolved by the producer for this registry
    hostname, port = registry.host.split(":")
    deployment_registry = {"hostname": hostname, "port": int(port), "namespace": NS, "insecure": True}
    provider = KubernetesProvider.model_validate({"context": "c", "buildMode": "cluster-buildkit",
                                                  "deploymentRegistry": deployment_registry})
    action = BuildAction.model_validate({"name": "multistage", "configFile": ctx / "garden.yml",
                                         "sourceDir": ctx, "spec": {}})
    refs = tuple(cache_refs(action, provider))
    name = image_outputs(action, provider, "v-0000000001").deployment_image_name
    assert name == f"{registry.host}/{NS}/multistage"
    build(fresh_daemon(), ctx, name, "v-0000000001", cache=refs)

    files = registry.files(f"{NS}/multistage", "v-0000000001")
    assert files == {"hello.txt": b"hello\n", "other.txt": b"other\n"}
    # 127.0.0.1:<port> resolves `auto` to inline: the cache tag is pushed as a full image too
    image = registry.digest(f"{NS}/multistage", "v-0000000001")
    assert registry.digest(f"{NS}/multistage", "_buildcache") == image


RUN_DOCKERFILE = """FROM {base} AS build
COPY step1.txt /
RUN cat /step1.txt > /out1 && echo built-1
RUN cat /out1 /out1 > /out2 && echo built-2
FROM scratch
COPY --from=build /out2 /out2
COPY late.txt /
"""


@pytest.mark.parametrize("mode", ["max", "inline"])
def test_registry_cache_is_imported_by_a_fresh_daemon(mode: str, tmp_path: Path, fresh_daemon,
                                                       registry: Registry, base_image: str) -> None:
    dockerfile = RUN_DOCKERFILE.format(base=base_image)
    if mode == "inline":
        # mode=min/inline only records the final image's layers: build in one stage
        dockerfile = f"FROM {base_image}\nCOPY step1.txt /\nRUN cat /step1.txt > /out1 && echo built-1\n" \
                     "COPY late.txt /\n"
    ctx = context(tmp_path, dockerfile, **{"step1.txt": "one\n", "late.txt": "late\n"})
    name = f"{registry.host}/{NS}/cache-{mode}"
    caches = (cache(name, mode),)

    first = build(fresh_daemon(), ctx, name, "v-1", cache=caches)
    assert not any("RUN" in step for step in cached_steps(first))
    assert ran(first, "built-1"), first
    assert registry.digest(f"{NS}/cache-{mode}", "_buildcache") is not None

    # a fresh daemon (empty --root): only the registry cache can give hits
    second = build(fresh_daemon(), ctx, name, "v-2", cache=caches)
    cached = cached_steps(second)
    assert any("RUN cat /step1.txt" in step for step in cached), second
    assert not ran(second, "built-1"), second
    if mode == "max":
        assert any("RUN cat /out1 /out1" in step for step in cached), second


@pytest.mark.parametrize("mode", ["max", "inline"])
def test_branch_imports_main_cache_and_pushes_only_its_own(mode: str, tmp_path: Path, fresh_daemon,
                                                           registry: Registry, base_image: str) -> None:
    dockerfile = (f"FROM {base_image}\nCOPY step1.txt /\n"
                  "RUN cat /step1.txt > /out1 && echo built-1\nCOPY late.txt /\n")
    ctx = context(tmp_path, dockerfile, **{"step1.txt": "one\n", "late.txt": "main\n"})
    repo = f"{NS}/branch-{mode}"
    name = f"{registry.host}/{repo}"
    build(fresh_daemon(), ctx, name, "v-main", cache=(cache(name, mode, "_buildcache-main"),))
    main_cache = registry.digest(repo, "_buildcache-main")
    assert main_cache is not None

    (ctx / "late.txt").write_text("feature\n")      # the branch changes a late layer only
    branch = (cache(name, mode, "_buildcache-feature-x"),
              cache(name, mode, "_buildcache-main", export=False))
    lines = build(fresh_daemon(), ctx, name, "v-feature", cache=branch)

    # the RUN step's result came from main's cache: its layers were fetched, the step never ran
    assert not ran(lines, "built-1"), "\n".join(lines)
    assert registry.digest(repo, "_buildcache-feature-x") is not None
    assert registry.digest(repo, "_buildcache-main") == main_cache     # never pushed by the branch
    assert registry.files(repo, "v-feature")["late.txt"] == b"feature\n"


def test_build_args_and_target_stage(tmp_path: Path, daemon: Daemon, registry: Registry,
                                     base_image: str) -> None:
    ctx = context(tmp_path, f"""FROM {base_image} AS gen
ARG GREETING
ARG FROM_ENV=default
ARG GARDEN_ACTION_VERSION
RUN echo "$GREETING $FROM_ENV $GARDEN_ACTION_VERSION" > /greeting
FROM scratch AS picked
COPY --from=gen /greeting /greeting
FROM scratch AS broken
COPY does-not-exist /
""")
    job = buildctl_job(
        (), BuildSpec(target_stage="picked"), platforms=(),
        deployment_image_id=f"{registry.host}/{NS}/args:v-abc",
        build_args={"GARDEN_MODULE_VERSION": "v-abc", "GARDEN_ACTION_VERSION": "v-abc",
                    "GREETING": "hello", "FROM_ENV": None}, secret_ids=(),
        context_dir=str(ctx), timeout=120, insecure=True, arg_env={"FROM_ENV": "env-value"},
        buildkit_host=daemon.addr, docker_config=daemon.docker_config, buildctl=daemon.buildctl,
    )
    process.run(job, {}, None)
    assert registry.files(f"{NS}/args", "v-abc") == {"greeting": b"hello env-value v-abc\n"}


def test_secret_reaches_run_mount_and_never_the_log(tmp_path: Path, daemon: Daemon, registry: Registry,
                                                    base_image: str) -> None:
    secret = "tok-7f3a9c-super-secret"
    ctx = context(tmp_path, f"""FROM {base_image} AS use
RUN --mount=type=secret,id=npm.token,required=true sha256sum /run/secrets/npm.token | cut -d' ' -f1 > /hash
RUN --mount=type=secret,id=npm.token,required=true cat /run/secrets/npm.token; echo
FROM scratch
COPY --from=use /hash /hash
""")
    seen: list[str] = []
    job = buildctl_job(
        (), BuildSpec(), platforms=(),
        deployment_image_id=f"{registry.host}/{NS}/secret:v-1", build_args={}, secret_ids=["npm.token"],
        context_dir=str(ctx), timeout=120, insecure=True,
        buildkit_host=daemon.addr, docker_config=daemon.docker_config, buildctl=daemon.buildctl,
    )
    assert secret not in " ".join(job.argv)
    process.run(job, secret_environment({"npm.token": secret}), seen.append)

    files = registry.files(f"{NS}/secret", "v-1")
    assert files["hash"].decode().strip() == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in line for line in seen)
    assert any("***" in line for line in seen)       # the `cat` printed it; the runner masked it
    assert secret not in json.dumps(registry.manifest(f"{NS}/secret", "v-1"))


def test_failing_run_step_is_permanent_with_the_last_lines(tmp_path: Path, fresh_daemon,
                                                           registry: Registry, base_image: str) -> None:
    ctx = context(tmp_path, f"FROM {base_image}\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(PermanentBuildError) as err:
        build(fresh_daemon(), ctx, f"{registry.host}/{NS}/fails", "v-1")
    message = str(err.value)
    assert "buildctl exited with code 1" in message  # buildctl's own exit code
    assert "about-to-fail" in message
    assert "exit code: 3" in message                 # BuildKit's report of the RUN step


def test_timeout_is_transient(tmp_path: Path, fresh_daemon, registry: Registry, base_image: str) -> None:
    ctx = context(tmp_path, f"FROM {base_image}\nRUN sleep 60\n")
    started = time.monotonic()
    with pytest.raises(TransientBuildError, match="timed out after 3 s"):
        build(fresh_daemon(), ctx, f"{registry.host}/{NS}/slow", "v-1", timeout=3)
    assert time.monotonic() - started < 30


def test_unreachable_daemon_is_transient(tmp_path: Path, daemon: Daemon, registry: Registry) -> None:
    ctx = context(tmp_path, "FROM scratch\n")
    job = buildctl_job(
        (), BuildSpec(), platforms=(), deployment_image_id=f"{registry.host}/{NS}/x:v-1",
        build_args={}, secret_ids=(), context_dir=str(ctx), timeout=30, insecure=True,
        buildkit_host="unix:///tmp/farm-no-such-buildkitd.sock", buildctl=daemon.buildctl,
    )
    with pytest.raises(TransientBuildError, match="unreachable"):
        process.run(job, {}, None)


def test_platforms_as_one_comma_joined_opt(tmp_path: Path, fresh_daemon, registry: Registry) -> None:
    # Both platforms run natively on amd64 hosts (386 is in the OCI worker's list), no emulation needed.
    ctx = context(tmp_path, "FROM scratch\nARG TARGETPLATFORM\nCOPY hello.txt /\n", **{"hello.txt": "hi\n"})
    build(fresh_daemon(), ctx, f"{registry.host}/{NS}/multi", "v-1",
          platforms=("linux/amd64", "linux/386"))
    index = registry.manifest(f"{NS}/multi", "v-1")
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]}
    assert platforms == {"linux/amd64", "linux/386"}
