"""`farm gc` as a user runs it, against the stack's REAL registry (tags written by the test, their
last-write times set in the registry's storage) and a real context store holding the contexts of a
live (queued) job, of a finished job, and fresh uploads, with the job record in the stack's Redis."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from farm import keys
from farm.context import build_manifest, open_store, upload_context
from farm.jobs import BuildRequest
from farm.registry import RegistryClient
from tests.conftest import ROOT, write_project
from tests.e2e.test_cli_publish import OCI_MANIFEST, stack_client

pytestmark = pytest.mark.e2e
DAY = 86400.0
CACHE = """\
    clusterBuildkit:
      cache:
        - type: registry
          tag: _buildcache-${slice(kebabCase(git.branch), "0", "30")}
        - type: registry
          tag: _buildcache-main
          export: false
"""


def push_image(c: RegistryClient, repo: str, tag: str, layer_bytes: int = 100_000) -> tuple[str, int]:
    """A single image of random layers under `tag`; returns its digest and the bytes of its blobs."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": uuid.uuid4().hex}).encode()
    layer = os.urandom(layer_bytes)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.push_blob(repo, config),
                      "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": c.push_blob(repo, layer),
                       "size": len(layer)}]}
    body = json.dumps(doc).encode()
    return c.put_manifest(repo, tag, body, OCI_MANIFEST), len(config) + len(layer) + len(body)


def tag_link(stack_env: dict[str, str], repo: str, tag: str) -> Path:
    return (Path(stack_env["FARM_STATE_DIR"]) / "registry/data/docker/registry/v2/repositories" / repo
            / "_manifests/tags" / tag / "current/link")


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def farm(args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **extra_env}, cwd=ROOT, timeout=120, check=False)


@pytest.fixture()
def registry_tags(stack_env: dict[str, str], tmp_path: Path) -> tuple[Path, str, dict[str, str], int]:
    """A cluster-buildkit project whose cache tag names the branch, and its cache image's tags at set ages."""
    namespace = "gc" + uuid.uuid4().hex[:10]
    proj = write_project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\nCOPY . /\n"}}, namespace=namespace,
                         mode="cluster-buildkit")
    with open(proj / "project.garden.yml", "a") as f:
        f.write(CACHE)
    repo = f"{namespace}/api"
    digests = {}
    with stack_client(stack_env) as c:
        for tag, days in [("_buildcache-feature-old", 20), ("_buildcache-feature-new", 1), ("_buildcache-main", 30),
                          ("_buildcache-feature-refreshed", 20), ("v-0123456789", 40), ("_buildcache", 40)]:
            digests[tag], size = push_image(c, repo, tag)
            if tag == "_buildcache-feature-old":
                old_size = size
            age(tag_link(stack_env, repo, tag), days)
        # A branch tag naming main's very manifest: deleting it would delete main's tag too.
        main = c.get_manifest(repo, "_buildcache-main")
        assert main is not None
        c.put_manifest(repo, "_buildcache-feature-shared", main[1], OCI_MANIFEST)
        age(tag_link(stack_env, repo, "_buildcache-feature-shared"), 20)
        # Pushed again today: its last write is now, not 20 days ago.
        refreshed = c.get_manifest(repo, "_buildcache-feature-refreshed")
        assert refreshed is not None
        c.put_manifest(repo, "_buildcache-feature-refreshed", refreshed[1], OCI_MANIFEST)
    return proj, repo, digests, old_size


@pytest.fixture()
def context_store(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """A store with contexts live (a queued job's), dead (old, no job) and fresh, plus orphan blobs."""
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    root = tmp_path / "store"
    ctx: dict[str, str] = {}
    blobs: dict[str, str] = {}

    def upload(name: str, files: dict[str, bytes], days: float) -> None:
        src = tmp_path / "src" / name
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
            blobs[f"{name}/{rel}"] = hashlib.sha256(data).hexdigest()
        manifest = build_manifest(src, sorted(files))
        upload_context(store, src, manifest)
        ctx[name] = manifest.digest.removeprefix("sha256:")
        for path in [root / "manifests/sha256" / f"{ctx[name]}.json",
                     *(root / "blobs/sha256" / blobs[f"{name}/{r}"][:2] / blobs[f"{name}/{r}"] for r in files)]:
            if path.stat().st_mtime > time.time() - days * DAY:
                age(path, days)

    shared = os.urandom(5000)
    upload("live", {"a": os.urandom(3000), "shared": shared}, 10)
    upload("dead", {"b": os.urandom(7000), "shared": shared}, 10)
    old_reused = os.urandom(2000)
    upload("old", {"o": old_reused}, 10)           # blob o: old, then named by a fresh context
    (root / "manifests/sha256" / f"{ctx['old']}.json").unlink()
    upload("fresh", {"c": os.urandom(1000), "o": old_reused}, 0)
    for name, days in (("orphan-old", 10), ("orphan-new", 0)):
        data = os.urandom(4000)
        f = tmp_path / name
        f.write_bytes(data)
        blobs[name] = hashlib.sha256(data).hexdigest()
        store.put_blob(blobs[name], f)
        if days:
            age(root / "blobs/sha256" / blobs[name][:2] / blobs[name], days)

    r = redis.Redis.from_url(stack_env["FARM_BROKER_URL"], decode_responses=True)
    job_id = "gc-test-" + uuid.uuid4().hex
    request = BuildRequest(job_id=job_id, project="farmtest", build="api", version="v-1", platform="linux/amd64",
                           mode="local-docker", image="x/y:v-1", context="sha256:" + ctx["live"], context_store=url)
    r.hset(keys.job(job_id), mapping={"status": "queued", "request": request.model_dump_json()})
    r.zadd(keys.history_state("queued"), {job_id: time.time()})
    try:
        yield url, ctx, blobs
    finally:
        r.delete(keys.job(job_id))
        r.zrem(keys.history_state("queued"), job_id)


def test_gc_deletes_stale_branch_tags_and_dead_contexts_only(
        stack_env: dict[str, str], registry_tags: tuple[Path, str, dict[str, str], int],
        context_store: tuple[str, dict[str, str], dict[str, str]]) -> None:
    proj, repo, digests, old_size = registry_tags
    url, ctx, blobs = context_store
    env = {"FARM_CONTEXT_STORE": url}
    store_root = Path(url.removeprefix("file://"))
    host = stack_env["FARM_REGISTRY"]

    dry = farm(["gc", "--project", str(proj), "--older-than", "14d", "--dry-run"], env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would delete {host}/{repo}:_buildcache-feature-old" in dry.stdout
    assert f"would delete context sha256:{ctx['dead']}" in dry.stdout
    with stack_client(stack_env) as c:
        assert c.head_manifest(repo, "_buildcache-feature-old") is not None    # a dry run deletes nothing
    assert (store_root / "manifests/sha256" / f"{ctx['dead']}.json").exists()

    out = farm(["gc", "--project", str(proj), "--older-than", "14d"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    deleted = [line.split(":", 2)[-1].split()[0] for line in out.stdout.splitlines()
               if line.startswith(f"delete {host}/")]
    assert deleted == ["_buildcache-feature-old"], out.stdout
    assert f"keep {host}/{repo}:_buildcache-feature-shared: its manifest is also _buildcache-main" in out.stdout
    with stack_client(stack_env) as c:
        tags = set(c.list_tags(repo))
        assert tags == {"_buildcache-feature-new", "_buildcache-main", "_buildcache-feature-refreshed",
                        "v-0123456789", "_buildcache", "_buildcache-feature-shared"}
        assert c.head_manifest(repo, digests["_buildcache-feature-old"]) is None
    summary = out.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"registry: 1 tag(s), {old_size / 1000:.1f} kB no other tag names"), summary

    manifests = {p.name.removesuffix(".json") for p in (store_root / "manifests/sha256").iterdir()}
    assert manifests == {ctx["live"], ctx["fresh"]}                 # the queued job's and the fresh one
    left = {p.name for p in (store_root / "blobs/sha256").glob("*/*")}
    gone = {blobs["dead/b"], blobs["orphan-old"]}
    kept = {blobs["live/a"], blobs["live/shared"], blobs["fresh/c"], blobs["fresh/o"], blobs["orphan-new"]}
    assert not gone & left and kept <= left
    assert "kept 1 context(s) of live jobs" in summary


def test_bad_durations_are_one_line_exit_2(stack_env: dict[str, str]) -> None:
    out = farm(["gc", "--older-than", "fortnight"], {})
    assert out.returncode == 2
    assert out.stderr.strip() == "error: --older-than 'fortnight': expected a duration such as 36h, 14d or 2w"


def test_a_bad_registry_storage_is_one_line_exit_2(stack_env: dict[str, str]) -> None:
    out = farm(["gc", "--registry-storage", "nodir"], {})
    assert out.returncode == 2
    assert out.stderr.strip() == "error: --registry-storage 'nodir': expected HOST=DIR"
