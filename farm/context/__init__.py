"""Content-addressed build contexts: manifest, store (filesystem, S3), upload, cache, materialise.

    producer:  build_manifest(root, files) -> upload_context(open_store(url), root, manifest)
    worker:    materialise(open_store(url), digest, dest_dir, BlobCache(root, max_bytes), Limits())
               or update_tree(...) on a directory kept between builds (only the difference is written)
"""

from .cache import BlobCache
from .index import HashIndex
from .manifest import ContextManifest, ManifestEntry, build_manifest
from .materialise import materialise
from .safety import Limits
from .store import ContextStore, open_store
from .tree import TreeUpdate, update_tree
from .upload import UploadStats, upload_context

__all__ = [
    "BlobCache",
    "ContextManifest",
    "ContextStore",
    "HashIndex",
    "Limits",
    "ManifestEntry",
    "UploadStats",
    "build_manifest",
    "materialise",
    "open_store",
    "TreeUpdate",
    "update_tree",
    "upload_context",
]
