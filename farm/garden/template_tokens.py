"""The lexical rules of Garden's template grammar (`core/src/template/parser.pegjs`): whitespace,
identifiers (dashes allowed, digits-only names are numbers), JavaScript number and string literals.

Each scanner takes the text and a position and returns (value, position after it), or None where
the grammar rule does not match.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from farm.garden.jsvalues import normalise_number

Scan = tuple[Any, int] | None

_LETTER = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})
_PART = _LETTER | {"Mn", "Mc", "Nd", "Pc"}
_SPACE = frozenset("\t\v\f \u00a0\ufeff")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
            "v": "\v"}
_LINE_ENDS = "\n\r\u2028\u2029"
_HEX = "0123456789abcdefABCDEF"
_DIGITS = "0123456789"
RESERVED = ("typeof", "null", "true", "false")


def _category(c: str) -> str:
    return unicodedata.category(c) if ord(c) <= 0xFFFF else ""  # the grammar lists BMP ranges only


def ident_start(c: str) -> bool:
    return c in "$_" or _category(c) in _LETTER


def ident_part(c: str) -> bool:
    return ident_start(c) or c in "-\u200c\u200d" or _category(c) in _PART


def skip_space(s: str, i: int) -> int:
    """Past the grammar's `__`: tabs, spaces, NBSP, BOM and Unicode spaces, but not newlines."""
    while i < len(s) and (s[i] in _SPACE or _category(s[i]) == "Zs"):
        i += 1
    return i


def token(s: str, i: int, word: str) -> bool:
    """`word` at i, not followed by an identifier character (`true` but not `true-ish`)."""
    end = i + len(word)
    return s.startswith(word, i) and not (end < len(s) and ident_part(s[end]))


def _hex_at(s: str, i: int, width: int) -> bool:
    return i + width <= len(s) and all(x in _HEX for x in s[i:i + width])


def identifier(s: str, i: int) -> Scan:
    """A key or function name: letters, `$`, `_`, `\\uXXXX`, then also digits and dashes; or an integer."""
    if any(token(s, i, w) for w in RESERVED):
        return None
    j = i
    while j < len(s) and s[j] in _DIGITS:
        j += 1
    if j > i:
        return int(s[i:j]), j
    chars: list[str] = []
    while j < len(s):
        c, step = s[j], 1
        if c == "\\" and s.startswith("u", j + 1) and _hex_at(s, j + 2, 4):
            c, step = chr(int(s[j + 2:j + 6], 16)), 6
        elif not (ident_part(c) if chars else ident_start(c)):
            break
        chars.append(c)
        j += step
    return ("".join(chars), j) if chars else None


def _after_number(s: str, j: int) -> bool:
    return j < len(s) and (ident_start(s[j]) or s[j] == "\\" or s[j] in _DIGITS)


def _digits(s: str, k: int) -> int:
    while k < len(s) and s[k] in _DIGITS:
        k += 1
    return k


def number(s: str, i: int) -> Scan:
    """Hex or decimal (`0`, `1.5`, `.5`, `1e3`); no sign, and `01` is not a number (it is key 1)."""
    if s.startswith(("0x", "0X"), i):
        j = i + 2
        while j < len(s) and s[j] in _HEX:
            j += 1
        return (int(s[i + 2:j], 16), j) if j > i + 2 and not _after_number(s, j) else None
    if i < len(s) and s[i] in _DIGITS:
        j = i + 1 if s[i] == "0" else _digits(s, i + 1)
        if s.startswith(".", j):
            j = _digits(s, j + 1)
    elif s.startswith(".", i) and _digits(s, i + 1) > i + 1:
        j = _digits(s, i + 1)
    else:
        return None
    if j < len(s) and s[j] in "eE":
        k = j + 1 + (j + 1 < len(s) and s[j + 1] in "+-")
        if _digits(s, k) > k:
            j = _digits(s, k)
    if _after_number(s, j):
        return None
    return normalise_number(float(s[i:j])), j


def string(s: str, i: int) -> Scan:
    """A single- or double-quoted JavaScript string literal, escapes decoded."""
    if i >= len(s) or s[i] not in "'\"":
        return None
    quote, j = s[i], i + 1
    out: list[str] = []
    while j < len(s):
        c = s[j]
        if c == quote:
            return "".join(out), j + 1
        if c in _LINE_ENDS:
            return None
        if c != "\\":
            out.append(c)
            j += 1
            continue
        nxt = s[j + 1:j + 2]
        width = {"x": 2, "u": 4}.get(nxt, 0)
        if nxt and nxt in _LINE_ENDS:  # a line continuation
            j += 3 if s.startswith("\r\n", j + 1) else 2
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            j += 2
        elif nxt == "0" and not s[j + 2:j + 3].isdigit():
            out.append("\0")
            j += 2
        elif width and _hex_at(s, j + 2, width):
            out.append(chr(int(s[j + 2:j + 2 + width], 16)))
            j += 2 + width
        elif nxt and nxt not in "0123456789xu":
            out.append(nxt)
            j += 2
        else:
            return None
    return None
