"""The AST of Garden's template strings, the error they raise, and the nesting of
`${if}` / `${else}` / `${endif}` parts into blocks (`buildConditionalTree` in Garden's grammar).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


class TemplateError(Exception):
    """A template that does not parse or evaluate. `source` is the template string at fault (for
    a nested string literal, the inner one), `expression` the `${...}` being evaluated, `path` the
    YAML path of the value; `str()` renders Garden's message."""

    def __init__(self, message: str, expression: str = "", source: str = "",
                 path: tuple[str | int, ...] = ()) -> None:
        self.message = message
        self.expression = expression
        self.source = source
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:
        if not self.source:
            return self.message
        raw = self.source if len(self.source) <= 200 else self.source[:197] + "..."
        where = f" at path {'.'.join(str(p) for p in self.path)}" if self.path else ""
        return f"Invalid template string ({raw.replace(chr(10), chr(92) + 'n')}){where}: {self.message}"



# --- nodes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lit:
    value: Any
    escaped: bool = False  # a `$${...}` escape: evaluates to the text without its first `$`


@dataclass(frozen=True)
class Arr:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Member:
    """`[expr]` inside a key path; must evaluate to a string or number."""
    expr: Node
    source: str


@dataclass(frozen=True)
class Lookup:
    keys: tuple[str | int | Member, ...]
    source: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    source: str


@dataclass(frozen=True)
class Unary:
    op: str  # "!" or "typeof"
    inner: Node


@dataclass(frozen=True)
class Binary:
    op: str  # && || == != < > <= >= + - * / % contains
    left: Node
    right: Node
    source: str


@dataclass(frozen=True)
class Ternary:
    cond: Node
    yes: Node
    no: Node


@dataclass(frozen=True)
class Format:
    """One `${...}`; `text` is the expression as written, for error messages."""
    inner: Node
    text: str


@dataclass(frozen=True)
class Block:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class If:
    cond: Format
    then: Node | None  # None: an unclosed `${if x}` standing alone evaluates to x
    other: Node | None


Node = Union[Lit, Arr, Lookup, Call, Unary, Binary, Ternary, Format, Block, If]  # noqa: UP007 - forward refs


# The parser's flat output marks block boundaries; build_blocks() turns them into If nodes.
@dataclass(frozen=True)
class IfOpen:
    cond: Format


class Else:
    """`${else}`."""


class EndIf:
    """`${endif}`."""


Element = Union[Node, IfOpen, Else, EndIf]  # noqa: UP007


def build_blocks(elements: list[Element], source: str) -> Node:
    """Nest the flat list of parts inside their `${if}` / `${else}` / `${endif}` blocks."""
    root: list[Node] = []
    current: IfOpen | None = None
    then: list[Element] = []
    other: list[Element] = []
    in_else, depth = False, 0

    def fail(message: str) -> TemplateError:
        return TemplateError(message, source.strip(), source)

    def push(e: Element) -> None:
        if current is None:
            root.append(e)  # type: ignore[arg-type]  # only nodes reach the root
        else:
            (other if in_else else then).append(e)

    for e in elements:
        if isinstance(e, IfOpen):
            if current is None:
                current = e
            else:
                push(e)
                depth += 1
        elif isinstance(e, Else):
            if current is None:
                raise fail("Found ${else} block without a preceding ${if...} block.")
            if in_else and depth == 0:
                raise fail("Encountered multiple ${else} blocks on the same ${if...} block nesting level.")
            if depth == 0:
                in_else = True
            else:
                push(e)
        elif isinstance(e, EndIf):
            if current is None:
                raise fail("Found ${endif} block without a preceding ${if...} block.")
            if depth == 0:
                root.append(If(current.cond, build_blocks(then, source), build_blocks(other, source)))
                current, then, other, in_else = None, [], [], False
            else:
                depth -= 1
                push(e)
        else:
            push(e)
    if current is not None and (root or then):
        raise fail("Missing ${endif} after ${if ...} block.")
    if not root:
        if current is None:
            return Lit("")
        root.append(If(current.cond, None, None))
    return Block(tuple(root))
