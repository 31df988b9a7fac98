"""The `exampleArguments` Garden declares for every template helper (input -> output), in
core/src/template/functions/index.ts and date.ts; Garden renders them into its reference docs.
Our test code; Garden's data. (uuidv4's example is `skipTest: true` in Garden: random output.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from farm.garden.template_functions import call_helper
from tests.conformance.garden import DATE_FUNCTIONS, FUNCTIONS, same, vector

EXAMPLES: list[tuple[str, list[Any], Any]] = [
    ("base64Decode", ["bXkgdmFsdWU="], "my value"),
    ("base64Encode", ["my value"], "bXkgdmFsdWU="),
    ("camelCase", ["Foo Bar"], "fooBar"),
    ("camelCase", ["--foo-bar--"], "fooBar"),
    ("camelCase", ["__FOO_BAR__"], "fooBar"),
    ("concat", [["first", "two"], ["second", "list"]], ["first", "two", "second", "list"]),
    ("concat", [[1, 2, 3], [4, 5]], [1, 2, 3, 4, 5]),
    ("concat", ["string1", "string2"], "string1string2"),
    ("indent", ["some: multiline\nyaml: document", 2], "  some: multiline\n  yaml: document"),
    ("indent", ["My\nblock\nof\ntext", 4], "    My\n    block\n    of\n    text"),
    ("isEmpty", [{}], True),
    ("isEmpty", [{"not": "empty"}], False),
    ("isEmpty", [[]], True),
    ("isEmpty", [[1, 2, 3]], False),
    ("isEmpty", [""], True),
    ("isEmpty", ["not empty"], False),
    ("isEmpty", [None], True),
    ("join", [["some", "list", "of", "strings"], " "], "some list of strings"),
    ("join", [["some", "list", "of", "strings"], "."], "some.list.of.strings"),
    ("jsonDecode", ['{"foo": "bar"}'], {"foo": "bar"}),
    ("jsonDecode", ['"JSON encoded string"'], "JSON encoded string"),
    ("jsonDecode", ['["my", "json", "array"]'], ["my", "json", "array"]),
    ("jsonEncode", [["some", "array"]], '["some","array"]'),
    ("jsonEncode", [{"some": "object"}], '{"some":"object"}'),
    ("kebabCase", ["Foo Bar"], "foo-bar"),
    ("kebabCase", ["fooBar"], "foo-bar"),
    ("kebabCase", ["__FOO_BAR__"], "foo-bar"),
    ("lower", ["Some String"], "some string"),
    ("range", [1, 5], [1, 2, 3, 4, 5]),
    ("replace", ["string_with_underscores", "_", "-"], "string-with-underscores"),
    ("replace", ["remove.these.dots", ".", ""], "removethesedots"),
    ("sha256", ["Some String"], "7f0fd64653ba0bb1a579ced2b6bf375e916cc60662109ee0c0b24f0a750c3a6c"),
    ("slice", ["ThisIsALongStringThatINeedAPartOf", 11, -7], "StringThatINeed"),
    ("slice", [".foo", 1], "foo"),
    ("split", ["a,b,c", ","], ["a", "b", "c"]),
    ("split", ["1:2:3:4", ":"], ["1", "2", "3", "4"]),
    ("trim", ["   some string with surrounding whitespace "], "some string with surrounding whitespace"),
    ("upper", ["Some String"], "SOME STRING"),
    ("string", [1], "1"),
    ("string", [True], "true"),
    ("yamlDecode", ["a: 1\nb: 2\n"], {"a": 1, "b": 2}),
    ("yamlDecode", ["a: 1\nb: 2\n---\na: 3\nb: 4\n", True], [{"a": 1, "b": 2}, {"a": 3, "b": 4}]),
    ("yamlEncode", [{"my": "simple document"}], "my: simple document\n"),
    ("yamlEncode", [[{"a": 1, "b": 2}, {"a": 3, "b": 4}], True], "---a: 1\nb: 2\n---a: 3\nb: 4\n"),
]

DATE_EXAMPLES: list[tuple[str, list[Any], Any]] = [
    ("formatDateUtc", ["2021-01-01T00:00:00Z", "yyyy-MM-dd"], "2021-01-01"),
    ("formatDateUtc", ["2021-01-01T00:00:00+0200", "yyyy-MM-dd"], "2020-12-31"),
    ("formatDateUtc", ["2021-01-01T00:00:00Z", "yyyy-MM-dd HH:mm:ss"], "2021-01-01 00:00:00"),
    ("formatDateUtc", ["2021-01-01T00:00:00+0200", "yyyy-MM-dd HH:mm:ss"], "2020-12-31 22:00:00"),
    *[("shiftDateUtc", [date, amount, unit], out) for date, amount, unit, out in [
        ("2021-01-01T00:00:00Z", 1, "seconds", "2021-01-01T00:00:01.000Z"),
        ("2021-01-01T00:00:00Z", -1, "seconds", "2020-12-31T23:59:59.000Z"),
        ("2021-01-01T00:00:00Z", 1, "minutes", "2021-01-01T00:01:00.000Z"),
        ("2021-01-01T00:00:00Z", -1, "minutes", "2020-12-31T23:59:00.000Z"),
        ("2021-01-01T00:00:00Z", 1, "hours", "2021-01-01T01:00:00.000Z"),
        ("2021-01-01T00:00:00Z", -1, "hours", "2020-12-31T23:00:00.000Z"),
        ("2021-01-01T10:00:00+0200", 1, "hours", "2021-01-01T09:00:00.000Z"),
        ("2021-01-01T00:00:00Z", 1, "days", "2021-01-02T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", -1, "days", "2020-12-31T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", 1, "months", "2021-02-01T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", -1, "months", "2020-12-01T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", 1, "years", "2022-01-01T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", -1, "years", "2020-01-01T00:00:00.000Z")]],
    *[("modifyDateUtc", [date, amount, unit], out) for date, amount, unit, out in [
        ("2021-01-01T00:00:00.234Z", 345, "milliseconds", "2021-01-01T00:00:00.345Z"),
        ("2021-01-01T00:00:05Z", 30, "seconds", "2021-01-01T00:00:30.000Z"),
        ("2021-01-01T00:01:00Z", 15, "minutes", "2021-01-01T00:15:00.000Z"),
        ("2021-01-01T12:00:00Z", 11, "hours", "2021-01-01T11:00:00.000Z"),
        ("2021-01-01T10:00:00+0200", 11, "hours", "2021-01-01T11:00:00.000Z"),
        ("2021-01-31T00:00:00Z", 1, "days", "2021-01-01T00:00:00.000Z"),
        ("2021-03-01T00:00:00Z", 0, "months", "2021-01-01T00:00:00.000Z"),
        ("2021-01-01T00:00:00Z", 2024, "years", "2024-01-01T00:00:00.000Z")]],
]


def _title(name: str, args: list[Any]) -> str:
    return f"{name} exampleArguments {args!r}"


@pytest.mark.parametrize("name,args,expected", [
    *[vector(FUNCTIONS, _title(n, a), n, a, e) for n, a, e in EXAMPLES],
    *[vector(DATE_FUNCTIONS, _title(n, a), n, a, e) for n, a, e in DATE_EXAMPLES],
])
def test_example(name: str, args: list[Any], expected: Any) -> None:
    assert same(call_helper(name, list(args)), expected)


@pytest.mark.parametrize("shape", [vector(FUNCTIONS, "uuidv4 exampleArguments [] (skipTest: output is random)",
                                          r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")])
def test_uuid(shape: str) -> None:
    assert re.match(shape, call_helper("uuidv4", []))
