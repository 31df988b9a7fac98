"""Run a BuilderJob as a local process (`process.run`): stream its lines, mask secrets, map failures.

`execute()` holds the one mapping of a builder process's failures onto the error tree; `run_job()`
runs a job with the worker's environment, and `cluster_buildkit.run_buildctl()` adds its own
environment and the unreachable-daemon case on top of `execute()`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from farm.errors import BuildError, PermanentBuildError, TransientBuildError
from workers.builders.base import BuilderJob
from workers.runtimes import process

TAIL_LINES = 30
MASK = "***"

# Given the exit code and the last lines of a failed run: a more precise error, or None.
Classifier = Callable[[int, Sequence[str]], BuildError | None]


def run_job(job: BuilderJob, on_line: Callable[[str], None], *, env: Mapping[str, str] | None = None,
            secrets: Mapping[str, str] | None = None) -> list[str]:
    """Run `job.argv` in its context dir; return all output lines, secret values masked.

    `env` is the base environment for this invocation only (default: the worker's os.environ);
    `secrets` maps `job.secret_env` names to values, which reach the child's environment and nothing else.
    """
    child_env = dict(job.env)
    for name in job.secret_env:
        if secrets is None or name not in secrets:
            raise PermanentBuildError(f"build secret {name} has no value on this worker")
        child_env[name] = secrets[name]
    return execute(job, on_line, env=child_env, base_env=env,
                   mask=[secrets[name] for name in job.secret_env] if secrets else ())


def execute(
    job: BuilderJob,
    on_line: Callable[[str], None] | None,
    *,
    env: Mapping[str, str],
    base_env: Mapping[str, str] | None = None,
    drop_env_prefixes: Sequence[str] = (),
    executable: str | None = None,
    mask: Iterable[str] = (),
    classify: Classifier | None = None,
) -> list[str]:
    """Run `job` (argv[0] replaced by `executable` if given); return its lines or raise a BuildError.

    Every line has the `mask` values replaced by `***` before anyone sees it. A non-zero exit is
    permanent unless `classify` returns another error for it (exit 137 and timeouts are transient).
    """
    argv = list(job.argv)
    if executable is not None:
        argv[0] = executable
    hidden = sorted({value for value in mask if value}, key=len, reverse=True)
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def emit(line: str) -> None:
        for value in hidden:
            line = line.replace(value, MASK)
        lines.append(line)
        tail.append(line)
        if on_line is not None:
            on_line(line)

    try:
        result = process.run(argv, cwd=job.context_dir, env=env, timeout=job.timeout, on_line=emit,
                             base_env=base_env, drop_env_prefixes=drop_env_prefixes)
    except FileNotFoundError as exc:
        if exc.filename == job.context_dir and exc.filename != argv[0]:
            raise PermanentBuildError(f"{job.mode}: the context dir {job.context_dir} is missing") from exc
        raise TransientBuildError(
            f"{job.mode}: the builder command {argv[0]!r} was not found on this worker") from exc
    if result.timed_out:
        raise TransientBuildError(f"{job.mode}: {job.argv[0]} timed out after {job.timeout} s")
    if result.exit_code == 0:
        return lines
    raise _failure(job, result.exit_code, list(tail), classify)


def _failure(job: BuilderJob, code: int, tail: Sequence[str], classify: Classifier | None) -> BuildError:
    """The error for a builder that exited with `code`; its message ends with the last lines."""
    last = "\n".join(tail)
    if code in (137, -9):
        return TransientBuildError(
            f"{job.mode}: {job.argv[0]} was killed (exit {code}), most likely out of memory\n{last}")
    if classify is not None and (error := classify(code, tail)) is not None:
        return error
    cause = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
    return PermanentBuildError(f"{job.mode}: {job.argv[0]} exited with code {code}: {cause}\n{last}")
