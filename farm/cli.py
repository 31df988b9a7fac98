"""The `farm` command: build, worker, stack, config.

Every failure a user can cause ends in one line on stderr and a non-zero exit: 2 for usage and
config errors, 1 for everything else. No traceback reaches the user (FARM_DEBUG=1 shows it).
"""

from __future__ import annotations

import json
import os
import platform as _platform
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from farm.errors import FarmError, UsageError
from farm.settings import get_settings


def _err(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """A shared, queue-based container image build farm for Garden projects."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _err("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except FarmError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if os.environ.get("FARM_DEBUG"):
            traceback.print_exc()
        _err(f"internal error: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
             " (FARM_DEBUG=1 shows the traceback)")
        sys.exit(1)


def machine_platform() -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(_platform.machine(), _platform.machine())
    return f"linux/{arch}"


# -- farm build ---------------------------------------------------------------------------------

@cli.command()
@click.argument("names", nargs=-1)
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The Garden project root (holds project.garden.yml).")
@click.option("--env", "env_name", default=None, help="Garden environment (default: the project's defaultEnvironment).")
@click.option("--platform", "platforms", multiple=True, help="Build for this platform (repeatable); overrides spec.platforms.")
@click.option("--force", is_flag=True, help="Build even when the registry already has the image.")
@click.option("--no-wait", is_flag=True, help="Enqueue and return the job ids without waiting.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--multi-platform", type=click.Choice(["fan-out", "one-call"]), default=None,
              help="Several platforms: a job per platform merged into an index (default), or one "
                   "cluster-buildkit call for all of them ($FARM_MULTI_PLATFORM).")
def build(names: tuple[str, ...], project_dir: Path, env_name: str | None, platforms: tuple[str, ...],
          force: bool, no_wait: bool, as_json: bool, multi_platform: str | None) -> None:
    """Build the project's container Builds (all, or NAMES) on the farm and push them."""
    from farm import build as flow
    from farm.garden import load_project
    from farm.version import compute_versions

    settings = get_settings()
    project = load_project(project_dir.resolve(), env_name)
    one_call = (multi_platform or settings.multi_platform) == "one-call"
    waves = flow.plan(project, compute_versions(project), names, platforms, one_call=one_call)
    outcome = flow.run(project, waves, settings, force=force, wait=not no_wait, say=_err, progress=_progress,
                       on_line=lambda job, text: _err(f"{job.build}|{getattr(job, 'platform', 'index')}| {text}"))
    results, contexts, queued_ids = outcome.results, outcome.contexts, outcome.queued
    if no_wait:
        out = {"builds": [r.model_dump() for rs in results.values() for r in rs], "queued": queued_ids}
        click.echo(json.dumps(out, indent=2) if as_json else "\n".join(q["job_id"] for q in queued_ids))
        return
    summary = [{**_summarise(name, rs), "context": contexts.get(name)} for name, rs in sorted(results.items())]
    if as_json:
        click.echo(json.dumps({"builds": summary}, indent=2))
    else:
        for s in summary:
            if s["status"] == "failed":
                _err(f"{s['name']}: FAILED: {s['error']}")
                for tail in s.get("log_tail", [])[-10:]:
                    _err(f"    {tail}")
            else:
                click.echo(f"{s['image']}@{s['digest']}")
        _err(f"Flower: {settings.flower_url}")
    if any(s["status"] == "failed" for s in summary):
        sys.exit(1)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _progress(name: str) -> Any:
    """Context upload progress on stderr, at most every 10% (a line per step keeps CI logs readable)."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        step = 10 * done // total if total else 10
        if total and step != shown[0] and total > 1_000_000:
            shown[0] = step
            _err(f"{name}: sending context {_size(done)} / {_size(total)}")

    return report


def _summarise(name: str, results: list[Any]) -> dict[str, Any]:
    """One entry of `--json` per Build, whatever the number of platforms."""
    index = next((r for r in results if r.kind == "index"), None)
    platforms = sorted((r for r in results if r.kind == "platform" and r.platform), key=lambda r: r.platform)
    top = index or results[0]
    failed = [r for r in results if r.status == "failed"]
    status = "failed" if failed else ("cached" if all(r.status == "cached" for r in results) else "built")
    entry: dict[str, Any] = {
        "name": name, "version": top.version, "image": top.image,
        "digest": top.digest if (index or len(results) == 1) and not failed else None, "status": status,
        "timings": top.timings,
        "platforms": [{"platform": r.platform, "image": r.image, "digest": r.digest, "status": r.status,
                       "job_id": r.job_id, "error": r.error, "timings": r.timings} for r in platforms],
    }
    if failed:
        first = next((r for r in failed if r.kind == "platform"), failed[0])
        entry["error"] = "; ".join(f"{r.platform or 'index'}: {r.error}" for r in failed)
        entry["log_tail"] = first.log_tail
    return entry


# -- farm status / farm logs: jobs sent with --no-wait, or by another machine -------------------

def _job_store() -> Any:
    from farm.broker import check_broker, redis_client
    from farm.jobs import JobStore

    settings = get_settings()
    client = redis_client(settings)
    check_broker(client, settings.broker_url)
    return JobStore(client)


@cli.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def status(job_ids: tuple[str, ...], as_json: bool) -> None:
    """Show the record of build jobs: status, image, digest, error."""
    store = _job_store()
    records = {job_id: store.get(job_id) for job_id in job_ids}
    unknown = [j for j, r in records.items() if not r]
    if unknown:
        raise UsageError(f"no such job: {', '.join(unknown)} (job records expire after 7 days)")
    if as_json:
        click.echo(json.dumps({"jobs": [{"job_id": j, **r} for j, r in records.items()]}, indent=2))
        return
    for job_id, r in records.items():
        where = f"{r.get('image', '')}@{r['digest']}" if r.get("digest") else r.get("image", "")
        click.echo(f"{job_id}  {r.get('build', '')} {r.get('platform', '')}  {r.get('status', '')}  {where}"
                   + (f"  {r['error']}" if r.get("error") else ""))


@cli.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep following until the job ends.")
def logs(job_id: str, follow: bool) -> None:
    """Print a build job's log (its builder's output)."""
    store = _job_store()
    if not store.get(job_id):
        raise UsageError(f"no such job: {job_id} (job records expire after 7 days)")
    cursors: dict[str, str] = {}
    while True:
        for _, text in store.follow([job_id], cursors, block_ms=1000 if follow else 1):
            click.echo(text)
        if not follow or store.get(job_id).get("status") in ("built", "failed"):
            # one last drain: lines written just before the record changed
            for _, text in store.follow([job_id], cursors, block_ms=1):
                click.echo(text)
            return


# -- farm worker --------------------------------------------------------------------------------

@cli.command()
@click.option("--queues", "-Q", default=None, help="Comma-separated queues (default: this machine's platform queue).")
@click.option("--platform", "platforms", multiple=True, help="Consume this platform's queue (repeatable).")
@click.option("--concurrency", "-c", default=1, show_default=True, help="Builds run at once.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(queues: str | None, platforms: tuple[str, ...], concurrency: int, loglevel: str) -> None:
    """Run a build worker (a Celery worker with the farm's app) in the foreground.

    It consumes its platform queues and `build.merge` (index merges need only the registry API).
    """
    os.execvp(sys.executable, worker_argv(queues, platforms, concurrency, loglevel))


def worker_argv(queues: str | None, platforms: tuple[str, ...], concurrency: int, loglevel: str) -> list[str]:
    from farm.broker import MERGE_QUEUE, queue_for

    names = [q for q in (queues or "").split(",") if q] + [queue_for(p) for p in platforms]
    if not names:
        names = [queue_for(machine_platform())]
    names = list(dict.fromkeys([*names, MERGE_QUEUE]))
    return [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(names), "-E",
            "-c", str(concurrency), "-n", f"farm-{os.getpid()}@%h", f"--loglevel={loglevel}"]


LOCAL_QUEUES = ("build.linux-amd64", "build.linux-arm64", "build.linux-arm-v7")

# -- farm stack ---------------------------------------------------------------------------------

@cli.group()
def stack() -> None:
    """The local farm stack: Redis, a registry, a Docker engine, Flower."""


def _stack(state_dir: Path | None) -> Any:
    from farm.stack import Stack

    return Stack(state_dir)


_state_opt = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="Where the stack keeps its data (default: $FARM_STATE_DIR or ./.farm).")


@stack.command("up")
@_state_opt
@click.option("--with", "extra", multiple=True, help="Also start an optional service (buildkitd, worker).")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also start what this Garden project's build mode needs (buildkitd for cluster-buildkit).")
def stack_up(state_dir: Path | None, extra: tuple[str, ...], project_dir: Path | None) -> None:
    """Start the stack (idempotent)."""
    from farm.stack import DEFAULT_SERVICES

    if project_dir is not None:
        from farm.garden import load_project

        provider = load_project(project_dir.resolve()).provider
        if provider is not None and provider.build_mode == "cluster-buildkit":
            extra = (*extra, "buildkitd")
    st = _stack(state_dir)
    st.up(list(DEFAULT_SERVICES) + [s for s in extra if s != "worker"])
    if "worker" in extra:
        _start_worker(st)
    for name, status in st.status().items():
        _err(f"{name:10} {status}")
    _err(f"{'worker':10} {_worker_status(st)}")
    _err('Use it from a shell with: eval "$(farm stack env)"')


@stack.command("down")
@_state_opt
def stack_down(state_dir: Path | None) -> None:
    """Stop what `farm stack up` started (by pid)."""
    from farm.stack._process import ProcessRecord, stop

    st = _stack(state_dir)
    record = ProcessRecord.read(_worker_pidfile(st))
    if record:
        stop(record, timeout=60)  # warm shutdown: a running build finishes or is re-queued
        _worker_pidfile(st).unlink(missing_ok=True)
    st.down()


def _worker_pidfile(st: Any) -> Path:
    return st.paths.pids / "worker.pid"


def _worker_status(st: Any) -> str:
    from farm.stack._process import ProcessRecord

    record = ProcessRecord.read(_worker_pidfile(st))
    return f"running (pid {record.pid})" if record and record.alive() else "stopped"


def _start_worker(st: Any) -> None:
    """The local stack's one worker: consumes every platform queue so the demo works on one machine."""
    from farm.stack._process import ProcessRecord, spawn

    record = ProcessRecord.read(_worker_pidfile(st))
    if record and record.alive():
        return
    queues = ",".join(LOCAL_QUEUES)
    argv = worker_argv(queues, (), 2, "INFO")
    record = spawn(argv, st.paths.logs / "worker.log", env={**os.environ, **st.env()})
    record.write(_worker_pidfile(st))


@stack.command("status")
@_state_opt
def stack_status(state_dir: Path | None) -> None:
    """Show each service of the stack."""
    st = _stack(state_dir)
    for name, status in st.status().items():
        click.echo(f"{name:10} {status}")
    click.echo(f"{'worker':10} {_worker_status(st)}")


@stack.command("env")
@_state_opt
def stack_env(state_dir: Path | None) -> None:
    """Print shell exports for the stack: eval "$(farm stack env)"."""
    for key, value in _stack(state_dir).env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


def _register_optional() -> None:
    try:
        from farm.config_cli import config
    except ImportError:
        return
    cli.add_command(config)


_register_optional()


if __name__ == "__main__":
    main()
