"""farm/kaniko.py: the executor's flags merged by name, its arguments, and the options a Build resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm import plan
from farm.errors import ConfigError
from farm.kaniko import (
    KanikoOptions,
    canonical,
    executor_args,
    flag_value,
    immutable_tag_refusal,
    merge_flags,
    parse_flags,
    resolve_build_args,
)
from tests.conftest import write_project


def test_defaults_alone_when_nobody_sets_flags() -> None:
    assert merge_flags(None, None) == ["--cache=true"]


def test_action_beats_provider_beats_defaults_by_name() -> None:
    merged = merge_flags(["--snapshot-mode=redo", "--cache-repo=r/c"],
                         ["--snapshot-mode=full", "--use-new-run", "--cache=false"])
    assert merged == ["--snapshot-mode=redo", "--cache-repo=r/c", "--use-new-run", "--cache=false"]


def test_provider_cache_false_is_not_joined_by_the_default() -> None:
    # Garden's QUIRK: with action flags set, defaults were compared with the action flags only.
    assert merge_flags(["--use-new-run"], ["--cache=false"]) == ["--use-new-run", "--cache=false"]


def test_both_value_forms_and_both_spellings_are_one_flag() -> None:
    assert merge_flags(["--cache-repo reg/a"], ["--cache-repo", "reg/b"]) == ["--cache-repo=reg/a", "--cache=true"]
    assert merge_flags(["--snapshotMode=redo"], ["--snapshot-mode=full"]) == ["--snapshotMode=redo", "--cache=true"]
    assert canonical("snapshotMode") == "snapshot-mode" and canonical("use-new-run") == "use-new-run"


def test_a_flag_never_appears_twice_within_a_level_either() -> None:
    assert merge_flags(["--verbosity=info", "--verbosity=debug"], None) == ["--verbosity=debug", "--cache=true"]
    # repeatable flags keep each distinct value once
    assert merge_flags(["--label=a=1", "--label=b=2", "--label=a=1"], ["--label=c=3"]) == \
        ["--label=a=1", "--label=b=2", "--cache=true"]


@pytest.mark.parametrize("bad", ["-x", "cache=true", "--", "--=v", "--1abc"])
def test_an_invalid_flag_is_a_config_error_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        merge_flags(None, ["--use-new-run", bad] if bad.startswith("-") else [bad])
    assert "Invalid format for a kaniko flag" in str(err.value) and repr(bad) in str(err.value)
    assert err.value.field == "providers[kubernetes].kaniko.extraFlags"


def test_flags_the_farm_sets_are_refused() -> None:
    with pytest.raises(ConfigError, match="--context is set by the farm"):
        parse_flags(["--context=dir:///x"], "spec.extraFlags")


def test_flag_value() -> None:
    flags = merge_flags(["--cache"], ["--cache-repo=r/c"])
    assert flag_value(flags, "cache") == "true" and flag_value(flags, "cache-repo") == "r/c"
    assert flag_value(flags, "target") is None


def test_executor_args_in_garden_order() -> None:
    options = KanikoOptions(flags=("--cache=true", "--cache-repo=reg:5000/ns/api/cache"))
    argv = executor_args(destination="reg:5000/ns/api:v-1", dockerfile="docker/Dockerfile", options=options,
                         build_args={"GARDEN_ACTION_VERSION": "v-1", "X": "y z"}, target="prod",
                         platform="linux/arm64", insecure=True)
    assert argv == [
        "/kaniko/executor", "--context=dir:///workspace", "--dockerfile=docker/Dockerfile",
        "--destination=reg:5000/ns/api:v-1", "--cache=true", "--cache-repo=reg:5000/ns/api/cache",
        "--insecure", "--insecure-pull", "--build-arg=GARDEN_ACTION_VERSION=v-1", "--build-arg=X=y z",
        "--target=prod", "--custom-platform=linux/arm64"]


def test_user_flags_are_not_doubled_by_the_farm() -> None:
    options = KanikoOptions(flags=("--insecure", "--custom-platform=linux/amd64"))
    argv = executor_args(destination="r/a:1", dockerfile="Dockerfile", options=options, build_args={},
                         platform="linux/arm64", insecure=True)
    assert argv.count("--insecure") == 1 and "--insecure-pull" in argv
    assert [a for a in argv if "platform" in a] == ["--custom-platform=linux/amd64"]


def test_build_args_follow_garden_rules() -> None:
    args = {"A": "1", "EMPTY": "", "FROM_ENV": None, "UNSET": None, "ZERO": "0"}
    assert resolve_build_args(args, {"FROM_ENV": "e"}) == {"A": "1", "FROM_ENV": "e", "ZERO": "0"}


def test_immutable_tag_refusal_needs_both_lines() -> None:
    assert immutable_tag_refusal(["error pushing image: failed", "tag x cannot be overwritten because the "
                                                                  "repository is immutable."])
    assert not immutable_tag_refusal(["error pushing image: failed: 401"])


def _kaniko_project(tmp_path: Path, provider_extra: str = "", build_extra: str = "") -> Path:
    root = write_project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\n"}}, mode="kaniko",
                         extra_build_yaml=build_extra)
    config = root / "project.garden.yml"
    config.write_text(config.read_text() + provider_extra)
    return root


def test_a_build_resolves_its_options(tmp_path: Path) -> None:
    root = _kaniko_project(tmp_path, provider_extra="""\
    kaniko:
      namespace: builds
      extraFlags: ["--snapshot-mode=redo", "--cache=true"]
      nodeSelector: {pool: build}
      tolerations: [{key: dedicated, value: build, effect: NoSchedule}]
      annotations: {team: a}
    resources:
      builder:
        limits: {cpu: 2000, memory: 1024}
        requests: {cpu: 100, memory: 256}
""", build_extra="spec:\n  extraFlags: [\"--use-new-run\"]\n")
    project, versions = plan.load(root)
    plan.require_buildable(project)
    (b,) = plan.plan(project, versions).builds
    k = b.kaniko
    assert k is not None
    assert k.flags == ("--use-new-run", "--snapshot-mode=redo", "--cache=true",
                       f"--cache-repo={b.outputs.deployment_image_name}/cache")
    assert k.cache_repo == f"{b.outputs.deployment_image_name}/cache"
    assert (k.namespace, k.node_selector, k.annotations, k.image) == ("builds", {"pool": "build"}, {"team": "a"}, None)
    assert k.tolerations == ({"key": "dedicated", "operator": "Equal", "value": "build", "effect": "NoSchedule"},)
    assert k.resources == {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}


def test_namespace_defaults_to_the_project_namespace_and_cache_off_means_no_repo(tmp_path: Path) -> None:
    root = _kaniko_project(tmp_path, provider_extra="    kaniko:\n      extraFlags: [\"--cache=false\"]\n")
    project, versions = plan.load(root)
    (b,) = plan.plan(project, versions).builds
    assert b.kaniko is not None and b.kaniko.namespace == "farmtest-default"
    assert b.kaniko.cache_repo is None and b.kaniko.flags == ("--cache=false",)


def test_an_invalid_flag_names_the_build_file_and_field(tmp_path: Path) -> None:
    root = _kaniko_project(tmp_path, build_extra="spec:\n  extraFlags: [\"-v\"]\n")
    project, versions = plan.load(root)
    with pytest.raises(ConfigError) as err:
        plan.plan(project, versions)
    assert str(err.value).startswith(str(root / "api" / "garden.yml"))
    assert "Build api: spec.extraFlags" in str(err.value) and "'-v'" in str(err.value)


def test_secrets_are_refused_with_gardens_message(tmp_path: Path) -> None:
    root = _kaniko_project(tmp_path, build_extra="spec:\n  secrets: {token: abc}\n")
    project, versions = plan.load(root)
    with pytest.raises(ConfigError, match="Kaniko does not support secret build arguments"):
        plan.plan(project, versions)


def test_several_platforms_fan_out_one_executor_each(tmp_path: Path) -> None:
    root = _kaniko_project(tmp_path, build_extra="spec:\n  platforms: [linux/amd64, linux/arm64]\n")
    project, versions = plan.load(root)
    (b,) = plan.plan(project, versions).builds
    assert b.fan_out and b.kaniko is not None
