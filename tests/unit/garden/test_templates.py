from __future__ import annotations

import re
from typing import Any

import pytest

from farm.garden.templates import TemplateError, resolve, resolve_string

CTX: dict[str, Any] = {
    "var": {"name": "app", "n": 3, "flag": True, "list": ["a", "b"], "nested": {"k": "v"}, "empty": ""},
    "environment": {"name": "dev", "namespace": "dev-ns"},
    "project": {"name": "demo"},
    "git": {"branch": "feature/JIRA-42_addThing", "commitHash": "abc"},
    "local": {"env": {"HOME": "/root"}},
}


@pytest.mark.parametrize("text,expected", [
    ("plain", "plain"),
    ("${var.name}", "app"),
    ("${var.n}", 3),
    ("${var.flag}", True),
    ("${var.list}", ["a", "b"]),
    ("x-${var.n}-${environment.name}", "x-3-dev"),
    ("${var.nested.k}${var.nested['k']}", "vv"),
    ("${var.missing || 'fallback'}", "fallback"),
    ("${var.empty || environment.namespace}", "dev-ns"),
    ("${lower('ABC')}${upper('d')}", "ABCd".lower()[:3] + "D"),
    ("${replace('a-b-c', '-', '_')}", "a_b_c"),
    ("${join(concat(var.list, ['c']), ',')}", "a,b,c"),
    ("${concat('a', 'b')}", "ab"),
    ("${kebabCase('fooBar Baz_qux2')}", "foo-bar-baz-qux-2"),
    ('${slice("abcdef", "1", "3")}', "bc"),
    ("${slice(var.list, 1)}", ["b"]),
    ("$${not.a.template}", "${not.a.template}"),
    ("${project.name}.${local.env.HOME}", "demo./root"),
    ("${var.n == 3 ? 'three' : 'other'}", "three"),
    ('${replace("a}b", "}", "")}', "ab"),
    ("${42}", 42),
    ("${'x' + var.name}", "xapp"),
])
def test_resolve_string(text: str, expected: Any) -> None:
    assert resolve_string(text, CTX) == expected


def test_branch_cache_tag_from_the_seed_guide() -> None:
    tag = resolve_string('_buildcache-${slice(kebabCase(git.branch), "0", "30")}', CTX)
    assert tag == "_buildcache-feature-jira-42-add-thing"
    long = {"git": {"branch": "feature/" + "x" * 50}}
    assert len(resolve_string('_buildcache-${slice(kebabCase(git.branch), "0", "30")}', long)) == 12 + 30


@pytest.mark.parametrize("text,message", [
    ("${var.nope}", "Could not find key nope under var. Available keys: name, n, flag"),
    ("${nope.x}", "Could not find key nope. Available keys: var, environment"),
    ("${frobnicate(1)}", "Could not find helper function 'frobnicate'"),
    ("${var.name", "Unable to parse as valid template string"),
    ("${var.name +}", "Unable to parse as valid template string"),
    ("${}", "Unable to parse as valid template string"),
    ("${lower(1)}", "Error validating argument 'string' for lower helper function:\n\nvalue must be a string"),
    ("${var.nope}?", "Could not find key nope"),  # Garden 0.14: `?` is a plain character
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)) as err:
        resolve_string(text, CTX)
    assert str(err.value).startswith(f"Invalid template string ({text}): ")


def test_question_mark_is_plain_text() -> None:
    assert resolve_string("${var.name}?", CTX) == "app?"
    with pytest.raises(ValueError, match=r"\('a',\)"):
        resolve({"a": "${var.nope}?", "b": "${var.name}"}, CTX, lambda e, p: ValueError(str(p)))


def test_collections_inside_strings_render_like_javascript() -> None:
    assert resolve_string("a ${var.list} b", CTX) == "a a,b b"
    assert resolve_string("a ${var.nested} b", CTX) == "a [object Object] b"


def test_if_without_else_leaves_the_key_out() -> None:
    data = {"keep": 1, "drop": {"$if": "${var.n == 4}", "$then": 2}, "list": [{"$if": False, "$then": 1}]}
    assert resolve(data, CTX, lambda e, p: ValueError(str(e))) == {"keep": 1, "list": [None]}


def test_resolve_reports_path() -> None:
    data = {"x": [{"y": "${var.nope}"}]}
    with pytest.raises(ValueError, match=r"\('x', 0, 'y'\)"):
        resolve(data, CTX, lambda e, p: ValueError(str(p)))


@pytest.mark.parametrize("text,hint", [
    ("${secrets.TOKEN}", "Garden Cloud secrets"),
    ("${actions.build.base.outputs.deploymentImageId}", "not supported by the farm"),
])
def test_unsupported_contexts_say_so(text: str, hint: str) -> None:
    with pytest.raises(TemplateError, match=hint):
        resolve_string(text, {**CTX, "secrets": {}})
