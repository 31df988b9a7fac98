"""workers.runtimes.process.run with real subprocesses: streaming, failure mapping, timeouts, secrets."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from farm.errors import PermanentBuildError, TransientBuildError
from workers.builder_job import BuilderJob
from workers.runtimes.process import run


def sh(tmp_path: Path, script: str, *, timeout: int = 30, env: tuple[tuple[str, str], ...] = (),
       secret_env: tuple[str, ...] = (), unreachable: str | None = None) -> BuilderJob:
    return BuilderJob(mode="local-docker", argv=("sh", "-c", script), context_dir=str(tmp_path),
                      timeout=timeout, env=env, secret_env=secret_env, unreachable=unreachable,
                      daemon="the test daemon")


def run_job(job: BuilderJob, on_line: Callable[[str], None], secrets: dict[str, str] | None = None) -> list[str]:
    return run(job, secrets or {}, on_line)


def test_streams_stdout_and_stderr_lines_in_the_context_dir(tmp_path: Path) -> None:
    seen: list[str] = []
    lines = run_job(sh(tmp_path, 'echo one; echo two >&2; echo "pwd=$(pwd) v=$V"', env=(("V", "x"),)),
                    seen.append)
    assert seen == lines == ["one", "two", f"pwd={tmp_path} v=x"]


def test_the_job_env_overrides_the_worker_environment(tmp_path: Path) -> None:
    os.environ["FARM_TEST_CFG"] = "/worker"
    try:
        job = sh(tmp_path, 'echo "cfg=$FARM_TEST_CFG path=${PATH:+set}"', env=(("FARM_TEST_CFG", "/job"),))
        assert run_job(job, lambda _: None) == ["cfg=/job path=set"]
    finally:
        del os.environ["FARM_TEST_CFG"]


def test_output_that_means_the_daemon_is_unreachable_is_transient(tmp_path: Path) -> None:
    job = sh(tmp_path, "echo 'dial unix /x.sock: connect: no such file'; exit 1", unreachable=r"dial unix \S+")
    # the cause on the first line: the job record and the CLI keep only that one
    with pytest.raises(TransientBuildError, match="^the test daemon is unreachable: dial unix /x.sock: connect: no such file\n"):
        run_job(job, lambda _: None)
    with pytest.raises(PermanentBuildError):
        run_job(sh(tmp_path, "echo 'some other failure'; exit 1", unreachable=r"dial unix \S+"), lambda _: None)


def test_nonzero_exit_is_permanent_with_the_last_line_first(tmp_path: Path) -> None:
    job = sh(tmp_path, "for i in $(seq 1 100); do echo line-$i; done; echo; exit 3")
    with pytest.raises(PermanentBuildError) as err:
        run_job(job, lambda _: None)
    message = str(err.value)
    assert message.splitlines()[0] == "local-docker: sh exited with code 3: line-100"
    assert "line-72\n" in message and "line-71\n" not in message     # the tail: the last 30 lines


def test_no_output_failure(tmp_path: Path) -> None:
    with pytest.raises(PermanentBuildError, match="^local-docker: sh exited with code 1: no output"):
        run_job(sh(tmp_path, "exit 1"), lambda _: None)


def test_killed_is_out_of_memory(tmp_path: Path) -> None:
    with pytest.raises(TransientBuildError, match="out of memory"):
        run_job(sh(tmp_path, "echo big; kill -9 $$"), lambda _: None)


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    started = time.monotonic()
    with pytest.raises(TransientBuildError, match="timed out after 1 s"):
        run_job(sh(tmp_path, f"(sleep 2; touch {marker}) & sleep 30", timeout=1), lambda _: None)
    assert time.monotonic() - started < 10
    time.sleep(2.5)
    assert not marker.exists()


def test_missing_binary_is_transient(tmp_path: Path) -> None:
    job = BuilderJob(mode="local-docker", argv=("no-such-builder-binary", "build"), context_dir=str(tmp_path),
                     timeout=10)
    with pytest.raises(TransientBuildError, match="'no-such-builder-binary' was not found"):
        run_job(job, lambda _: None)


def test_secrets_reach_the_child_only_and_are_masked(tmp_path: Path) -> None:
    before = dict(os.environ)
    seen: list[str] = []
    job = sh(tmp_path, 'echo "tok=$GARDEN_BUILD_SECRET_TOK"; echo "other=${OTHER:-unset}"',
             secret_env=("GARDEN_BUILD_SECRET_TOK",))
    secrets = {"GARDEN_BUILD_SECRET_TOK": "hunter2", "OTHER": "not-for-this-job"}
    lines = run_job(job, seen.append, secrets=secrets)
    assert seen == lines == ["tok=***", "other=unset"]
    assert dict(os.environ) == before
    assert "hunter2" not in repr(job)


def test_secret_values_are_masked_in_the_failure_message(tmp_path: Path) -> None:
    job = sh(tmp_path, 'echo "bad token $S"; exit 2', secret_env=("S",))
    with pytest.raises(PermanentBuildError) as err:
        run_job(job, lambda _: None, secrets={"S": "hunter2"})
    assert "hunter2" not in str(err.value) and "bad token ***" in str(err.value)


def test_a_missing_secret_value_fails_before_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(PermanentBuildError, match="build secret S has no value"):
        run_job(sh(tmp_path, f"touch {marker}", secret_env=("S",)), lambda _: None)
    assert not marker.exists()


def test_an_on_line_error_stops_the_child_and_propagates(tmp_path: Path) -> None:
    def fail(line: str) -> None:
        raise RuntimeError(f"log sink down at {line}")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="log sink down at first"):
        run_job(sh(tmp_path, "echo first; sleep 30"), fail)
    assert time.monotonic() - started < 10
