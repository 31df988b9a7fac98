"""ECR's immutable-tag refusal in a builder's output: success only when the tag already names the
manifest the builder made (GARDEN-SPEC §4.3)."""

from __future__ import annotations

from farm.registry.ecr import immutable_refusal, refused_but_same

BUILT = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
BUILDKIT = [
    "#12 exporting manifest " + BUILT + " 0.0s done",
    "#12 pushing manifest for 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:v-0123456789@" + BUILT,
    "error: failed to push: unexpected status from PUT request: 400 Bad Request: TAG_INVALID: The image tag "
    "'v-0123456789' already exists in the 'team/api' repository and cannot be overwritten because the "
    "repository is immutable.",
]


def test_the_same_manifest_under_an_immutable_tag_is_success() -> None:
    assert refused_but_same(BUILDKIT, BUILT)


def test_other_content_under_the_tag_stays_a_failure() -> None:
    assert not refused_but_same(BUILDKIT, OTHER)


def test_a_tag_the_registry_does_not_serve_stays_a_failure() -> None:
    assert not refused_but_same(BUILDKIT, None)


def test_any_other_push_error_is_not_an_immutable_refusal() -> None:
    other = [BUILDKIT[0], "error: failed to push: 401 Unauthorized"]
    assert not immutable_refusal(other)
    assert not refused_but_same(other, BUILT)


def test_kaniko_and_docker_spellings_are_recognised() -> None:
    assert immutable_refusal(["ImageTagAlreadyExistsException: The image tag 'v1' already exists"])
    assert immutable_refusal(["tag invalid: The image tag 'v1' already exists in the 'x' repository and cannot "
                              "be overwritten because the repository is immutable."])
