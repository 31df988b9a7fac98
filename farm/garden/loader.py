"""YAML reading that remembers where every key and item came from, for file:line errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import re
from typing import Any

import yaml

from farm.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Doc:
    """One YAML document: its data and the line of each key / sequence item (1-based)."""

    file: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of `path` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, message: str, path: Path_ = (), prefix: str = "") -> ConfigError:
        return ConfigError(message, file=str(self.file), line=self.line_of(path),
                           field=field_path(path, prefix) or None)


def field_path(path: Path_, prefix: str = "") -> str:
    """('providers', 0, 'buildMode') -> 'providers[0].buildMode'."""
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: str, first_line: int, node: yaml.Node) -> None:
        super().__init__(None, None, f"duplicate key '{key}' (first at line {first_line})", node.start_mark)
        self.key = key
        self.node = node
        self.field = key          # the full path once load_docs knows the document


def _path_to(node: yaml.Node, target: yaml.Node, path: Path_ = ()) -> Path_ | None:
    """Where the key node `target` sits in the document `node`, as a field path."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            here = path + (str(key_node.value),) if isinstance(key_node, yaml.ScalarNode) else path
            if key_node is target:
                return here
            if (found := _path_to(value_node, target, here)) is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if (found := _path_to(item, target, path + (i,))) is not None:
                return found
    return None


class _Loader(yaml.SafeLoader):
    """SafeLoader; kept as a subclass so our tweaks never leak into PyYAML's global loader."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Garden's YAML loader refuses a key written twice in one mapping; PyYAML keeps the last.
        # Keys merged in with `<<` may be overridden, as YAML's merge key allows.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                first = seen.get(key)
            except TypeError:
                continue
            if first is not None:
                raise DuplicateKey(str(key), first.start_mark.line + 1, key_node)
            seen[key] = key_node
        return super().construct_mapping(node, deep)


_YAML_1_1_ONLY = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                  "tag:yaml.org,2002:float"}


def _yaml_1_2_core() -> None:
    """Resolve scalars like Garden's YAML 1.2 parser: `on`/`off`/`yes`/`no` and dates stay strings,
    `010` is ten, `1:30` is a string (PyYAML follows YAML 1.1, which reads them all differently)."""
    # A fresh dict on the subclass: PyYAML's SafeLoader (used by everyone else) stays untouched.
    _Loader.yaml_implicit_resolvers = {
        first: [(t, rx) for t, rx in resolvers if t not in _YAML_1_1_ONLY]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    _Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                  re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    _Loader.add_implicit_resolver("tag:yaml.org,2002:int",
                                  re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                  list("-+0123456789"))
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    value = str(loader.construct_scalar(node))  # type: ignore[arg-type,unused-ignore]
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type,unused-ignore]


_yaml_1_2_core()
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


_MAX_NODES = 1_000_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count with aliases expanded: guards against recursive anchors and alias bombs."""
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            raise ValueError("a YAML alias refers to itself")
        return memo[key]
    memo[key] = -1
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    if size > _MAX_NODES:
        raise ValueError("YAML aliases expand to more than a million nodes")
    memo[key] = size
    return size


def _marks(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            if key == "<<":  # merge keys: lines of merged fields point into the anchor
                _marks(value_node, path, out)
                continue
            out[path + (key,)] = key_node.start_mark.line + 1
            _marks(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.setdefault(path + (i,), item.start_mark.line + 1)
            _marks(item, path + (i,), out)


def _yaml_error(file: Path, exc: yaml.YAMLError, text: str = "") -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.reader.ReaderError):
        problem = f"character #x{exc.character:04x} is not allowed in YAML"
        line = text.count("\n", 0, exc.position) + 1
    return ConfigError(f"invalid YAML: {problem}", file=str(file), line=line,
                       field=exc.field if isinstance(exc, DuplicateKey) else None)


def load_docs(file: Path, text: str | None = None) -> list[Doc]:
    """Parse every document in a YAML file; YAML errors become ConfigError with the line."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read file: {exc}", file=str(file)) from None
    docs: list[Doc] = []
    try:
        loader = _Loader(text)  # the reader itself rejects control characters
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc, text) from None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _expanded_size(node, {})
            lines: dict[Path_, int] = {(): node.start_mark.line + 1}
            _marks(node, (), lines)
            try:
                data = loader.construct_document(node)
            except DuplicateKey as dup:
                dup.field = field_path(_path_to(node, dup.node) or (dup.key,))
                raise
            docs.append(Doc(file=file, data=data, lines=lines))
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc, text) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. unhashable keys
        raise ConfigError(f"invalid YAML: {exc}", file=str(file)) from None
    finally:
        loader.dispose()
    return docs
