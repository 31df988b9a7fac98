"""`farm publish` as a user runs it, between two REAL registries with auth: the stack's htpasswd
Distribution (the deployment registry, holding a two-platform index the test pushes under the
Build's version tag) and a second Distribution with token auth (the public registry)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm import plan as planning
from farm.errors import RegistryError
from farm.registry import RegistryClient
from farm.registry.credentials import Credentials
from farm.registry.manifests import IndexEntry, image_index
from tests.conftest import ROOT, write_project
from tests.e2e.test_cli_registry import docker_config, login, stack_login
from tests.integration.registry_services import Account, TokenIssuer, token_registry

pytestmark = pytest.mark.e2e

WRITER = "wr-" + uuid.uuid4().hex
READER = "rd-" + uuid.uuid4().hex
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def public_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    issuer = TokenIssuer(accounts={"writer": Account(lambda p: p == WRITER),
                                   "reader": Account(lambda p: p == READER, frozenset({"pull"}))})
    try:
        with token_registry(tmp_path_factory.mktemp("public-registry"), issuer) as host:
            yield host
    finally:
        issuer.stop()


def stack_client(stack_env: dict[str, str]) -> RegistryClient:
    host, auth = stack_login(stack_env)
    user, _, password = base64.b64decode(auth["auth"]).decode().partition(":")
    return RegistryClient(host, Credentials(user, password), insecure=True)


def push_index(c: RegistryClient, repo: str, tag: str) -> tuple[str, dict[str, bytes]]:
    """A two-platform OCI index under `tag` (each platform: a config and two layers of its own)."""
    entries, bodies = [], {}
    for platform in ("linux/amd64", "linux/arm64"):
        os_, arch = platform.split("/")
        config = json.dumps({"architecture": arch, "os": os_, "rootfs": {"type": "layers", "diff_ids": []},
                             "config": {"Labels": {"run": uuid.uuid4().hex}}}).encode()
        layers = [os.urandom(200_000), f"{platform} {uuid.uuid4()}".encode()]
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": c.push_blob(repo, config), "size": len(config)},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": c.push_blob(repo, b),
                           "size": len(b)} for b in layers]}
        body = json.dumps(doc).encode()
        digest = c.put_manifest(repo, f"{tag}-{arch}", body, OCI_MANIFEST)
        bodies[digest] = body
        entries.append(IndexEntry(platform, digest, OCI_MANIFEST, len(body)))
    index = image_index(entries)
    return c.put_manifest(repo, tag, index, "application/vnd.oci.image.index.v1+json"), {**bodies, "index": index}


def project(root: Path, public_host: str, stack_host: str) -> Path:
    proj = write_project(root, {n: {"Dockerfile": f"FROM scratch\nCOPY . /{n}\n"} for n in ("api", "lib", "web")})
    extra = {"api": f"spec:\n  publishId: {public_host}/pub/api\n",
             "lib": f"spec:\n  publishId: {stack_host}/public/lib:stable\n",
             "web": "allowPublish: false\n"}
    for name, text in extra.items():
        with open(proj / name / "garden.yml", "a") as f:
            f.write(text)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "publish"], cwd=proj,
                   check=True)
    return proj


def farm(args: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)


@pytest.fixture()
def built(stack_env: dict[str, str], public_host: str, tmp_path: Path) -> tuple[Path, dict[str, tuple[str, dict[str, bytes]]], dict[str, str]]:
    """The project, and the images its Builds' deployment refs hold (pushed as `farm build` would)."""
    proj = project(tmp_path / "p", public_host, stack_env["FARM_REGISTRY"])
    project_, versions = planning.load(proj)
    images, hashes = {}, {}
    with stack_client(stack_env) as c:
        for b in planning.plan(project_, versions).builds:
            repo = b.outputs.deployment_image_name.split("/", 1)[1]
            images[b.name] = push_index(c, repo, b.version.version_string)
            hashes[b.name] = b.version.version_string.removeprefix("v-")
    return proj, images, hashes


def test_publish_copies_the_index_and_every_platform_with_equal_digests(
        stack_env: dict[str, str], public_host: str, built: tuple[Path, dict[str, tuple[str, dict[str, bytes]]],
                                                                  dict[str, str]], tmp_path: Path) -> None:
    proj, images, hashes = built
    stack_host, stack_auth = stack_login(stack_env)
    config = docker_config(tmp_path / "cfg", {public_host: login("writer", WRITER), stack_host: stack_auth})

    out = farm(["publish", "api", "web", "lib", "--project", str(proj), "--tag", "${build.hash}-rel", "--json"],
               config)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "web: allowPublish is false, not published" in out.stderr
    result = {r["name"]: r for r in json.loads(out.stdout)["published"]}
    assert result["web"]["status"] == "skipped"

    api_digest, api_bodies = images["api"]
    api = result["api"]
    assert api["target"] == f"{public_host}/pub/api:{hashes['api']}-rel"
    assert api["digest"] == api_digest
    assert api["streamed"] == 6 and api["mounted"] == 0          # another registry: streamed, no daemon
    with RegistryClient(public_host, Credentials("reader", READER), insecure=True) as pub:
        got = pub.get_manifest("pub/api", f"{hashes['api']}-rel")
        assert got is not None and got[0].digest == api_digest and got[1] == api_bodies["index"]
        for entry in json.loads(got[1])["manifests"]:            # every platform manifest, byte for byte
            child = pub.get_manifest("pub/api", entry["digest"])
            assert child is not None and child[1] == api_bodies[entry["digest"]]
            for layer in json.loads(child[1])["layers"]:
                assert pub.head_blob("pub/api", layer["digest"]) == layer["size"]

    lib = result["lib"]                                          # --tag overrides publishId's own tag
    assert lib["target"] == f"{stack_host}/public/lib:{hashes['lib']}-rel"
    assert lib["digest"] == images["lib"][0]
    assert lib["mounted"] == 6 and lib["streamed"] == 0          # same registry: mounted across repositories

    again = farm(["publish", "api", "--project", str(proj)], config)  # publishId without tag: the version
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{public_host}/pub/api:v-{hashes['api']}@{api_digest}"
    assert "0 streamed (0 bytes), 6 already there" in again.stderr


def test_a_destination_the_login_cannot_push_to_fails_clearly(
        stack_env: dict[str, str], public_host: str, built: tuple[Path, dict[str, tuple[str, dict[str, bytes]]],
                                                                  dict[str, str]], tmp_path: Path) -> None:
    proj, _, _ = built
    stack_host, stack_auth = stack_login(stack_env)
    config = docker_config(tmp_path / "cfg", {public_host: login("reader", READER), stack_host: stack_auth})
    out = farm(["publish", "api", "--project", str(proj)], config)
    assert out.returncode == 1
    assert f"api: FAILED: cannot push to {public_host}/pub/api" in out.stderr
    assert READER not in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_a_bad_tag_template_is_one_line_exit_2(
        stack_env: dict[str, str], public_host: str, built: tuple[Path, dict[str, tuple[str, dict[str, bytes]]],
                                                                  dict[str, str]], tmp_path: Path) -> None:
    proj, _, _ = built
    config = docker_config(tmp_path / "cfg", {})
    out = farm(["publish", "api", "--project", str(proj), "--tag", "${build.nope}"], config)
    assert out.returncode == 2
    assert out.stderr.startswith("error: --tag '${build.nope}'") and len(out.stderr.strip().splitlines()) == 1


def test_a_single_platform_image_is_copied_as_is(stack_env: dict[str, str], public_host: str) -> None:
    """No index: the image manifest itself under the new tag, blobs streamed, digest kept."""
    from farm.publish import copy_image
    from tests.e2e.test_cli_gc import push_image

    repo = f"single-{uuid.uuid4().hex[:8]}/app"
    with stack_client(stack_env) as src, \
            RegistryClient(public_host, Credentials("writer", WRITER), insecure=True) as dst:
        digest, _ = push_image(src, repo, "v-1")
        done = copy_image(src, f"{src.host}/{repo}:v-1", dst, f"{public_host}/{repo}:1.0")
        assert (done.digest, done.manifests, done.streamed) == (digest, [digest], 2)
        got = dst.get_manifest(repo, "1.0")
        assert got is not None and got[0].digest == digest
        missing = copy_image(src, f"{src.host}/{repo}:v-1", dst, f"{public_host}/{repo}:1.0")
        assert missing.present == 2 and missing.streamed == 0
        with pytest.raises(RegistryError, match="has no manifest .*build it first"):
            copy_image(src, f"{src.host}/{repo}:v-404", dst, f"{public_host}/{repo}:x")
