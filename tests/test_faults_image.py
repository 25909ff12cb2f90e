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


def test_a_fault_image_another_run_removed_meanwhile_is_made_again(dockernet, monkeypatch):
    """Another run (another plugin version, other host tools) builds its own fault image and
    removes this run's while no helper uses it. The next helper's start, finding the image
    gone after this run had seen it, makes it again instead of failing the test."""
    from faults_support import HTTPD

    from pytest_dockernet import assert_reachable, assert_unreachable
    from pytest_dockernet.faults import helpers

    a, b, c = (dockernet.container(n, command=HTTPD) for n in "abc")
    with dockernet.partition(a, b):  # this run finds (or builds) its fault image
        assert_unreachable(a, b, port=80)
    real, removed = helpers.image_on, []

    def removed_after_the_look(engine, image):
        """The other run's removal lands between this run's look and the helper's start."""
        if not removed and image.startswith("pytest-dockernet/faults:"):
            assert real(engine, image)
            engine.remove_image(image, force=True)  # a's and b's helpers hold it: untagged only
            removed.append(image)
            return True
        return real(engine, image)

    monkeypatch.setattr(helpers, "image_on", removed_after_the_look)
    with dockernet.partition(c, a):  # c's helper: its start finds no image, and makes it again
        assert_unreachable(c, a, port=80)
    assert_reachable(c, a, port=80)
    assert removed and real(dockernet.context.engine, removed[0])


def test_the_fault_image_keeps_the_xtables_modules_symlinks(dockernet):
    """Debian's libxt_REDIRECT.so, libxt_DNAT.so, ... are symlinks to libxt_NAT.so: the image
    has them, so a helper can put a nat REDIRECT (the DNS faults' rules) and list Docker's
    own DNAT rules in a container's namespace ("target extension not found" without them)."""
    a = dockernet.container("a")
    helpers = dockernet.context.faults.helpers
    script = (
        "iptables -w -t nat -A OUTPUT -p udp -d 192.0.2.1 --dport 53 -j REDIRECT --to-ports 5353 && "
        "iptables -w -t nat -S 2>&1; iptables -w -t nat -D OUTPUT -p udp -d 192.0.2.1 --dport 53 "
        "-j REDIRECT --to-ports 5353"
    )
    code, output = helpers.run(a, script)
    assert code == 0, output
    assert "--to-ports 5353" in output
    assert "DNAT" in output  # Docker's embedded DNS rules, listed
    assert "not found" not in output
