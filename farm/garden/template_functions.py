"""The functions Garden templates may call (`kebabCase`, `slice`, `join` ...), with Garden's argument order."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any


class TemplateError(Exception):
    def __init__(self, message: str, expression: str = "") -> None:
        self.message = message
        self.expression = expression
        super().__init__(f"{message} in template ${{{expression}}}" if expression else message)


def render(value: Any, expr: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"a {type(value).__name__} cannot be put inside a string", expr)


_WORDS = re.compile(
    r"[A-Z]?[a-z]+(?=[^A-Za-z0-9]|[A-Z]|$)|[A-Z]+(?=[^A-Za-z0-9]|[A-Z][a-z]|$)"
    r"|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", re.ASCII)
# lodash `deburr` letters that Unicode decomposition does not reduce to ASCII.
_DEBURR = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "þ": "th", "Þ": "Th",
                         "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H",
                         "ı": "i", "œ": "oe", "Œ": "Oe"})


def _deburr(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_DEBURR))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    """lodash `words(deburr(s))` for Latin text: split on non-alphanumerics, case changes and digit runs.
    (Letters of other scripts are dropped; lodash would keep them.)"""
    return _WORDS.findall(_deburr(text).replace("'", "").replace("\u2019", ""))


def _to_int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{what} must be a number, got {value!r}") from None


def _slice(value: Any, start: Any, end: Any = None) -> Any:
    if not isinstance(value, (str, list)):
        raise TemplateError(f"slice() needs a string or list, got {type(value).__name__}")
    lo = _to_int(start, "slice start")
    hi = None if end is None else _to_int(end, "slice end")
    return value[lo:hi]


def _need_str(value: Any, fn: str) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"{fn}() needs a string, got {type(value).__name__}")
    return value


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    raise TemplateError("concat() needs two lists or two strings")


def _join(items: Any, sep: Any = ",") -> str:
    if not isinstance(items, list):
        raise TemplateError(f"join() needs a list, got {type(items).__name__}")
    return str(sep).join(render(i, "") for i in items)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "kebabCase": lambda s: "-".join(w.lower() for w in _words(_need_str(s, "kebabCase"))),
    "camelCase": lambda s: "".join(
        w.lower() if i == 0 else w[:1].upper() + w[1:].lower()
        for i, w in enumerate(_words(_need_str(s, "camelCase")))),
    "lower": lambda s: _need_str(s, "lower").lower(),
    "upper": lambda s: _need_str(s, "upper").upper(),
    "trim": lambda s: _need_str(s, "trim").strip(),
    "replace": lambda s, old, new: _need_str(s, "replace").replace(str(old), str(new)),
    "slice": _slice,
    "concat": _concat,
    "join": _join,
    "split": lambda s, sep: _need_str(s, "split").split(str(sep)),
    "string": lambda v: render(v, ""),
    "isEmpty": lambda v: v is None or (hasattr(v, "__len__") and len(v) == 0),
    "jsonEncode": lambda v: json.dumps(v, separators=(",", ":")),
    "jsonDecode": lambda s: json.loads(_need_str(s, "jsonDecode")),
    "base64Encode": lambda s: base64.b64encode(_need_str(s, "base64Encode").encode()).decode(),
    "base64Decode": lambda s: base64.b64decode(_need_str(s, "base64Decode")).decode(),
}


