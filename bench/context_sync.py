"""Context sync: bytes and time to upload a build context, then re-upload after a one-file change.

Peers measured in the same run, on the same tree: `rsync -a` to a local directory (Debian's rsync)
and a full `tar | gzip` of the context. Goal after a one-file change: < 1% of the context's bytes
and <= 1.2x rsync's time.

    .venv/bin/python bench/context_sync.py [--files 10000] [--mb 200] [--rounds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from farm.context import BlobCache, HashIndex, build_manifest, materialise, open_store, upload_context

_TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(2000))


@dataclass
class Run:
    seconds: float
    bytes_sent: int


def make_tree(root: Path, n_files: int, total_mb: int, seed: int = 4) -> list[str]:
    """A repository-like tree: many small files, a few large ones (Pareto sizes), half text half random."""
    rng = random.Random(seed)
    sizes = [rng.paretovariate(1.2) for _ in range(n_files)]
    scale = total_mb * 1024 * 1024 / sum(sizes)
    files = []
    for i, s in enumerate(sizes):
        size = max(1, int(s * scale))
        rel = f"pkg{i % 40}/mod{i % 9}/file{i}.dat"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        half = size // 2
        body = rng.randbytes(half) + (_TEXT * (1 + (size - half) // len(_TEXT)))[: size - half]
        p.write_bytes(body)
        files.append(rel)
    return files


def farm_upload(src: Path, files: list[str], store_url: str, index_path: Path | None) -> tuple[Run, object]:
    t = time.perf_counter()
    index = HashIndex(index_path) if index_path else None
    manifest = build_manifest(src, files, index=index)
    stats = upload_context(open_store(store_url), src, manifest, index=index)
    if index is not None:
        index.save()
    return Run(time.perf_counter() - t, stats.uploaded_bytes + stats.manifest_bytes), (manifest, stats)


def rsync(src: Path, dst: Path) -> Run:
    t = time.perf_counter()
    out = subprocess.run(["rsync", "-a", "--stats", f"{src}/", f"{dst}/"], check=True,
                         capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - t
    m = re.search(r"Total bytes sent: ([\d,]+)", out)
    return Run(elapsed, int(m.group(1).replace(",", "")) if m else -1)


def tar_gzip(src: Path, out: Path) -> Run:
    t = time.perf_counter()
    subprocess.run(f"tar -cf - -C '{src}' . | gzip -c > '{out}'", shell=True, check=True)
    return Run(time.perf_counter() - t, out.stat().st_size)


def change_one_file(src: Path, files: list[str], k: int) -> None:
    # a one-line change to a small file, as a commit touching one source file would make
    path = src / files[(k * 7919) % len(files)]
    with open(path, "ab") as f:
        f.write(b"changed in round %d\n" % k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="work directory to use and keep (default: a temp dir)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="farm-bench-ctx-"))
    work.mkdir(parents=True, exist_ok=True)
    src, store, dst = work / "src", work / "store", work / "rsync-dst"
    try:
        for d in (src, store, dst, work / "store-noindex"):
            shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        files = make_tree(src, args.files, args.mb)
        total = sum((src / f).stat().st_size for f in files)
        os.sync()  # flush the tree's dirty pages, so the first measurement does not pay for them
        print(f"tree: {len(files)} files, {total / 1e6:.1f} MB, made in {time.perf_counter() - t:.1f}s ({work})")
        store_url = store.as_uri()
        index_path = work / "index.json"
        index_path.unlink(missing_ok=True)

        print("\n== initial upload ==")
        # the first reader of a fresh tree pays for cold metadata; rsync goes first, farm with and
        # without the index then see the same warm tree
        r0 = rsync(src, dst)
        n0, _ = farm_upload(src, files, (work / "store-noindex").as_uri(), None)
        f0, (_, stats) = farm_upload(src, files, store_url, index_path)
        g0 = tar_gzip(src, work / "ctx.tar.gz")
        print(f"farm (fs store)     {f0.seconds:7.3f}s  {f0.bytes_sent:>12,} bytes  "
              f"({stats.uploaded_files} blobs + manifest {stats.manifest_bytes:,} B)")  # type: ignore[attr-defined]
        print(f"farm, no index      {n0.seconds:7.3f}s  {n0.bytes_sent:>12,} bytes")
        print(f"rsync -a            {r0.seconds:7.3f}s  {r0.bytes_sent:>12,} bytes")
        print(f"tar | gzip          {g0.seconds:7.3f}s  {g0.bytes_sent:>12,} bytes")

        # Second runs settle the index (files hashed within a second of writing are not trusted yet).
        time.sleep(1.1)
        farm_upload(src, files, store_url, index_path)

        rows: dict[str, list[Run]] = {"farm": [], "farm_noindex": [], "rsync": [], "tar": []}
        for k in range(args.rounds):
            change_one_file(src, files, k)
            # alternate who goes first so neither always sees the colder cache
            order = ["farm", "rsync"] if k % 2 == 0 else ["rsync", "farm"]
            for who in order:
                if who == "farm":
                    rows["farm"].append(farm_upload(src, files, store_url, index_path)[0])
                else:
                    rows["rsync"].append(rsync(src, dst))
            rows["farm_noindex"].append(farm_upload(src, files, (work / "store-noindex").as_uri(), None)[0])
            rows["tar"].append(tar_gzip(src, work / "ctx.tar.gz"))

        def med(name: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in rows[name])

        print(f"\n== after a one-file change (median of {args.rounds} rounds) ==")
        for name, label in (("farm", "farm (fs store)"), ("farm_noindex", "farm, no index"),
                            ("rsync", "rsync -a"), ("tar", "tar | gzip")):
            secs = [f"{r.seconds:.3f}" for r in rows[name]]
            print(f"{label:<19} {med(name, 'seconds'):7.3f}s  {int(med(name, 'bytes_sent')):>12,} bytes"
                  f"   runs: {' '.join(secs)}")
        fb, fs = med("farm", "bytes_sent"), med("farm", "seconds")
        rs = med("rsync", "seconds")
        print(f"\nfarm bytes / context bytes   {fb / total:.4%}   (goal < 1%)   "
              f"{'OK' if fb / total < 0.01 else 'MISSED'}")
        print(f"farm bytes / rsync bytes     {fb / med('rsync', 'bytes_sent'):.2f}x")
        print(f"farm bytes / tar.gz bytes    {fb / med('tar', 'bytes_sent'):.4%}")
        print(f"farm time / rsync time       {fs / rs:.2f}x   (goal <= 1.2x)   {'OK' if fs / rs <= 1.2 else 'MISSED'}")
        print(f"farm no-index time / rsync   {med('farm_noindex', 'seconds') / rs:.2f}x")
        print(f"farm time / tar|gzip time    {fs / med('tar', 'seconds'):.3f}x")

        print("\n== worker side: materialise on a second machine ==")
        final = build_manifest(src, files)
        cache = BlobCache(work / "cache", 10 * 1024**3)
        for label in ("cold cache", "warm cache"):
            shutil.rmtree(work / "build", ignore_errors=True)
            t = time.perf_counter()
            materialise(open_store(store_url), final.digest, work / "build", cache)
            print(f"materialise, {label:<10} {time.perf_counter() - t:7.3f}s  fetched {cache.fetched_bytes:,} "
                  f"bytes so far ({cache.misses} blobs), hits {cache.hits}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
