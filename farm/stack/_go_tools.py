"""The Go tools the stack builds from the Go module proxy with ``scripts/install-*.sh``, cached
under ``~/.cache/farm`` (``FARM_CACHE_DIR``, as the scripts read it): found beside the package (a checkout or an editable install) and run when
their binaries are missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from farm.errors import StackError
from farm.stack._process import tail

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def cache_dir() -> Path:
    """Where the install scripts keep their builds, `<tool>-<version>/` each."""
    return Path(os.environ.get("FARM_CACHE_DIR") or Path.home() / ".cache" / "farm")


def run_install_script(name: str, log: Path) -> None:
    """Run ``scripts/<name>`` (it exits at once when its cache is warm), output appended to ``log``."""
    script = SCRIPTS / name
    if not script.is_file():
        raise StackError(f"{script} is missing (farm installed without its scripts); build the Go tools "
                         f"from a checkout with scripts/{name}")
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"farm stack: running scripts/{name} (a cold build takes many minutes; log: {log})",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.run(["bash", str(script)], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise StackError(f"scripts/{name} failed (exit {proc.returncode}) after "
                         f"{time.monotonic() - start:.0f}s. Last lines of {log}:\n{tail(log)}")
