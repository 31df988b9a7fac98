"""farm/kaniko.py pinned at its edges (issue 19): flag forms, the merge across levels, the fields
errors name, cache settings and the options a Build resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden.models import BuildAction, KubernetesProvider
from farm.kaniko import (
    KanikoOptions,
    cache_on,
    check_build,
    executor_args,
    flag_value,
    merge_flags,
    options_for,
    parse_flags,
)


@pytest.mark.parametrize("items,texts", [
    (["--target", "stage"], ["--target=stage"]),
    (["--target", "stage", "--cache"], ["--target=stage", "--cache"]),
    (["--label a b"], ["--label=a b"]),
    (["--build-arg=A=B C"], ["--build-arg=A=B C"]),
    (["  --cache  "], ["--cache"]),
    (["--snapshotMode=redo"], ["--snapshotMode=redo"]),
])
def test_flag_forms(items: list[str], texts: list[str]) -> None:
    assert [f.text for f in parse_flags(items, "f")] == texts


def test_a_value_after_a_value_is_not_a_flag() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_flags(["--target", "stage", "extra"], "spec.extraFlags")
    assert exc.value.field == "spec.extraFlags" and "'extra'" in str(exc.value)


def test_a_reserved_flag_names_the_field() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_flags(["--no-push"], "spec.extraFlags")
    assert exc.value.field == "spec.extraFlags"
    assert exc.value.message == "kaniko flag --no-push is set by the farm (the farm pushes and verifies every build)"


def test_merge_by_name_across_all_levels() -> None:
    assert merge_flags(["--cache=false"], ["--x"], ["--cache=true"]) == ["--cache=false", "--x"]
    assert merge_flags(["--a=1"], ["--b=2", "--a=3"], ["--b=4", "--c"]) == ["--a=1", "--b=2", "--c"]


@pytest.mark.parametrize("call,field", [
    (lambda: merge_flags([], [], ["bad"]), "defaults"),
    (lambda: merge_flags(["bad"], [], []), "spec.extraFlags"),
    (lambda: merge_flags([], ["bad"], []), "providers[kubernetes].kaniko.extraFlags"),
    (lambda: flag_value(["bad"], "x"), "flags"),
])
def test_errors_name_their_level(call: object, field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        call()  # type: ignore[operator]
    assert exc.value.field == field


@pytest.mark.parametrize("flags,on", [
    (["--cache"], True), (["--cache=true"], True), (["--cache=1"], True), (["--cache=T"], True),
    (["--cache=TRUE"], True), (["--cache=t"], True),
    (["--cache=false"], False), (["--cache=f"], False), (["--cache=0"], False), ([], False), (["--x"], False),
])
def test_cache_on(flags: list[str], on: bool) -> None:
    assert cache_on(flags) is on


def build(**spec: object) -> BuildAction:
    return BuildAction.model_validate({"name": "api", "configFile": Path("/p/api/garden.yml"),
                                       "sourceDir": Path("/p/api"), "spec": spec})


def provider(**kaniko: object) -> KubernetesProvider:
    return KubernetesProvider.model_validate({"context": "ctx-1", "buildMode": "kaniko", "kaniko": kaniko})


def test_secrets_are_refused_naming_file_and_field() -> None:
    with pytest.raises(ConfigError) as exc:
        check_build(build(secrets={"t": "x"}))
    assert (exc.value.file, exc.value.field) == ("/p/api/garden.yml", "Build api: spec.secrets")


def test_options_for_every_field() -> None:
    options = options_for(
        build(extraFlags=["--cache-repo=reg/cache"]),
        provider(image="my/kaniko:1", namespace="builds", serviceAccountAnnotations={"iam": "role"},
                 tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]),
        "proj-ns", "reg/team/api")
    assert options == KanikoOptions(
        flags=("--cache-repo=reg/cache", "--cache=true"), cache_repo="reg/cache", image="my/kaniko:1",
        namespace="builds", tolerations=options.tolerations, resources=options.resources,
        service_account_annotations={"iam": "role"}, kube_context="ctx-1")
    # the API's field names (aliases), unset fields left out
    assert [sorted(t) for t in options.tolerations] == [["effect", "key", "operator", "tolerationSeconds"]]


def test_options_for_defaults() -> None:
    options = options_for(build(), provider(), "proj-ns", "reg/team/api")
    assert (options.flags, options.cache_repo, options.image, options.namespace, options.kube_context) == (
        ("--cache=true", "--cache-repo=reg/team/api/cache"), "reg/team/api/cache", None, "proj-ns", "ctx-1")


def test_options_for_a_bad_flag_names_file_and_field() -> None:
    with pytest.raises(ConfigError) as exc:
        options_for(build(), provider(extraFlags=["bad"]), "ns", "img")
    assert (exc.value.file, exc.value.field) == ("/p/api/garden.yml",
                                                 "Build api: providers[kubernetes].kaniko.extraFlags")


def test_executor_args_respect_user_target_and_insecure_default() -> None:
    options = KanikoOptions(flags=("--target=mine", "--insecure"))
    argv = executor_args(destination="d", dockerfile="Dockerfile", options=options, build_args={},
                         target="stage", insecure=True)
    assert argv == ["/kaniko/executor", "--context=dir:///workspace", "--dockerfile=Dockerfile", "--destination=d",
                    "--target=mine", "--insecure", "--insecure-pull"]
    assert "--insecure" not in executor_args(destination="d", dockerfile="D", options=KanikoOptions(),
                                             build_args={})
    assert executor_args(destination="d", dockerfile="D", options=KanikoOptions(), build_args={},
                         target="stage")[-1] == "--target=stage"


def test_a_value_after_a_flag_with_a_value_is_refused() -> None:
    with pytest.raises(ConfigError):
        parse_flags(["--target=a", "stage"], "f")


def test_options_for_names_the_image_pull_secrets() -> None:
    p = KubernetesProvider.model_validate({"context": "c", "buildMode": "kaniko",
                                           "imagePullSecrets": [{"name": "regcred", "namespace": "default"},
                                                                {"name": "other", "namespace": "x"}]})
    assert options_for(build(), p, "ns", "img").image_pull_secrets == ("regcred", "other")
