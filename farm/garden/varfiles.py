"""Garden varfiles: dotenv (`garden.env`, the default) or YAML / JSON mappings of variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.errors import ConfigError
from farm.garden.loader import load_docs


def _dotenv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def read_varfile(file: Path) -> dict[str, Any]:
    """Variables from one varfile; a malformed file is a ConfigError naming it."""
    if file.suffix in (".yml", ".yaml", ".json"):
        docs = load_docs(file)
        data = docs[0].data if docs else {}
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError("a varfile must hold a mapping of variable names to values", file=str(file))
        return data
    return _dotenv(file)
