"""`farm publish`'s registry-to-registry copy against skopeo (Debian's), the tool `garden plugins
kubernetes pull-image` uses, copying the same two-platform index between the same two registries in
the same run: the stack's registry (htpasswd) to a second Distribution on 127.0.0.1. skopeo runs
with --preserve-digests: without it, it rewrote this index (another digest), which a publish must not.

    eval "$(farm stack env)"; .venv/bin/python bench/publish.py [--mb 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from farm.publish import copy_image  # noqa: E402
from farm.registry import RegistryClient  # noqa: E402
from farm.registry.credentials import Credentials  # noqa: E402
from farm.registry.manifests import IndexEntry, image_index  # noqa: E402
from farm.stack._packages import ensure_binaries, which  # noqa: E402

OCI = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def second_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = root / "config.yml"
    conf.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
                    f"http: {{addr: 127.0.0.1:{port}, secret: {secrets.token_hex(8)}}}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1, trust_env=False).status_code == 200:
                return proc, f"127.0.0.1:{port}"
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the second registry did not start")


def push_index(c: RegistryClient, repo: str, mb: int) -> str:
    entries = []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux", "n": uuid.uuid4().hex}).encode()
        layers = [os.urandom(mb * 1_000_000 // 4) for _ in range(2)]    # half the MB per platform
        doc = {"schemaVersion": 2, "mediaType": OCI,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": c.push_blob(repo, config), "size": len(config)},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": c.push_blob(repo, b),
                           "size": len(b)} for b in layers]}
        body = json.dumps(doc).encode()
        entries.append(IndexEntry(f"linux/{arch}", c.put_manifest(repo, f"bench-{arch}", body, OCI), OCI, len(body)))
    return c.put_manifest(repo, "bench", image_index(entries), "application/vnd.oci.image.index.v1+json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=64, help="image size (both platforms together)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ensure_binaries(["skopeo", "docker-registry"])
    src_host = os.environ["FARM_REGISTRY"]
    config_dir = Path(os.environ["DOCKER_CONFIG"])
    auth = json.loads((config_dir / "config.json").read_text())["auths"][src_host]["auth"]
    user, _, password = base64.b64decode(auth).decode().partition(":")
    with RegistryClient(src_host, Credentials(user, password), insecure=True) as src:
        digest = push_index(src, "bench/publish-src", args.mb)
    farm_s, peer_s = [], []
    # Each copy goes to a registry of its own, started for it: skopeo remembers where it saw blobs
    # (its blob-info cache) and would mount them from an earlier round's repository instead of copying.
    for i in range(args.rounds):
        for tool in ("farm", "skopeo"):
            with tempfile.TemporaryDirectory() as tmp:
                proc, dst_host = second_registry(Path(tmp))
                try:
                    t = time.perf_counter()
                    if tool == "farm":
                        with RegistryClient(src_host, Credentials(user, password), insecure=True) as src, \
                                RegistryClient(dst_host, None, insecure=True) as dst:
                            done = copy_image(src, f"{src_host}/bench/publish-src:bench", dst,
                                              f"{dst_host}/pub/img:bench")
                        farm_s.append(time.perf_counter() - t)
                        assert done.digest == digest and done.streamed == 6
                    else:
                        subprocess.run([which("skopeo") or "skopeo", "copy", "--all", "--preserve-digests",
                                        "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                                        "--authfile", str(config_dir / "config.json"),
                                        f"docker://{src_host}/bench/publish-src:bench",
                                        f"docker://{dst_host}/pub/img:bench"], check=True)
                        peer_s.append(time.perf_counter() - t)
                    with RegistryClient(dst_host, None, insecure=True) as dst:
                        got = dst.head_manifest("pub/img", "bench")
                        assert got is not None and got.digest == digest, f"{tool} changed the index digest"
                finally:
                    proc.terminate()
                    proc.wait()
    f, p = statistics.median(farm_s), statistics.median(peer_s)
    print(f"image: 2 platforms, {args.mb} MB of layers; {args.rounds} rounds, medians")
    print(f"farm publish (copy_image)  {f:6.2f} s   {args.mb / f:6.1f} MB/s")
    print(f"skopeo copy --all          {p:6.2f} s   {args.mb / p:6.1f} MB/s")
    print(f"ratio farm/skopeo          {f / p:6.2f}")


if __name__ == "__main__":
    main()
