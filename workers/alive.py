"""The worker's liveness probe: `python -m workers.alive [MAX_AGE_S]` exits 0 while the worker's own
presence beat (workers.presence, every 5 s) has touched $FARM_HEARTBEAT_FILE within MAX_AGE_S (60).

Not `celery inspect ping`: that asks the broker, so a Redis restart would fail every worker's probe
and restart workers in the middle of their builds; the beat goes on while Redis is away."""

from __future__ import annotations

import os
import sys
import time


def age(path: str, now: float | None = None) -> float | None:
    """Seconds since the heartbeat file was touched, None when it does not exist."""
    try:
        return (time.time() if now is None else now) - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str]) -> int:
    path = os.environ.get("FARM_HEARTBEAT_FILE", "")
    limit = float(argv[0]) if argv else 60.0
    if not path:
        print("FARM_HEARTBEAT_FILE is not set", file=sys.stderr)
        return 1
    seen = age(path)
    if seen is None or seen > limit:
        print(f"no heartbeat in {path} for {limit:.0f} s" if seen is None else
              f"last heartbeat {seen:.0f} s ago (limit {limit:.0f} s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
