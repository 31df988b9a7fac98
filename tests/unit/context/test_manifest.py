"""farm/context/manifest.py and index.py: what a context holds, its digest, symlink rules (producer side)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.context import ContextManifest, HashIndex, ManifestEntry, build_manifest
from farm.context import index as index_mod
from farm.context import manifest as manifest_mod
from farm.context.manifest import EXEC_MODE, FILE_MODE, SYMLINK_MODE
from farm.errors import ContextError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "Dockerfile").write_bytes(b"FROM scratch\nCOPY . /\n")
    (root / "src" / "pkg" / "a.py").write_bytes(b"print('a')\n")
    (root / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "empty").write_bytes(b"")
    return root


FILES = ["Dockerfile", "src/pkg/a.py", "run.sh", "empty"]


def test_entries_modes_sizes_digests(tree: Path) -> None:
    m = build_manifest(tree, FILES)
    assert m.entries == (
        ManifestEntry("Dockerfile", FILE_MODE, 22, sha(b"FROM scratch\nCOPY . /\n")),
        ManifestEntry("empty", FILE_MODE, 0, sha(b"")),
        ManifestEntry("run.sh", EXEC_MODE, 10, sha(b"#!/bin/sh\n")),
        ManifestEntry("src/pkg/a.py", FILE_MODE, 11, sha(b"print('a')\n")),
    )
    assert m.total_bytes == 43
    assert len(m.entries) == 4
    assert m.skipped_symlinks == ()


def test_digest_names_the_canonical_json(tree: Path) -> None:
    m = build_manifest(tree, FILES)
    assert m.digest == "sha256:" + sha(m.to_json())
    # order of the input list and duplicates do not matter
    assert build_manifest(tree, list(reversed(FILES)) + FILES).digest == m.digest


def test_digest_changes_with_content_and_mode(tree: Path) -> None:
    before = build_manifest(tree, FILES).digest
    (tree / "src" / "pkg" / "a.py").write_bytes(b"print('b')\n")
    after_content = build_manifest(tree, FILES).digest
    os.chmod(tree / "Dockerfile", 0o755)
    after_mode = build_manifest(tree, FILES).digest
    assert len({before, after_content, after_mode}) == 3


def test_group_and_other_bits_are_normalised(tree: Path) -> None:
    base = build_manifest(tree, FILES).digest
    os.chmod(tree / "Dockerfile", 0o600)
    os.chmod(tree / "run.sh", 0o700)
    assert build_manifest(tree, FILES).digest == base


def test_large_file_is_hashed_in_chunks(tree: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tree / "big.bin").write_bytes(data)
    m = build_manifest(tree, ["big.bin"])
    assert m.entries[0].sha256 == sha(data) and m.entries[0].size == len(data)


def test_json_round_trip(tree: Path) -> None:
    os.symlink("src/pkg/a.py", tree / "link")
    m = build_manifest(tree, FILES + ["link"])
    again = ContextManifest.from_json(m.to_json())
    assert again.entries == m.entries and again.digest == m.digest


def test_non_utf8_file_name_round_trips(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # Latin-1 name on a UTF-8 system: a surrogate escape
    (tmp_path / name).write_bytes(b"x")
    m = build_manifest(tmp_path, [name])
    assert ContextManifest.from_json(m.to_json()).entries[0].path == name


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"version": 2, "entries": []}',
                                  b'{"version": 1}', b'{"version": 1, "entries": [["a", 1, 2]]}',
                                  b'{"version": 1, "entries": [["a", true, 0, null, null]]}'])
def test_from_json_refuses_malformed(data: bytes) -> None:
    with pytest.raises(ContextError):
        ContextManifest.from_json(data)


paths = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
                min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@given(st.lists(st.tuples(st.lists(paths, min_size=1, max_size=3), st.binary(max_size=40),
                          st.booleans()), max_size=8, unique_by=lambda t: "/".join(t[0])))
def test_from_json_inverts_to_json(items: list[tuple[list[str], bytes, bool]]) -> None:
    entries = tuple(sorted((ManifestEntry("/".join(p), EXEC_MODE if x else FILE_MODE, len(d), sha(d))
                            for p, d, x in items), key=lambda e: e.path))
    m = ContextManifest(entries)
    assert ContextManifest.from_json(m.to_json()) == m


# --- symlinks, as Garden does (GARDEN-SPEC §2.3) ------------------------------------------------

def test_inside_symlink_travels_as_a_symlink(tree: Path) -> None:
    os.symlink("src/pkg", tree / "pkglink")  # a directory link: must not be followed
    os.symlink("a.py", tree / "src" / "pkg" / "alias.py")
    m = build_manifest(tree, ["pkglink", "src/pkg/alias.py", "src/pkg/a.py"])
    by = {e.path: e for e in m.entries}
    assert by["pkglink"] == ManifestEntry("pkglink", SYMLINK_MODE, 0, None, "src/pkg")
    assert by["src/pkg/alias.py"].target == "a.py" and by["src/pkg/alias.py"].sha256 is None
    assert m.total_bytes == 11


def test_dangling_inside_symlink_is_kept(tree: Path) -> None:
    os.symlink("not-yet", tree / "dangling")
    assert build_manifest(tree, ["dangling"]).entries[0].target == "not-yet"


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "src/../../outside", "/"])
def test_absolute_or_outside_symlinks_are_skipped_and_reported(tree: Path, target: str) -> None:
    os.symlink(target, tree / "bad")
    m = build_manifest(tree, FILES + ["bad"])
    assert m.skipped_symlinks == ("bad",)
    assert "bad" not in {e.path for e in m.entries}
    assert m.digest == build_manifest(tree, FILES).digest


def test_symlink_to_a_symlink_that_leaves_is_skipped(tree: Path) -> None:
    os.symlink("/etc", tree / "out")
    os.symlink("out", tree / "via")
    m = build_manifest(tree, ["via", "out", "Dockerfile"])
    assert m.skipped_symlinks == ("out", "via")


def test_a_listed_path_through_a_symlink_is_refused(tree: Path) -> None:
    os.symlink("src", tree / "s")
    with pytest.raises(ContextError, match=r"s/pkg/a\.py.*symlink"):
        build_manifest(tree, ["s/pkg/a.py"])


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "./a", "a//b", "a/", ""])
def test_unsafe_listed_paths_are_refused(tree: Path, bad: str) -> None:
    with pytest.raises(ContextError, match="refused"):
        build_manifest(tree, [bad])


def test_fifo_and_directory_are_refused(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    with pytest.raises(ContextError, match="pipe.*not a regular file"):
        build_manifest(tree, ["pipe"])
    with pytest.raises(ContextError, match="src.*not a regular file"):
        build_manifest(tree, ["src"])


def test_missing_file_is_named(tree: Path) -> None:
    with pytest.raises(ContextError, match="nope.txt.*does not exist"):
        build_manifest(tree, ["nope.txt"])


# --- the stat index ------------------------------------------------------------------------------

def test_index_skips_unchanged_files_and_rehashes_changed(tree: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_mod, "_RACY_NS", 0)  # ctime cannot be aged: trust files written just now
    index = HashIndex(tmp_path / "index.json")
    first = build_manifest(tree, FILES, index=index)
    index.save()

    hashed: list[str] = []
    real = manifest_mod.hash_file
    monkeypatch.setattr(manifest_mod, "hash_file", lambda p: hashed.append(p) or real(p))
    (tree / "src" / "pkg" / "a.py").write_bytes(b"print('changed')\n")
    second = build_manifest(tree, FILES, index=HashIndex(tmp_path / "index.json"))
    assert [Path(p).name for p in hashed] == ["a.py"]
    assert second.digest != first.digest
    assert second.digest == build_manifest(tree, FILES).digest  # same answer as without the index


def test_index_does_not_trust_racily_fresh_files(tree: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    index = HashIndex(tmp_path / "index.json")
    build_manifest(tree, FILES, index=index)  # files were written just now: too fresh to trust
    index.save()
    hashed: list[str] = []
    real = manifest_mod.hash_file
    monkeypatch.setattr(manifest_mod, "hash_file", lambda p: hashed.append(p) or real(p))
    build_manifest(tree, FILES, index=HashIndex(tmp_path / "index.json"))
    assert len(hashed) == len(FILES)


def test_damaged_index_is_ignored(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "index.json").write_bytes(b"\x00garbage")
    assert build_manifest(tree, FILES, index=HashIndex(tmp_path / "index.json")).digest == \
        build_manifest(tree, FILES).digest
