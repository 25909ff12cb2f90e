"""Overlay networks and swarm services across three Docker engines.

Run with a lab of three engines on this machine (Linux, root):
    python -m pytest examples/test_overlay.py --dockernet-lab 3
or against a swarm of your own: --dockernet-hosts URL1,URL2 (engine 0 from DOCKER_HOST,
a manager).
"""

import pytest

from pytest_dockernet import (
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
)

# Overlay networks by default here: a test run with the driver "overlay" needs the
# capabilities "swarm" and "overlay", so an engine without swarm mode (Podman) or whose
# overlays carry nothing (rootless Docker) skips it before it sets up, naming the
# capability.
pytestmark = pytest.mark.dockernet(driver="overlay")

# Tasks serve their hostname over HTTP on port 80 with busybox httpd.
HTTPD = "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"


def test_a_container_reaches_a_service_by_name(dockernet):
    net = dockernet.network("my-overlay-network", driver="overlay")
    # endpoint_mode="dnsrr": the name resolves to the tasks; swarm's virtual IPs need
    # IPVS in the kernel.
    dockernet.service(
        "my-service", command=HTTPD, networks=[net], endpoint_mode="dnsrr"
    )
    client = dockernet.container("client", networks=[net])
    assert_reachable(client, "my-service")  # ICMP
    assert_reachable(client, "my-service", port=80)  # TCP


def test_containers_on_three_engines_reach_each_other_by_name(dockernet):
    net = dockernet.network("across", driver="overlay")
    on = dockernet.containers(
        {f"on{i}": {"networks": [net], "host": i} for i in range(3)}
    )
    for container in on.values():
        for other in on:
            assert_resolves(container, other, to=on[other])
            if other != container.name:
                # Retried: the other engines learn a new container's endpoint a moment
                # after it starts (swarm gossip), so a one-shot check right after start
                # can miss it.
                assert_reachable(container, other)


def test_two_overlays_are_isolated_across_hosts(dockernet):
    front = dockernet.network("front", driver="overlay")
    back = dockernet.network("back", driver="overlay")
    web = dockernet.container("web", networks=[front], host=1)
    db = dockernet.container("db", networks=[back], host=2)
    api = dockernet.container("api", networks=[front, back], host=0)
    assert_isolated(web, db)
    assert_reachable(api, web)
    assert_reachable(api, db)


def test_tasks_name_resolves_to_every_task(dockernet):
    net = dockernet.network("svc-net", driver="overlay")
    workers = dockernet.service(
        "workers", networks=[net], replicas=2, endpoint_mode="dnsrr"
    )
    probe = dockernet.container("probe", networks=[net], host=1)
    assert_resolves(probe, "tasks.workers", to=workers.tasks())
    workers.scale(3)
    assert len(workers.tasks()) == 3
    assert_resolves(probe, "tasks.workers", to=workers.tasks())


@pytest.mark.dockernet(drivers=["bridge", "overlay"])
def test_same_connectivity_on_bridge_and_overlay(dockernet):
    net = dockernet.network("app")  # the driver of this run: bridge, then overlay
    api, db = dockernet.containers(
        {"api": {"networks": [net]}, "db": {"networks": {net: ["database"]}}}
    ).values()
    assert_reachable(api, "database")
    assert_resolves(api, "database", to=db)


def test_an_image_built_here_runs_on_another_engine(dockernet, tmp_path):
    # Built on engine 0; another engine gets it pulled or, with no registry, copied
    # over.
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nCOPY greeting /greeting\n"
    )
    (tmp_path / "greeting").write_text("built on engine 0\n")
    image = dockernet.build(tmp_path, buildargs={"BASE": dockernet.probe_image})
    net = dockernet.network("shipped", driver="overlay")
    far = dockernet.container(
        "far", image=image, command=["sleep", "600"], networks=[net], host=2
    )
    assert far.exec(["cat", "/greeting"]) == (0, "built on engine 0\n")
    assert_reachable(dockernet.container("near", networks=[net], host=1), far)


def test_containers_on_two_engines_are_partitioned_and_a_task_degraded(dockernet):
    net = dockernet.network("faulty", driver="overlay")
    near = dockernet.container("near", networks=[net], host=1)
    far = dockernet.container("far", networks=[net], host=2)
    # Retried: the other engine learns far's endpoint by gossip
    assert_reachable(near, far)
    # The fault helper runs on each one's own engine
    with dockernet.partition(near, far):
        assert_unreachable(near, far)
        assert_unreachable(far, near)
    assert_reachable(near, far)
    (task,) = dockernet.service("svc", networks=[net], endpoint_mode="dnsrr").tasks()
    assert_reachable(near, task)
    # A swarm task is a container like any other
    with dockernet.degrade(task, loss=1.0):
        assert_unreachable(near, task)
    assert_reachable(near, task)


# The lab: root on the engine's own host
@pytest.mark.dockernet(needs=["swarm", "overlay", "lab"])
def test_a_partitioned_engine_is_cut_off_until_healed(dockernet, dockernet_lab):
    net = dockernet.network("wan", driver="overlay")
    near = dockernet.container("near", networks=[net], host=1)
    far = dockernet.container("far", networks=[net], host=2)
    assert_reachable(near, far)
    assert_resolves(near, "far", to=far)

    dockernet_lab.partition(2)
    assert_unreachable(near, far)
    # The other engines forget a node's names once gossip declares it failed (some
    # seconds).
    assert_not_resolves(near, "far", timeout=30)

    dockernet_lab.heal(2)
    # Swarm rejoins at once; overlay routes come back with its next table sync.
    assert_reachable(near, far, timeout=90)
    assert_resolves(near, "far", to=far, timeout=90)
