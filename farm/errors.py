"""The one error tree of the farm. Every failure a user can cause ends in one of these.

    FarmError                      one clear line for the user; exit code 1 unless noted
    ├── UsageError                 wrong flags or names on the command line (exit 2)
    ├── ConfigError                a Garden config problem, with file:line and field path (exit 2)
    │   └── ConfigErrors           several of them at once (`farm config validate`)
    ├── StackError                 the local stack could not be started or queried
    ├── BrokerError                Redis / the queue is unreachable
    ├── RegistryError              the registry answered badly or not at all
    │   └── RegistryAuthError      bad or missing credentials
    ├── ContextError               a build context is unsafe, corrupt or too large
    └── BuildError                 a build failed
        ├── PermanentBuildError    retrying will not help (bad Dockerfile, failing RUN)
        ├── TransientBuildError    may succeed on retry (daemon unreachable, timeout, registry 5xx)
        └── BuildStopped           the builder was stopped on purpose (lease lost, cancelled)

Like httpx's errors carry their request, a FarmError carries the subject it concerns (`Subject`:
build, platform, job, ref), attached where that is known (`about()`), so the worker records it and
the CLI can name it. Every constructor argument but the message is keyword-only with a default:
Celery rebuilds a task's exception from its message alone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TypeVar

E = TypeVar("E", bound="FarmError")


@dataclass(frozen=True)
class Subject:
    """What an error is about; every part optional."""

    build: str | None = None
    platform: str | None = None
    job_id: str | None = None
    ref: str | None = None

    def merged(self, other: Subject) -> Subject:
        """This subject with the parts `other` knows and this one does not."""
        return replace(self, **{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})


class FarmError(Exception):
    """Base of every error the farm reports to a user as one line."""

    exit_code = 1
    retryable = False

    def __init__(self, message: str = "", *, subject: Subject | None = None) -> None:
        super().__init__(message)
        self.subject = subject or Subject()

    def about(self: E, **parts: str | None) -> E:
        """Attach what this error concerns (keeps what is already known); returns self for `raise`."""
        self.subject = self.subject.merged(Subject(**parts))
        return self


class UsageError(FarmError):
    exit_code = 2


class ConfigError(FarmError):
    """A configuration problem, located as precisely as we can: file, line and field path."""

    exit_code = 2

    def __init__(self, message: str = "", *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.field:
            where = f"{where} {self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message


class ConfigErrors(ConfigError):
    """Every problem found in a project at once; the CLI prints one line each."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found")


class StackError(FarmError):
    pass


class BrokerError(FarmError):
    pass


class RegistryError(FarmError):
    # An unreachable registry or a 5xx may pass; a refused credential or a 4xx will not.
    def __init__(self, message: str = "", *, retryable: bool = False, subject: Subject | None = None) -> None:
        super().__init__(message, subject=subject)
        self.retryable = retryable


class RegistryAuthError(RegistryError):
    pass


class ContextError(FarmError):
    pass


class BuildError(FarmError):
    pass


class PermanentBuildError(BuildError):
    pass


class TransientBuildError(BuildError):
    retryable = True


class BuildStopped(BuildError):
    pass
