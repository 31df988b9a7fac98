"""cluster-buildkit against a REAL buildkitd (OCI worker, runc) and a REAL registry (CNCF Distribution).

The binaries come from scripts/install-buildkit.sh ($HOME/.cache/farm/buildkit-v0.23.2/bin, built
on first use). Nothing can be pulled from the internet: the RUN steps use a busybox base image the
session builds `FROM scratch` from Debian's busybox-static and pushes to the test registry.
These tests never skip: when buildkitd or the registry can't start, they fail with its log.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.errors import PermanentBuildError, TransientBuildError
from farm.garden.models import BuildAction, KubernetesProvider
from farm.images import CacheRef, cache_refs, image_outputs
from workers.builders.cluster_buildkit import (
    BuildSpec,
    buildctl_job,
    run_buildctl,
    secret_environment,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VERSION = "v0.23.2"
BIN = Path(os.environ.get("FARM_CACHE_DIR", Path.home() / ".cache/farm")) / f"buildkit-{VERSION}" / "bin"
BUILDCTL = str(BIN / "buildctl")
OCI = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([
    OCI, "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    detail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    pytest.fail(f"{what} did not come up within {timeout} s\n{detail}")


# ---------------------------------------------------------------------------------------------
# The real services

@pytest.fixture(scope="session")
def buildkit_bin() -> Path:
    if not (BIN / "buildkitd").exists() or not (BIN / "buildctl").exists():
        run = subprocess.run(["bash", str(REPO / "scripts/install-buildkit.sh")],
                             capture_output=True, text=True)
        if run.returncode != 0:
            pytest.fail(f"scripts/install-buildkit.sh failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return BIN


@dataclass
class Registry:
    host: str               # 127.0.0.1:<port>

    def get(self, path: str, accept: str = ACCEPT) -> tuple[dict[str, str], bytes]:
        req = urllib.request.Request(f"http://{self.host}/v2/{path}", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(resp.headers), resp.read()

    def manifest(self, repo: str, ref: str) -> dict:
        return json.loads(self.get(f"{repo}/manifests/{ref}")[1])

    def digest(self, repo: str, ref: str) -> str | None:
        try:
            headers, _ = self.get(f"{repo}/manifests/{ref}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return headers["Docker-Content-Digest"]

    def files(self, repo: str, ref: str) -> dict[str, bytes]:
        """The regular files of a single-platform image, all layers merged."""
        out: dict[str, bytes] = {}
        for layer in self.manifest(repo, ref)["layers"]:
            _, blob = self.get(f"{repo}/blobs/{layer['digest']}", accept="*/*")
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        data = tar.extractfile(member)
                        assert data is not None
                        out[member.name.lstrip("./")] = data.read()
        return out


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry (Debian package docker-registry) is not installed")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    cfg = root / "cfg.yml"
    cfg.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = root / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    reg = Registry(f"127.0.0.1:{port}")

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited with {proc.returncode}:\n{log.read_text()}")
        try:
            reg.get("")
            return True
        except OSError:
            return False

    wait_until(up, 20, "docker-registry", log)
    yield reg
    proc.terminate()
    proc.wait(10)


class Buildkitd:
    """One real buildkitd, root + OCI worker + runc, with its state in a fresh directory."""

    def __init__(self, binary: Path, registry: Registry, state: Path) -> None:
        # unix socket paths are limited to ~107 bytes: keep it short, outside pytest's deep tmp dirs
        self.sock_dir = tempfile.mkdtemp(prefix="bk", dir="/tmp")
        self.addr = f"unix://{self.sock_dir}/s.sock"
        self.log = state / "buildkitd.log"
        config = state / "buildkitd.toml"
        config.write_text(f'[registry."{registry.host}"]\n  http = true\n  insecure = true\n')
        argv = [
            str(binary / "buildkitd"), "--root", str(state / "root"), "--addr", self.addr,
            "--config", str(config), "--oci-worker=true", "--containerd-worker=false",
            "--oci-worker-binary", shutil.which("runc") or "/usr/sbin/runc",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._ready, 30, "buildkitd", self.log)
        except BaseException:                   # pytest.fail raises a BaseException
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"buildkitd exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
        probe = subprocess.run([BUILDCTL, "--addr", self.addr, "debug", "workers"], capture_output=True)
        return probe.returncode == 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


@pytest.fixture
def start_buildkitd(buildkit_bin: Path, registry: Registry,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Buildkitd]]:
    """Start fresh daemons (empty --root) on demand; all are stopped after the test."""
    started: list[Buildkitd] = []

    def start() -> Buildkitd:
        daemon = Buildkitd(buildkit_bin, registry, tmp_path_factory.mktemp("buildkitd"))
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture(scope="session")
def base_image(buildkit_bin: Path, registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`<registry>/base/busybox:1`: busybox-static with its applets linked into /bin, built FROM scratch."""
    ctx = tmp_path_factory.mktemp("busybox")
    (ctx / "rootfs/bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", ctx / "rootfs/bin/busybox")
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n')
    daemon = Buildkitd(buildkit_bin, registry, tmp_path_factory.mktemp("buildkitd-base"))
    try:
        ref = f"{registry.host}/base/busybox:1"
        build(daemon, ctx, f"{registry.host}/base/busybox", "1", cache=())
    finally:
        daemon.stop()
    return ref


# ---------------------------------------------------------------------------------------------
# Building through the farm's own job + runner

def cache(image_name: str, mode: str, tag: str = "_buildcache", export: bool = True) -> CacheRef:
    """A resolved cache on the test registry (127.0.0.1:<port> resolves `auto` to inline)."""
    return CacheRef(ref=f"{image_name}:{tag}", mode=mode, export=export,  # type: ignore[arg-type]
                    insecure=True, image_manifest=False)


def build(daemon: Buildkitd, ctx: Path, image_name: str, tag: str, *,
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
    )
    return run_buildctl(job, buildkit_host=daemon.addr, docker_config=str(ctx.parent / "docker-config"),
                        secret_values=secret_environment(secrets or {}), buildctl=BUILDCTL)


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

def test_multistage_scratch_build_is_pushed(tmp_path: Path, start_buildkitd, registry: Registry) -> None:
    ctx = context(tmp_path, "FROM scratch AS a\nCOPY hello.txt /a/\n"
                            "FROM scratch\nCOPY --from=a /a/hello.txt /hello.txt\nCOPY other.txt /\n",
                  **{"hello.txt": "hello\n", "other.txt": "other\n"})
    # the default cache, resolved by the producer for this registry
    hostname, port = registry.host.split(":")
    deployment_registry = {"hostname": hostname, "port": int(port), "namespace": "team", "insecure": True}
    provider = KubernetesProvider.model_validate({"context": "c", "buildMode": "cluster-buildkit",
                                                  "deploymentRegistry": deployment_registry})
    action = BuildAction.model_validate({"name": "multistage", "configFile": ctx / "garden.yml",
                                         "sourceDir": ctx, "spec": {}})
    refs = tuple(cache_refs(action, provider))
    name = image_outputs(action, provider, "v-0000000001").deployment_image_name
    assert name == f"{registry.host}/team/multistage"
    build(start_buildkitd(), ctx, name, "v-0000000001", cache=refs)

    files = registry.files("team/multistage", "v-0000000001")
    assert files == {"hello.txt": b"hello\n", "other.txt": b"other\n"}
    # 127.0.0.1:<port> resolves `auto` to inline: the cache tag is pushed as a full image too
    image = registry.digest("team/multistage", "v-0000000001")
    assert registry.digest("team/multistage", "_buildcache") == image


RUN_DOCKERFILE = """FROM {base} AS build
COPY step1.txt /
RUN cat /step1.txt > /out1 && echo built-1
RUN cat /out1 /out1 > /out2 && echo built-2
FROM scratch
COPY --from=build /out2 /out2
COPY late.txt /
"""


@pytest.mark.parametrize("mode", ["max", "inline"])
def test_registry_cache_is_imported_by_a_fresh_daemon(mode: str, tmp_path: Path, start_buildkitd,
                                                       registry: Registry, base_image: str) -> None:
    dockerfile = RUN_DOCKERFILE.format(base=base_image)
    if mode == "inline":
        # mode=min/inline only records the final image's layers: build in one stage
        dockerfile = f"FROM {base_image}\nCOPY step1.txt /\nRUN cat /step1.txt > /out1 && echo built-1\n" \
                     "COPY late.txt /\n"
    ctx = context(tmp_path, dockerfile, **{"step1.txt": "one\n", "late.txt": "late\n"})
    name = f"{registry.host}/team/cache-{mode}"
    caches = (cache(name, mode),)

    first = build(start_buildkitd(), ctx, name, "v-1", cache=caches)
    assert not any("RUN" in step for step in cached_steps(first))
    assert ran(first, "built-1"), first
    assert registry.digest(f"team/cache-{mode}", "_buildcache") is not None

    # a fresh daemon (empty --root): only the registry cache can give hits
    second = build(start_buildkitd(), ctx, name, "v-2", cache=caches)
    cached = cached_steps(second)
    assert any("RUN cat /step1.txt" in step for step in cached), second
    assert not ran(second, "built-1"), second
    if mode == "max":
        assert any("RUN cat /out1 /out1" in step for step in cached), second


@pytest.mark.parametrize("mode", ["max", "inline"])
def test_branch_imports_main_cache_and_pushes_only_its_own(mode: str, tmp_path: Path, start_buildkitd,
                                                           registry: Registry, base_image: str) -> None:
    dockerfile = (f"FROM {base_image}\nCOPY step1.txt /\n"
                  "RUN cat /step1.txt > /out1 && echo built-1\nCOPY late.txt /\n")
    ctx = context(tmp_path, dockerfile, **{"step1.txt": "one\n", "late.txt": "main\n"})
    repo = f"team/branch-{mode}"
    name = f"{registry.host}/{repo}"
    build(start_buildkitd(), ctx, name, "v-main", cache=(cache(name, mode, "_buildcache-main"),))
    main_cache = registry.digest(repo, "_buildcache-main")
    assert main_cache is not None

    (ctx / "late.txt").write_text("feature\n")      # the branch changes a late layer only
    branch = (cache(name, mode, "_buildcache-feature-x"),
              cache(name, mode, "_buildcache-main", export=False))
    lines = build(start_buildkitd(), ctx, name, "v-feature", cache=branch)

    # the RUN step's result came from main's cache: its layers were fetched, the step never ran
    assert not ran(lines, "built-1"), "\n".join(lines)
    assert registry.digest(repo, "_buildcache-feature-x") is not None
    assert registry.digest(repo, "_buildcache-main") == main_cache     # never pushed by the branch
    assert registry.files(repo, "v-feature")["late.txt"] == b"feature\n"


def test_build_args_and_target_stage(tmp_path: Path, start_buildkitd, registry: Registry,
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
        deployment_image_id=f"{registry.host}/team/args:v-abc",
        build_args={"GARDEN_MODULE_VERSION": "v-abc", "GARDEN_ACTION_VERSION": "v-abc",
                    "GREETING": "hello", "FROM_ENV": None}, secret_ids=(),
        context_dir=str(ctx), timeout=120, insecure=True, arg_env={"FROM_ENV": "env-value"},
    )
    run_buildctl(job, buildkit_host=start_buildkitd().addr, buildctl=BUILDCTL)
    assert registry.files("team/args", "v-abc") == {"greeting": b"hello env-value v-abc\n"}


def test_secret_reaches_run_mount_and_never_the_log(tmp_path: Path, start_buildkitd, registry: Registry,
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
        deployment_image_id=f"{registry.host}/team/secret:v-1", build_args={}, secret_ids=["npm.token"],
        context_dir=str(ctx), timeout=120, insecure=True,
    )
    assert secret not in " ".join(job.argv)
    run_buildctl(job, buildkit_host=start_buildkitd().addr,
                 secret_values=secret_environment({"npm.token": secret}),
                 on_line=seen.append, buildctl=BUILDCTL)

    files = registry.files("team/secret", "v-1")
    assert files["hash"].decode().strip() == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in line for line in seen)
    assert any("***" in line for line in seen)       # the `cat` printed it; the runner masked it
    assert secret not in json.dumps(registry.manifest("team/secret", "v-1"))


def test_failing_run_step_is_permanent_with_the_last_lines(tmp_path: Path, start_buildkitd,
                                                           registry: Registry, base_image: str) -> None:
    ctx = context(tmp_path, f"FROM {base_image}\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(PermanentBuildError) as err:
        build(start_buildkitd(), ctx, f"{registry.host}/team/fails", "v-1")
    message = str(err.value)
    assert "buildctl exited with code 1" in message  # buildctl's own exit code
    assert "about-to-fail" in message
    assert "exit code: 3" in message                 # BuildKit's report of the RUN step


def test_timeout_is_transient(tmp_path: Path, start_buildkitd, registry: Registry, base_image: str) -> None:
    ctx = context(tmp_path, f"FROM {base_image}\nRUN sleep 60\n")
    started = time.monotonic()
    with pytest.raises(TransientBuildError, match="timed out after 3 s"):
        build(start_buildkitd(), ctx, f"{registry.host}/team/slow", "v-1", timeout=3)
    assert time.monotonic() - started < 30


def test_unreachable_daemon_is_transient(tmp_path: Path, buildkit_bin: Path, registry: Registry) -> None:
    ctx = context(tmp_path, "FROM scratch\n")
    job = buildctl_job(
        (), BuildSpec(), platforms=(), deployment_image_id=f"{registry.host}/team/x:v-1",
        build_args={}, secret_ids=(), context_dir=str(ctx), timeout=30, insecure=True,
    )
    with pytest.raises(TransientBuildError, match="unreachable"):
        run_buildctl(job, buildkit_host="unix:///tmp/farm-no-such-buildkitd.sock", buildctl=BUILDCTL)


def test_platforms_as_one_comma_joined_opt(tmp_path: Path, start_buildkitd, registry: Registry) -> None:
    # Both platforms run natively on amd64 hosts (386 is in the OCI worker's list), no emulation needed.
    ctx = context(tmp_path, "FROM scratch\nARG TARGETPLATFORM\nCOPY hello.txt /\n", **{"hello.txt": "hi\n"})
    build(start_buildkitd(), ctx, f"{registry.host}/team/multi", "v-1",
          platforms=("linux/amd64", "linux/386"))
    index = registry.manifest("team/multi", "v-1")
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]}
    assert platforms == {"linux/amd64", "linux/386"}
