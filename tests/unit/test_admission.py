"""farm.admission's pure parts: the fair-share policy from settings, readable task names."""

from __future__ import annotations

import pytest

from farm import admission
from farm.jobs import BuildRequest
from farm.settings import Settings


def test_namespace_caps_parse_and_become_the_announced_policy() -> None:
    caps = admission.parse_caps(" team-a=4, team-b=1,,")
    assert caps == {"team-a": 4, "team-b": 1}
    assert admission.policy(2, caps) == {"cap": "2", "cap:team-a": "4", "cap:team-b": "1"}
    assert admission.parse_caps("") == {}


@pytest.mark.parametrize("bad", ["team-a", "team-a=", "=3", "team-a=-1", "team-a=x"])
def test_a_bad_cap_names_the_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="FARM_NAMESPACE_CAPS"):
        admission.parse_caps(f"ok=1,{bad}")


def test_a_project_priority_overrides_the_default_and_a_bad_entry_is_named() -> None:
    settings = Settings(priority="low", project_priorities="release=high, sandbox=normal")
    assert settings.priority_for("release") == "high"
    assert settings.priority_for("other") == "low"
    with pytest.raises(ValueError, match="'x=urgent'"):
        Settings(project_priorities="x=urgent").priority_for("x")


def test_tasks_carry_a_readable_name_and_a_kombu_priority() -> None:
    req = BuildRequest(job_id="j", project="p", build="api", version="v-1", platform="linux/arm64",
                       mode="local-docker", image="r/ns/api:v-1", context="sha256:c", context_store="file:///x")
    assert admission.shadow(req) == "build api linux/arm64 v-1"
    assert admission.CELERY_PRIORITY["high"] < admission.CELERY_PRIORITY["normal"] < admission.CELERY_PRIORITY["low"]
