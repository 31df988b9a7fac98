"""farm.stack against the real services it starts (integration: redis-server, docker-registry,
dockerd + containerd, Flower, buildkitd when installed).

Every stack here lives in a temporary state directory on free, non-default ports, so it never
touches the developer's own stack in ./.farm on the default ports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from farm.errors import StackError
from farm.stack import DEFAULT_SERVICES, SERVICES, Stack
from farm.stack._mounts import mounts_under
from farm.stack._process import ProcessRecord
from farm.stack._services import buildkit_bin

pytestmark = pytest.mark.integration

MANIFEST_ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_env(mp: pytest.MonkeyPatch) -> None:
    redis_port, registry_port, flower_port, metrics_port = free_ports(4)
    mp.setenv("FARM_REDIS_PORT", str(redis_port))
    mp.setenv("FARM_REGISTRY_PORT", str(registry_port))
    mp.setenv("FARM_FLOWER_PORT", str(flower_port))
    mp.setenv("FARM_METRICS_PORT", str(metrics_port))


def pids(st: Stack) -> dict[str, int]:
    """unit name -> pid, for every pidfile of the stack."""
    out = {}
    for f in sorted(st.paths.pids.glob("*.pid")):
        rec = ProcessRecord.read(f)
        assert rec is not None, f
        out[f.stem] = rec.pid
    return out


def pid_exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def registry_auth(env: dict[str, str]) -> tuple[str, str]:
    """The registry login, read the way clients read it: from $DOCKER_CONFIG/config.json."""
    config = json.loads((Path(env["DOCKER_CONFIG"]) / "config.json").read_text())
    auth = config["auths"][env["FARM_REGISTRY"]]["auth"]
    user, _, password = base64.b64decode(auth).decode().partition(":")
    return user, password


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module, brought up by the first test that needs it and always torn down."""
    with pytest.MonkeyPatch.context() as mp:
        port_env(mp)
        st = Stack(tmp_path_factory.mktemp("stack") / "state")
        try:
            yield st
        finally:
            st.down()


@pytest.fixture(scope="module")
def up_stack(stack: Stack) -> Stack:
    stack.up()
    return stack


def test_up_starts_the_four_default_services(up_stack: Stack) -> None:
    status = up_stack.status()
    assert set(status) == set(SERVICES)
    for name in DEFAULT_SERVICES:
        assert status[name].startswith("running (pid "), status
    assert status["buildkitd"] in ("stopped",) or status["buildkitd"].startswith("running")
    logs = {p.name for p in up_stack.paths.logs.iterdir()}
    assert {"redis.log", "registry.log", "docker.log", "containerd.log", "flower.log"} <= logs


def test_up_twice_leaves_running_services_alone(up_stack: Stack) -> None:
    before = pids(up_stack)
    started = time.monotonic()
    up_stack.up()
    assert pids(up_stack) == before
    assert time.monotonic() - started < 10


def test_env_is_export_ready_and_keeps_the_password_out(up_stack: Stack) -> None:
    env = up_stack.env()
    assert set(env) >= {"FARM_STATE_DIR", "FARM_BROKER_URL", "FARM_RESULT_BACKEND", "FARM_REGISTRY",
                        "FARM_REGISTRY_USER", "DOCKER_HOST", "DOCKER_CONFIG", "FARM_FLOWER_URL",
                        "FARM_BASE_IMAGE"}
    assert env["FARM_STATE_DIR"] == str(up_stack.paths.state)
    port = os.environ["FARM_REDIS_PORT"]
    assert re.fullmatch(rf"redis://producer:[0-9a-f]{{48}}@127\.0\.0\.1:{port}/0", env["FARM_BROKER_URL"])
    assert re.fullmatch(rf"redis://producer:[0-9a-f]{{48}}@127\.0\.0\.1:{port}/1", env["FARM_RESULT_BACKEND"])
    assert re.fullmatch(r"worker:[0-9a-f]{48}", env["FARM_WORKER_REDIS_AUTH"])
    assert env["FARM_REGISTRY"] == f"127.0.0.1:{os.environ['FARM_REGISTRY_PORT']}"
    assert env["FARM_REGISTRY_USER"] == "farm"
    _, password = registry_auth(env)
    assert all(password not in v for v in env.values())
    assert all("'" not in v for v in env.values())  # printable as export K='V'


def test_redis_answers_on_the_broker_and_backend_urls(up_stack: Stack) -> None:
    env = up_stack.env()
    for url in (env["FARM_BROKER_URL"], env["FARM_RESULT_BACKEND"]):
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    admin = redis.Redis.from_url(env["FARM_REDIS_ADMIN_URL"])
    assert admin.config_get("appendonly")["appendonly"] == "yes"
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    admin.close()


def test_registry_needs_the_credentials_from_docker_config(up_stack: Stack) -> None:
    env = up_stack.env()
    url = f"http://{env['FARM_REGISTRY']}/v2/"
    assert httpx.get(url, trust_env=False).status_code == 401
    assert httpx.get(url, auth=registry_auth(env), trust_env=False).status_code == 200
    assert httpx.get(url, auth=("farm", "wrong"), trust_env=False).status_code == 401


def test_docker_engine_answers_on_docker_host(up_stack: Stack) -> None:
    sock = up_stack.env()["DOCKER_HOST"].removeprefix("unix://")
    with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://docker") as engine:
        assert engine.get("/_ping").text == "OK"
        info = engine.get("/info").json()
    assert info["DockerRootDir"].startswith(str(up_stack.paths.state))


def test_base_image_is_in_the_registry_and_runs(up_stack: Stack) -> None:
    env = up_stack.env()
    ref = up_stack.base_image()
    assert ref == env["FARM_BASE_IMAGE"] == f"{env['FARM_REGISTRY']}/library/busybox:1.36"
    url = f"http://{env['FARM_REGISTRY']}/v2/library/busybox/manifests/1.36"
    r = httpx.head(url, auth=registry_auth(env), headers={"Accept": MANIFEST_ACCEPT}, trust_env=False)
    assert r.status_code == 200

    sock = env["DOCKER_HOST"].removeprefix("unix://")
    with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://docker/v1.41",
                      timeout=60) as engine:
        created = engine.post("/containers/create", json={
            "Image": ref, "Cmd": ["sh", "-c", "echo hello from $(cat /etc/passwd | head -c 4)"],
            "HostConfig": {"NetworkMode": "none"}})
        assert created.status_code == 201, created.text
        cid = created.json()["Id"]
        try:
            assert engine.post(f"/containers/{cid}/start").status_code == 204
            assert engine.post(f"/containers/{cid}/wait").json()["StatusCode"] == 0
            logs = engine.get(f"/containers/{cid}/logs", params={"stdout": 1}).content
        finally:
            engine.delete(f"/containers/{cid}", params={"force": 1})
    assert b"hello from root" in logs


def test_flower_answers(up_stack: Stack) -> None:
    r = httpx.get(up_stack.env()["FARM_FLOWER_URL"] + "/healthcheck", trust_env=False)
    assert r.status_code == 200


def test_running_stack_refuses_to_move_ports(up_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_REDIS_PORT", str(free_ports(1)[0]))
    with pytest.raises(StackError, match="already runs redis"):
        up_stack.up()


def test_unknown_service_is_a_stack_error(up_stack: Stack) -> None:
    with pytest.raises(StackError, match="unknown stack service"):
        up_stack.up(["redis", "postgres"])


def test_buildkitd_builds_from_the_base_image_and_pushes(up_stack: Stack, tmp_path: Path) -> None:
    # `make test` installs BuildKit first; without it this fails (with up()'s message), never skips.
    up_stack.up(["buildkitd"])
    env = up_stack.env()
    assert env["BUILDKIT_HOST"].startswith("unix://")
    assert up_stack.status()["buildkitd"].startswith("running")
    (tmp_path / "Dockerfile").write_text(f"FROM {env['FARM_BASE_IMAGE']}\nRUN echo built > /built\n")
    image = f"{env['FARM_REGISTRY']}/test/stack-buildkit:1"
    argv = [str(buildkit_bin("buildctl")), "--addr", env["BUILDKIT_HOST"], "build",
            "--frontend", "dockerfile.v0", "--local", f"context={tmp_path}",
            "--local", f"dockerfile={tmp_path}", "--output", f"type=image,name={image},push=true"]
    proc = subprocess.run(argv, env={**os.environ, "DOCKER_CONFIG": env["DOCKER_CONFIG"]},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    url = f"http://{env['FARM_REGISTRY']}/v2/test/stack-buildkit/manifests/1"
    r = httpx.head(url, auth=registry_auth(env), headers={"Accept": MANIFEST_ACCEPT}, trust_env=False)
    assert r.status_code == 200


def test_second_stack_runs_beside_the_first_and_survives_a_crash(
        up_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port_env(monkeypatch)
    other = Stack(tmp_path / "other")
    try:
        other.up()
        a, b = up_stack.env(), other.env()
        assert a["DOCKER_HOST"] != b["DOCKER_HOST"] and up_stack.paths.run != other.paths.run
        for env in (a, b):
            sock = env["DOCKER_HOST"].removeprefix("unix://")
            with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://docker") as engine:
                assert engine.get("/_ping").text == "OK"

        # Crash: every process of the second stack dies at once (SIGKILL, no cleanup).
        for pid in pids(other).values():
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(pid_exists(p) for p in pids(other).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(other.status().values()) == {"stopped"}
        assert all(v.startswith("running") for k, v in up_stack.status().items() if k in DEFAULT_SERVICES)

        other.up()  # stale pidfiles and sockets are cleared, everything comes back
        assert all(other.status()[name].startswith("running") for name in DEFAULT_SERVICES)
    finally:
        other.down()
    assert mounts_under(other.paths.state, other.paths.run) == []
    assert not other.paths.run.exists()


def test_down_stops_exactly_our_pids_and_up_comes_back(up_stack: Stack) -> None:
    ours = pids(up_stack)
    assert {"redis", "registry", "containerd", "docker", "flower"} <= set(ours)
    assert all(pid_exists(p) for p in ours.values())

    up_stack.down()
    assert all(not pid_exists(p) for p in ours.values())
    assert set(up_stack.status().values()) == {"stopped"}
    assert list(up_stack.paths.pids.glob("*.pid")) == []

    # State survives: a second up is warm, and the pushed base image is still there (no re-push).
    up_stack.up()
    assert set(pids(up_stack).values()).isdisjoint(ours.values())
    env = up_stack.env()
    url = f"http://{env['FARM_REGISTRY']}/v2/library/busybox/manifests/1.36"
    r = httpx.head(url, auth=registry_auth(env), headers={"Accept": MANIFEST_ACCEPT}, trust_env=False)
    assert r.status_code == 200


# --- stacks of their own: failures and strangers ----------------------------------------------

@pytest.fixture
def own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    port_env(monkeypatch)


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _stat(pid: int) -> tuple[int, str]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]), os.readlink(f"/proc/{pid}/exe")


@pytest.mark.parametrize("forgery", ["bare-pid", "wrong-start-time", "wrong-binary", "garbage"])
def test_down_never_signals_a_process_it_did_not_start(
        tmp_path: Path, own_ports: None, stranger: subprocess.Popen[bytes], forgery: str) -> None:
    st = Stack(tmp_path / "state")
    start, exe = _stat(stranger.pid)
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    record = {"pid": stranger.pid, "start_ticks": start, "boot_id": boot,
              "exe": "/usr/bin/redis-server", "argv": ["redis-server"]}
    if forgery == "wrong-start-time":
        record.update(exe=exe, start_ticks=start - 1)
    text = {"bare-pid": f"{stranger.pid}\n", "garbage": "not a pidfile"}.get(forgery, json.dumps(record))
    st.paths.pids.mkdir(parents=True)
    pidfile = st.paths.pidfile("redis")
    pidfile.write_text(text)

    assert st.status()["redis"] == "stopped"
    st.down()
    time.sleep(0.2)
    assert stranger.poll() is None, "down() killed a process it did not start"
    assert not pidfile.exists()


def test_port_taken_by_a_stranger_is_refused(tmp_path: Path, own_ports: None) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(os.environ["FARM_REDIS_PORT"])))
        squatter.listen()
        st = Stack(tmp_path / "state")
        with pytest.raises(StackError, match=r"taken by another process.*FARM_REDIS_PORT"):
            st.up(["redis"])
    assert st.status()["redis"] == "stopped"


def test_failed_start_names_the_service_and_quotes_its_log(tmp_path: Path, own_ports: None) -> None:
    st = Stack(tmp_path / "state")
    # A file where redis wants its append-only directory: redis-server refuses to start.
    (st.paths.redis_dir).mkdir(parents=True)
    (st.paths.redis_dir / "appendonlydir").write_text("in the way")
    with pytest.raises(StackError) as err:
        st.up(["redis"])
    message = str(err.value)
    assert message.startswith("redis failed to start")
    assert "appendonly" in message.lower()
    assert st.status()["redis"] == "stopped"
    assert not st.paths.pidfile("redis").exists()
    st.down()


def test_flower_alone_brings_redis_first(tmp_path: Path, own_ports: None) -> None:
    st = Stack(tmp_path / "state")
    try:
        st.up(["flower"])
        status = st.status()
        assert status["redis"].startswith("running") and status["flower"].startswith("running")
        assert status["docker"] == "stopped"
    finally:
        st.down()
    assert set(st.status().values()) == {"stopped"}


def test_env_before_any_up_is_a_stack_error(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="run `farm stack up`"):
        Stack(tmp_path / "never").env()


# --- security: Redis ACL users, Flower's login, file modes --------------------------------------

def test_redis_refuses_anonymous_clients_and_limits_each_user(up_stack: Stack) -> None:
    env = up_stack.env()
    port = int(os.environ["FARM_REDIS_PORT"])
    anonymous = redis.Redis(port=port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        anonymous.lpush("build.local-docker.linux-amd64", "an injected task")
    producer = redis.Redis.from_url(env["FARM_BROKER_URL"])
    assert producer.ping()
    for command in (("CONFIG", "GET", "dir"), ("FLUSHALL",), ("KEYS", "*"), ("MONITOR",), ("ACL", "LIST"),
                    ("SAVE",), ("SHUTDOWN",)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            producer.execute_command(*command)
    user, _, password = env["FARM_WORKER_REDIS_AUTH"].partition(":")
    worker = redis.Redis(port=port, username=user, password=password)
    assert worker.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.config_get("dir")
    flower_password = (up_stack.paths.state / "secrets" / "redis-flower.password").read_text().strip()
    flower = redis.Redis(port=port, username="flower", password=flower_password)
    assert flower.hgetall("farm:job:none") == {}
    for write in (lambda: flower.hset("farm:job:x", "status", "built"), lambda: flower.xadd("farm:log:x", {"a": "b"}),
                  lambda: flower.flushdb()):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
    admin = redis.Redis.from_url(env["FARM_REDIS_ADMIN_URL"])
    assert admin.config_get("appendonly") == {"appendonly": "yes"}


def test_flower_needs_its_login(up_stack: Stack) -> None:
    env = up_stack.env()
    url = httpx.URL(env["FARM_FLOWER_URL"])
    bare = f"http://{url.host}:{url.port}"
    assert httpx.post(f"{bare}/api/task/revoke/0123", trust_env=False).status_code == 401
    assert httpx.get(f"{bare}/api/workers", trust_env=False).status_code == 401
    assert httpx.get(f"{bare}/", trust_env=False).status_code == 401
    assert httpx.get(f"{bare}/api/workers", auth=("farm", "wrong"), trust_env=False).status_code == 401
    assert httpx.get(f"{env['FARM_FLOWER_URL']}/api/workers", trust_env=False).status_code == 200
    # its login never on a command line
    record = ProcessRecord.read(up_stack.paths.pidfile("flower"))
    assert record is not None
    cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes()
    assert url.password.encode() not in cmdline and b"flower:" not in cmdline


def test_credentials_and_data_are_private(up_stack: Stack) -> None:
    state = up_stack.paths.state
    assert state.stat().st_mode & 0o777 == 0o700
    for d in (state / "secrets", state / "redis"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    redis.Redis.from_url(up_stack.env()["FARM_REDIS_ADMIN_URL"]).save()     # an RDB file to look at
    files = [*(state / "secrets").iterdir(), *(p for p in (state / "redis").rglob("*") if p.is_file()),
             state / "registry" / "password", state / "registry" / "htpasswd",
             state / "docker-config" / "config.json", state / "config" / "registry.yml"]
    assert any(p.name == "dump.rdb" for p in files) and any("appendonly" in str(p) for p in files)
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600, f
    acl = (state / "redis" / "users.acl").read_text()
    for f in (state / "secrets").iterdir():
        assert f.read_text().strip() not in acl           # hashes only
