"""Parse Garden 0.14 template strings into an AST (`template_ast`), rule for rule as Garden's PEG
grammar (`core/src/template/parser.pegjs`) does, quirks included: `$${` escapes run to the first `}`,
`+`/`-` need spaces around them, string literals are templates themselves, `${if ...}` /
`${else}` / `${endif}` build conditional blocks, and `${iffy}` reads as `${if fy}`.

`parse(text)` returns the text itself when it holds no `${`, else a node for `template_eval`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from farm.garden import template_tokens as tok
from farm.garden.template_ast import (
    Arr,
    Binary,
    Call,
    Element,
    Else,
    EndIf,
    Format,
    IfOpen,
    Lit,
    Lookup,
    Member,
    Node,
    TemplateError,
    Ternary,
    Unary,
    build_blocks,
)

__all__ = ["TemplateError", "parse"]

UNPARSABLE = "Unable to parse as valid template string."
_P = tuple[Any, int] | None  # (result, position after it), or None where the grammar rule fails


class _Parser:
    """Recursive descent with PEG semantics: every rule returns None on failure and the caller
    carries on from where it was; errors the grammar throws are raised as TemplateError."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)

    def at(self, i: int, word: str) -> bool:
        return self.s.startswith(word, i)

    def ws(self, i: int) -> int:
        return tok.skip_space(self.s, i)

    def fail(self, message: str) -> TemplateError:
        return TemplateError(message, self.s.strip(), self.s)

    # --- template strings ---

    def fmt_start(self, i: int) -> bool:
        return self.at(i, "${") or self.at(i, "$${")

    def elements(self) -> list[Element]:
        out: list[Element] = []
        pos = 0
        while pos < self.n:
            got = self.format_strings(pos)
            if got is not None:
                out += got[0]
                pos = got[1]
                continue
            prefix_end = self.prefix(pos)
            if prefix_end is not None:
                got = self.format_strings(prefix_end)
                if got is not None:
                    out.append(Lit(self.s[pos:prefix_end]))
                    out += got[0]
                    pos = got[1]
                    continue
            if self.at(prefix_end if prefix_end is not None else pos, "${"):
                raise self.fail(UNPARSABLE)
            out.append(Lit(self.s[pos:]))
            break
        return out

    def prefix(self, pos: int) -> int | None:
        """Text up to the next `${` or `$${`; None if there is none (the grammar's Prefix rule)."""
        if pos >= self.n or self.fmt_start(pos):
            return None
        for j in range(pos + 1, self.n):
            if self.fmt_start(j):
                return j
        return None

    def format_strings(self, pos: int) -> tuple[list[Element], int] | None:
        out: list[Element] = []
        while (got := self.format_string(pos)) is not None:
            out.append(got[0])
            pos = got[1]
        return (out, pos) if out else None

    def format_end(self, i: int) -> int | None:
        i = self.ws(i)
        return i + 1 if self.at(i, "}") else None

    def format_string(self, pos: int) -> _P:
        if self.at(pos, "$${"):
            i = self.ws(pos + 3)
            while i < self.n:
                end = self.format_end(i)
                if end is not None:
                    return Lit(self.s[pos:end], escaped=True), end
                i += 1
            return None
        if not self.at(pos, "${"):
            return None
        i = self.ws(pos + 2)
        for word, marker in (("else", Else), ("endif", EndIf)):
            if self.at(i, word):
                end = self.format_end(i + len(word))
                if end is not None:
                    return marker(), end
                break
        is_if = False
        while self.at(i, "if"):  # `${if ...}` (the grammar takes `if` even in `${iffy}`: `if fy`)
            is_if = True
            i = self.ws(i + 2)
        got = self.expression(i)
        if got is None:
            return None
        end = self.format_end(got[1])
        if end is None:
            return None
        fmt = Format(got[0], self.s[i:got[1]])
        return (IfOpen(fmt) if is_if else fmt), end

    # --- expressions ---

    def expression(self, i: int) -> _P:
        got = self.logical(i, "||")
        if got is None:
            return None
        k = self.ws(got[1])
        if self.at(k, "?") and (yes := self.expression(self.ws(k + 1))) is not None:
            k2 = self.ws(yes[1])
            if self.at(k2, ":") and (no := self.expression(self.ws(k2 + 1))) is not None:
                return Ternary(got[0], yes[0], no[0]), no[1]
        return got

    def logical(self, i: int, op: str) -> _P:
        sub = (lambda j: self.logical(j, "&&")) if op == "||" else self.equality
        return self.chain(i, sub, lambda k: (op, k + 2) if self.at(k, op) else None)

    def equality(self, i: int) -> _P:
        return self.chain(i, self.relational, lambda k: self.word_op(k, ("==", "!=")))

    def relational(self, i: int) -> _P:
        def op(k: int) -> tuple[str, int] | None:
            got = self.word_op(k, ("<=", ">="))
            if got is None and k < self.n and self.s[k] in "<>" and not self.at(k + 1, self.s[k]):
                return self.s[k], k + 1
            return got
        return self.chain(i, self.additive, op)

    def additive(self, i: int) -> _P:
        def op(k: int) -> tuple[str, int] | None:
            if k < self.n and self.s[k] in "+-" and not (k + 1 < self.n and self.s[k + 1] in self.s[k] + "="):
                return self.s[k], k + 1
            return None
        return self.chain(i, self.multiplicative, op, spaced=True)

    def multiplicative(self, i: int) -> _P:
        def op(k: int) -> tuple[str, int] | None:
            if k < self.n and self.s[k] in "*/%" and not self.at(k + 1, "="):
                return self.s[k], k + 1
            return None
        return self.chain(i, self.contains, op)

    def word_op(self, k: int, ops: tuple[str, ...]) -> tuple[str, int] | None:
        return next(((o, k + len(o)) for o in ops if self.at(k, o)), None)

    def chain(self, i: int, sub: Any, op: Any, spaced: bool = False) -> _P:
        """`head (__ op __ sub)*`; `spaced` needs at least one space on both sides (`a - b`)."""
        got = sub(i)
        if got is None:
            return None
        node, j = got
        while True:
            k = self.ws(j)
            if spaced and k == j:
                break
            found = op(k)
            if found is None:
                break
            m = self.ws(found[1])
            if spaced and m == found[1]:
                break
            right = sub(m)
            if right is None:
                break
            node, j = Binary(found[0], node, right[0], self.s), right[1]
        return node, j

    def contains(self, i: int) -> _P:
        got = self.unary(i)
        if got is None:
            return None
        k = self.ws(got[1])
        if self.at(k, "contains") and (right := self.unary(self.ws(k + 8))) is not None:
            return Binary("contains", got[0], right[0], self.s), right[1]
        return got

    def unary(self, i: int) -> _P:
        got = self.primary(i)
        if got is not None:
            return got
        if tok.token(self.s, i, "typeof"):
            op, j = "typeof", i + 6
        elif self.at(i, "!"):
            op, j = "!", i + 1
        else:
            return None
        inner = self.unary(self.ws(j))
        return (Unary(op, inner[0]), inner[1]) if inner is not None else None

    def primary(self, i: int) -> _P:
        for word, value in (("null", None), ("true", True), ("false", False)):
            if tok.token(self.s, i, word):
                return Lit(value), i + len(word)
        got = tok.number(self.s, i)
        if got is not None:
            return Lit(got[0]), got[1]
        got = tok.string(self.s, i)
        if got is not None:
            return (_nested(got[0]) if got[0] else Lit("")), got[1]
        if self.at(i, "["):
            return self.array(i)
        if self.at(i, "("):
            inner = self.expression(self.ws(i + 1))
            if inner is not None:
                k = self.ws(inner[1])
                return (inner[0], k + 1) if self.at(k, ")") else None
            return None
        name = tok.identifier(self.s, i)
        if name is None:
            return None
        k = self.ws(name[1])
        if self.at(k, "("):
            args = self.arguments(self.ws(k + 1))
            if args is not None:
                return Call(str(name[0]), tuple(args[0]), self.s), args[1]
        return self.lookup(name[0], name[1])

    def lookup(self, head: str | int, j: int) -> _P:
        keys: list[str | int | Member] = [head]
        while True:
            if self.at(j, "["):
                inner = self.expression(self.ws(j + 1))
                if inner is not None:
                    k = self.ws(inner[1])
                    if self.at(k, "]"):
                        keys.append(Member(inner[0], self.s))
                        j = k + 1
                        continue
                break
            if self.at(j, "."):
                name = tok.identifier(self.s, j + 1)
                if name is not None:
                    keys.append(name[0])
                    j = name[1]
                    continue
            break
        return Lookup(tuple(keys), self.s), j

    def arguments(self, i: int) -> tuple[list[Node], int] | None:
        args: list[Node] = []
        first = self.expression(i)
        if first is not None:
            args.append(first[0])
            i = first[1]
            while True:
                k = self.ws(i)
                if not self.at(k, ","):
                    break
                nxt = self.expression(self.ws(k + 1))
                if nxt is None:
                    break
                args.append(nxt[0])
                i = nxt[1]
        k = self.ws(i)
        return (args, k + 1) if self.at(k, ")") else None

    def array(self, i: int) -> _P:
        j = self.ws(i + 1)
        holes, k = self.elision(j)
        if self.at(k, "]"):
            return Arr(tuple(Lit(None) for _ in range(holes))), k + 1
        items: list[Node] = []
        pos, end = j, j
        while True:
            holes, start = self.elision(pos)
            got = self.expression(start)
            if got is None:
                break
            items += [Lit(None)] * holes + [got[0]]
            end = got[1]
            k = self.ws(end)
            if not self.at(k, ","):
                break
            pos = self.ws(k + 1)
        if not items:
            return None
        k = self.ws(end)
        if self.at(k, "]"):
            return Arr(tuple(items)), k + 1
        if self.at(k, ","):
            holes, m = self.elision(self.ws(k + 1))
            if self.at(m, "]"):
                return Arr(tuple(items + [Lit(None)] * holes)), m + 1
        return None

    def elision(self, i: int) -> tuple[int, int]:
        """Holes (`,` runs) before an element: their count and the position after them."""
        count, j = 0, i
        while self.at(j, ","):
            count += 1
            j = self.ws(j + 1)
        return count, j if count else i


def _nested(text: str) -> Node:
    """String literals are template strings too (`'${a}'`, `'$${x}'`)."""
    parsed = parse(text)
    return Lit(parsed) if isinstance(parsed, str) else parsed


@lru_cache(maxsize=4096)
def parse(text: str) -> Node | str:
    """The AST of a template string, or the string itself when it holds no `${` at all."""
    if "${" not in text:
        return text
    parser = _Parser(text)
    try:
        return build_blocks(parser.elements(), text)
    except RecursionError:
        raise TemplateError("template nested too deeply", text.strip(), text) from None
