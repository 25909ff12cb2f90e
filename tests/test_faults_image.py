"""The fault helpers' image: one kept per probe image, stale ones removed once unused."""

from __future__ import annotations

import pytest

from pytest_dockernet.engine.docker_engine import DockerEngine

pytestmark = pytest.mark.dockernet


def test_one_fault_image_is_kept_a_stale_one_goes_once_unused(dockernet, dockernet_client):
    """A build of the fault image removes the fault images of other contents built on the
    same probe image (an earlier version's, earlier host tools'), unless a container uses
    one; those built on another probe image (another run's) stay."""
    import io
    import uuid

    from pytest_dockernet.faults.image import FAULT_BASE, FAULT_REPOSITORY, fault_image

    mark = uuid.uuid4().hex[:10]
    base = f"pytest-dockernet-test/fault-base:{mark}"
    other_base = f"pytest-dockernet-test/fault-other-base:{mark}"
    probe = dockernet_client.images.get(dockernet.probe_image)
    probe.tag(base)
    probe.tag(other_base)

    def stand_in(name: str, on: str) -> str:
        tag = f"{FAULT_REPOSITORY}:test-{name}-{mark}"
        dockerfile = f"FROM {on}\nLABEL pytest-dockernet.image=faults {FAULT_BASE}={on} test={name}-{mark}\n"
        dockernet_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
        return tag

    stale, used, foreign = stand_in("stale", base), stand_in("used", base), stand_in("foreign", other_base)
    user = dockernet_client.containers.create(used, ["true"])  # e.g. a live run's helper
    current = None
    try:
        current = fault_image(DockerEngine(dockernet_client), base).tag
        assert current not in (stale, used, foreign)
        tags = {t for image in dockernet_client.images.list(FAULT_REPOSITORY) for t in image.tags}
        assert stale not in tags  # another content's, unused: gone
        assert {used, foreign, current} <= tags  # in use; another probe image's; the build
    finally:
        user.remove(force=True)
        for tag in (current, used, foreign, stale, base, other_base):
            if tag is not None:
                try:
                    dockernet_client.images.remove(tag)
                except Exception:  # noqa: BLE001 - gone already (the stale one, if the test held)
                    pass
