"""farm.history's pure parts: durations, one record as `farm jobs` shows it, the table."""

from __future__ import annotations

import json

import pytest

from farm import history, keys


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600),
                                               ("2d", 172800), ("1w", 604800), ("1.5h", 5400)])
def test_since_durations(text: str, seconds: float) -> None:
    assert history.parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1y", "-1h", "soon"])
def test_a_bad_since_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        history.parse_since(text)


def test_the_most_selective_filters_come_from_indexes() -> None:
    q = history.Query(namespace="team-a", build="api", state="failed")
    assert q.indexes() == [keys.history_namespace("team-a"), keys.history_build("api"), keys.history_state("failed")]
    assert history.Query().indexes() == [keys.HISTORY]
    assert q.matches({"namespace": "team-a", "build": "api", "status": "failed"})
    assert not q.matches({"namespace": "team-a", "build": "api", "status": "built"}) and not q.matches({})


def test_an_entry_has_the_waits_the_result_and_the_labels() -> None:
    record = {"job_id": "abc", "status": "built", "namespace": "team-a", "build": "api", "queued_at": "100.0",
              "started_at": "102.5", "attempt_started_at": "110.0", "finished_at": "130.0", "attempts": "2",
              "digest": "sha256:d", "error": "an earlier attempt", "labels": json.dumps({"ci": "https://ci/1"}),
              "branch": "main", "commit": "0123456789abcdef", "priority": "high", "error_type": ""}
    e = history.entry(record)
    assert (e["queue_wait_s"], e["run_s"], e["attempts"]) == (2.5, 20.0, 2)
    assert e["digest"] == "sha256:d" and e["error"] is None and e["labels"] == {"ci": "https://ci/1"}
    failed = history.entry({**record, "status": "failed", "error": "boom", "error_type": "PermanentBuildError"})
    assert failed["digest"] is None and failed["error"] == "boom" and failed["cause"] == "PermanentBuildError"
    lines = history.table([e], now=160.0)
    assert lines[0].split()[:3] == ["SUBMITTED", "JOB", "NAMESPACE"]
    assert "60.0s ago" in lines[1] and "01234567" in lines[1] and "[ci=https://ci/1]" in lines[1]
