"""BuildKit cache and output flags: the flag algorithm of GARDEN-SPEC §6 as a pure function.

The producer resolves cache names and modes (`farm.images.cache_refs`); `image_flags()` turns those
CacheRefs into the `--export-cache`, `--output` and `--import-cache` flags of one buildctl
invocation, in Garden's order.

Garden quirk fixed here: an `export: false` cache is never pushed, also when it resolved to `inline`
(Garden adds every inline cache to the `--output` names, so the import-only main tag got overwritten).
"""

from __future__ import annotations

from collections.abc import Sequence

from farm.images import CacheRef

INSECURE = ",registry.insecure=true"


def image_flags(caches: Sequence[CacheRef], *, deployment_image_id: str,
                deployment_insecure: bool = False) -> list[str]:
    """The cache and output flags of §6, in order: inline export, `--output`, import/export pairs."""
    args: list[str] = []
    names = [deployment_image_id]
    inline_refs = [cache.ref for cache in caches if cache.mode == "inline" and cache.export]
    if inline_refs:
        args += ["--export-cache", "type=inline"]
        names += [ref for ref in dict.fromkeys(inline_refs) if ref != deployment_image_id]
    # The quotes are literal: BuildKit reads the value as CSV and the name list holds commas.
    output_suffix = INSECURE if deployment_insecure else ""
    args += ["--output", f'type=image,"name={",".join(names)}",push=true{output_suffix}']

    for cache in caches:
        suffix = INSECURE if cache.insecure else ""
        # Import order matters: BuildKit uses the first cache with a hit for all following layers.
        args += ["--import-cache", f"type=registry,ref={cache.ref}{suffix}"]
        if not cache.export or cache.mode == "inline":
            continue
        manifest = "image-manifest=true," if cache.image_manifest else ""
        args += ["--export-cache", f"{manifest}type=registry,ref={cache.ref},mode={cache.mode}{suffix}"]
    return args
