"""farm.gc's and farm.context.sweep's pure parts: branch tag patterns, which tags and objects go."""

from __future__ import annotations

from farm.context.sweep import Stored, plan_sweep
from farm.gc import PROBE, Tag, TagPattern, branch_patterns, stale_tags
from farm.images import CacheRef


def ref(r: str) -> CacheRef:
    return CacheRef(ref=r, mode="max", export=True, insecure=True, image_manifest=False)


def test_only_cache_tags_that_name_the_branch_are_patterns() -> None:
    pats = branch_patterns([ref(f"reg:5000/ns/api:_buildcache-{PROBE}"), ref("reg:5000/ns/api:_buildcache-main"),
                            ref(f"reg:5000/ns/api:c-{PROBE}-x"), ref(f"reg:5000/ns/api:_buildcache-{PROBE}")])
    assert pats == [TagPattern("reg:5000/ns/api", "_buildcache-", "", True),
                    TagPattern("reg:5000/ns/api", "c-", "-x", True)]
    assert pats[0].matches("_buildcache-feature") and not pats[0].matches("_buildcache-")
    assert not pats[0].matches("v-123") and pats[1].matches("c-a-x") and not pats[1].matches("c-a")


def test_stale_tags_spare_kept_branches_and_recent_writes() -> None:
    pat = TagPattern("h/r", "_buildcache-", "", False)
    tags = [Tag("_buildcache-old", "d1", 10), Tag("_buildcache-new", "d2", 100), Tag("_buildcache-main", "d3", 1),
            Tag("v-1", "d4", 1)]
    assert [t.name for t in stale_tags(tags, pat, {"_buildcache-main"}, 50)] == ["_buildcache-old"]


def test_sweep_keeps_live_and_young_manifests_and_what_they_name() -> None:
    manifests = [Stored("live", 1, 0), Stored("dead", 2, 0), Stored("young", 3, 100)]
    blobs = [Stored(n, 10, t) for n, t in (("a", 0), ("s", 0), ("b", 0), ("y", 0), ("orphan", 0), ("new", 100))]
    refs = {"live": {"a", "s"}, "dead": {"b", "s"}, "young": {"y"}}
    out = plan_sweep(manifests, blobs, refs, {"live"}, cutoff=50)
    assert [m.name for m in out.manifests] == ["dead"]
    assert [b.name for b in out.blobs] == ["b", "orphan"]
    assert out.kept_live == 1 and out.bytes == 22
