"""farm.garden.graph: closures, cycles and waves of the Build dependency graph."""

from __future__ import annotations

import pytest

from farm.garden import graph


def test_closure_follows_dependencies_transitively_and_keeps_leaves() -> None:
    g = {"web": ["api"], "api": ["base", "ext"], "base": [], "tool": []}
    assert sorted(graph.closure(["web"], g)) == ["api", "base", "ext", "web"]
    assert graph.closure(["tool"], g) == ["tool"]
    assert graph.closure([], g) == []


def test_waves_put_each_build_after_its_dependencies() -> None:
    g = {"web": ["api", "base"], "api": ["base"], "base": [], "tool": [], "x": ["outside"]}
    assert graph.waves(g) == [["base", "tool", "x"], ["api"], ["web"]]


def test_a_cycle_is_named_along_its_path() -> None:
    g = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    with pytest.raises(graph.CycleError) as err:
        graph.waves(g)
    assert err.value.path == ["a", "b", "c", "a"] and str(err.value) == "a -> b -> c -> a"
    assert graph.cycles(g) == [("c", ["a", "b", "c", "a"])]
    assert graph.cycles({"s": ["s"]}) == [("s", ["s", "s"])]
    assert graph.cycles({"a": ["b"], "b": []}) == []
