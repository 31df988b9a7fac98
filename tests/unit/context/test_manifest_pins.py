"""farm/context/manifest.py pinned by known answers: the exact canonical bytes and digest of a small
context, the place of symlink entries, and the symlink checks on every parent (issue 19).

The bytes were written out by hand from the format ([path, mode, size, sha256, target], sorted keys,
no spaces) and the digests computed with `sha256sum`: a change to the canonical form changes every
context key in every store, so it must show up here first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.context import ContextManifest, HashIndex, ManifestEntry, build_manifest
from farm.context import index as index_mod
from farm.context.manifest import hash_file
from farm.context.safety import Limits, check_manifest
from farm.errors import ContextError

SHA_FROM_SCRATCH = "bb57c7da220a8753d7bdabac0d3afdb6efa742e4c736c5bc93ab40dfd5e23b9b"  # b"FROM scratch\n"
SHA_SH = "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf"  # b"#!/bin/sh\n"
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

EXPECTED_JSON = (
    b'{"entries":['
    b'["Dockerfile",33188,13,"bb57c7da220a8753d7bdabac0d3afdb6efa742e4c736c5bc93ab40dfd5e23b9b",null],'
    b'["a-link",40960,0,null,"Dockerfile"],'
    b'["bin/run",33261,10,"a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf",null],'
    b'["bin/z",40960,0,null,"run"],'
    b'["c",40960,0,null,"bin"],'
    b'["empty",33188,0,"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",null]'
    b'],"version":1}'
)
EXPECTED_DIGEST = "sha256:4fff25e80302792695d5f5aaac321a1db1246972625c6196846cb8d4c11c5c32"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Three files and three inside symlinks whose names sort between the files'."""
    root = tmp_path / "ctx"
    (root / "bin").mkdir(parents=True)
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    (root / "bin" / "run").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "bin" / "run", 0o755)
    (root / "empty").write_bytes(b"")
    os.symlink("Dockerfile", root / "a-link")
    os.symlink("bin", root / "c")
    os.symlink("run", root / "bin" / "z")
    return root


FILES = ["empty", "c", "bin/z", "bin/run", "a-link", "Dockerfile"]


def test_exact_bytes_and_digest(tree: Path) -> None:
    m = build_manifest(tree, FILES)
    assert m.to_json() == EXPECTED_JSON
    assert m.digest == EXPECTED_DIGEST
    assert m.skipped_symlinks == ()


def test_symlink_entries_are_sorted_among_the_files(tree: Path) -> None:
    paths = [e.path for e in build_manifest(tree, FILES).entries]
    assert paths == ["Dockerfile", "a-link", "bin/run", "bin/z", "c", "empty"]


def test_the_same_with_workers_one_and_many(tree: Path) -> None:
    assert build_manifest(tree, FILES, workers=1).to_json() == EXPECTED_JSON
    assert build_manifest(tree, FILES, workers=3).to_json() == EXPECTED_JSON


def test_parsed_bytes_give_the_same_manifest(tree: Path) -> None:
    m = ContextManifest.from_json(EXPECTED_JSON)
    assert m.entries[1] == ManifestEntry("a-link", 0o120000, 0, None, "Dockerfile")
    assert m.entries[2] == ManifestEntry("bin/run", 0o100755, 10, SHA_SH, None)
    assert m.to_json() == EXPECTED_JSON and m.digest == EXPECTED_DIGEST
    assert m.total_bytes == 23
    assert list(m.blobs) == [SHA_FROM_SCRATCH, SHA_SH, SHA_EMPTY]
    assert m.blobs[SHA_SH].path == "bin/run"
    check_manifest(m, Limits(), name="pin")  # what the producer makes, the worker accepts


def test_empty_manifest() -> None:
    m = ContextManifest(())
    assert m.to_json() == b'{"entries":[],"version":1}'
    assert m.digest == "sha256:a6a20076da005b27c9afc3a5d5b2457798c0ac817d1abc38b2fee4398ac3f133"


def test_non_ascii_names_are_escaped(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: a surrogate escape, written as \udce9
    (tmp_path / name).write_bytes(b"x")
    m = build_manifest(tmp_path, [name])
    assert m.to_json() == (b'{"entries":[["caf\\udce9.txt",33188,1,'
                           b'"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",null]],"version":1}')
    assert m.digest == "sha256:019dff62aeab4a291147e849bd4079ea3b43a0f5d5695f71147b731223d6106d"


def test_blobs_keep_the_first_entry_of_each_digest() -> None:
    a = ManifestEntry("a", 0o100644, 1, SHA_SH)
    b = ManifestEntry("b", 0o100755, 1, SHA_SH)
    link = ManifestEntry("c", 0o120000, 0, None, "a")
    m = ContextManifest((a, b, link))
    assert m.blobs == {SHA_SH: a}
    assert m.total_bytes == 2


@pytest.mark.parametrize("mode,expected", [(0o644, 0o100644), (0o744, 0o100755), (0o645, 0o100644),
                                           (0o654, 0o100644), (0o100, 0o100755), (0o400, 0o100644)])
def test_only_the_owner_execute_bit_counts(tmp_path: Path, mode: int, expected: int) -> None:
    (tmp_path / "f").write_bytes(b"x")
    os.chmod(tmp_path / "f", mode)
    assert build_manifest(tmp_path, ["f"]).entries[0].mode == expected


@pytest.mark.parametrize("mode,expected", [(0o645, 0o100644), (0o744, 0o100755)])
def test_exec_bit_from_the_index_path_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          mode: int, expected: int) -> None:
    monkeypatch.setattr(index_mod, "_RACY_NS", 0)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "f").write_bytes(b"x")
    os.chmod(tmp_path / "ctx" / "f", mode)
    index = HashIndex(tmp_path / "index.json")
    build_manifest(tmp_path / "ctx", ["f"], index=index)
    again = build_manifest(tmp_path / "ctx", ["f"], index=index)  # served from the index
    assert again.entries[0] == ManifestEntry("f", expected, 1,
                                             "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")


# --- hash_file -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (2 << 20) + 7])
def test_hash_file_sizes_around_the_whole_read_limit(tmp_path: Path, size: int) -> None:
    import hashlib  # the reference: one call over all the bytes

    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f").write_bytes(data)
    assert hash_file(str(tmp_path / "f")) == (hashlib.sha256(data).hexdigest(), size)


def test_hash_file_known_answers(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "b").write_bytes(b"")
    assert hash_file(str(tmp_path / "a")) == (SHA_SH, 10)
    assert hash_file(str(tmp_path / "b")) == (SHA_EMPTY, 0)


# --- a path through a symlink: every parent, not just the first ------------------------------------------

@pytest.mark.parametrize("link,listed", [
    ("s", "s/pkg/a.py"),
    ("src/s", "src/s/a.py"),
    ("src/pkg/s", "src/pkg/s/a.py"),
    ("src/pkg/s", "src/pkg/s/deeper/b.py"),
])
def test_a_listed_path_through_a_symlink_at_any_depth_is_refused(tmp_path: Path, link: str, listed: str) -> None:
    (tmp_path / "src" / "pkg" / "deeper").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_bytes(b"a")
    (tmp_path / "src" / "pkg" / "deeper" / "b.py").write_bytes(b"b")
    target = {"s": "src", "src/s": "pkg", "src/pkg/s": "."}[link]
    os.symlink(target, tmp_path / link)
    with pytest.raises(ContextError) as exc:
        build_manifest(tmp_path, ["src/pkg/a.py", listed])
    assert str(exc.value) == (f"{tmp_path}/{listed}: goes through the symlink {tmp_path}/{link}; "
                              "a context path must not traverse a symlink")


def test_checked_parents_are_not_trusted_for_deeper_links(tmp_path: Path) -> None:
    # src/ is checked (a real directory) for src/a.py; src/l is still checked for src/l/x
    (tmp_path / "src" / "d").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_bytes(b"a")
    (tmp_path / "src" / "d" / "x").write_bytes(b"x")
    os.symlink("d", tmp_path / "src" / "l")
    with pytest.raises(ContextError, match=r"src/l/x: goes through the symlink"):
        build_manifest(tmp_path, ["src/a.py", "src/d/x", "src/l/x"])


# --- the producer's two symlink passes -----------------------------------------------------------------

def test_second_pass_drops_a_link_that_climbs_through_an_unlisted_link(tmp_path: Path) -> None:
    # On disk a/s -> x/y/z, so a/t -> s/../../.. resolves to a/ (inside) for realpath. The worker only
    # knows the listed links: without a/s, a/t climbs a/s/.. /.. /.. out of the root. The producer
    # judges with the worker's rule and leaves a/t out rather than send a manifest the worker refuses.
    (tmp_path / "a" / "x" / "y" / "z").mkdir(parents=True)
    (tmp_path / "a" / "f").write_bytes(b"f")
    os.symlink("x/y/z", tmp_path / "a" / "s")
    os.symlink("s/../../..", tmp_path / "a" / "t")
    m = build_manifest(tmp_path, ["a/f", "a/t"])
    assert m.skipped_symlinks == ("a/t",)
    assert [e.path for e in m.entries] == ["a/f"]
    check_manifest(m, Limits(), name="pin")


def test_second_pass_keeps_a_link_through_a_listed_link(tmp_path: Path) -> None:
    (tmp_path / "a" / "x" / "y" / "z").mkdir(parents=True)
    os.symlink("x/y/z", tmp_path / "a" / "s")
    os.symlink("s/../../..", tmp_path / "a" / "t")
    m = build_manifest(tmp_path, ["a/s", "a/t"])
    assert m.skipped_symlinks == ()
    assert [(e.path, e.target) for e in m.entries] == [("a/s", "x/y/z"), ("a/t", "s/../../..")]


def test_skipped_symlinks_are_sorted(tmp_path: Path) -> None:
    for name in ("z", "m", "b"):
        os.symlink("/etc", tmp_path / name)
    (tmp_path / "f").write_bytes(b"")
    m = build_manifest(tmp_path, ["z", "f", "m", "b"])
    assert m.skipped_symlinks == ("b", "m", "z")
    assert [e.path for e in m.entries] == ["f"]


@pytest.mark.parametrize("target,kept", [("..", False), (".", True), ("./f", True), ("../ctx/f", False),
                                         ("../ctxx/f", False), ("/tmp", False)])
def test_symlinks_judged_by_real_path_and_by_name(tmp_path: Path, target: str, kept: bool) -> None:
    # ../ctx/f is inside for realpath but leaves the root on the way: the worker refuses that, so it is left out
    root = tmp_path / "ctx"
    root.mkdir()
    (tmp_path / "ctxx").mkdir()
    (tmp_path / "ctxx" / "f").write_bytes(b"")
    (root / "f").write_bytes(b"")
    os.symlink(target, root / "l")
    m = build_manifest(root, ["l"])
    assert (m.skipped_symlinks == ()) is kept
    assert ([e.path for e in m.entries] == ["l"]) is kept


def test_a_root_given_with_a_trailing_slash(tree: Path) -> None:
    assert build_manifest(Path(str(tree) + "/"), FILES).to_json() == EXPECTED_JSON
    assert build_manifest(str(tree) + "/", FILES).to_json() == EXPECTED_JSON  # type: ignore[arg-type]


@pytest.mark.parametrize("listed", [".hidden", "a/.hidden", "..data"])
def test_dot_names_that_are_safe_are_kept(tmp_path: Path, listed: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / listed).write_bytes(b"")
    assert [e.path for e in build_manifest(tmp_path, [listed]).entries] == [listed]


# --- messages --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data,message", [
    (b"{", "context manifest is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
           "(char 1)"),
    (b'{"version": 2, "entries": []}', "context manifest has an unknown format (expected version 1)"),
    (b"[1]", "context manifest has an unknown format (expected version 1)"),
    (b'{"version": 1, "entries": {}}', "context manifest has no list of entries"),
    (b'{"version": 1, "entries": [["a", 33188, 0, null, null], ["b", 1]]}',
     "context manifest entry #1 is malformed: ['b', 1]"),
    (b'{"version": 1, "entries": [["a", 33188, 0, null, 5]]}',
     "context manifest entry #0 is malformed: ['a', 33188, 0, None, 5]"),
    (b'{"version": 1, "entries": [["a", 33188, 0, 5, null]]}',
     "context manifest entry #0 is malformed: ['a', 33188, 0, 5, None]"),
    (b'{"version": 1, "entries": [["a", 33188, 0, 5, "t"]]}',
     "context manifest entry #0 is malformed: ['a', 33188, 0, 5, 't']"),
    (b'{"version": 1, "entries": [["a", 33188, "0", null, null]]}',
     "context manifest entry #0 is malformed: ['a', 33188, '0', None, None]"),
    (b'{"version": 1, "entries": [["a", "33188", 0, null, null]]}',
     "context manifest entry #0 is malformed: ['a', '33188', 0, None, None]"),
    (b'{"version": 1, "entries": [["a", 33188, 0, null, null, null]]}',
     "context manifest entry #0 is malformed: ['a', 33188, 0, None, None, None]"),
    (b'{"version": 1, "entries": ["a3188"]}', "context manifest entry #0 is malformed: a3188"),
    (b'{"version": 1, "entries": [["a", 33188, false, null, null]]}',
     "context manifest entry #0 is malformed: ['a', 33188, False, None, None]"),
    (b'{"version": 1, "entries": [[1, 33188, 0, null, null]]}',
     "context manifest entry #0 is malformed: [1, 33188, 0, None, None]"),
    (b'{"version": 1, "entries": [["' + b"x" * 300 + b'", 1]]}',
     "context manifest entry #0 is malformed: ['" + "x" * 198),
])
def test_from_json_messages(data: bytes, message: str) -> None:
    with pytest.raises(ContextError) as exc:
        ContextManifest.from_json(data)
    assert str(exc.value) == message


@pytest.mark.parametrize("listed,why", [
    ("../x", "contains '..'"),
    ("a\x00b", "contains a NUL byte"),
    ("x" * 4097, "longer than 4096 characters"),
    ("a//b", "not a normalised relative path (empty or '.' component)"),
])
def test_unsafe_listed_path_messages(tmp_path: Path, listed: str, why: str) -> None:
    with pytest.raises(ContextError) as exc:
        build_manifest(tmp_path, [listed])
    assert str(exc.value) == f"build context: path {listed!r} refused: {why}"


def test_a_4096_character_path_is_not_refused_by_its_length(tmp_path: Path) -> None:
    with pytest.raises(ContextError) as exc:  # the OS's own limit (PATH_MAX with the root), not ours
        build_manifest(tmp_path, ["/".join(["y" * 255] * 16) + "z"])
    assert str(exc.value).endswith(": cannot read: File name too long")


def test_special_file_and_unreadable_path_messages(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ContextError) as exc:
        build_manifest(tmp_path, ["pipe"])
    assert str(exc.value) == (f"{tmp_path}/pipe: not a regular file or symlink (directory, device, fifo or socket) "
                              "and cannot be part of a build context")
    with pytest.raises(ContextError) as exc:
        build_manifest(tmp_path, ["file/x"])
    assert str(exc.value) == f"{tmp_path}/file/x: cannot read: Not a directory"
    with pytest.raises(ContextError) as exc:
        build_manifest(tmp_path, ["gone"])
    assert str(exc.value) == f"{tmp_path}/gone: listed in the build context but does not exist"


def test_a_file_that_vanishes_before_hashing(tmp_path: Path) -> None:
    from farm.context.manifest import _hash_all

    st = os.lstat(tmp_path)
    with pytest.raises(ContextError) as exc:
        _hash_all(f"{tmp_path}/", [(0, "gone", st)], 1)
    assert str(exc.value) == f"{tmp_path}/gone: cannot read: No such file or directory"


def test_a_file_longer_than_its_stat_says() -> None:
    # /proc files report size 0 and still have content: the "grew since fstat" path reads it all
    import hashlib

    data = Path("/proc/version").read_bytes()
    assert data and os.stat("/proc/version").st_size == 0
    assert hash_file("/proc/version") == (hashlib.sha256(data).hexdigest(), len(data))


def test_the_filesystem_root_as_a_context() -> None:
    m = build_manifest(Path("/"), ["proc/version"])
    assert [(e.path, e.mode) for e in m.entries] == [("proc/version", 0o100644)]


@pytest.mark.parametrize("name", ["ctxX", "ctx ", "ctx/"])
def test_root_names_are_taken_as_they_are(tmp_path: Path, name: str) -> None:
    root = tmp_path / name.rstrip("/")
    root.mkdir()
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    m = build_manifest(str(tmp_path) + "/" + name, ["Dockerfile"])  # type: ignore[arg-type]
    assert m.entries == (ManifestEntry("Dockerfile", 0o100644, 13, SHA_FROM_SCRATCH),)


def test_an_entry_that_is_an_object_is_malformed() -> None:
    with pytest.raises(ContextError, match="entry #0 is malformed"):
        ContextManifest.from_json(b'{"version": 1, "entries": [{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}]}')
