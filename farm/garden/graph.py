"""The dependency graph of a project's Builds: closures, cycles and build waves. Pure functions.

A graph is a mapping from a Build's name to the names it depends on. Names that are not keys
(a dependency on something not loaded) are leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Graph = Mapping[str, Sequence[str]]


class CycleError(Exception):
    """The graph has a cycle; `path` walks it, first name repeated last."""

    def __init__(self, path: list[str]) -> None:
        super().__init__(" -> ".join(path))
        self.path = path


def closure(names: Iterable[str], graph: Graph) -> list[str]:
    """The names and everything they depend on, transitively, each once (leaves included)."""
    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = None
        todo.extend(graph.get(name, ()))
    return list(seen)


def cycles(graph: Graph) -> list[tuple[str, list[str]]]:
    """Each back edge of a depth-first walk in name order: (the name whose edge closes it, the cycle)."""
    state: dict[str, int] = {}        # 1 on the current path, 2 done
    found: list[tuple[str, list[str]]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                found.append((name, trail[trail.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, trail + [dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def waves(graph: Graph) -> list[list[str]]:
    """The names in waves, each sorted: a wave depends only on earlier waves (leaves are ignored)."""
    done: set[str] = set()
    out: list[list[str]] = []
    while len(done) < len(graph):
        wave = sorted(n for n, deps in graph.items()
                      if n not in done and all(d in done or d not in graph for d in deps))
        if not wave:
            raise CycleError(cycles({n: d for n, d in graph.items() if n not in done})[0][1])
        out.append(wave)
        done.update(wave)
    return out
