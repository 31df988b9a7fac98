"""The helper functions Garden templates may call, with Garden's names, argument order, argument
validation (Joi with conversion: numeric strings become numbers, `""` is not a string unless the
argument allows it) and error messages (`core/src/template/functions/index.ts`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from farm.garden import template_dates as dates
from farm.garden.jsvalues import is_number, is_primitive, normalise_number, stringify, to_string
from farm.garden.loader import _Loader as Yaml12Loader  # the config loader's YAML 1.2 core schema


class HelperError(Exception):
    """A helper that failed; `js_name` is the JavaScript error class Garden's message names."""

    def __init__(self, message: str, js_name: str = "Error") -> None:
        super().__init__(message)
        self.js_name = js_name


class ArgumentError(Exception):
    """An argument that fails the helper's schema."""


UNDEFINED: Any = object()  # an argument that was not passed


# --- argument schemas (the Joi rules Garden declares) ---------------------------------------------

Check = Callable[[Any], Any]
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$", re.IGNORECASE)


def string(allow_empty: bool = False) -> Check:
    def check(v: Any) -> Any:
        if not isinstance(v, str):
            raise ArgumentError("value must be a string")
        if v == "" and not allow_empty:
            raise ArgumentError("value is not allowed to be empty")
        return v
    return check


def number(integer: bool = False) -> Check:
    def check(v: Any) -> Any:
        if isinstance(v, str) and _NUMERIC.match(v):
            v = normalise_number(float(v))
        if not is_number(v) or (isinstance(v, float) and not math.isfinite(v)):
            raise ArgumentError("value must be a number")
        if integer and not float(v).is_integer():
            raise ArgumentError("value must be an integer")
        return v
    return check


def boolean(v: Any) -> Any:
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if not isinstance(v, bool):
        raise ArgumentError("value must be a boolean")
    return v


def anything(v: Any) -> Any:
    return v


def array(v: Any) -> Any:
    if not isinstance(v, list):
        raise ArgumentError("value must be an array")
    return v


def primitive_array(v: Any) -> Any:
    for i, item in enumerate(array(v)):
        if not is_primitive(item):
            raise ArgumentError(f"value[{i}] must be one of [string, number, boolean]")
    return v


def mapping(v: Any) -> Any:
    if not isinstance(v, dict):
        raise ArgumentError("value must be of type object")
    return v


def one_of(*checks: tuple[str, Check], allow_null: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and allow_null:
            return v
        for _, c in checks:
            try:
                return c(v)
            except ArgumentError:
                continue
        raise ArgumentError(f"value must be one of [{', '.join(name for name, _ in checks)}]")
    return check


def choice(*values: str) -> Check:
    def check(v: Any) -> Any:
        if v not in values:
            raise ArgumentError(f"value must be one of [{', '.join(values)}]")
        return v
    return check


@dataclass(frozen=True)
class Arg:
    name: str
    check: Check
    required: bool = True


@dataclass(frozen=True)
class Helper:
    name: str
    args: tuple[Arg, ...]
    fn: Callable[..., Any]


# --- implementations ----------------------------------------------------------------------------------

_WORDS = re.compile(
    r"[A-Z]?[a-z]+(?=[^A-Za-z0-9]|[A-Z]|$)|[A-Z]+(?=[^A-Za-z0-9]|[A-Z][a-z]|$)"
    r"|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", re.ASCII)
# lodash `deburr` letters that Unicode decomposition does not reduce to ASCII.
_DEBURR = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "þ": "th", "Þ": "Th",
                         "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H",
                         "ı": "i", "œ": "oe", "Œ": "Oe"})
# What JavaScript's String.prototype.trim removes (Python's str.strip() also removes \x1c-\x1f, \x85).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000\ufeff"


def _words(text: str) -> list[str]:
    """lodash `words(deburr(s))` for Latin text: split on non-alphanumerics, case changes and digit runs.
    (Letters of other scripts are dropped; lodash would keep them.)"""
    decomposed = unicodedata.normalize("NFKD", text.translate(_DEBURR))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORDS.findall(plain.replace("'", "").replace("\u2019", ""))


def kebab_case(text: str) -> str:
    return "-".join(w.lower() for w in _words(text))


def camel_case(text: str) -> str:
    return "".join(w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(_words(text)))


def _base64_decode(text: str) -> str:
    """Node's lenient `Buffer.from(s, "base64")`: URL-safe letters, no padding and junk are accepted."""
    clean = re.sub(r"[^A-Za-z0-9+/]", "", text.translate(str.maketrans("-_", "+/")).split("=", 1)[0])
    clean = clean[:len(clean) - 1] if len(clean) % 4 == 1 else clean
    try:
        data = base64.b64decode(clean + "=" * (-len(clean) % 4))
    except binascii.Error as exc:  # pragma: no cover - the input is cleaned above
        raise HelperError(str(exc)) from None
    return data.decode("utf-8", "replace")


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    raise HelperError(f"Both terms need to be either arrays or strings (got {_typeof(a)} and {_typeof(b)}).")


def _typeof(v: Any) -> str:
    return "object" if v is None or isinstance(v, (list, dict)) else \
        "boolean" if isinstance(v, bool) else "number" if is_number(v) else "string"


def _indent(text: str, spaces: Any) -> str:
    """indent-string: every line that is not blank."""
    return re.sub(r"^(?!\s*$)", " " * int(spaces), text, flags=re.MULTILINE)


def _is_empty(value: Any = UNDEFINED) -> bool:
    return value is UNDEFINED or value is None or (isinstance(value, (str, list, dict)) and not value)


def _json_decode(text: str) -> Any:
    def no_constants(name: str) -> Any:
        raise HelperError(f"Unexpected token '{name[0]}', \"{text}\" is not valid JSON", "SyntaxError")
    try:
        return json.loads(text, parse_constant=no_constants, parse_float=lambda s: normalise_number(float(s)))
    except json.JSONDecodeError as exc:
        raise HelperError(f"{exc.msg} in JSON at position {exc.pos}", "SyntaxError") from None


def _range(first: Any, last: Any) -> list[Any]:
    """lodash `range(first, last + 1)`: counts down when first is past last."""
    end = last + 1
    step = 1 if first <= end else -1
    length = max(math.ceil((end - first) / step), 0)
    return [normalise_number(first + i * step) for i in range(length)]


def _slice(value: Any, start: Any, end: Any = UNDEFINED) -> Any:
    def index(v: Any, what: str) -> int:
        if is_number(v):
            return 0 if isinstance(v, float) and math.isnan(v) else int(v)
        m = re.match(r"^\s*([+-]?\d+)", v)
        if m is None:
            raise HelperError(f'{what} index must be a number or a numeric string (got "{v}")')
        return int(m.group(1))
    lo = index(start, "start")
    hi = index(end, "end") if end is not UNDEFINED and end not in (0, "", None) else None  # Garden: `!!end`
    return value[lo:hi]


def _trim(text: str, chars: Any = UNDEFINED) -> str:
    return text.strip(_JS_SPACE if chars is UNDEFINED else chars)


class _JsYamlDumper(yaml.SafeDumper):
    """Closer to js-yaml's `dump`: sequences inside mappings are indented."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _yaml_dump(value: Any) -> str:
    text = yaml.dump(value, Dumper=_JsYamlDumper, sort_keys=False, allow_unicode=True, width=10 ** 6,
                     default_flow_style=False)
    return text[:-4] if text.endswith("\n...\n") else text


def _yaml_encode(value: Any, multi: Any = UNDEFINED) -> str:
    if multi is True:
        if not isinstance(value, list):
            raise HelperError("yamlEncode: Set multiDocument=true but value is not an array "
                              f"(got {_typeof(value)})")
        return "---" + "---".join(_yaml_dump(v) for v in value)
    return _yaml_dump(value)


def _yaml_decode(text: str, multi: Any = UNDEFINED) -> Any:
    try:
        if multi is True:
            return list(yaml.load_all(text, Loader=Yaml12Loader))
        return yaml.load(text, Loader=Yaml12Loader)
    except yaml.YAMLError as exc:
        raise HelperError(str(exc).replace("\n", " "), "YAMLException") from None


def _dates(fn: Callable[..., str]) -> Callable[..., str]:
    def run(*args: Any) -> str:
        try:
            return fn(*args)
        except dates.DateError as exc:
            raise HelperError(str(exc), dates.DateError.js_name) from None
    return run


_S, _S_EMPTY = string(), string(allow_empty=True)
_STR_OR_ARRAY = one_of(("array", array), ("string", _S_EMPTY))
_SHIFT_UNITS = choice("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_MODIFY_UNITS = choice("years", "months", "days", "hours", "minutes", "seconds", "milliseconds")

HELPERS: dict[str, Helper] = {h.name: h for h in (
    Helper("base64Decode", (Arg("string", _S),), _base64_decode),
    Helper("base64Encode", (Arg("string", _S),), lambda s: base64.b64encode(s.encode()).decode()),
    Helper("camelCase", (Arg("string", _S),), camel_case),
    Helper("concat", (Arg("arg1", _STR_OR_ARRAY), Arg("arg2", _STR_OR_ARRAY)), _concat),
    Helper("indent", (Arg("string", _S), Arg("spaces", number(integer=True))), _indent),
    Helper("isEmpty", (Arg("value", one_of(("object", mapping), ("array", array), ("string", _S_EMPTY),
                                           allow_null=True), required=False),), _is_empty),
    Helper("join", (Arg("input", primitive_array), Arg("separator", _S_EMPTY)),
           lambda items, sep: sep.join("" if i is None else to_string(i) for i in items)),
    Helper("jsonDecode", (Arg("string", _S),), _json_decode),
    Helper("jsonEncode", (Arg("value", anything),), stringify),
    Helper("kebabCase", (Arg("string", _S),), kebab_case),
    Helper("lower", (Arg("string", _S),), str.lower),
    Helper("range", (Arg("first", number()), Arg("last", number())), _range),
    Helper("replace", (Arg("string", _S), Arg("substring", _S), Arg("replacement", _S_EMPTY)),
           lambda s, old, new: s.replace(old, new)),
    Helper("sha256", (Arg("string", _S),), lambda s: hashlib.sha256(s.encode()).hexdigest()),
    Helper("slice", (Arg("input", one_of(("string", _S), ("array", array))),
                     Arg("start", one_of(("number", number()), ("string", _S))),
                     Arg("end", one_of(("number", number()), ("string", _S)), required=False)), _slice),
    Helper("split", (Arg("string", _S), Arg("separator", _S)), lambda s, sep: s.split(sep)),
    Helper("trim", (Arg("string", _S), Arg("characters", _S, required=False)), _trim),
    Helper("upper", (Arg("string", _S),), str.upper),
    Helper("string", (Arg("value", anything),), to_string),
    Helper("uuidv4", (), lambda: str(uuid.uuid4())),
    Helper("yamlDecode", (Arg("string", _S), Arg("multiDocument", boolean, required=False)), _yaml_decode),
    Helper("yamlEncode", (Arg("value", anything), Arg("multiDocument", boolean, required=False)),
           _yaml_encode),
    Helper("formatDateUtc", (Arg("date", _S), Arg("format", _S)), _dates(dates.format_date)),
    Helper("shiftDateUtc", (Arg("date", _S), Arg("amount", number()), Arg("unit", _SHIFT_UNITS)),
           _dates(dates.shift_date)),
    Helper("modifyDateUtc", (Arg("date", _S), Arg("amount", number()), Arg("unit", _MODIFY_UNITS)),
           _dates(dates.modify_date)),
)}

# name -> implementation, for callers that want the plain function (no validation)
FUNCTIONS: dict[str, Callable[..., Any]] = {name: h.fn for name, h in HELPERS.items()}


def call_helper(name: str, args: list[Any]) -> Any:
    """Validate `args` against the helper's schema and call it. Raises `LookupError` (no such helper),
    `ArgumentError` (with Garden's message) or `HelperError`."""
    helper = HELPERS.get(name)
    if helper is None:
        raise LookupError(f"Could not find helper function '{name}'. Available helper functions: "
                          f"{', '.join(HELPERS)}")
    values: list[Any] = []
    for i, arg in enumerate(helper.args):
        value = args[i] if i < len(args) else UNDEFINED
        if value is UNDEFINED:
            if arg.required:
                raise ArgumentError(f"Missing argument '{arg.name}' (at index {i}) for {name} helper "
                                    "function.")
        else:
            try:
                value = arg.check(value)
            except ArgumentError as exc:
                raise ArgumentError(f"Error validating argument '{arg.name}' for {name} helper function:"
                                    f"\n\n{exc}") from None
        values.append(value)
    while values and values[-1] is UNDEFINED:
        values.pop()
    try:
        return helper.fn(*values)
    except HelperError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise HelperError(str(exc)) from None
