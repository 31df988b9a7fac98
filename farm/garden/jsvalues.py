"""JavaScript value semantics that Garden's TypeScript gets for free and the farm must copy exactly:
`String(x)`, `typeof`, truthiness, `===`, number formatting and `JSON.stringify` (plain and with
sorted keys, as `json-stable-stringify` writes the text Garden hashes for an action's config version).

Data is YAML-shaped: None, bool, int, float, str, list, dict. Pure functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_MAX_SAFE = 2 ** 53
_ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


def is_number(value: Any) -> bool:
    """lodash `isNumber`: ints and floats, never booleans."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_primitive(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def normalise_number(value: float) -> int | float:
    """One JS number, two Python types: integral values within 2**53 become ints (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_SAFE:
        return 0 if value == 0 else int(value)
    return value


def number_string(value: float) -> str:
    """`Number.prototype.toString()`: shortest round-trip digits, exponent only beyond 1e21 / 1e-7."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0)  # value = 0.<digits> * 10**point, before stripping
    point -= len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + text


def to_string(value: Any) -> str:
    """`String(value)` / template-literal conversion: arrays join with commas, objects are
    "[object Object]", null and undefined inside arrays are empty."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if v is None else to_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def key_string(key: Any) -> str:
    """An object key as JavaScript sees it (YAML may give ints or booleans as keys)."""
    return to_string(key)


def typeof(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def type_name(value: Any) -> str:
    """Garden's `typeOf` for messages: `typeof`, except that null is "null"."""
    return "null" if value is None else typeof(value)


def truthy(value: Any) -> bool:
    """JS truthiness: collections are always truthy, NaN and -0 are not."""
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def strict_equal(a: Any, b: Any) -> bool:
    """`a === b`: no coercion between types; collections compare by identity."""
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _object_keys(value: Mapping[Any, Any]) -> list[Any]:
    """Key order of a JS object: array-index keys ascending first, then the rest as inserted."""
    keys = list(value)
    index = [k for k in keys if _ARRAY_INDEX.match(key_string(k)) and int(key_string(k)) < 2 ** 32 - 1]
    rest = [k for k in keys if k not in index]
    return sorted(index, key=lambda k: int(key_string(k))) + rest


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def stringify(value: Any, *, sort_keys: bool = False) -> str:
    """`JSON.stringify(value)` (compact), or `json-stable-stringify` with `sort_keys` (keys in
    UTF-16 code unit order, as JavaScript's default sort compares them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "null" if isinstance(value, float) and not math.isfinite(value) else number_string(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(stringify(v, sort_keys=sort_keys) for v in value) + "]"
    if isinstance(value, Mapping):
        keys = (sorted(value, key=lambda k: _utf16(key_string(k))) if sort_keys else _object_keys(value))
        return "{" + ",".join(json.dumps(key_string(k), ensure_ascii=False) + ":"
                              + stringify(value[k], sort_keys=sort_keys) for k in keys) + "}"
    if hasattr(value, "to_json"):
        return stringify(value.to_json(), sort_keys=sort_keys)
    return json.dumps(str(value), ensure_ascii=False)
