"""The one error tree of the farm. Every failure a user can cause ends in one of these.

    FarmError                      one clear line for the user; exit code 1 unless noted
    ├── UsageError                 wrong flags or names on the command line (exit 2)
    ├── ConfigError                a Garden config problem, with file:line and field path (exit 2)
    ├── StackError                 the local stack could not be started or queried
    ├── BrokerError                Redis / the queue is unreachable
    ├── RegistryError              the registry answered badly or not at all
    │   └── RegistryAuthError      bad or missing credentials
    ├── ContextError               a build context is unsafe, corrupt or too large
    └── BuildError                 a build failed
        ├── PermanentBuildError    retrying will not help (bad Dockerfile, failing RUN)
        └── TransientBuildError    may succeed on retry (daemon unreachable, timeout)
"""

from __future__ import annotations


class FarmError(Exception):
    """Base of every error the farm reports to a user as one line."""

    exit_code = 1


class UsageError(FarmError):
    exit_code = 2


class ConfigError(FarmError):
    """A configuration problem, located as precisely as we can: file, line and field path."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
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


class StackError(FarmError):
    pass


class BrokerError(FarmError):
    pass


class RegistryError(FarmError):
    pass


class RegistryAuthError(RegistryError):
    pass


class ContextError(FarmError):
    pass


class BuildError(FarmError):
    pass


class PermanentBuildError(BuildError):
    pass


class TransientBuildError(BuildError):
    pass
