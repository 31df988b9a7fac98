"""Garden's template language pinned operator by operator and helper by helper (issue 19).

Each expected value is what JavaScript (and so Garden) gives for the same expression, written out as
a literal: `x${true}` is "xtrue", never Python's "xTrue". Garden's own vectors live in
tests/conformance/test_template_*.py; these add the cases they leave open.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from farm.garden.templates import FUNCTIONS, TemplateError, resolve, resolve_string

CTX: dict[str, Any] = {"var": {"l": ["a", "b", "c"], "m": {"k": "v", "0": "zero"}, "s": "str", "n": 3, "z": 0,
                               "e": "", "t": True, "f": False, "nul": None}}


def ev(text: str) -> Any:
    return resolve_string(text, CTX)


def error(text: str) -> str:
    with pytest.raises(TemplateError) as exc:
        ev(text)
    return str(exc.value)


def same(value: Any, expected: Any) -> bool:
    """Equal and of the same type all the way down (True is not 1, 3.0 is not 3)."""
    if type(value) is not type(expected):
        return False
    if isinstance(value, list):
        return len(value) == len(expected) and all(same(a, b) for a, b in zip(value, expected))
    if isinstance(value, dict):
        return list(value) == list(expected) and all(same(value[k], expected[k]) for k in value)
    return bool(value == expected)


@pytest.mark.parametrize("text,expected", [
    # literals: alone they keep their type, inside a string they render as JavaScript does
    ("${true}", True), ("${false}", False), ("${null}", None), ("${1.5}", 1.5), ("${7}", 7), ("${'a'}", "a"),
    ('${"b"}', "b"), ("${[1, 'x', true]}", [1, "x", True]),
    ("x${true}", "xtrue"), ("x${false}", "xfalse"), ("x${null}", "xnull"), ("x${1.0}", "x1"), ("x${1.5}", "x1.5"),
    ("x${var.n}", "x3"), ("x${var.l}", "xa,b,c"), ("x${var.m}", "x[object Object]"), ("${var.s}${var.n}", "str3"),
    ("${var.nul}", None), ("${var.t}", True),
    # && returns the first falsy operand or the last; a missing key is false
    ("${true && 'x'}", "x"), ("${false && 'x'}", False), ("${'' && 'x'}", ""), ("${0 && 'x'}", 0),
    ("${var.missing && 'x'}", False), ("${'x' && var.missing}", False), ("${var.t && var.n}", 3),
    # || returns the first truthy operand or the last
    ("${var.missing || 'b'}", "b"), ("${'a' || 'b'}", "a"), ("${0 || false}", False), ("${'' || 0}", 0),
    ("${var.e || var.l}", ["a", "b", "c"]), ("${var.f || var.missing || 'z'}", "z"),
    # ! and typeof
    ("${!true}", False), ("${!false}", True), ("${!''}", True), ("${!'a'}", False), ("${!var.missing}", True),
    ("${!0}", True), ("${!1}", False), ("${![]}", False), ("${!null}", True), ("${!!'a'}", True),
    ("${typeof 1}", "number"), ("${typeof 'a'}", "string"), ("${typeof true}", "boolean"),
    ("${typeof var.missing}", "undefined"), ("${typeof var.l}", "object"), ("${typeof null}", "object"),
    # == and != are strict
    ("${1 == '1'}", False), ("${'a' == 'a'}", True), ("${null == null}", True), ("${1 == 1.0}", True),
    ("${true == 1}", False), ("${[1] == [1]}", False), ("${true != false}", True), ("${1 != 1}", False),
    ("${'a' != 'b'}", True), ("${1 != '1'}", True),
    # comparisons
    ("${1 < 2}", True), ("${2 < 2}", False), ("${3 < 2}", False),
    ("${1 <= 2}", True), ("${2 <= 2}", True), ("${3 <= 2}", False),
    ("${1 > 2}", False), ("${2 > 2}", False), ("${3 > 2}", True),
    ("${1 >= 2}", False), ("${2 >= 2}", True), ("${3 >= 2}", True),
    ("${1.5 < 2}", True), ("${var.n > var.z}", True),
    # + on numbers, strings (only the left side decides) and lists
    ("${1 + 2}", 3), ("${1.5 + 1.5}", 3), ("${1.25 + 1}", 2.25),
    ("${'a' + 'b'}", "ab"), ("${'a' + 1}", "a1"), ("${'a' + true}", "atrue"), ("${'a' + null}", "anull"),
    ("${'a' + [1, 2]}", "a1,2"), ("${'' + 1.0}", "1"),
    ("${[1] + [2]}", [1, 2]), ("${var.l + []}", ["a", "b", "c"]), ("${[] + []}", []),
    # the other arithmetic operators
    ("${7 - 2}", 5), ("${2 - 7}", -5), ("${2 * 3}", 6), ("${1.5 * 2}", 3), ("${7 / 2}", 3.5), ("${6 / 3}", 2),
    ("${7 % 4}", 3), ("${7.5 % 2}", 1.5),
    # contains
    ("${var.l contains 'a'}", True), ("${var.l contains 'z'}", False), ("${var.m contains 'k'}", True),
    ("${var.m contains 0}", True), ("${var.m contains 'v'}", False), ("${var.s contains 'tr'}", True),
    ("${var.s contains 'x'}", False), ("${[1, 2] contains 2}", True), ("${[1, 2] contains '2'}", False),
    # ternary and if blocks
    ("${var.t ? 'y' : 'n'}", "y"), ("${var.missing ? 'y' : 'n'}", "n"), ("${var.e ? 'y' : 'n'}", "n"),
    ("${var.l ? 1 : 2}", 1), ("${if var.t}yes${else}no${endif}", "yes"), ("${if var.f}yes${else}no${endif}", "no"),
    ("${if var.f}yes${endif}", ""), ("a${if var.n > 2}big${endif}b", "abigb"),
    # indexes and length
    ("${var.l[0]}", "a"), ('${var.l["1"]}', "b"), ("${var.l[var.z]}", "a"), ("${var.l.length}", 3),
    ("${var.m[0]}", "zero"), ("${var.m['k']}", "v"),
])
def test_expressions(text: str, expected: Any) -> None:
    assert same(ev(text), expected)


@pytest.mark.parametrize("text,check", [
    ("${1 / 0}", lambda v: v == math.inf), ("${0 / 0}", math.isnan), ("${5 % 0}", math.isnan),
    ("${0 % 0}", math.isnan),
])
def test_division_by_zero(text: str, check: Any) -> None:
    assert check(ev(text))


@pytest.mark.parametrize("text,message", [
    ("${'a' < 'b'}", "Both terms need to be numbers for < operator (got string and string)."),
    ("${1 <= 'b'}", "Both terms need to be numbers for <= operator (got number and string)."),
    ("${true > 1}", "Both terms need to be numbers for > operator (got boolean and number)."),
    ("${1 >= null}", "Both terms need to be numbers for >= operator (got number and null)."),
    ("${'a' - 1}", "Both terms need to be numbers for - operator (got string and number)."),
    ("${1 + 'a'}", "Both terms need to be either arrays or strings or numbers for + operator (got number and string)."),
    ("${true + 1}", "Both terms need to be either arrays or strings or numbers for + operator (got boolean and number)."),
    ("${[1] + 'a'}", "Both terms need to be either arrays or strings or numbers for + operator (got object and string)."),
    ("${var.n contains 1}", "The left-hand side of a 'contains' operator must be a string, array or object (got 3)."),
    ("${var.l contains [1]}", "The right-hand side of a 'contains' operator must be a string, number, boolean or null "
                              "(got object)."),
    ("${var.l[3]}", "Could not find key 3 under var.l. Available keys: 0, 1, 2."),
    ("${var.missing}", "Could not find key missing under var. Available keys: l, m, s, n, z, e, t, f, nul."),
    ("${var.s.length}", "Attempted to look up key length on primitive value var.s.length."),
])
def test_operator_errors(text: str, message: str) -> None:
    assert error(text) == f"Invalid template string ({text}): {message}"


def test_a_missing_key_on_either_side_of_an_operator_is_an_error() -> None:
    for text in ("${var.missing == 1}", "${1 == var.missing}", "${var.missing + 'a'}", "${'a' + var.missing}"):
        assert "Could not find key missing under var" in error(text)


# --- every helper, by name -----------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("${base64Decode('aGVsbG8=')}", "hello"), ("${base64Decode('aGVsbG8')}", "hello"),
    ("${base64Encode('hello')}", "aGVsbG8="),
    ("${camelCase('foo bar-baz')}", "fooBarBaz"), ("${camelCase('FOO_BAR')}", "fooBar"),
    ("${concat('a', 'b')}", "ab"), ("${concat(var.l, ['d'])}", ["a", "b", "c", "d"]),
    ("${indent('a\\nb', 2)}", "  a\n  b"), ("${indent('a\\n\\nb', '3')}", "   a\n\n   b"),
    ("${isEmpty('')}", True), ("${isEmpty([])}", True), ("${isEmpty(null)}", True), ("${isEmpty()}", True),
    ("${isEmpty('x')}", False), ("${isEmpty(var.l)}", False), ("${isEmpty(var.m)}", False),
    ("${join([1, 'a', true, null], '-')}", "1-a-true-"), ("${join(var.l, '')}", "abc"),
    ("${jsonDecode('{\"a\":[1,2.5,true,null]}')}", {"a": [1, 2.5, True, None]}),
    ("${jsonEncode([1, 'a', null, true])}", '[1,"a",null,true]'), ("${jsonEncode(var.m)}", '{"0":"zero","k":"v"}'),
    ("${kebabCase('fooBar Baz')}", "foo-bar-baz"),
    ("${lower('AbC')}", "abc"),
    ("${range(1, 3)}", [1, 2, 3]), ("${range('1', '2')}", [1, 2]), ("${range(1.5, 3)}", [1.5, 2.5, 3.5]),
    ("${range(3, 1)}", [3]), ("${range(5, 1)}", [5, 4, 3]),
    ("${replace('a-b-a', 'a', 'x')}", "x-b-x"), ("${replace('abc', 'b', '')}", "ac"),
    ("${sha256('abc')}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("${slice('abcdef', 1, 3)}", "bc"), ("${slice('abcdef', '-2')}", "ef"), ("${slice('abcdef', 1, '-1')}", "bcde"),
    ("${slice(var.l, '-2')}", ["b", "c"]), ("${slice(var.l, 0, '-1')}", ["a", "b"]),
    ("${slice('abcdef', 0, 0)}", "abcdef"), ("${slice('abcdef', 2, '4x')}", "cd"), ("${slice('abcdef', 1.7)}", "bcdef"),
    ("${split('a,b,,c', ',')}", ["a", "b", "", "c"]),
    ("${trim('  a b \\n')}", "a b"), ("${trim('xxaxx', 'x')}", "a"),
    ("${upper('ab')}", "AB"),
    ("${string(1)}", "1"), ("${string(1.5)}", "1.5"), ("${string(true)}", "true"), ("${string(null)}", "null"),
    ("${string(var.l)}", "a,b,c"),
    ("${yamlDecode('a: 1\\nb: [x, true]')}", {"a": 1, "b": ["x", True]}),
    ("${yamlDecode('---\\na: 1\\n---\\nb: 2', true)}", [{"a": 1}, {"b": 2}]),
    ("${yamlEncode(var.l)}", "- a\n- b\n- c\n"),
    ("${formatDateUtc('2021-03-04T05:06:07Z', 'yyyy-MM-dd HH:mm:ss')}", "2021-03-04 05:06:07"),
    ("${shiftDateUtc('2021-01-31T00:00:00Z', 1, 'months')}", "2021-02-28T00:00:00.000Z"),
    ("${modifyDateUtc('2021-01-01T10:20:30Z', 0, 'minutes')}", "2021-01-01T10:00:30.000Z"),
])
def test_helpers(text: str, expected: Any) -> None:
    assert same(ev(text), expected)


def test_uuidv4() -> None:
    a, b = ev("${uuidv4()}"), ev("${uuidv4()}")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a) and a != b


HELPER_NAMES = ("base64Decode, base64Encode, camelCase, concat, indent, isEmpty, join, jsonDecode, jsonEncode, "
                "kebabCase, lower, range, replace, sha256, slice, split, trim, upper, string, uuidv4, yamlDecode, "
                "yamlEncode, formatDateUtc, shiftDateUtc, modifyDateUtc")


def test_the_helper_names() -> None:
    assert error("${nope()}") == ("Invalid template string (${nope()}): Could not find helper function 'nope'. "
                                  f"Available helper functions: {HELPER_NAMES}")
    assert ", ".join(FUNCTIONS) == HELPER_NAMES


@pytest.mark.parametrize("text,message", [
    ("${lower()}", "Missing argument 'string' (at index 0) for lower helper function."),
    ("${replace('a', 'b')}", "Missing argument 'replacement' (at index 2) for replace helper function."),
    ("${lower(1)}", "Error validating argument 'string' for lower helper function:\n\nvalue must be a string"),
    ("${lower('')}", "Error validating argument 'string' for lower helper function:\n\nvalue is not allowed to be empty"),
    ("${indent('a', 1.5)}", "Error validating argument 'spaces' for indent helper function:\n\nvalue must be an integer"),
    ("${range('x', 2)}", "Error validating argument 'first' for range helper function:\n\nvalue must be a number"),
    ("${concat('a', 1)}", "Error validating argument 'arg2' for concat helper function:\n\nvalue must be one of "
                          "[array, string]"),
    ("${join([[1]], ',')}", "Error validating argument 'input' for join helper function:\n\nvalue[0] must be one of "
                            "[string, number, boolean]"),
    ("${yamlDecode('a', 'maybe')}", "Error validating argument 'multiDocument' for yamlDecode helper function:\n\n"
                                    "value must be a boolean"),
    ("${shiftDateUtc('2021-01-01T00:00:00Z', 1, 'ms')}", "Error validating argument 'unit' for shiftDateUtc helper "
                                                         "function:\n\nvalue must be one of [years, months, weeks, "
                                                         "days, hours, minutes, seconds]"),
    ("${concat('a', var.l)}", "Error from helper function concat: Error: Both terms need to be either arrays or "
                              "strings (got string and object)."),
    ("${jsonDecode('NaN')}", "Error from helper function jsonDecode: SyntaxError: Unexpected token 'N', \"NaN\" is "
                             "not valid JSON"),
    ("${slice('abcdef', 'x')}", "Error from helper function slice: Error: start index must be a number or a numeric "
                                "string (got \"x\")"),
])
def test_helper_errors(text: str, message: str) -> None:
    assert error(text) == f"Invalid template string ({text}): {message}"


# --- collections (templates.py) --------------------------------------------------------------------------

def fail(exc: TemplateError, path: tuple[str | int, ...]) -> Exception:
    return ValueError(f"{'.'.join(map(str, path))}: {exc}")


@pytest.mark.parametrize("value,expected", [
    ({"a": {"$if": "${var.t}", "$then": 1, "$else": 2}}, {"a": 1}),
    ({"a": {"$if": "${var.f}", "$then": 1, "$else": 2}}, {"a": 2}),
    ({"a": {"$if": "${var.f}", "$then": 1}, "b": 0}, {"b": 0}),
    ([{"$if": "${var.f}", "$then": 1}], [None]),
    ({"$merge": {"a": 1}, "b": 2}, {"a": 1, "b": 2}),
    ({"a": 1, "$merge": {"a": 3}}, {"a": 3}),
    ({"a": 1, "$merge": {"a": 3}, "b": 2}, {"a": 3, "b": 2}),
    ([1, {"$concat": [2, 3]}, 4], [1, 2, 3, 4]),
    ({"$forEach": "${var.l}", "$return": "${item.key}=${item.value}"}, ["0=a", "1=b", "2=c"]),
    ({"$forEach": {"x": 1, "y": 2}, "$return": "${item.key}", "$filter": "${item.value > 1}"}, ["y"]),
    ({"$forEach": [1, 2], "$return": {"$concat": ["${item.value}", "${item.value}"]}}, [1, 1, 2, 2]),
    ({"$forEach": [1, 2], "$return": {"$if": "${item.value > 1}", "$then": "big"}}, [None, "big"]),
    ("${var.n}", 3),
    ("plain", "plain"),
    (5, 5),
])
def test_collections(value: Any, expected: Any) -> None:
    assert same(resolve(value, CTX, fail), expected)


def test_a_false_if_at_the_top_is_none() -> None:
    assert resolve({"$if": "${var.f}", "$then": 1}, CTX, fail) is None


@pytest.mark.parametrize("value,message", [
    ({"a": {"$if": 1, "$then": 1}}, "a.$if: Value of $if key must be (or resolve to) a boolean (got number)"),
    ({"a": {"$if": True}}, ": Missing $then field next to $if field. Got: $if"),
    ({"a": {"$if": True, "$then": 1, "x": 2}}, ": Found one or more unexpected keys on $if object: \"x\". "
                                               "Allowed: $if, $then and $else"),
    ({"$forEach": [1], "$return": 1, "y": 1, "z": 2}, ": Found one or more unexpected keys on $forEach object: "
                                                      "\"y\" and \"z\". Allowed keys: $forEach, $return and $filter"),
    ({"$forEach": [1]}, ": Missing $return field next to $forEach field. Got $forEach"),
    ({"$forEach": 1, "$return": 1}, "$forEach: Value of $forEach key must be (or resolve to) an array or mapping "
                                    "object (got number)"),
    ({"$forEach": [1], "$return": 1, "$filter": "x"}, "$filter: $filter clause in $forEach loop must resolve to a "
                                                      "boolean value (got string)"),
    ({"a": {"$merge": [1]}}, "a.$merge: Value of $merge key must be (or resolve to) a mapping object (got object)"),
    ([{"$concat": 1}], "0.$concat: Value of $concat key must be (or resolve to) an array (got number)"),
    ([{"$concat": [1], "x": 1}], "$concat: A list item with a $concat key cannot have any other keys (found \"x\")"),
    ({"a": ["${var.missing}"]}, "a.0: Invalid template string (${var.missing}) at path a.0: Could not find key missing under "
                                "var. Available keys: l, m, s, n, z, e, t, f, nul."),
])
def test_collection_errors(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        resolve(value, CTX, fail)
    assert str(exc.value) == message


@pytest.mark.parametrize("key,hint", [
    ("${secrets.x}", " (Garden Cloud secrets are not available to the farm; use local.env.* or a varfile)"),
    ("${actions.build.x}", " (actions.build.x: no container Build of that name is enabled in this environment)"),
    ("${actions.deploy.x}", " (references to other actions, modules or providers are not supported by "
                                   "the farm)"),
    ("${providers.k}", " (references to other actions, modules or providers are not supported by the farm)"),
    ("${modules.k}", " (references to other actions, modules or providers are not supported by the farm)"),
    ("${runtime.k}", " (references to other actions, modules or providers are not supported by the farm)"),
    ("${other.k}", ""),
])
def test_hints_for_keys_the_farm_does_not_provide(key: str, hint: str) -> None:
    ctx = {"var": {}, "secrets": {}, "actions": {"build": {}}, "providers": {}, "modules": {}, "runtime": {},
           "other": {}}
    with pytest.raises(TemplateError) as exc:
        resolve_string(key, ctx)
    assert str(exc.value).endswith("." + hint)


def test_a_missing_environment_variable() -> None:
    with pytest.raises(TemplateError) as exc:
        resolve_string("${local.env.FARM_PIN_NOT_SET}", {"local": {"env": {"HOME": "/root"}}})
    assert str(exc.value) == ("Invalid template string (${local.env.FARM_PIN_NOT_SET}): Could not find key "
                              "FARM_PIN_NOT_SET under local.env: the environment variable is not set")
    with pytest.raises(TemplateError) as exc:
        resolve_string("${local.envs.X}", {"local": {"env": {}}})
    assert str(exc.value).endswith("Could not find key envs under local. Available keys: env.")


def test_has_template() -> None:
    from farm.garden.templates import has_template

    assert has_template("a${b}") and has_template("${") and not has_template("a$b{c}") and not has_template("")


@pytest.mark.parametrize("value,message", [
    ({"$forEach": "${var.missing}", "$return": 1}, "$forEach: Invalid template string (${var.missing}) at path "
                                                   "$forEach: Could not find key missing under var."),
    ({"$forEach": [1], "$return": 1, "$filter": "${var.missing}"}, "$filter: Invalid template string "
                                                                   "(${var.missing}) at path $filter: Could not find "
                                                                   "key missing under var."),
    ({"$forEach": [1], "$return": {"$concat": "${var.missing}"}}, "$return.$concat: Invalid template string "
                                                                  "(${var.missing}) at path $return.$concat: Could "
                                                                  "not find key missing under var."),
    ({"$forEach": [1], "$return": "${var.missing}"}, "$return: Invalid template string (${var.missing}) at path "
                                                     "$return: Could not find key missing under var."),
    ({"a": {"$if": "${var.missing}", "$then": 1}}, "a.$if: Invalid template string (${var.missing}) at path a.$if: "
                                                   "Could not find key missing under var."),
    ({"a": {"$if": True, "$then": "${var.missing}"}}, "a.$then: Invalid template string (${var.missing}) at path "
                                                      "a.$then: Could not find key missing under var."),
    ({"a": {"$merge": "${var.s}"}}, "a.$merge: Value of $merge key must be (or resolve to) a mapping object "
                                    "(got string)"),
    ([[{"$if": True}]], ": Missing $then field next to $if field. Got: $if"),
])
def test_error_paths(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        resolve(value, CTX, fail)
    assert str(exc.value).startswith(message)


def test_a_branch_is_resolved_in_the_context() -> None:
    assert resolve({"$if": "${var.t}", "$then": "${var.n}"}, CTX, fail) == 3
    assert resolve({"$forEach": [1], "$return": {"$if": True, "$then": "${item.value + var.n}"}}, CTX, fail) == [4]


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


def deepest_checkable() -> int:
    """The deepest nesting the structural check walks here (it takes the fewest frames a level)."""
    from farm.garden import templates

    depth = 50
    while True:
        try:
            templates._check(nested(depth + 50, 1))
        except RecursionError:
            return depth
        depth += 50


@pytest.mark.parametrize("depth", ["checkable", 20_000])
def test_data_nested_too_deeply_is_one_error(depth: int | str) -> None:
    # 20000 levels: the structural check meets the limit (it raised RecursionError before issue 19);
    # just under the check's own limit: the check passes and the resolver, more frames a level, meets it
    n = deepest_checkable() - 60 if depth == "checkable" else int(depth)
    with pytest.raises(ValueError) as exc:
        resolve(nested(n, "${var.n}"), CTX, fail)
    assert str(exc.value) == ": template nested too deeply"


def test_a_helper_that_recurses_too_deeply() -> None:
    text = "${jsonDecode('" + "[" * 100_000 + "]" * 100_000 + "')}"
    with pytest.raises(TemplateError) as exc:
        resolve_string(text, {})
    assert (exc.value.message, exc.value.expression, exc.value.source) == ("template nested too deeply", text, text)


# --- evaluation details (template_eval.py) ---------------------------------------------------------------

@pytest.mark.parametrize("text,plain,kept", [
    ("${'$${a}' + 'b'}", "${a}b", "$${a}b"),
    ("${'b' + '$${a}'}", "b${a}", "b$${a}"),
    ("${'$${a}' || 'b'}", "${a}", "$${a}"),
    ("${var.f || '$${a}'}", "${a}", "$${a}"),
    ("${var.t && '$${a}'}", "${a}", "$${a}"),
])
def test_escapes_inside_operands(text: str, plain: str, kept: str) -> None:
    assert resolve_string(text, CTX) == plain
    assert resolve_string(text, CTX, keep_escaping=True) == kept


@pytest.mark.parametrize("text,expected", [
    ("${var.missing + 'a' || 'b'}", "b"),
    ("${'a' + var.missing || 'b'}", "b"),
    ("${[var.missing] || 'b'}", "b"),
    ("${[var.n, var.missing] || 'b'}", "b"),
])
def test_a_missing_key_inside_the_left_of_or_falls_through(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize("text,expression", [
    ("a ${var.missing} b", "var.missing"),
    ("a ${var.s.x} b", "var.s.x"),
    ("a ${var.l[var.m]} b", "var.l[var.m]"),
    ("a ${nope()} b", "nope()"),
    ("a ${lower(1)} b", "lower(1)"),
    ("a ${concat('a', var.l)} b", "concat('a', var.l)"),
    ("a ${1 < 'b'} b", "1 < 'b'"),
    ("${var.missing}", "var.missing"),
])
def test_errors_name_the_expression(text: str, expression: str) -> None:
    with pytest.raises(TemplateError) as exc:
        ev(text)
    assert (exc.value.expression, exc.value.source) == (expression, text)


def test_keys_with_dots_are_rendered_in_brackets() -> None:
    ctx = {"var": {"a.b": {"x": 1}, "c$d": {}, "e{f": {}}}
    for key in ("a.b", "c$d", "e{f"):
        with pytest.raises(TemplateError) as exc:
            resolve_string(f"${{var['{key}'].missing}}", ctx)
        assert f'Could not find key missing under var["{key}"].' in str(exc.value)


def test_exact_keys_win_over_their_string_form() -> None:
    ctx = {"d": {"1": "string key", 1: "number key", "true": "string true"}}
    assert resolve_string("${d[1]}", ctx) == "number key"
    assert resolve_string("${d['1']}", ctx) == "string key"


def test_underscore_keys_are_not_listed_as_available() -> None:
    with pytest.raises(TemplateError) as exc:
        resolve_string("${var.missing}", {"var": {"_hidden": 1, "shown": 2}})
    assert str(exc.value).endswith("Could not find key missing under var. Available keys: shown.")
    with pytest.raises(TemplateError) as exc:
        resolve_string("${var.missing}", {"var": {"_hidden": 1}})
    assert str(exc.value).endswith("Available keys: (none).")


def test_the_hint_sees_the_key_path_up_to_the_missing_key() -> None:
    with pytest.raises(TemplateError) as exc:
        resolve_string("${actions.build.x.outputs.deploymentImageId}", {"actions": {"build": {}}})
    assert str(exc.value).endswith("(actions.build.x: no container Build of that name is enabled in this environment)")


def test_an_error_in_a_nested_template_names_the_inner_expression() -> None:
    with pytest.raises(TemplateError) as exc:
        ev("a ${'${var.missing}'} b")
    assert (exc.value.expression, exc.value.source) == ("var.missing", "${var.missing}")
