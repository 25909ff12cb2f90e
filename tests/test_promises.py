"""What the README promises and no other test checked (issue 10, item 10), each judged by
what the engine reports."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid

import pytest

from pytest_dockernet import DockernetError, assert_reachable, assert_unreachable, reachability
from pytest_dockernet.image import STAND_IN_FOR


def inspect(container) -> dict:
    return container.client.api.inspect_container(container.id)


def test_environment_cap_add_and_privileged_reach_the_engine(dockernet):
    env = dockernet.container("env", environment={"MODE": "test"}, command=["sh", "-c", "echo $MODE; exec sleep 300"])
    listed = dockernet.container("listed", environment=["A=1", "B=two"])
    admin = dockernet.container("admin", cap_add=["NET_ADMIN"])
    assert "MODE=test" in inspect(env)["Config"]["Env"] and env.logs().startswith("test")
    assert {"A=1", "B=two"} <= set(inspect(listed)["Config"]["Env"])
    assert inspect(admin)["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
    # NET_ADMIN is what lets it change its own routes; without it the same call is refused.
    assert admin.exec(["ip", "route", "add", "blackhole", "10.96.0.0/24"])[0] == 0
    assert listed.exec(["ip", "route", "add", "blackhole", "10.96.0.0/24"])[0] != 0


def test_privileged_reaches_the_engine(dockernet):
    """Where the engine may run privileged containers, it does; where it may not (this
    machine runs dockerd in a container of its own), the refusal names the container and
    nothing is left."""
    try:
        root = dockernet.container("root", privileged=True)
    except DockernetError as exc:
        assert "starting container 'root' failed" in str(exc) and "caps" in str(exc), exc
        assert dockernet.containers_list == []
    else:
        assert inspect(root)["HostConfig"]["Privileged"] is True
        assert root.exec(["ip", "link", "add", "dnt0", "type", "bridge"])[0] == 0


def test_network_mode_none_has_only_loopback(dockernet):
    alone = dockernet.container("alone", network_mode="none")
    other = dockernet.container("other")
    assert inspect(alone)["HostConfig"]["NetworkMode"] == "none"
    assert alone.networks == [] and alone.ip() is None
    code, links = alone.exec(["ip", "-o", "link"])
    assert code == 0 and [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert_unreachable(alone, other.ip())


def test_network_options_and_labels_reach_the_engine(dockernet):
    net = dockernet.network("n", options={"com.docker.network.driver.mtu": "1400"}, labels={"team": "payments"})
    info = dockernet.client.api.inspect_network(net.id)
    assert info["Options"]["com.docker.network.driver.mtu"] == "1400"
    assert info["Labels"]["team"] == "payments" and info["Labels"]["pytest-dockernet.name"] == "n"
    c = dockernet.container("c", networks=[net])
    assert "mtu 1400" in c.exec(["ip", "link", "show", c.interface(net)])[1]


def test_a_matrix_equals_a_dict_of_its_cells(dockernet):
    a, b = dockernet.container("a"), dockernet.container("b")
    matrix = reachability([a, b], [a, b])
    assert matrix == {("a", "b"): True, ("b", "a"): True}
    assert matrix != {("a", "b"): True, ("b", "a"): False}


def test_logs_of_a_running_container(dockernet):
    web = dockernet.container("web", command=["sh", "-c", "echo listening on 8080; exec httpd -f -p 8080"])
    client = dockernet.container("client")
    assert_reachable(client, "web", port=8080)
    assert web.logs().splitlines()[0] == "listening on 8080"


@pytest.mark.parametrize(
    "make",
    [
        'dockernet.network("pinned", subnet="10.97.41.0/24")',
        'dockernet.container("h", network_mode="host")',
        'dockernet.container("p", ports={8080: None})',
    ],
    ids=["subnet", "host-network", "published-port"],
)
def test_what_a_later_topology_may_ask_for_is_removed_before_the_next_test(inner_runs, pytester, make):
    """Background teardown is the default, except for a topology holding a subnet, the host
    network or a host port: the next test must find them gone."""
    pytester.makepyfile(
        f"""
        from inner_run_spy import record

        def test_makes(dockernet):
            record({make})

        def test_after(dockernet_client):
            import docker.errors, pytest
            name = open("made").read().split()[0]
            for lookup in (dockernet_client.api.inspect_network, dockernet_client.api.inspect_container):
                with pytest.raises(docker.errors.NotFound):
                    lookup(name)
        """
    )
    inner_runs.run().assert_outcomes(passed=2)


def test_what_keep_kept_is_pruned_by_the_next_run(inner_runs, pytester):
    pytester.makepyfile(
        test_fails="""
        from inner_run_spy import record

        def test_fails(dockernet):
            record(dockernet.container("kept"))
            assert False
        """
    )
    # Its own process, which ends: an in-process run would share this test's pid.
    inner_runs.run_subprocess("--dockernet-keep", "test_fails.py").assert_outcomes(failed=1)
    (kept,) = inner_runs.made()
    assert inner_runs.existing([kept]) == [kept]
    pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
    result = inner_runs.run("test_next.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"  container {kept}"])
    assert inner_runs.existing([kept]) == []


def test_busybox_option_builds_the_probe_image_from_that_binary(inner_runs, pytester, tmp_path):
    busybox = shutil.which("busybox")
    copy = tmp_path / "busybox"
    shutil.copy(busybox, copy)
    with open(copy, "ab") as f:
        f.write(b"\0pytest-dockernet-test")  # another binary, so another stand-in image
    copy.chmod(0o755)
    pytester.makepyfile("def test_x(dockernet): dockernet.container('c')")
    requested = f"pytest-dockernet-nope-{uuid.uuid4().hex[:8]}:1"  # so that it is built, not reused
    try:
        result = inner_runs.run("--dockernet-image", requested, "--dockernet-busybox", str(copy))
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"*using pytest-dockernet/busybox:*, built FROM scratch around {copy}*"])
    finally:  # the stand-in is this test's: the one the plugin keeps is for busybox:stable
        for image in inner_runs.client.api.images(filters={"label": f"{STAND_IN_FOR}={requested}"}):
            inner_runs.client.api.remove_image(image["Id"], force=True)


def test_sigint_during_a_batch_start_leaves_nothing(inner_runs, pytester):
    pytester.makepyfile(
        """
        import os, signal, threading

        def test_batch(dockernet):
            net = dockernet.network("n")
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            dockernet.containers({f"c{i}": {"networks": [net]} for i in range(8)})
            dockernet.containers({f"d{i}": {"networks": [net]} for i in range(8)})
        """
    )
    result = inner_runs.run_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert inner_runs.resources() == []


def test_sigterm_while_a_removal_is_pending_in_the_background(inner_runs, pytester):
    pytester.makepyfile(
        """
        import os, signal

        def test_one(dockernet):
            net = dockernet.network("n")
            dockernet.containers({f"c{i}": {"networks": [net]} for i in range(6)})

        def test_two(dockernet):
            os.kill(os.getpid(), signal.SIGTERM)  # test_one's removal is still under way
        """
    )
    result = inner_runs.run_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert inner_runs.resources() == []
    assert signal.SIGTERM  # (the inner run's handler turns it into KeyboardInterrupt)


def test_dead_runs_are_pruned_by_one_worker_only(inner_runs, pytester):
    from test_teardown import SLEEPER, killed_run

    pytester.makepyfile(test_sleeper=SLEEPER)
    host = inner_runs.own_host()
    run_id, _ = killed_run(inner_runs, host)
    pytester.makepyfile(test_many="\n".join(f"def test_{i}(dockernet): dockernet.network('n')" for i in range(4)))
    result = inner_runs.run_on(host, "-n", "2", "test_many.py")
    result.assert_outcomes(passed=4)
    assert result.stdout.str().count(f"dead run ({run_id})") == 1, result.stdout.str()
    assert inner_runs.resources(run_id) == []


def test_sigterm_under_xdist_leaves_nothing(inner_runs, pytester):
    """CI cancelling a `-n 2` job: the controller gets SIGTERM; every worker's topology goes."""
    pytester.makepyfile(
        test_sleepers="""
        import time

        from inner_run_spy import ready, record

        def test_one(dockernet):
            record(dockernet.container("one"))
            ready()
            time.sleep(60)

        def test_two(dockernet):
            record(dockernet.container("two"))
            time.sleep(60)
        """
    )
    with open(pytester.path / "xdist.log", "w") as log:  # its workers' pids are not its own: no ready()
        proc = pytester.popen(
            inner_runs.pytest_command("-s", "-n", "2", "test_sleepers.py"),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    inner_runs.processes.append(proc)
    deadline = time.monotonic() + 60
    while len(inner_runs.made()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the second worker's container too
    assert len(inner_runs.made()) == 2
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=90)
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


@pytest.fixture
def one_packet_each_way(dockernet_client):
    """Let exactly one ICMP echo request from network a's bridge into b's, and one reply
    back, through Docker's isolation: what a packet sent while the engine rewrites those
    rules (any network made or removed on it) gets. The rules are this test's own, in
    DOCKER-USER (before the isolation chains), and go at its end."""
    added: list[list[str]] = []

    def open_once(a, b) -> None:
        bridges = ["br-" + dockernet_client.api.inspect_network(n.docker_name)["Id"][:12] for n in (a, b)]
        for into, out, kind in ((*bridges, "echo-request"), (*reversed(bridges), "echo-reply")):
            rule = ["DOCKER-USER", "-i", into, "-o", out, "-p", "icmp", "--icmp-type", kind]
            rule += ["-m", "limit", "--limit", "1/hour", "--limit-burst", "1", "-j", "ACCEPT"]
            subprocess.run(["iptables", "-w", "-I", *rule], check=True)
            added.append(rule)

    yield open_once
    for rule in added:
        subprocess.run(["iptables", "-w", "-D", *rule], check=True)


def test_one_answer_across_isolated_networks_is_not_taken_for_reachability(dockernet, one_packet_each_way):
    """Never a wrong answer: a packet that got through between two networks the containers
    do not share (Docker's isolation rules are rewritten whenever a network is made, by
    this run or another) makes neither a false 'reachable' nor a false 'leak'."""
    front, back = dockernet.network("front"), dockernet.network("back")
    api = dockernet.container("api", networks=[front])
    db = dockernet.container("db", networks=[back])

    one_packet_each_way(front, back)
    with pytest.raises(AssertionError) as failed:
        assert_reachable(api, db, timeout=2)
    taken_back = "an answer across networks the two do not share did not hold when asked again: not counted"
    assert taken_back in str(failed.value)
    assert "why: api and db share no network" in str(failed.value)

    one_packet_each_way(front, back)
    assert_unreachable(api, db)
    assert reachability([api], [db]) == {(api, db): False}
