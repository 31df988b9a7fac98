"""Garden's template helpers pinned at their edges (issue 19), called the way a template calls them
(`call_helper`: argument schema, then the helper). Expected values are what Node/lodash give."""

from __future__ import annotations

from typing import Any

import pytest

from farm.garden.template_functions import ArgumentError, HelperError, call_helper


def same(value: Any, expected: Any) -> bool:
    if type(value) is not type(expected):
        return False
    if isinstance(value, list):
        return len(value) == len(expected) and all(same(a, b) for a, b in zip(value, expected))
    if isinstance(value, dict):
        return list(value) == list(expected) and all(same(value[k], expected[k]) for k in value)
    return bool(value == expected)


@pytest.mark.parametrize("name,args,expected", [
    # Node's lenient base64: URL-safe letters, junk skipped, stops at the first "=", a lone last char dropped
    ("base64Decode", ["aGVsbG8=junk"], "hello"),
    ("base64Decode", ["aGVsbG8=aGVsbG8="], "hello"),
    ("base64Decode", ["a!G@V#s$b%G^8"], "hello"),
    ("base64Decode", ["aGVsb"], "hel"),
    ("base64Decode", ["aGVsbA"], "hell"),
    ("base64Decode", ["aGVsbGA"], "hell`"),
    ("base64Decode", ["YQ"], "a"),
    ("base64Decode", ["YWI"], "ab"),
    ("base64Decode", ["_-8"], "\ufffd\ufffd"),
    ("base64Decode", ["/w=="], "\ufffd"),
    ("base64Decode", ["w6k="], "\u00e9"),
    # slice: numeric strings, negative starts, Garden's `!!end`
    ("slice", ["abcdef", -2], "ef"), ("slice", ["abcdef", " 2"], "cdef"), ("slice", ["abcdef", 1, "-1"], "bcde"),
    ("slice", ["abcdef", 1, 0], "bcdef"), ("slice", [["a", "b", "c"], -1], ["c"]),
    # range is lodash's range(first, last + 1)
    ("range", [1, 1], [1]), ("range", [2, 1], []), ("range", [1, 0], []), ("range", [0, -3], [0, -1]),
    ("range", [1.5, 1], [1.5]), ("range", [3, 1], [3]), ("range", [5, 1], [5, 4, 3]), ("range", [-2, 0], [-2, -1, 0]),
    ("range", ["1.5", 2], [1.5, 2.5]), ("range", [" 2 ", 3], [2, 3]), ("range", ["1e1", 11], [10, 11]),
    ("range", ["+3", "3."], [3]), ("range", [".5", 1], [0.5, 1.5]),
    # JSON numbers keep JavaScript's single number type
    ("jsonDecode", ["1.0"], 1), ("jsonDecode", ["[1.5, 2.0, 3]"], [1.5, 2, 3]),
    # booleans given as strings
    ("yamlDecode", ["a: 1", "TRUE"], [{"a": 1}]), ("yamlDecode", ["a: 1", "False"], {"a": 1}),
    ("yamlDecode", ["a: 1", True], [{"a": 1}]), ("yamlDecode", ["a: 1", False], {"a": 1}),
    ("yamlDecode", ["a: yes\nb: 0o10"], {"a": "yes", "b": 8}),   # YAML 1.2 core schema
    ("yamlEncode", [{"a": [1, {"b": 2}]}], "a:\n  - 1\n  - b: 2\n"),
    ("yamlEncode", ["x"], "x\n"), ("yamlEncode", [{"k": "é"}], "k: é\n"),
    ("yamlEncode", [{"z": 1, "a": 2}], "z: 1\na: 2\n"),
    ("yamlEncode", ["x" * 100], "x" * 100 + "\n"),
    # words drop apostrophes (both kinds) before splitting
    ("kebabCase", ["don't stop"], "dont-stop"), ("kebabCase", ["don\u2019t stop"], "dont-stop"),
    ("camelCase", ["it's here"], "itsHere"),
    ("indent", ["a", "2"], "  a"), ("indent", ["a\n  \nb", 1], " a\n  \n b"),
    ("concat", [["a"], []], ["a"]), ("concat", ["", "b"], "b"),
    ("isEmpty", [None], True), ("isEmpty", [{}], True), ("isEmpty", [{"a": 1}], False),
    ("join", [[], ","], ""), ("string", [""], ""),
    ("trim", ["xxaxx", "x"], "a"), ("trim", ["\u00a0a\ufeff"], "a"), ("trim", ["\x1ca\x1c"], "\x1ca\x1c"),
])
def test_helper_values(name: str, args: list[Any], expected: Any) -> None:
    assert same(call_helper(name, args), expected)


@pytest.mark.parametrize("name,args,message", [
    ("concat", [["a"], "b"], "Both terms need to be either arrays or strings (got object and string)."),
    ("concat", ["a", ["b"]], "Both terms need to be either arrays or strings (got string and object)."),
    ("yamlEncode", [True, True], "yamlEncode: Set multiDocument=true but value is not an array (got boolean)"),
    ("yamlEncode", [1, True], "yamlEncode: Set multiDocument=true but value is not an array (got number)"),
    ("yamlEncode", ["x", True], "yamlEncode: Set multiDocument=true but value is not an array (got string)"),
    ("yamlEncode", [None, True], "yamlEncode: Set multiDocument=true but value is not an array (got object)"),
    ("yamlEncode", [{}, True], "yamlEncode: Set multiDocument=true but value is not an array (got object)"),
    ("slice", ["abcdef", 1, "x"], 'end index must be a number or a numeric string (got "x")'),
    ("slice", ["abcdef", "y"], 'start index must be a number or a numeric string (got "y")'),
    ("shiftDateUtc", ["nope", 1, "days"], "Invalid time value"),
])
def test_helper_failures(name: str, args: list[Any], message: str) -> None:
    with pytest.raises(HelperError) as exc:
        call_helper(name, args)
    assert str(exc.value) == message


@pytest.mark.parametrize("text,js_name,message", [
    ("{", "SyntaxError", "Expecting property name enclosed in double quotes in JSON at position 1"),
    ("[1,]", "SyntaxError", "Expecting value in JSON at position 3"),
    ("Infinity", "SyntaxError", "Unexpected token 'I', \"Infinity\" is not valid JSON"),
    ("-Infinity", "SyntaxError", "Unexpected token '-', \"-Infinity\" is not valid JSON"),
])
def test_json_errors(text: str, js_name: str, message: str) -> None:
    with pytest.raises(HelperError) as exc:
        call_helper("jsonDecode", [text])
    assert (exc.value.js_name, str(exc.value)) == (js_name, message)


def test_yaml_errors_are_one_line() -> None:
    with pytest.raises(HelperError) as exc:
        call_helper("yamlDecode", ["a: [", False])
    assert exc.value.js_name == "YAMLException"
    assert str(exc.value).startswith("while parsing a flow node expected the node content, but found '<stream end>'")
    assert "\n" not in str(exc.value) and '   in "<unicode string>", line 1, column 5:' in str(exc.value)


def test_date_errors_name_the_js_error() -> None:
    with pytest.raises(HelperError) as exc:
        call_helper("formatDateUtc", ["nope", "yyyy"])
    assert exc.value.js_name == "RangeError"


@pytest.mark.parametrize("name,args,argument,why", [
    ("join", [1, ","], "input", "value must be an array"),
    ("join", [["a", {}], ","], "input", "value[1] must be one of [string, number, boolean]"),
    ("isEmpty", [1], "value", "value must be one of [object, array, string]"),
    ("isEmpty", [True], "value", "value must be one of [object, array, string]"),
    ("concat", [None, "a"], "arg1", "value must be one of [array, string]"),
    ("concat", [True, "a"], "arg1", "value must be one of [array, string]"),
    ("concat", [[1], {}], "arg2", "value must be one of [array, string]"),
    ("slice", ["abc", None], "start", "value must be one of [number, string]"),
    ("slice", ["abc", float("nan")], "start", "value must be one of [number, string]"),
    ("slice", ["abc", 1, ""], "end", "value must be one of [number, string]"),
    ("slice", [1, 1], "input", "value must be one of [string, array]"),
    ("modifyDateUtc", ["2021-01-01T00:00:00Z", 1, "weeks"], "unit",
     "value must be one of [years, months, days, hours, minutes, seconds, milliseconds]"),
    ("shiftDateUtc", ["2021-01-01T00:00:00Z", 1, "Days"], "unit",
     "value must be one of [years, months, weeks, days, hours, minutes, seconds]"),
    ("yamlDecode", ["a", "yes"], "multiDocument", "value must be a boolean"),
    ("yamlDecode", ["a", 1], "multiDocument", "value must be a boolean"),
    ("range", ["x", 1], "first", "value must be a number"),
    ("range", [True, 2], "first", "value must be a number"),
    ("range", [1, float("inf")], "last", "value must be a number"),
    ("range", [1, "nan"], "last", "value must be a number"),
    ("indent", ["a", "inf"], "spaces", "value must be a number"),
    ("indent", ["a", "1.5"], "spaces", "value must be an integer"),
    ("indent", ["a", None], "spaces", "value must be a number"),
    ("trim", ["", "x"], "string", "value is not allowed to be empty"),
    ("trim", ["a", ""], "characters", "value is not allowed to be empty"),
    ("lower", [None], "string", "value must be a string"),
    ("lower", [["a"]], "string", "value must be a string"),
])
def test_argument_errors(name: str, args: list[Any], argument: str, why: str) -> None:
    with pytest.raises(ArgumentError) as exc:
        call_helper(name, args)
    assert str(exc.value) == f"Error validating argument '{argument}' for {name} helper function:\n\n{why}"


def test_numbers_given_as_numbers_pass_as_they_are() -> None:
    assert same(call_helper("range", [2, 3]), [2, 3])
    assert same(call_helper("range", [2.5, 3]), [2.5, 3.5])
    assert same(call_helper("indent", ["a", 0]), "a")


def test_optional_arguments_left_out() -> None:
    assert call_helper("isEmpty", []) is True
    assert call_helper("trim", [" a "]) == "a"
    assert call_helper("yamlDecode", ["a: 1"]) == {"a": 1}
    assert call_helper("slice", ["abc", 1]) == "bc"
    with pytest.raises(ArgumentError) as exc:
        call_helper("replace", ["a", "b"])
    assert str(exc.value) == "Missing argument 'replacement' (at index 2) for replace helper function."


def test_unknown_helper() -> None:
    with pytest.raises(LookupError, match=r"^Could not find helper function 'x'\. Available helper functions: "
                                          r"base64Decode, base64Encode, "):
        call_helper("x", [])


def test_yaml_encode_does_not_fold_long_lines() -> None:
    # js-yaml would fold at 80 columns (a documented difference); the farm keeps one line, never PyYAML's 80
    text = " ".join(["word"] * 30)
    assert call_helper("yamlEncode", [{"a": text}]) == f"a: {text}\n"
    assert call_helper("yamlEncode", [text]) == f"{text}\n"


def test_a_python_error_inside_a_helper_is_a_helper_error() -> None:
    with pytest.raises(HelperError) as exc:
        call_helper("indent", ["a", 1e19])  # an integer, but no string is that long
    assert (exc.value.js_name, str(exc.value)) == ("Error", "cannot fit 'int' into an index-sized integer")
