"""Garden's template-collection vectors: `$merge`, `$concat`, `$if`, `$forEach` and templates
inside YAML data (core/test/unit/src/template-string.ts, "parse and evaluate template
collections"). Our test code; Garden's data."""

from __future__ import annotations

from typing import Any

import pytest

from farm.garden.templates import TemplateError, resolve
from tests.conformance.garden import TEMPLATE_STRING, same, vector

C = "parse and evaluate template collections > "
V2 = ("parse and evaluate template strings with apiVersion: garden.io/v2 > should resolve ? suffix as a regular "
      "character > ")


def v(title: str, value: Any, context: dict[str, Any], expected: Any) -> Any:
    return vector(TEMPLATE_STRING, title, value, context, expected)


def evaluate(value: Any, context: dict[str, Any]) -> Any:
    def raise_it(exc: TemplateError, path: tuple[str | int, ...]) -> Exception:
        return exc
    return resolve(value, context, raise_it)


SERVICES = [{"env-overrides": {}, "service-props": {"name": "tmp", "command": ["sh", "run.sh"]}},
            {"env-overrides": {"ENABLE_TMP": "true"}, "service-props": {"name": "tmp-admin", "command": ["sh", "run.sh"]}}]

# Garden's context here holds templates of its own; the farm resolves variables before templates use
# them (as it does for project and action variables), with the same result.
_INPUTS = {"inputs": {"merged-object": {"$merge": "${var.empty || var.input-object}",
                                        "INTERNAL_VAR_1": "INTERNAL_VAR_1"}},
           "var": {"input-object": {"EXTERNAL_VAR_1": "EXTERNAL_VAR_1"}}}
INPUTS_CONTEXT = evaluate(_INPUTS, _INPUTS)


@pytest.mark.parametrize("value,context,expected", [
    v(C + "should resolve all template strings in an object with the given context",
      {"some": "${key}", "other": {"nested": "${something}", "noTemplate": "at-all"}},
      {"key": "value", "something": "else"}, {"some": "value", "other": {"nested": "else", "noTemplate": "at-all"}}),
    v(C + "should correctly handle optional template strings", {"some": "${key || null}", "other": "${missing || null}"},
      {"key": "value"}, {"some": "value", "other": None}),
    v(C + "should collapse merge operator keys on objects", {"$merge": {"a": "a", "b": "b"}, "b": "B", "c": "c"}, {},
      {"a": "a", "b": "B", "c": "c"}),
    v(C + "should collapse merge operator keys based on position on object",
      {"b": "B", "c": "c", "$merge": {"a": "a", "b": "b"}}, {}, {"a": "a", "b": "b", "c": "c"}),
    v(C + "should resolve merge operator before collapsing", {"$merge": "${obj}", "b": "B", "c": "c"},
      {"obj": {"a": "a", "b": "b"}}, {"a": "a", "b": "B", "c": "c"}),
    v(C + "should resolve merge operators depth-first", {"b": "B", "c": "c", "$merge": {"$merge": "${obj}", "a": "a"}},
      {"obj": {"b": "b"}}, {"a": "a", "b": "b", "c": "c"}),
    v(C + "should resolve merge operator if one object is undefined but it can fall back to another object",
      {"$merge": "${var.doesnotexist || var.obj}", "c": "c"}, {"var": {"obj": {"a": "a", "b": "b"}}},
      {"a": "a", "b": "b", "c": "c"}),
    v(C + "should resolve merge operator if a dependency cannot be resolved but there's a fallback",
      {"key-value-array": {"$forEach": "${inputs.merged-object || []}",
                           "$return": {"name": "${item.key}", "value": "${item.value}"}}},
      INPUTS_CONTEXT, {"key-value-array": [{"name": "EXTERNAL_VAR_1", "value": "EXTERNAL_VAR_1"},
                                           {"name": "INTERNAL_VAR_1", "value": "INTERNAL_VAR_1"}]}),
    v(C + "$concat > handles array concatenation", {"foo": ["a", {"$concat": ["b", "c"]}, "d"]}, {},
      {"foo": ["a", "b", "c", "d"]}),
    v(C + "$concat > resolves $concat value before spreading", {"foo": ["a", {"$concat": "${foo}"}, "d"]},
      {"foo": ["b", "c"]}, {"foo": ["a", "b", "c", "d"]}),
    v(C + "$concat > resolves a $forEach in the $concat clause",
      {"foo": ["a", {"$concat": {"$forEach": ["B", "C"], "$return": "${lower(item.value)}"}}, "d"]},
      {"foo": ["b", "c"]}, {"foo": ["a", "b", "c", "d"]}),
    v(C + "$if objects > resolves to $then if $if is true", {"bar": {"$if": "${foo == 1}", "$then": 123, "$else": 456}},
      {"foo": 1}, {"bar": 123}),
    v(C + "$if objects > resolves to $else if $if is false", {"bar": {"$if": "${foo == 1}", "$then": 123, "$else": 456}},
      {"foo": 2}, {"bar": 456}),
    # Garden: {bar: undefined}. An undefined value is an absent key in YAML data (and in Garden's hash).
    v(C + "$if objects > resolves to undefined if $if is false and $else is missing",
      {"bar": {"$if": "${foo == 1}", "$then": 123}}, {"foo": 2}, {}),
    v(C + "$forEach > loops through an array", {"foo": {"$forEach": ["a", "b", "c"], "$return": "foo"}}, {},
      {"foo": ["foo", "foo", "foo"]}),
    v(C + "$forEach > loops through an object",
      {"foo": {"$forEach": {"a": 1, "b": 2, "c": 3}, "$return": "${item.key}: ${item.value}"}}, {},
      {"foo": ["a: 1", "b: 2", "c: 3"]}),
    v(C + "$forEach > exposes item.value and item.key when resolving the $return clause",
      {"foo": {"$forEach": "${foo}", "$return": "${item.key}: ${item.value}"}}, {"foo": ["a", "b", "c"]},
      {"foo": ["0: a", "1: b", "2: c"]}),
    v(C + "$forEach > resolves the input before processing", {"foo": {"$forEach": "${foo}", "$return": "${item.value}"}},
      {"foo": ["a", "b", "c"]}, {"foo": ["a", "b", "c"]}),
    v(C + "$forEach > filters out items if $filter resolves to false",
      {"foo": {"$forEach": "${foo}", "$filter": "${item.value != 'b'}", "$return": "${item.value}"}},
      {"foo": ["a", "b", "c"]}, {"foo": ["a", "c"]}),
    v(C + "$forEach > handles $concat clauses in $return",
      {"foo": {"$forEach": ["a", "b", "c"], "$return": {"$concat": ["${item.value}-1", "${item.value}-2"]}}}, {},
      {"foo": ["a-1", "a-2", "b-1", "b-2", "c-1", "c-2"]}),
    v(C + "$forEach > handles $forEach clauses in $return",
      {"foo": {"$forEach": [["a1", "a2"], ["b1", "b2"]],
               "$return": {"$forEach": "${item.value}", "$return": "${upper(item.value)}"}}}, {},
      {"foo": [["A1", "A2"], ["B1", "B2"]]}),
    v(C + "$forEach > resolves to empty list for empty list input", {"foo": {"$forEach": [], "$return": "foo"}}, {},
      {"foo": []}),
    v(C + "$forEach > merge operator should correctly merge objects with overlapping property names inside $forEach "
      "loop", {"services": {"$forEach": "${services}",
                            "$return": {"$merge": "${item.value.service-props}",
                                        "env": {"ALLOW_DATABASE_RESET": "true",
                                                "$merge": "${item.value.env-overrides}"}}}},
      {"services": SERVICES},
      {"services": [{"command": ["sh", "run.sh"], "env": {"ALLOW_DATABASE_RESET": "true"}, "name": "tmp"},
                    {"command": ["sh", "run.sh"], "env": {"ALLOW_DATABASE_RESET": "true", "ENABLE_TMP": "true"},
                     "name": "tmp-admin"}]}),
])
def test_value(value: Any, context: dict[str, Any], expected: Any) -> None:
    assert same(evaluate(value, context), expected)


@pytest.mark.parametrize("value,context,contains", [
    v(V2 + "should throw the referenced template value with ? does not exists but other keys are defined",
      {"some": "${key}?", "other": "${missing}?"}, {"key": "value"},
      "Invalid template string (${missing}?) at path other: Could not find key missing. Available keys: key."),
    v(C + "should ignore merge operator if the object to be merged is undefined",
      {"$merge": "${var.doesnotexist}", "c": "c"}, {"var": {"obj": {"a": "a", "b": "b"}}}, "Invalid template string"),
    v(C + "$concat > throws if $concat value is not an array", {"foo": ["a", {"$concat": "b"}, "d"]}, {},
      "Value of $concat key must be (or resolve to) an array (got string)"),
    v(C + "$concat > throws if object with $concat key contains other keys as well",
      {"foo": ["a", {"$concat": "b", "nope": "nay", "oops": "derp"}, "d"]}, {},
      'A list item with a $concat key cannot have any other keys (found "nope" and "oops")'),
    v(C + "$if objects > throws if $if doesn't resolve to boolean", {"bar": {"$if": "${foo}", "$then": 123}},
      {"foo": "bla"}, "Value of $if key must be (or resolve to) a boolean (got string)"),
    v(C + "$if objects > throws if $then key is missing", {"bar": {"$if": "${foo == 1}"}}, {},
      "Missing $then field next to $if field"),
    v(C + "$if objects > throws if extra keys are found", {"bar": {"$if": "${foo == 1}", "$then": 123, "foo": "bla"}},
      {}, 'Found one or more unexpected keys on $if object: "foo"'),
    v(C + "$forEach > throws if the input isn't a list or object", {"foo": {"$forEach": "foo", "$return": "foo"}}, {},
      "Value of $forEach key must be (or resolve to) an array or mapping object (got string)"),
    v(C + "$forEach > throws if there's no $return clause", {"foo": {"$forEach": [1, 2, 3]}}, {},
      "Missing $return field next to $forEach field."),
    v(C + "$forEach > throws if there are superfluous keys on the object",
      {"foo": {"$forEach": [1, 2, 3], "$return": "foo", "$concat": [4, 5, 6], "foo": "bla"}}, {},
      'Found one or more unexpected keys on $forEach object: "$concat" and "foo"'),
    v(C + "$forEach > throws if $filter doesn't resolve to a boolean",
      {"foo": {"$forEach": ["a", "b", "c"], "$filter": "foo", "$return": "${item.value}"}}, {},
      "$filter clause in $forEach loop must resolve to a boolean value (got string)"),
])
def test_error(value: Any, context: dict[str, Any], contains: str) -> None:
    with pytest.raises(TemplateError) as err:
        evaluate(value, context)
    assert contains in str(err.value)
