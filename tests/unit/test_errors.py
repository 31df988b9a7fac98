"""farm.errors: subjects, retryability, and rebuilding from the message alone (as Celery does)."""

from __future__ import annotations

import pickle

from farm.errors import (ConfigError, FarmError, PermanentBuildError, RegistryError, Subject,
                         TransientBuildError)


def test_about_keeps_what_is_known_and_adds_the_rest() -> None:
    exc = TransientBuildError("daemon down").about(platform="linux/arm64")
    exc.about(build="api", platform="linux/amd64", job_id="j1")
    assert exc.subject == Subject(build="api", platform="linux/arm64", job_id="j1")
    assert str(exc) == "daemon down"


def test_retryable_says_what_a_retry_can_fix() -> None:
    assert TransientBuildError("x").retryable and not PermanentBuildError("x").retryable
    assert RegistryError("503", retryable=True).retryable and not RegistryError("404").retryable
    assert not FarmError("x").retryable


def test_every_error_is_rebuilt_from_its_message() -> None:
    for exc in (TransientBuildError("t"), PermanentBuildError("p"), RegistryError("r", retryable=True),
                ConfigError("bad", file="f.yml", line=3, field="spec.x")):
        again = type(exc)(*exc.args)
        assert str(again) == str(exc)
        assert str(pickle.loads(pickle.dumps(exc))) == str(exc)
    assert str(ConfigError("bad", file="f.yml", line=3, field="spec.x")) == "f.yml:3 spec.x: bad"
