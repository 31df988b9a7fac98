"""Platform checks of pushed images (farm/registry/platforms.py, manifests.py): pure parts."""

from __future__ import annotations

import json

from farm.registry.manifests import config_platform, manifest_config, normal_platform, same_platform
from farm.registry.platforms import Found, mismatches


def test_platform_spellings() -> None:
    assert normal_platform("linux/arm64/v8") == normal_platform("linux/arm64") == "linux/arm64"
    assert normal_platform("linux/arm") == "linux/arm/v7" and normal_platform("Linux/AMD64") == "linux/amd64"
    assert same_platform("linux/arm64", "linux/arm64/v8") and not same_platform("linux/arm64", "linux/amd64")
    assert not same_platform("linux/arm/v6", "linux/arm/v7")


def test_config_platform() -> None:
    assert config_platform(json.dumps({"os": "linux", "architecture": "arm64", "variant": "v8"}).encode()) \
        == "linux/arm64/v8"
    assert config_platform(b"not json") == "unknown" and config_platform(b"[]") == "unknown"
    assert manifest_config(json.dumps({"config": {"digest": "sha256:ab"}}).encode()) == "sha256:ab"
    assert manifest_config(b'{"manifests": []}') is None


def test_mismatches() -> None:
    assert mismatches(["linux/arm64"], [Found(None, "linux/arm64/v8", "d")]) == []
    assert mismatches(["linux/arm64"], [Found(None, "linux/amd64", "d")]) == \
        ["linux/arm64: the pushed image d is linux/amd64"]
    index = [Found("linux/amd64", "linux/amd64", "a"), Found("linux/arm64", "linux/amd64", "b")]
    assert mismatches(["linux/amd64", "linux/arm64"], index) == \
        ["linux/arm64: the index lists b, an image for linux/amd64"]
    assert mismatches(["linux/amd64", "linux/s390x"], index[:1]) == ["linux/s390x: not in the pushed index"]
    assert mismatches(["linux/amd64"], []) == ["linux/amd64: no image was pushed"]
