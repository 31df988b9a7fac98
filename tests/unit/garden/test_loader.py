from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden.loader import field_path, load_docs


def docs(tmp_path: Path, text: str):
    f = tmp_path / "garden.yml"
    f.write_text(text)
    return load_docs(f)


def test_lines_of_keys_and_items(tmp_path: Path) -> None:
    [d] = docs(tmp_path, "a: 1\nb:\n  - x\n  - c: 2\n    d: [1, 2]\n")
    assert d.lines[("a",)] == 1
    assert d.lines[("b", 0)] == 3
    assert d.lines[("b", 1, "c")] == 4
    assert d.lines[("b", 1, "d", 1)] == 5
    assert d.line_of(("b", 1, "missing", "deeper")) == 4


def test_multiple_documents(tmp_path: Path) -> None:
    a, b = docs(tmp_path, "kind: A\n---\nkind: B\nx: 1\n")
    assert (a.data, b.data) == ({"kind": "A"}, {"kind": "B", "x": 1})
    assert b.lines[("x",)] == 4


def test_dates_stay_strings(tmp_path: Path) -> None:
    [d] = docs(tmp_path, "when: 2024-01-02\n")
    assert d.data == {"when": "2024-01-02"}


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    # Garden's YAML loader refuses them; PyYAML alone would silently keep the last value.
    with pytest.raises(ConfigError) as exc:
        docs(tmp_path, "kind: Build\nbuildMode: kaniko\nbuildMode: cluster-buildkit\n")
    assert exc.value.line == 3 and exc.value.field == "buildMode"
    assert "duplicate key 'buildMode' (first at line 2)" in str(exc.value)


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    [d] = docs(tmp_path, "a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n")
    assert d.data == {"a": {"b": 1}, "c": {"b": 2}}


@pytest.mark.parametrize("text,line", [
    ("a: [1,\n", 2),
    ("a: 1\n b: 2\n", 2),
    ("a: 1\n\x07\n", 2),
    ("a: &x [*x]\n", None),
    ("? [a]\n: 1\n", None),
])
def test_bad_yaml_is_a_config_error(tmp_path: Path, text: str, line: int | None) -> None:
    with pytest.raises(ConfigError, match="invalid YAML") as err:
        docs(tmp_path, text)
    assert err.value.file == str(tmp_path / "garden.yml")
    if line is not None:
        assert err.value.line == line


def test_alias_bomb(tmp_path: Path) -> None:
    rows = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"] + [
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    with pytest.raises(ConfigError, match="expand"):
        docs(tmp_path, "\n".join(rows) + "\n")


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "garden.yml"
    f.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_docs(f)


def test_field_path() -> None:
    assert field_path(("providers", 0, "clusterBuildkit", "cache", 1, "tag")) == \
        "providers[0].clusterBuildkit.cache[1].tag"
    assert field_path(("spec",), "x") == "x.spec"


def test_yaml_1_2_scalars_like_garden(tmp_path: Path) -> None:
    [d] = docs(tmp_path, "a: off\nb: yes\nc: 010\nd: 1:30\ne: true\nf: 0x1F\ng: 1.5\nh: .inf\ni: ~\nj: 1_000\n"
                         "k: -3\nl: 0o17\nm: False\nn: 1e3\n")
    assert d.data == {"a": "off", "b": "yes", "c": 10, "d": "1:30", "e": True, "f": 31, "g": 1.5,
                      "h": float("inf"), "i": None, "j": "1_000", "k": -3, "l": 15, "m": False, "n": 1000.0}


def test_pyyaml_safe_load_is_left_alone(tmp_path: Path) -> None:
    import yaml

    docs(tmp_path, "a: 1\n")
    assert yaml.safe_load("a: 1\nb: yes\nc: 2024-01-02\n") == {"a": 1, "b": True,
                                                               "c": __import__("datetime").date(2024, 1, 2)}
