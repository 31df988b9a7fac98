"""Shared pieces of the farm's end-to-end benchmarks: a project on disk, worker processes, timed CLI runs.

Each benchmark runs against the local stack (`make bench` starts it) and its own workers.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farm.broker import producer_app  # noqa: E402
from farm.settings import Settings  # noqa: E402
from tests.conftest import write_project  # noqa: E402,F401  (one way to write a Garden project)


def stack_env() -> dict[str, str]:
    from farm.stack import Stack

    st = Stack(Path(os.environ.get("FARM_STATE_DIR", ROOT / ".farm")))
    st.up()
    env = st.env()
    os.environ.update(env)
    return env


@contextmanager
def workers(*platform_sets: str, log_dir: Path) -> Iterator[None]:
    """One real `farm worker` process per comma-separated platform set, answering pings before the
    benchmark starts."""
    procs = []
    app = producer_app(Settings())
    try:
        for i, platforms in enumerate(platform_sets):
            log = open(log_dir / f"worker-{i}.log", "ab")
            argv = [sys.executable, "-m", "farm.cli", "worker", "-c", "1"]
            for platform in platforms.split(","):
                argv += ["--platform", platform]
            procs.append(subprocess.Popen(argv,
                                          stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            names = {n for reply in app.control.ping(timeout=1.0) or [] for n in reply}
            if all(any(f"farm-{p.pid}@" in n for n in names) for p in procs):
                break
        else:
            raise SystemExit(f"workers did not start; see {log_dir}")
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def farm_build(root: Path, *args: str) -> tuple[float, dict]:
    """Wall time of one `farm build --json` and its document; exits on a failed build."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--json", *args],
                         capture_output=True, text=True, cwd=ROOT)
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"farm build failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return elapsed, json.loads(out.stdout)


def median(xs: list[float]) -> float:
    return statistics.median(xs)
