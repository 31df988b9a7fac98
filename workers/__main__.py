"""`python -m workers`: start a Celery worker on the queues of the modes this machine can build.

`farm worker` runs this (the producer package never imports the workers). The queues are one per
(mode, platform); a mode whose tools are missing is left out, with the reason printed.
"""

from __future__ import annotations

import argparse
import os
import sys

from farm.admission import parse_caps
from farm.broker import MERGE_QUEUE, MODES, machine_platform, queue_for, with_auth
from farm.settings import get_settings
from workers.builders import BUILDERS
from workers.capabilities import modes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="farm worker")
    ap.add_argument("--platform", action="append", default=[], help="a platform this worker builds for")
    ap.add_argument("--mode", action="append", default=[], help="a build mode to serve (default: all it can)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--loglevel", default="INFO")
    ap.add_argument("--name", default="farm-%h")
    args = ap.parse_args(argv)
    settings = get_settings()
    if problems := settings.time_problems():
        sys.exit("farm worker: " + "; ".join(problems))
    try:
        parse_caps(settings.namespace_caps)
    except ValueError as exc:
        sys.exit(f"farm worker: {exc}")
    wanted = args.mode or [m for m in MODES if m in BUILDERS]
    serving, why = modes(settings, wanted)
    for mode, reason in why.items():
        print(f"farm worker: not serving {mode}: {reason}", file=sys.stderr)
    if not serving:
        sys.exit("farm worker: this worker can run no build mode; see above")
    if "kaniko" in serving and settings.runtime != "kubernetes":
        from workers.runtimes.docker import reap

        for name in reap():     # executors of a worker killed mid-build on this host
            print(f"farm worker: removed container {name} of a worker that is gone", file=sys.stderr)
    queues = [queue_for(m, p) for m in serving for p in args.platform or [machine_platform()]] + [MERGE_QUEUE]
    print(f"farm worker: serving {', '.join(queues)}", file=sys.stderr)
    env = {**os.environ, "FARM_WORKER_QUEUES": ",".join(queues)}
    # The worker's own Redis user, on the broker and backend its environment names.
    for var, url in (("FARM_BROKER_URL", settings.broker_url), ("FARM_RESULT_BACKEND", settings.result_backend)):
        env[var] = with_auth(url, settings.worker_redis_auth)
    celery = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(queues), "-E",
              "-c", str(args.concurrency), "-n", args.name, f"--loglevel={args.loglevel}"]
    os.execvpe(celery[0], celery, env)


if __name__ == "__main__":
    main()
