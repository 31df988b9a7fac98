"""Garden's template-string vectors (core/test/unit/src/template-string.ts, "parse and evaluate
template strings"): the template, Garden's TestContext as a dict, and what Garden returns or the
text its error contains. Our test code; Garden's data."""

from __future__ import annotations

from typing import Any

import pytest

from farm.garden.templates import TemplateError, resolve_string
from tests.conformance.garden import TEMPLATE_STRING, same, vector

P = "parse and evaluate template strings > "
V2 = "parse and evaluate template strings with apiVersion: garden.io/v2 > "
Q = "should resolve ? suffix as a regular character > "
AND = P + "logical AND (&& operator) > "
FULL = P + "when the template string is the full input string > "
PART = P + "when the template string is a part of a string > "
ENV = P + "should escape env references correctly > on macos/linux > "


def v(title: str, template: str, context: dict[str, Any], expected: Any) -> Any:
    return vector(TEMPLATE_STRING, title, template, context, expected)


VALUES = [
    v(V2 + Q + "should resolve ? as a regular character if the referenced template value exists",
      "${foo}?", {"foo": "bar"}, "bar?"),
    v(P + "should return a non-templated string unchanged", "somestring", {}, "somestring"),
    v(P + "should resolve a key with a dash in it", "${some-key}", {"some-key": "value"}, "value"),
    v(P + "should resolve a nested key with a dash in it", "${ctx.some-key}", {"ctx": {"some-key": "value"}},
      "value"),
    v(P + Q + "should resolve ? as a regular character if the referenced template value exists",
      "${foo}?", {"foo": "bar"}, "bar?"),
    v(P + "should allow undefined values when falling back to another value suffix is present",
      "${foo || null}", {}, None),
    v(P + "should support a string literal in a template string as a means to escape it", "${'$'}{bar}", {},
      "${bar}"),
    v(P + "should unescape a template string with a double $$ prefix by default", "$${bar}", {}, "${bar}"),
    v(P + "should resolve other template variables after escaped one", "foo $${} ${bar}", {"bar": "bar"},
      "foo ${} bar"),
    v(P + "should unescape inner template variables by default", 'foo ${"$${}"} ${bar}', {"bar": "bar"},
      "foo ${} bar"),
    v(P + "should unescape outer template variables by default", 'foo $${"${}"} ${bar}', {"bar": "bar"},
      'foo ${"${}"} bar'),
    v(P + "should allow nesting escaped strings within normal strings", "${foo == 'yes' ? '$${bar}' : 'fail' }",
      {"foo": "yes"}, "${bar}"),
    v(ENV + "for standalone env vars", "$${env.TEST_ENV}", {}, "${env.TEST_ENV}"),
    v(ENV + "for env vars in argument lists", "foo $${env.TEST_ENV} bar", {}, "foo ${env.TEST_ENV} bar"),
    v(ENV + "for env vars that are parts of another strings", "${foo}-$${env.TEST_ENV}", {"foo": "foo"},
      "foo-${env.TEST_ENV}"),
    v(P + "should allow mixing normal and escaped strings", "${foo}-and-$${var.nope}", {"foo": "yes"},
      "yes-and-${var.nope}"),
    v(P + "should interpolate a format string with a prefix", "prefix-${some}", {"some": "value"}, "prefix-value"),
    v(P + "should interpolate a format string with a suffix", "${some}-suffix", {"some": "value"}, "value-suffix"),
    v(P + "should interpolate a format string with a prefix and a suffix", "prefix-${some}-suffix",
      {"some": "value"}, "prefix-value-suffix"),
    v(P + "should interpolate an optional format string with a prefix and a suffix", "prefix-${some || ''}-suffix",
      {}, "prefix--suffix"),
    v(P + "should interpolate a format string with a prefix with whitespace", "prefix ${some}", {"some": "value"},
      "prefix value"),
    v(P + "should interpolate a format string with a suffix with whitespace", "${some} suffix", {"some": "value"},
      "value suffix"),
    v(P + "should correctly interpolate a format string with surrounding whitespace", "prefix ${some} suffix",
      {"some": "value"}, "prefix value suffix"),
    v(P + "should handle a nested key", "${some.nested}", {"some": {"nested": "value"}}, "value"),
    v(P + "should handle multiple format strings", "prefix-${a}-${b}-suffix", {"a": "value", "b": "other"},
      "prefix-value-other-suffix"),
    v(P + "should handle consecutive format strings", "${a}${b}", {"a": "value", "b": "other"}, "valueother"),
    v(P + "should handle a single-quoted string", "${'foo'}", {}, "foo"),
    v(P + "should handle a numeric literal and return it directly", "${123}", {}, 123),
    v(P + "should handle a boolean true literal and return it directly", "${true}", {}, True),
    v(P + "should handle a boolean false literal and return it directly", "${false}", {}, False),
    v(P + "should allow unclosed conditional blocks expressions (true)", "${if true}", {}, True),
    v(P + "should allow unclosed conditional blocks expressions (false)", "${if false}", {}, False),
    v(P + "should allow unclosed conditional blocks expressions (any value)", '${if "something"}', {}, "something"),
    v(P + "empty conditional blocks expressions evaluate to empty string", "${if true}${endif}", {}, ""),
    v(P + "should handle a null literal and return it directly", "${null}", {}, None),
    v(P + "should handle a numeric literal in a logical OR and return it directly", "${a || 123}", {}, 123),
    v(P + "should handle a boolean true literal in a logical OR and return it directly", "${a || true}", {}, True),
    v(P + "should handle a boolean false literal in a logical OR and return it directly", "${a || false}", {},
      False),
    v(P + "should handle a null literal in a logical OR and return it directly", "${a || null}", {}, None),
    v(P + "should handle a double-quoted string", '${"foo"}', {}, "foo"),
    # TestContext({a: undefined}): an undefined key is a missing key, so it is left out here.
    v(P + "should handle a logical OR between two identifiers", "${a || b}", {"b": "abc"}, "abc"),
    v(P + "should handle a logical OR between two nested identifiers", "${a.b || c.d}",
      {"a": {}, "c": {"d": "abc"}}, "abc"),
    v(P + "should handle a logical OR between two nested identifiers where the first resolves", "${a.b || c.d}",
      {"a": {"b": "abc"}, "c": {}}, "abc"),
    v(P + "should handle a logical OR between two identifiers without spaces with first value undefined",
      "${a||b}", {"b": "abc"}, "abc"),
    v(P + "should handle a logical OR between two identifiers with first value undefined and string fallback",
      '${a || "foo"}', {}, "foo"),
    v(P + "should handle a logical OR with undefined nested value and string fallback", "${a.b || 'foo'}",
      {"a": {}}, "foo"),
    v(P + "should handle chained logical OR with string fallback", "${a.b || c.d || e.f || 'foo'}",
      {"a": {}, "c": {}, "e": {}}, "foo"),
    v(P + "should handle a logical OR between two identifiers without spaces with first value set", "${a||b}",
      {"a": "abc"}, "abc"),
    v(P + "should handle a logical OR between a string and a string", "${'a' || 'b'}", {}, "a"),
    v(P + "should handle a logical OR between an empty string and a string", "${a || 'b'}", {"a": ""}, "b"),
    v(AND + "true literal and true variable reference", "${true && a}", {"a": True}, True),
    v(AND + "two true variable references", "${var.a && var.b}", {"var": {"a": True, "b": True}}, True),
    v(AND + "first part is false but the second part is not resolvable", "${false && a}", {}, False),
    v(AND + "an empty string as the first clause", "${'' && true}", {}, ""),
    v(AND + "an empty string as the second clause", "${true && ''}", {}, ""),
    v(AND + "a missing reference as the first clause", "${var.foo && 'a'}", {"var": {}}, False),
    v(AND + "a missing reference as the second clause", "${'a' && var.foo}", {"var": {}}, False),
    v(P + "should handle a positive equality comparison between equal resolved values", "${a == b}",
      {"a": "a", "b": "a"}, True),
    v(P + "should handle a positive equality comparison between equal string literals", "${'a' == 'a'}", {}, True),
    v(P + "should handle a positive equality comparison between equal numeric literals", "${123 == 123}", {}, True),
    v(P + "should handle a positive equality comparison between equal boolean literals", "${true == true}", {},
      True),
    v(P + "should handle a positive equality comparison between different resolved values", "${a == b}",
      {"a": "a", "b": "b"}, False),
    v(P + "should handle a positive equality comparison between different string literals", "${'a' == 'b'}", {},
      False),
    v(P + "should handle a positive equality comparison between different numeric literals", "${123 == 456}", {},
      False),
    v(P + "should handle a positive equality comparison between different boolean literals", "${true == false}",
      {}, False),
    v(P + "should handle a negative equality comparison between equal resolved values", "${a != b}",
      {"a": "a", "b": "a"}, False),
    v(P + "should handle a negative equality comparison between equal string literals", "${'a' != 'a'}", {}, False),
    v(P + "should handle a negative equality comparison between equal numeric literals", "${123 != 123}", {},
      False),
    v(P + "should handle a negative equality comparison between equal boolean literals", "${false != false}", {},
      False),
    v(P + "should handle a negative equality comparison between different resolved values", "${a != b}",
      {"a": "a", "b": "b"}, True),
    v(P + "should handle a negative equality comparison between different string literals", "${'a' != 'b'}", {},
      True),
    v(P + "should handle a negative equality comparison between different numeric literals", "${123 != 456}", {},
      True),
    v(P + "should handle a negative equality comparison between different boolean literals", "${true != false}",
      {}, True),
    v(P + "should handle a positive equality comparison between different value types", "${true == 'foo'}", {},
      False),
    v(P + "should handle a negative equality comparison between different value types", "${123 != false}", {},
      True),
    v(P + "should handle negations on booleans", "${!true}", {}, False),
    v(P + "should handle negations on nulls", "${!null}", {}, True),
    v(P + "should handle negations on empty strings", "${!''}", {}, True),
    v(P + "should handle negations on resolved keys", "${!a}", {"a": False}, True),
    v(P + "should handle the typeof operator for resolved booleans", "${typeof a}", {"a": False}, "boolean"),
    v(P + "should handle the typeof operator for resolved numbers", "${typeof foo}", {"foo": 1234}, "number"),
    v(P + "should handle the typeof operator for strings", "${typeof 'foo'}", {}, "string"),
    v(P + "should concatenate two arrays", "${a + b}", {"a": [1], "b": [2, 3]}, [1, 2, 3]),
    v(P + "should concatenate two strings", "${a + b}", {"a": "foo", "b": "bar"}, "foobar"),
    v(P + "should add two numbers together", "${1 + a}", {"a": 2}, 3),
    v(P + "should correctly evaluate clauses in parentheses", "${(1 + 2) * (3 + 4)}", {}, 21),
    v(P + "should handle member lookup with bracket notation", "${foo['bar']}", {"foo": {"bar": True}}, True),
    v(P + "should handle member lookup with bracket notation, single quotes and dot in key name", "${foo['bar.baz']}",
      {"foo": {"bar.baz": True}}, True),
    v(P + "should handle member lookup with bracket notation, double quotes and dot in key name",
      '${foo.bar["bla.ble"]}', {"foo": {"bar": {"bla.ble": 123}}}, 123),
    v(P + "should handle numeric member lookup with bracket notation", "${foo[1]}", {"foo": [False, True]}, True),
    v(P + "should handle consecutive member lookups with bracket notation", "${foo['bar']['baz']}",
      {"foo": {"bar": {"baz": True}}}, True),
    v(P + "should handle dot member after bracket member", "${foo['bar'].baz}", {"foo": {"bar": {"baz": True}}},
      True),
    v(P + "should handle template expression within brackets", "${foo['${bar}']}",
      {"foo": {"baz": True}, "bar": "baz"}, True),
    v(P + "should handle identifiers within brackets", "${foo[bar]}", {"foo": {"baz": True}, "bar": "baz"}, True),
    v(P + "should handle nested identifiers within brackets", "${foo[a.b]}",
      {"foo": {"baz": True}, "a": {"b": "baz"}}, True),
    v(P + "should handle a positive ternary expression", "${foo ? true : false}", {"foo": True}, True),
    v(P + "should handle a negative ternary expression", "${foo ? true : false}", {"foo": False}, False),
    v(P + "should handle a ternary expression with an expression as a test", "${foo == 'bar' ? a : b}",
      {"foo": "bar", "a": True, "b": False}, True),
    v(P + "should ignore errors in a value not returned by a ternary", "${var.foo ? replace(var.foo, ' ', ',') : null}",
      {"var": {}}, None),
    v(P + "should handle a ternary expression with an object as a test", "${a ? a.value : b}",
      {"a": {"value": True}, "b": False}, True),
    v(P + "should handle a ternary expression with template key values", "${foo == 'bar' ? '=${foo}' : b}",
      {"foo": "bar", "a": True, "b": False}, "=bar"),
    v(P + "should handle an expression in parentheses", "${foo || (a > 5)}", {"foo": False, "a": 10}, True),
    v(P + "should handle numeric indices on arrays", "${foo.1}", {"foo": [False, True]}, True),
    v(P + "should resolve keys on objects in arrays", "${foo.1.bar}", {"foo": [{}, {"bar": True}]}, True),
    *[v(P + "We need to remain bug-compatible with older versions of garden and not throw when variable does not "
        f"exist with certain operators [{t}]", t, {"var": {}}, e)
      for t, e in [("${!var.doesNotExist}", True), ("${typeof var.doesNotExist}", "undefined"),
                   ("${! (var.doesNotExistOne && var.doesNotExistTwo)}", True),
                   ("${var.doesNotExistOne && var.doesNotExistTwo}", False)]],
    v(FULL + "should return a resolved number directly", "${a}", {"a": 100}, 100),
    v(FULL + "should return a resolved boolean true directly", "${a}", {"a": True}, True),
    v(FULL + "should return a resolved boolean false directly", "${a}", {"a": False}, False),
    v(FULL + "should return a resolved null directly", "${a}", {"a": None}, None),
    v(FULL + "should return a resolved object directly", "${a}", {"a": {"b": 123}}, {"b": 123}),
    v(FULL + "should return a resolved array directly", "${a}", {"a": [123]}, [123]),
    v(PART + "should format a resolved number into the string", "foo-${a}", {"a": 100}, "foo-100"),
    v(PART + "should format a resolved boolean true into the string", "foo-${a}", {"a": True}, "foo-true"),
    v(PART + "should format a resolved boolean false into the string", "foo-${a}", {"a": False}, "foo-false"),
    v(PART + "should format a resolved null into the string", "foo-${a}", {"a": None}, "foo-null"),
]


@pytest.mark.parametrize("template,context,expected", VALUES)
def test_value(template: str, context: dict[str, Any], expected: Any) -> None:
    assert same(resolve_string(template, context), expected)


@pytest.mark.parametrize("template,context,expected", [
    v(P + "should resolve other template variables after escaped one with keepEscapingInTemplateStrings=true",
      "foo $${} ${bar}", {"bar": "bar"}, "foo $${} bar"),
    v(P + "should not unescape inner template variables with keepEscapingInTemplateStrings=true",
      'foo ${"$${}"} ${bar}', {"bar": "bar"}, "foo $${} bar"),
    v(P + "should not unescape outer template variables with keepEscapingInTemplateStrings=true",
      'foo $${"${}"} ${bar}', {"bar": "bar"}, 'foo $${"${}"} bar'),
])
def test_value_keeping_escapes(template: str, context: dict[str, Any], expected: Any) -> None:
    assert resolve_string(template, context, keep_escaping=True) == expected


ERRORS = [
    v(V2 + Q + "should throw the referenced template value with ? does not exists", "${foo}?", {},
      "Invalid template string (${foo}?): Could not find key foo. Available keys: (none)."),
    v(V2 + Q + "should throw the referenced template value with ? does not exists and surrounded with a prefix and "
      "a suffix", "prefix-${some}?-suffix", {},
      "Invalid template string (prefix-${some}?-suffix): Could not find key some. Available keys: (none)."),
    v(V2 + Q + "should throw if an expression with ? in member expression cannot be resolved",
      '${actions.build["${parent.name}?"]}', {"actions": {"build": {}}},
      "Invalid template string (${parent.name}?): Could not find key parent. Available keys: actions."),
    v(P + Q + "should throw the referenced template value with ? does not exists", "${foo}?", {},
      "Invalid template string (${foo}?): Could not find key foo. Available keys: (none)."),
    v(P + Q + "should throw the referenced template value with ? does not exists and surrounded with a prefix and a "
      "suffix", "prefix-${some}?-suffix", {},
      "Invalid template string (prefix-${some}?-suffix): Could not find key some. Available keys: (none)."),
    v(P + Q + "should throw if an expression with ? in member expression cannot be resolved",
      '${actions.build["${parent.name}?"]}', {"actions": {"build": {}}},
      "Invalid template string (${parent.name}?): Could not find key parent. Available keys: actions."),
    v(P + "should fail if optional expression in member expression cannot be resolved",
      '${actions.build["${parent.name || null}"]}', {"actions": {"build": {}}},
      'Invalid template string (${actions.build["${parent.name || null}"]}): Expression in brackets must resolve '
      "to a string or number (got null)."),
    v(P + "should throw when a key is not found", "${some}", {},
      "Invalid template string (${some}): Could not find key some"),
    v(P + "should replace line breaks in template strings in error messages", "${some}\nmulti\nline\nstring", {},
      "Invalid template string (${some}\\nmulti\\nline\\nstring): Could not find key some"),
    v(P + "should throw when a nested key is not found", "${some.other}", {"some": {}},
      "Invalid template string (${some.other}): Could not find key other under some"),
    v(P + "should throw with an incomplete template string", "${some", {"some": {}},
      "Invalid template string (${some): Unable to parse as valid template string."),
    v(P + "should throw on nested format strings", "${resol${part}ed}", {},
      "Invalid template string (${resol${part}ed}): Unable to parse as valid template string."),
    v(P + "should throw on invalid single-quoted string", "${'foo}", {},
      "Invalid template string (${'foo}): Unable to parse as valid template string."),
    v(P + "should throw on invalid double-quoted string", '${"foo}', {},
      'Invalid template string (${"foo}): Unable to parse as valid template string.'),
    v(P + "should throw if neither key in logical OR is valid", "${a || b}", {},
      "Invalid template string (${a || b}): Could not find key b"),
    v(P + "should throw on invalid logical OR string", "${a || 'b}", {},
      "Invalid template string (${a || 'b}): Unable to parse as valid template string."),
    v(P + "should throw when using comparison operators on missing keys", "${a >= b}", {"a": 123},
      "Invalid template string (${a >= b}): Could not find key b. Available keys: a."),
    v(P + "should throw when using + on number and array", "${a + b}", {"a": 123, "b": ["a"]},
      "Invalid template string (${a + b}): Both terms need to be either arrays or strings or numbers for + operator "
      "(got number and object)."),
    v(P + "should throw if bracket expression resolves to a non-primitive", "${foo[bar]}", {"foo": {}, "bar": {}},
      "Invalid template string (${foo[bar]}): Expression in brackets must resolve to a string or number (got "
      "object)."),
    v(P + "should throw if attempting to index a primitive with brackets", "${foo[bar]}", {"foo": 123, "bar": "baz"},
      "Invalid template string (${foo[bar]}): Attempted to look up key baz on primitive value foo.baz."),
    v(P + "should throw when using >= on non-numeric terms", "${a >= b}", {"a": 123, "b": "foo"},
      "Invalid template string (${a >= b}): Both terms need to be numbers for >= operator (got number and string)."),
    v(P + "should correctly propagate errors from nested contexts", "${nested.missing}",
      {"nested": {"foo": 123, "bar": 456, "baz": 789}},
      "Invalid template string (${nested.missing}): Could not find key missing under nested. Available keys: foo, "
      "bar, baz."),
    v(P + "should correctly propagate errors from nested objects", "${nested.missing}",
      {"nested": {"foo": 123, "bar": 456}},
      "Invalid template string (${nested.missing}): Could not find key missing under nested. Available keys: foo, "
      "bar."),
    v(P + "should correctly propagate errors when resolving key on object in nested context",
      "${nested.deeper.missing}", {"nested": {"deeper": {}}},
      "Invalid template string (${nested.deeper.missing}): Could not find key missing under nested.deeper."),
    v(P + "should correctly propagate errors from deeply nested contexts", "${nested.deeper.missing}",
      {"nested": {"deeper": {}}},
      "Invalid template string (${nested.deeper.missing}): Could not find key missing under nested.deeper."),
    v(P + "should throw an error if var lookup fails combined with json encode", "${jsonEncode(var.missing)}",
      {"var": {}}, "Invalid template string (${jsonEncode(var.missing)}): Could not find key missing under var."),
]


@pytest.mark.parametrize("template,context,contains", ERRORS)
def test_error(template: str, context: dict[str, Any], contains: str) -> None:
    with pytest.raises(TemplateError) as err:
        resolve_string(template, context)
    assert contains in str(err.value)


@pytest.mark.parametrize("template", [
    vector(TEMPLATE_STRING, P + "should trim long template string in error messages",
           "${some} " + "very " * 100 + " template string"),
])
def test_long_templates_are_trimmed_in_errors(template: str) -> None:
    with pytest.raises(TemplateError) as err:
        resolve_string(template, {})
    assert len(str(err.value)) < 350
