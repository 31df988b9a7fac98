"""farm.publish's naming (GARDEN-SPEC §10): the public image id and the --tag template."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from farm.errors import UsageError
from farm.publish import public_image_id


def build(publish_id: str | None = None, local_id: str | None = None) -> Any:
    return SimpleNamespace(
        name="api", version=SimpleNamespace(version_string="v-0123abcd"),
        action=SimpleNamespace(spec=SimpleNamespace(publish_id=publish_id, local_id=local_id)),
        outputs=SimpleNamespace(deployment_image_name="reg:5000/team/api"))


@pytest.mark.parametrize(("publish_id", "local_id", "tag", "expected"), [
    ("pub.io/org/api", None, None, "pub.io/org/api:v-0123abcd"),            # no tag anywhere: the version
    ("pub.io/org/api:1.2", None, None, "pub.io/org/api:1.2"),               # publishId's own tag
    ("pub.io/org/api:1.2", None, "r-${build.hash}", "pub.io/org/api:r-0123abcd"),  # --tag wins
    ("host:5000/api", None, None, "host:5000/api:v-0123abcd"),              # a port is no tag
    (None, "my/api:dev", None, "my/api:v-0123abcd"),                        # localId without its tag
    (None, None, "${build.name}-${build.version}", "reg:5000/team/api:api-v-0123abcd"),
])
def test_public_image_id(publish_id: str | None, local_id: str | None, tag: str | None, expected: str) -> None:
    assert public_image_id(build(publish_id, local_id), tag) == expected


@pytest.mark.parametrize("tag", ["${build.nope}", "a/b", "${build.name}:x", "${"])
def test_a_tag_template_that_is_no_tag_is_a_usage_error(tag: str) -> None:
    with pytest.raises(UsageError, match="--tag"):
        public_image_id(build(), tag)
