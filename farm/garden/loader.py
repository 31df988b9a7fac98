"""YAML reading that remembers where every key and item came from, for file:line errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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


class _Loader(yaml.SafeLoader):
    """SafeLoader; kept as a subclass so our tweaks never leak into PyYAML's global loader."""


def _no_timestamps() -> None:
    # Garden (JS YAML) reads `2024-01-01` as a string; PyYAML would make a date that breaks hashing.
    for first, resolvers in list(_Loader.yaml_implicit_resolvers.items()):
        _Loader.yaml_implicit_resolvers[first] = [
            (tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]


_no_timestamps()


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


def _yaml_error(file: Path, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"invalid YAML: {problem}", file=str(file), line=line)


def load_docs(file: Path, text: str | None = None) -> list[Doc]:
    """Parse every document in a YAML file; YAML errors become ConfigError with the line."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read file: {exc}", file=str(file)) from None
    loader = _Loader(text)
    docs: list[Doc] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path_, int] = {(): node.start_mark.line + 1}
            _marks(node, (), lines)
            data = loader.construct_document(node)
            docs.append(Doc(file=file, data=data, lines=lines))
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. unhashable keys
        raise ConfigError(f"invalid YAML: {exc}", file=str(file)) from None
    finally:
        loader.dispose()
    return docs
