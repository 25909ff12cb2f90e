"""What the plugin does on Podman (4.3, netavark 1.4) through its Docker-compatible API.

The engine is scripts/ensure-podman's (`podman system service` at
unix:///run/podman/podman.sock, with busybox:stable loaded as a registry would provide it).
Collected only by .ci/run's Podman part (DOCKERNET_TEST_ENGINE=podman, see conftest.py),
which starts it first and runs this file with DOCKER_HOST pointing at it.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from pytest_dockernet import assert_reachable
from pytest_dockernet.engine import connect, remove_container
from pytest_dockernet.engine.errors import APIError, NotFound
from pytest_dockernet.image import ensure_image

DOCKER_HOST = os.environ.get("DOCKER_HOST", "")


@pytest.fixture(scope="module")
def engine():
    engine = connect(DOCKER_HOST)
    components = [c.get("Name", "") for c in engine.version().get("Components") or []]
    assert any(name.startswith("Podman") for name in components), f"{DOCKER_HOST} is not Podman: {components}"
    yield engine
    engine.close()


def buildah_containers() -> set[str]:
    """Podman's storage-only containers (buildah's working containers): in the list with
    --external, not without."""

    def listed(*extra: str) -> set[str]:
        out = subprocess.run(["podman", "ps", "-a", "-q", "--no-trunc", *extra], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return set(out.stdout.split())

    return listed("--external") - listed()


def test_a_failed_pull_raises_with_podmans_message(engine):
    # Podman answers the pull with 200 and the error inside the stream; a registry on a
    # loopback port where nothing listens: no traffic leaves the machine.
    with pytest.raises(APIError) as raised:
        engine.pull("127.0.0.1:1/dockernet-nothing", tag="1")
    assert "127.0.0.1:1" in str(raised.value) and "connection refused" in str(raised.value)
    with pytest.raises(ValueError, match=r"image '127\.0\.0\.1:1/dockernet-nothing:1' is not on the engine and could"):
        ensure_image(engine, "127.0.0.1:1/dockernet-nothing:1")


def test_builds_leave_no_buildah_containers(dockernet, tmp_path):
    before = buildah_containers()
    good, bad = tmp_path / "good", tmp_path / "bad"
    for where, last in ((good, "RUN echo built > /built"), (bad, "RUN false")):
        where.mkdir()
        (where / "Dockerfile").write_text(f"FROM busybox:stable\nRUN echo step > /step\n{last}\n")
    image = dockernet.build(str(good))
    assert image
    with pytest.raises(Exception, match=r'building .* failed: building at STEP "RUN false"'):
        dockernet.build(str(bad))
    assert buildah_containers() - before == set()


def test_icmp_probes_work_with_podmans_default_capabilities(dockernet):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    b = dockernet.container("b", networks=[net])
    assert_reachable(a, b)  # ICMP echo: busybox ping needs NET_RAW, which Podman leaves out
    assert a.exec("ping -c1 -W1 127.0.0.1")[0] == 0
    # A container that drops it keeps it dropped: the plugin adds nothing then.
    c = dockernet.container("c", networks=[net], docker_options={"cap_drop": ["NET_RAW"]})
    code, output = c.exec("ping -c1 -W1 127.0.0.1")
    assert code != 0 and "permission denied" in output


def test_healthy_is_waited_for_though_podman_runs_no_healthcheck(dockernet, engine):
    started = time.monotonic()
    web = dockernet.container(
        "web",
        command=["sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 300"],
        healthcheck={"test": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 0.5},
        ready="healthy",
        ready_timeout=20,
    )
    assert time.monotonic() - started < 15
    # No systemd timer ran the check: the plugin had Podman run it (its libpod call), so
    # Podman's own answer says healthy, as Container.status does.
    assert engine.inspect_container(web.id)["State"]["Health"]["Status"] == "healthy"
    assert web.status() == "running (healthy)"


def test_a_container_whose_namespace_others_share_is_removed(engine, dockernet):
    labels = dockernet.context.labels_for("container", "shared")
    target = engine.create_container(
        "busybox:stable", command=["sleep", "300"], labels=labels, name=dockernet.context.docker_name_for("t")
    )["Id"]
    engine.start(target)
    sidecar = engine.create_container(
        "busybox:stable",
        command=["sleep", "300"],
        labels=labels,
        host_config=engine.create_host_config(network_mode=f"container:{target}"),
    )["Id"]
    engine.start(sidecar)
    remove_container(engine, target)  # Podman: "has dependent containers which must be removed before it"
    for gone in (target, sidecar):
        with pytest.raises(NotFound):
            engine.inspect_container(gone)
