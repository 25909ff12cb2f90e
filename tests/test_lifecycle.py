"""Stopping, starting, restarting, pausing and signalling containers (issue 12): what a
client sees meanwhile, the addresses the engine gives, and probes from a restarted
container (a new network namespace: its resident shell and its probe sidecar made afresh).

Real servers: busybox httpd, and redis from the local Debian base image.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from pytest_dockernet import (
    DockernetError,
    DriverUnavailable,
    Listening,
    LogLine,
    Topology,
    assert_http,
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    http_get,
)
from pytest_dockernet.errors import ProbeFailed
from pytest_dockernet.labels import PREFIX
from pytest_dockernet.probes import run
from pytest_dockernet.retry import poll

ROOT = Path(__file__).resolve().parent.parent
BASE = "pytest-dockernet/app-base:bookworm"  # Debian with redis-server (scripts/app-base-image)
REDIS = ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
REDIS_READY = "Ready to accept connections"
HTTPD = ["httpd", "-f", "-p", "80"]  # busybox: PID 1 without a TERM handler, so stop it with timeout=0

pytestmark = pytest.mark.dockernet


@pytest.fixture
def topology(dockernet_client, dockernet):
    """A topology of its own (its own probe counts), and after the test, nothing of it left:
    its containers, the probe sidecars made and re-made, its networks."""
    t = Topology(
        dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator, label="lifecycle"
    )
    yield t
    t.close()
    filters = t.context.filters()
    left = [c["Names"][0] for c in dockernet_client.api.containers(all=True, filters=filters)]
    left += [n["Name"] for n in dockernet_client.api.networks(filters=filters)]
    assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def redis_image(dockernet_client) -> str:
    try:
        dockernet_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "scripts" / "app-base-image")], check=True)
    return BASE


@pytest.fixture(scope="module")
def no_shell_image(dockernet_session, tmp_path_factory) -> str:
    """FROM scratch with nothing but busybox (copied from the probe image), serving HTTP;
    the run's own build (no tag), removed at its end."""
    context = tmp_path_factory.mktemp("no-shell")
    (context / "Dockerfile").write_text(f"""\
FROM {dockernet_session.probe_image} AS tools
FROM scratch
COPY --from=tools /bin/busybox /busybox
ENTRYPOINT ["/busybox", "httpd", "-f", "-p", "80"]
""")
    return dockernet_session.build(context)


def engine_addresses(container) -> dict[str, str]:
    """The container's address on each network, as the engine reports it now."""
    networks = container.client.api.inspect_container(container.id)["NetworkSettings"]["Networks"]
    return {name: settings["IPAddress"] for name, settings in networks.items()}


def handle_addresses(container) -> dict[str, str | None]:
    return {name: endpoint.ip for name, endpoint in container.endpoints.items()}


def aliases(container) -> dict[str, list[str]]:
    return {name: endpoint.aliases for name, endpoint in container.endpoints.items()}


def sidecars(container) -> list[str]:
    filters = {"label": [f"{PREFIX}.sidecar-of={container.id}"]}
    return [c["Id"] for c in container.client.api.containers(all=True, filters=filters)]


def started_at(container) -> str:
    return container.client.api.inspect_container(container.id)["State"]["StartedAt"]


def wait_stopped(container, timeout: float = 10) -> None:
    container.client.api.wait(container.id, timeout=timeout)


# -- stop, start, restart ------------------------------------------------------------------


def test_a_stopped_server_is_unreachable_and_back_by_name_with_its_aliases_after_start(topology):
    front, back = topology.network("front"), topology.network("back", subnet="10.231.7.0/24")
    server = topology.container(
        "server", command=HTTPD, networks={front: ["web"], back: {"aliases": ["pinned"], "ipv4_address": "10.231.7.50"}}
    )
    client = topology.container("client", networks=[front, back])
    assert_reachable(client, "web", port=80)
    before, known = handle_addresses(server), aliases(server)

    server.stop(timeout=0)  # busybox httpd ignores SIGTERM as PID 1
    assert server.status() == "exited (137)"
    assert handle_addresses(server) == before  # the last address it had: the engine reports none now
    assert set(engine_addresses(server).values()) == {""}
    assert_unreachable(client, server, port=80)  # at its last addresses
    assert_not_resolves(client, "web")  # a stopped container's DNS names go with it
    assert_not_resolves(client, "pinned")

    server.start()
    assert server.status() == "running"
    assert aliases(server) == known == {front.docker_name: ["server", "web"], back.docker_name: ["server", "pinned"]}
    assert handle_addresses(server) == engine_addresses(server)
    assert server.ip(back) == "10.231.7.50"  # pinned: it stays
    assert_reachable(client, "web", port=80)
    assert_reachable(client, "server", port=80)
    assert_resolves(client, "pinned", to="10.231.7.50")
    # Nothing else was made or freed meanwhile: Docker 20.10 gives the lowest free address,
    # its own again.
    assert handle_addresses(server) == before


def test_restart_keeps_names_and_the_handle_follows_the_engine_address(topology):
    net = topology.network("net")
    client = topology.container("client", networks=[net])
    a = topology.container("a", command=HTTPD, networks={net: ["alpha"]})
    b = topology.container("b", command=HTTPD, networks={net: ["beta"]})
    old_a, old_b = a.ip(), b.ip()

    b.restart(timeout=0)  # nothing freed meanwhile: the same address
    assert b.ip() == old_b == engine_addresses(b)[net.docker_name]
    assert_reachable(client, "beta", port=80)

    # With a's address free, a restarted b is given it (the lowest free one, on Docker
    # 20.10): the handle follows, and a started again gets another.
    a.stop(timeout=0)
    b.restart(timeout=0)
    assert b.ip() == engine_addresses(b)[net.docker_name] == old_a
    a.start()
    assert a.ip() == engine_addresses(a)[net.docker_name] != b.ip()
    for server, name in ((a, "alpha"), (b, "beta")):
        assert_reachable(client, server, port=80)  # at the handle's address
        assert_resolves(client, name, to=server)
        assert_reachable(client, name, port=80)
    assert aliases(a) == {net.docker_name: ["a", "alpha"]}
    assert aliases(b) == {net.docker_name: ["b", "beta"]}


def test_restart_of_redis_waits_for_the_log_line_of_the_new_run(topology, redis_image):
    net = topology.network("net")
    client = topology.container("client", networks=[net])
    cache = topology.container(
        "cache", image=redis_image, command=REDIS, networks={net: ["redis"]}, ready=LogLine(REDIS_READY)
    )
    assert run(client, "nc -w 2 redis 6379 </dev/null").ok

    cache.restart(ready=LogLine(REDIS_READY))  # redis stops on SIGTERM: no waiting for SIGKILL
    # The first run's line is still in the output: the wait was for the second one.
    assert cache.logs().count(REDIS_READY) == 2
    assert "Received SIGTERM" in cache.logs()
    assert run(client, "nc -w 2 redis 6379 </dev/null").ok  # ready means answering, at once
    assert cache.ip() == engine_addresses(cache)[net.docker_name]

    cache.stop()
    cache.start(ready=LogLine(REDIS_READY))
    assert cache.logs().count(REDIS_READY) == 3
    assert_reachable(client, "redis", port=6379)


def test_a_log_line_of_the_run_before_does_not_count(topology):
    slow = topology.container("slow", command=["sh", "-c", "sleep 1; echo serving; exec httpd -f -p 80"])
    slow.wait_until(LogLine("serving"), timeout=10)
    slow.restart(timeout=0, ready=LogLine("serving"))
    assert slow.logs().count("serving") == 2
    slow.stop(timeout=0)
    slow.start(ready=LogLine("^serving$"))
    assert slow.logs().count("serving") == 3


def test_a_container_that_exits_on_restart_raises_the_crash_report(topology):
    # The second run finds the first run's file and exits with 3.
    once = topology.container(
        "once",
        command=["sh", "-c", "echo run; [ -e /ran ] && { echo ran before; exit 3; }; touch /ran; exec sleep 1000"],
    )
    with pytest.raises(DockernetError, match=r"(?s)'once' .*stopped before it was ready.*exit code 3.*ran before"):
        once.restart(timeout=0, ready=LogLine("never printed"))
    assert once.status() == "exited (3)"
    # A readiness that takes a while, so the wait sees the exit: with ready="running" a look
    # in the moment before the exit finds it running, which is what it then was.
    with pytest.raises(
        DockernetError, match=r"(?s)'once' .*stopped before it was ready \(Listening\(80/tcp\)\).*exit code 3"
    ):
        once.start(ready=Listening(80))


def test_start_of_a_running_container_only_waits(topology):
    server = topology.container("server", command=HTTPD)
    started = started_at(server)
    server.start(ready=Listening(80))
    assert started_at(server) == started


# A service that is healthy while /ok exists: `rm /ok` is a fault (its database cut off),
# `touch /ok` the recovery. One failing check makes it unhealthy.
FLAKY = {
    "command": ["sh", "-c", "touch /ok; exec sleep 1000"],
    "healthcheck": {"test": ["CMD", "test", "-e", "/ok"], "interval": 0.2, "retries": 1},
}


def cut_off(container) -> None:
    assert container.exec(["rm", "/ok"])[0] == 0
    poll(container.status, lambda status: status == "unhealthy", timeout=30)


def test_wait_until_waits_through_unhealthy_for_a_recovery_and_an_exit_still_ends_it(topology):
    service = topology.container("service", ready="healthy", **FLAKY)
    cut_off(service)

    def recovered(container) -> bool:  # it heals on the first look: the wait must look
        container.exec(["touch", "/ok"])
        return container.status() == "running (healthy)"

    service.wait_until(recovered, timeout=30)

    cut_off(service)
    healer = threading.Timer(0.5, lambda: service.exec(["touch", "/ok"]))
    healer.start()
    try:
        service.wait_until("healthy", timeout=30)  # unhealthy when the wait begins
    finally:
        healer.join()
    assert service.status() == "running (healthy)"

    # Not healthy in time: its state and its last healthcheck's words, and it is left as it is.
    cut_off(service)
    with pytest.raises(
        DockernetError,
        match=r"(?s)'service' .*was not ready \('healthy'\) within 0.5 s; it is unhealthy; its last healthcheck "
        r"failed \(exit code 1, \d+ in a row\)",
    ):
        service.wait_until("healthy", timeout=0.5)
    assert service.status() == "unhealthy"

    # An exit ends the wait through unhealthy at once, not at its timeout.
    killer = threading.Timer(0.5, service.kill)
    killer.start()
    try:
        with pytest.raises(DockernetError, match=r"'service' .*stopped before it was ready \('healthy'\): exited"):
            service.wait_until("healthy", timeout=600)
    finally:
        killer.join()


def test_a_fresh_start_that_turns_unhealthy_still_fails_at_once(topology):
    service = topology.container(
        "service",
        command=["sh", "-c", "[ -e /broken ] || touch /ok; exec sleep 1000"],
        healthcheck=FLAKY["healthcheck"],
    )
    assert service.exec(["sh", "-c", "touch /broken; rm /ok"])[0] == 0  # so it stays for the next run
    with pytest.raises(DockernetError, match=r"'service' .*turned unhealthy before it was ready \('healthy'\)"):
        service.restart(timeout=0, ready="healthy", ready_timeout=600)


# -- probes from a restarted container -----------------------------------------------------


def test_probes_from_a_restarted_container_go_through_its_new_resident_shell(topology):
    net = topology.network("net")
    client = topology.container("client", networks={net: ["me"]})
    server = topology.container("server", networks=[net], command=HTTPD)
    stranger = topology.container("stranger", networks=[topology.network("elsewhere")], command=HTTPD)
    assert client.resident
    assert_reachable(client, server, port=80)

    client.restart(timeout=0)
    assert_reachable(client, server, port=80)
    assert_resolves(client, "server", to=server)
    client.stop(timeout=0)
    client.start()
    assert_reachable(client, "server", port=80)
    assert_unreachable(client, stranger, port=80)  # a negative answer still rests on working probes
    assert "probe execs" not in topology.context.timings.counts  # the shell was attached afresh each time
    assert_resolves(server, "me", to=client)


def test_probes_from_a_restarted_image_without_tools_use_a_new_sidecar(topology, no_shell_image):
    net = topology.network("net")
    web = topology.container("web", image=no_shell_image, networks=[net])
    peer = topology.container("peer", networks=[net], command=["httpd", "-f", "-p", "8080"])
    stranger = topology.container("stranger", networks=[topology.network("elsewhere")], command=HTTPD)
    assert web.exec(["sh", "-c", "true"])[0] != 0  # really no shell
    assert_reachable(web, peer, port=8080)
    old = web.sidecar_id
    assert sidecars(web) == [old]

    web.restart(timeout=0, ready=Listening(80))  # read through the new sidecar
    assert web.sidecar_id is not None and web.sidecar_id != old
    with pytest.raises(docker.errors.NotFound):
        web.client.api.inspect_container(old)
    assert_reachable(web, "peer", port=8080)
    assert_resolves(web, "peer", to=peer)
    assert_unreachable(web, stranger, port=80)
    assert_reachable(peer, "web", port=80)

    web.stop(timeout=0)
    with pytest.raises(ProbeFailed, match="'web': it is not running"):
        assert_reachable(web, peer)
    web.start()
    assert_reachable(web, peer, port=8080)
    assert sidecars(web) == [web.sidecar_id]  # one at a time; the fixture checks none is left


# -- pause, kill ---------------------------------------------------------------------------


def test_a_paused_server_answers_nothing_but_keeps_its_address(topology):
    net = topology.network("net")
    client = topology.container("client", networks=[net])
    server = topology.container("server", networks={net: ["web"]}, command=HTTPD)
    assert http_get(client, "http://web/").status == 404  # busybox httpd, nothing to serve
    before = server.ip()

    server.pause()
    assert server.status() == "paused"
    assert server.ip() == before == engine_addresses(server)[net.docker_name]
    with pytest.raises(DockernetError, match="timed out"):
        http_get(client, "http://web/", timeout=1)
    # Its kernel still answers: ping, and the TCP handshake (the listen queue), so only an
    # answer from the server itself tells a paused one apart.
    assert_reachable(client, "web")
    assert_resolves(client, "web", to=server)

    server.unpause()
    assert server.status() == "running"
    assert_http(client, "http://web/", status=404)


def test_probes_from_a_paused_container_fail_at_once_and_work_after_unpause(topology):
    client = topology.container("client")
    server = topology.container("server", command=HTTPD)
    assert_reachable(client, server, port=80)
    client.pause()
    began = time.monotonic()
    with pytest.raises(ProbeFailed, match="(?i)cannot probe from 'client'.*paused"):
        assert_reachable(client, server, port=80)
    assert time.monotonic() - began < 5  # not the frozen shell's timeout
    client.unpause()
    execs = topology.context.timings.counts["probe execs"]  # the refused one
    assert_reachable(client, server, port=80)
    assert topology.context.timings.counts["probe execs"] == execs  # through the shell again


def test_kill_sends_signals_by_name_or_number(topology, redis_image):
    cache = topology.container("cache", image=redis_image, command=REDIS, ready=LogLine(REDIS_READY))
    cache.kill(signal="SIGTERM")  # redis shuts down on it
    wait_stopped(cache)
    assert cache.status() == "exited (0)"
    assert "Received SIGTERM" in cache.logs()

    trapper = topology.container(
        "trapper",
        command=["sh", "-c", "trap 'echo got usr1' USR1; trap 'exit 143' TERM; while :; do sleep 1 & wait; done"],
    )
    trapper.kill("usr1")  # any case, without SIG: not an ending signal, it returns at once
    trapper.wait_until(LogLine("got usr1"), timeout=10)
    assert trapper.status() == "running"
    trapper.kill(15)
    wait_stopped(trapper)
    assert trapper.status() == "exited (143)"

    sleeper = topology.container("sleeper", command=["sleep", "1000"])
    sleeper.kill()  # SIGKILL: returns once it has stopped
    assert sleeper.status() == "exited (137)"


# -- bad arguments, the engine's refusals, faults --------------------------------------------


def test_a_bad_signal_is_a_value_error_naming_it(topology):
    c = topology.container("c")
    for signal in ("SIGFOO", "", "KILL9", "SIG", 0, 65, -9, True, None, 9.0, "RTMIN+16"):
        with pytest.raises(ValueError, match=r"^signal=.* is not a signal: give a name such as 'SIGTERM'"):
            c.kill(signal)
    assert c.status() == "running"


def test_bad_arguments_are_refused_before_anything_happens(topology):
    c = topology.container("c")
    started = started_at(c)
    for call, argument in (
        (lambda: c.stop(timeout=-1), "timeout"),
        (lambda: c.stop(timeout="10"), "timeout"),
        (lambda: c.restart(timeout=float("inf")), "timeout"),
        (lambda: c.restart(timeout=0, ready="up"), "ready"),
        (lambda: c.restart(timeout=0, ready_timeout=0), "ready_timeout"),
        (lambda: c.start(ready_timeout=-5), "ready_timeout"),
    ):
        with pytest.raises(ValueError, match=f"^{argument}="):
            call()
    with pytest.raises(TypeError, match="ready must be"):
        c.restart(timeout=0, ready=42)
    assert started_at(c) == started and c.status() == "running"


def test_the_engines_refusals_name_the_container_and_what_the_engine_said(topology):
    c = topology.container("c", command=HTTPD)
    with pytest.raises(DockernetError, match=r"unpausing container 'c' \(.*\) failed: the engine said: .*not paused"):
        c.unpause()
    c.pause()
    with pytest.raises(DockernetError, match="pausing container 'c' .*failed: the engine said: .*already paused"):
        c.pause()
    with pytest.raises(DockernetError, match="starting container 'c' .*failed: the engine said: .*paused"):
        c.start()
    c.restart(timeout=1)  # a paused container can be restarted
    assert c.status() == "running"
    c.stop(timeout=0)
    c.stop(timeout=0)  # already stopped: nothing to do
    with pytest.raises(DockernetError, match="pausing container 'c' .*failed: the engine said: .*not running"):
        c.pause()
    with pytest.raises(DockernetError, match="sending SIGTERM to container 'c' .*not running"):
        c.kill("TERM")


def test_a_pinned_address_taken_meanwhile_fails_the_start(topology):
    net = topology.network("net", subnet="10.231.8.0/24")
    pinned = topology.container("pinned", networks={net: {"ipv4_address": "10.231.8.2"}})
    pinned.stop(timeout=0)
    topology.container("squatter", networks=[net])  # the lowest free address: the pinned one
    with pytest.raises(DockernetError, match="starting container 'pinned' .*the engine said: .*already in use"):
        pinned.start()


def test_a_closed_topologys_container_is_refused(dockernet_client, dockernet):
    with Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator) as t:
        c = t.container("c")
    for call in (c.stop, c.start, c.restart, c.pause, c.unpause, c.kill):
        with pytest.raises(DockernetError, match="container 'c' failed: its topology is closed"):
            call()


def test_faults_are_put_back_after_start_and_restart(topology, monkeypatch):
    """The fault module's hook, called with the container once it runs again in a new
    network namespace; not after unpause(): a paused container keeps its namespace."""
    calls = []
    lifecycle = topology._containers.lifecycle
    monkeypatch.setattr(lifecycle, "after_restart", lambda container: calls.append((container, container.status())))
    c = topology.container("c")
    c.pause()
    c.unpause()
    c.restart(timeout=0)
    c.stop(timeout=0)
    c.start()
    c.kill()
    assert calls == [(c, "running")] * 2


def test_a_partition_holds_through_restart_pause_and_stop(topology):
    net = topology.network("net")
    a = topology.container("a", networks=[net], command=HTTPD)
    b = topology.container("b", networks=[net], command=HTTPD)
    try:
        partition = topology.partition(a, b)
    except DriverUnavailable as exc:
        pytest.skip(str(exc))
    for change in (
        lambda: a.restart(timeout=0),
        lambda: b.restart(timeout=0),
        lambda: (a.pause(), a.unpause()),
        lambda: (b.pause(), b.unpause()),
        lambda: (a.stop(timeout=0), a.start()),
    ):
        change()
        assert_isolated([a], [b])  # both ways, at once
    assert_unreachable(b, a, port=80, timeout=1)
    partition.heal()
    assert_reachable(a, b, port=80)
    assert_reachable(b, "a", port=80)
