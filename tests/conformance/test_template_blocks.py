"""Garden's vectors for `contains`, `${if}` blocks, helper calls and array literals
(core/test/unit/src/template-string.ts, "parse and evaluate template strings"). Our test code;
Garden's data."""

from __future__ import annotations

from typing import Any

import pytest

from farm.garden.templates import TemplateError, resolve_string
from tests.conformance.garden import TEMPLATE_STRING, same, vector

P = "parse and evaluate template strings > "
CONTAINS = P + "contains operator > "
BLOCKS = P + "conditional blocks > "
HELPERS = P + "helper functions > "
ARRAYS = P + "array literals > "


def v(title: str, template: str, context: dict[str, Any], expected: Any) -> Any:
    return vector(TEMPLATE_STRING, title, template, context, expected)


@pytest.mark.parametrize("template,context,expected", [
    v(CONTAINS + "positive string literal contains string literal", "${'foobar' contains 'foo'}", {}, True),
    v(CONTAINS + "string literal contains string literal (negative)", "${'blorg' contains 'blarg'}", {}, False),
    v(CONTAINS + "string literal contains string reference", "${a contains 'foo'}", {"a": "foobar"}, True),
    v(CONTAINS + "string reference contains string literal (negative)", "${a contains 'blarg'}", {"a": "foobar"},
      False),
    v(CONTAINS + "string contains number", "${a contains 0}", {"a": "hmm-0"}, True),
    v(CONTAINS + "object contains string literal", "${a contains 'foo'}", {"a": {"foo": 123}}, True),
    v(CONTAINS + "object contains string literal (negative)", "${a contains 'bar'}", {"a": {"foo": 123}}, False),
    v(CONTAINS + "object contains string reference", "${a contains b}", {"a": {"foo": 123}, "b": "foo"}, True),
    v(CONTAINS + "object contains number reference", "${a contains b}", {"a": {"123": 456}, "b": 123}, True),
    v(CONTAINS + "object contains number literal", "${a contains 123}", {"a": {"123": 456}}, True),
    v(CONTAINS + "array contains string reference", "${a contains b}", {"a": ["foo"], "b": "foo"}, True),
    v(CONTAINS + "array contains string reference (negative)", "${a contains b}", {"a": ["foo"], "b": "bar"}, False),
    v(CONTAINS + "array contains string literal", "${a contains 'foo'}", {"a": ["foo"]}, True),
    v(CONTAINS + "array contains number", "${a contains 1}", {"a": [0, 1]}, True),
    v(CONTAINS + "array contains numeric index (negative)", "${a contains 1}", {"a": [0]}, False),
    v(BLOCKS + "One single-line if block (positive)", "prefix ${if a}content ${endif}suffix", {"a": True},
      "prefix content suffix"),
    v(BLOCKS + "One single-line if block (negative)", "prefix ${if a}content ${endif}suffix", {"a": False},
      "prefix suffix"),
    v(BLOCKS + "One single-line if/else statement (positive)", "prefix ${if a == 123}content ${else}other ${endif}suffix",
      {"a": 123}, "prefix content suffix"),
    v(BLOCKS + "One single-line if/else statement (negative)", "prefix ${if a}content ${else}other ${endif}suffix",
      {"a": False}, "prefix other suffix"),
    v(BLOCKS + "Two single-line if block (positive)",
      "prefix ${if a}content ${endif}suffixprefix ${if a}content ${endif}suffix", {"a": True},
      "prefix content suffixprefix content suffix"),
    v(BLOCKS + "Two single-line if block (negative)",
      "prefix ${if a}content ${endif}suffixprefix ${if a}content ${endif}suffix", {"a": False},
      "prefix suffixprefix suffix"),
    v(BLOCKS + "Two single-line if/else statement (positive)",
      "prefix ${if a == 123}content ${else}other ${endif}suffixprefix ${if a == 123}content ${else}other ${endif}suffix",
      {"a": 123}, "prefix content suffixprefix content suffix"),
    v(BLOCKS + "Two single-line if/else statement (negative)",
      "prefix ${if a}content ${else}other ${endif}suffixprefix ${if a}content ${else}other ${endif}suffix",
      {"a": False}, "prefix other suffixprefix other suffix"),
    v(BLOCKS + "multi-line if block (positive)", "prefix\n${if a}content\n${endif}suffix", {"a": True},
      "prefix\ncontent\nsuffix"),
    v(BLOCKS + "template string within if block", "prefix\n${if a}templated: ${b}\n${endif}suffix",
      {"a": True, "b": "content"}, "prefix\ntemplated: content\nsuffix"),
    v(BLOCKS + "nested if block (both positive)", "prefix\n${if a}some ${if b}content\n${endif}${endif}suffix",
      {"a": True, "b": True}, "prefix\nsome content\nsuffix"),
    v(BLOCKS + "nested if block (outer negative)", "prefix\n${if a}some ${if b}content\n${endif}${endif}suffix",
      {"a": False, "b": True}, "prefix\nsuffix"),
    v(BLOCKS + "nested if block (inner negative)", "prefix\n${if a}some\n${if b}content\n${endif}${endif}suffix",
      {"a": True, "b": False}, "prefix\nsome\nsuffix"),
    v(BLOCKS + "if/else statement inside if block",
      "prefix\n${if a}some\n${if b}nope${else}content\n${endif}${endif}suffix", {"a": True, "b": False},
      "prefix\nsome\ncontent\nsuffix"),
    v(BLOCKS + "if block inside if/else statement",
      "prefix\n${if a}some\n${if b}content\n${endif}${else}nope ${endif}suffix", {"a": True, "b": False},
      "prefix\nsome\nsuffix"),
    v(BLOCKS + "it ignores ? after an if block", "prefix ${if a}?content${endif}", {"a": True}, "prefix ?content"),
    v(HELPERS + "resolves a helper function with a string literal", "${base64Encode('foo')}", {}, "Zm9v"),
    v(HELPERS + "resolves a template string in a helper argument", "${base64Encode('${a}')}", {"a": "foo"}, "Zm9v"),
    v(HELPERS + "resolves a helper function with multiple arguments", "${split('a,b,c', ',')}", {},
      ["a", "b", "c"]),
    v(HELPERS + "resolves a helper function with a template key reference", "${base64Encode(a)}", {"a": "foo"},
      "Zm9v"),
    v(HELPERS + "generates a correct hash with a string literal from the sha256 helper function",
      "${sha256('This Is A Test String')}", {}, "9a058284378d1cc6b4348aacb6ba847918376054b094bbe06eb5302defc52685"),
    v(HELPERS + "concat > allows empty strings", "${concat('', '')}", {}, ""),
    v(HELPERS + "isEmpty > allows nulls > resolves null as 'true'", "${isEmpty(null)}", {}, True),
    v(HELPERS + "isEmpty > allows nulls > resolves references to null as 'true'", "${isEmpty(a)}", {"a": None}, True),
    v(HELPERS + "isEmpty > allows empty strings > resolves an empty string as 'true'", "${isEmpty('')}", {}, True),
    v(HELPERS + "isEmpty > allows empty strings > resolves a reference to an empty string as 'true'", "${isEmpty(a)}",
      {"a": ""}, True),
    v(HELPERS + "slice > allows numeric indices", "${slice(foo, 0, 3)}", {"foo": "abcdef"}, "abc"),
    v(HELPERS + "slice > allows numeric strings as indices", "${slice(foo, '0', '3')}", {"foo": "abcdef"}, "abc"),
    v(HELPERS + "range > generates a list of numbers in the specified range", "${range(1, 5)}", {}, [1, 2, 3, 4, 5]),
    v(ARRAYS + "returns an empty array literal back", "${[]}", {}, []),
    v(ARRAYS + "returns an array literal of literals back", "${['foo', \"bar\", 123, true, false]}", {},
      ["foo", "bar", 123, True, False]),
    v(ARRAYS + "resolves a key in an array literal", "${[foo]}", {"foo": "bar"}, ["bar"]),
    v(ARRAYS + "resolves a nested key in an array literal", "${[foo.bar]}", {"foo": {"bar": "baz"}}, ["baz"]),
    v(ARRAYS + "calls a helper in an array literal", "${[foo, base64Encode('foo')]}", {"foo": "bar"}, ["bar", "Zm9v"]),
    v(ARRAYS + "calls a helper with an array literal argument", "${join(['foo', 'bar'], ',')}", {}, "foo,bar"),
    v(ARRAYS + "allows empty string separator in join helper function", "${join(['foo', 'bar'], '')}", {}, "foobar"),
])
def test_value(template: str, context: dict[str, Any], expected: Any) -> None:
    assert same(resolve_string(template, context), expected)


@pytest.mark.parametrize("template,context,contains", [
    v(CONTAINS + "should throw when right-hand side is not a primitive", "${a contains b}", {"a": [1, 2], "b": [3, 4]},
      "Invalid template string (${a contains b}): The right-hand side of a 'contains' operator must be a string, "
      "number, boolean or null (got object)."),
    v(CONTAINS + "should throw when left-hand side is not a string, array or object", "${b contains a}",
      {"a": "foo", "b": None},
      "Invalid template string (${b contains a}): The left-hand side of a 'contains' operator must be a string, array "
      "or object (got null)."),
    v(BLOCKS + "throws if an if block doesn't have a matching endif", "prefix ${if a}content", {"a": True},
      "Invalid template string (prefix ${if a}content): Missing ${endif} after ${if ...} block."),
    v(BLOCKS + "throws if an if block doesn't have a matching endif inside another if block that is closed",
      '${if "foo"}${if "this is bananas!"}${endif}', {"a": True},
      'Invalid template string (${if "foo"}${if "this is bananas!"}${endif}): Missing ${endif} after ${if ...} block.'),
    v(BLOCKS + "throws if an endif block doesn't have a matching if", "prefix content ${endif}", {"a": True},
      "Invalid template string (prefix content ${endif}): Found ${endif} block without a preceding ${if...} block."),
    v(BLOCKS + "throws if an if block doesn't have a matching endif and there is content", "${if a}content",
      {"a": True}, "Invalid template string (${if a}content): Missing ${endif} after ${if ...} block."),
    v(HELPERS + "throws if an argument is missing", "${base64Decode()}", {},
      "Invalid template string (${base64Decode()}): Missing argument 'string' (at index 0) for base64Decode helper "
      "function."),
    v(HELPERS + "throws if a wrong argument type is passed", "${base64Decode(a)}", {"a": 1234},
      "Invalid template string (${base64Decode(a)}): Error validating argument 'string' for base64Decode helper "
      "function:\n\nvalue must be a string"),
    v(HELPERS + "throws if the function can't be found", "${floop('blop')}", {},
      "Invalid template string (${floop('blop')}): Could not find helper function 'floop'. Available helper "
      "functions:"),
    v(HELPERS + "throws if the function fails", "${jsonDecode('{]}')}", {},
      "Invalid template string (${jsonDecode('{]}')}): Error from helper function jsonDecode: SyntaxError"),
    v(HELPERS + "concat > throws when > using an incompatible argument types (string and object)", "${concat(a, b)}",
      {"a": "123", "b": ["a"]},
      "Invalid template string (${concat(a, b)}): Error from helper function concat: Error: Both terms need to be "
      "either arrays or strings (got string and object)."),
    v(HELPERS + "concat > throws when > using an unsupported argument types (number and object)", "${concat(a, b)}",
      {"a": 123, "b": ["a"]},
      "Invalid template string (${concat(a, b)}): Error validating argument 'arg1' for concat helper function:\n\n"
      "value must be one of [array, string]"),
    v(HELPERS + "slice > throws on invalid string in the start index", "${slice(foo, 'a', 3)}", {"foo": "abcdef"},
      "Invalid template string (${slice(foo, 'a', 3)}): Error from helper function slice: Error: start index must "
      'be a number or a numeric string (got "a")'),
    v(HELPERS + "slice > throws on invalid string in the end index", "${slice(foo, 0, 'b')}", {"foo": "abcdef"},
      "Invalid template string (${slice(foo, 0, 'b')}): Error from helper function slice: Error: end index must be "
      'a number or a numeric string (got "b")'),
])
def test_error(template: str, context: dict[str, Any], contains: str) -> None:
    with pytest.raises(TemplateError) as err:
        resolve_string(template, context)
    assert contains in str(err.value)
