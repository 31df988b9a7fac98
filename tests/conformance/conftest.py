"""The conformance report: at the end of any run that collected these tests (`make test`, or
`pytest tests/conformance`), print how many Garden unit-test vectors are covered, passing,
deliberately different and not applicable, so the gap stays visible."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.conformance.garden import GARDEN_RELEASE
from tests.conformance.not_applicable import NOT_APPLICABLE

_garden_marks: dict[str, Any] = {}  # nodeid -> its `garden` marker
_outcomes: dict[str, tuple[str, bool]] = {}  # nodeid -> (outcome, differs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "garden(file, title, differs): one Garden 0.14.20 unit-test vector")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    marker = _garden_marks.get(report.nodeid)
    if marker is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes[report.nodeid] = (report.outcome, bool(marker.kwargs.get("differs")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("garden")
        if marker is not None:
            _garden_marks[item.nodeid] = marker


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    counts: Counter[str] = Counter()
    for outcome, differs in _outcomes.values():
        counts["covered"] += 1
        kind = "different" if differs else "same"
        counts[f"{kind}-{'passed' if outcome == 'passed' else 'failed'}"] += 1
    failing = counts["same-failed"] + counts["different-failed"]
    terminalreporter.section(f"Garden {GARDEN_RELEASE} conformance (tests/conformance/README.md)")
    terminalreporter.write_line(
        f"{counts['covered']} covered, {counts['same-passed']} passing, "
        f"{counts['different-passed']} deliberately different, {len(NOT_APPLICABLE)} not applicable"
        + (f", {failing} FAILING" if failing else ""))
