"""How a Garden unit-test vector becomes a pytest case here, and how the report counts it.

`vector(file, title, *values)` is one Garden test (file under garden-io/garden@0.14.20, `it(...)`
title with its describe/context path); `differs="<README row>"` marks a case where the farm
deliberately does something else, and the test then asserts the farm's documented behaviour.
Garden tests of features the farm does not have are listed in `not_applicable.py` instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet

GARDEN_RELEASE = "0.14.20"

TEMPLATE_STRING = "core/test/unit/src/template-string.ts"
ACTIONS_BASE = "core/test/unit/src/actions/base.ts"
VCS = "core/test/unit/src/vcs/vcs.ts"
GIT = "core/test/unit/src/vcs/git.ts"
CONTAINER_HELPERS = "core/test/unit/src/plugins/container/helpers.ts"
BUILDKIT = "core/test/unit/src/plugins/kubernetes/container/build/buildkit.ts"
FUNCTIONS = "core/src/template/functions/index.ts"  # each helper's exampleArguments
DATE_FUNCTIONS = "core/src/template/functions/date.ts"
K8S_CONFIG = "core/src/plugins/kubernetes/config.ts"


def vector(file: str, title: str, *values: Any, differs: str = "") -> ParameterSet:
    return pytest.param(*values, id=title, marks=pytest.mark.garden(file=file, title=title, differs=differs))


def same(actual: Any, expected: Any) -> bool:
    """Deep equality that, like chai's `eql`, tells true from 1 and a list from a tuple."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and \
            all(same(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and \
            all(same(a, e) for a, e in zip(actual, expected))
    return bool(actual == expected) and type(actual) in (type(expected), int, float)
