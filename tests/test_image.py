"""The probe image (pytest_dockernet.image): the static busybox it is built around, an image
reference as the engine's pull takes it, and a build the engine fails."""

from __future__ import annotations

import sys

import docker.utils
import pytest

from pytest_dockernet.engine.errors import BuildError
from pytest_dockernet.image import build_around_busybox, find_busybox, is_static_elf, repository_tag


def test_static_elf_detection(tmp_path):
    busybox, why = find_busybox(None)
    assert busybox is not None, why
    assert is_static_elf(busybox)
    assert not is_static_elf(sys.executable)  # dynamically linked
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not is_static_elf(str(script))
    assert not is_static_elf(str(tmp_path / "missing"))
    assert find_busybox(str(tmp_path / "missing"))[1].endswith("no such file")
    assert "not a statically linked" in find_busybox(sys.executable)[1]


@pytest.mark.parametrize(
    "reference",
    ["busybox", "busybox:stable", "localhost:5000/app", "localhost:5000/app:1.2", "app@sha256:0123", "r/a:1@sha256:9"],
)
def test_a_reference_splits_as_docker_py_splits_it(reference):
    assert repository_tag(reference) == docker.utils.parse_repository_tag(reference)


FAILING = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "false"]
"""


def test_a_build_the_engine_fails_raises_build_error(dockernet_client):
    busybox, why = find_busybox(None)
    assert busybox is not None, why
    with pytest.raises(BuildError, match="returned a non-zero code: 1") as failed:
        build_around_busybox(dockernet_client, busybox, "pytest-dockernet-test/fails:1", dockerfile=FAILING)
    assert any("error" in event for event in failed.value.build_log)
