"""Which images a Dockerfile pulls (farm/dockerfile.py)."""

from __future__ import annotations

from farm.dockerfile import base_images, substitute


def test_from_lines_with_args_stages_and_scratch() -> None:
    text = """\
# syntax=docker/dockerfile:1
ARG REGISTRY=reg.example.com:5000
ARG TAG
ARG BASE=${REGISTRY}/base/busybox:${TAG:-1.36}
FROM --platform=$BUILDPLATFORM $BASE AS build
RUN --mount=type=cache,target=/x true
COPY --from=reg.example.com/tools/linter:2 /bin/lint /bin/
FROM scratch AS final
COPY --from=build /out /
COPY --from=0 /out /
FROM build
FROM docker.io/library/alpine:3.20 \\
    AS other
"""
    assert base_images(text) == ["reg.example.com:5000/base/busybox:1.36", "reg.example.com/tools/linter:2",
                                 "docker.io/library/alpine:3.20"]


def test_build_args_override_arg_defaults() -> None:
    text = "ARG TAG=1\nFROM reg.io/app:${TAG}\nFROM reg.io/unset${NOPE}\n"
    assert base_images(text, {"TAG": "2", "NOPE": None}) == ["reg.io/app:2", "reg.io/unset"]


def test_substitution_forms() -> None:
    values = {"A": "x", "E": ""}
    assert substitute("$A-${A}-${E:-d}-${A:+alt}-${E:+alt}-${Z}", values) == "x-x-d-alt--"
