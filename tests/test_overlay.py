"""Overlay networks, swarm services and several engines (issue 4's scenarios).

The scenarios themselves are examples/test_overlay.py, run here in an inner pytest run
with a three-engine lab that the run brings up and removes; the other tests use a
single-node swarm that their inner run makes (--dockernet-swarm auto) or none.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from pytest_dockernet import DriverUnavailable, Topology
from pytest_dockernet.engine.gate import gate_for
from pytest_dockernet.lab import Lab
from pytest_dockernet.labels import SESSION
from pytest_dockernet.retry import poll
from pytest_dockernet.swarm import GWBRIDGE, at_risk, made_by_plugin

EXAMPLE = Path(__file__).parent.parent / "examples" / "test_overlay.py"

pytestmark = pytest.mark.dockernet


def swarm_state(client: docker.DockerClient) -> str:
    return (client.info().get("Swarm") or {}).get("LocalNodeState", "")


def lab_leftovers() -> list[str]:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found = [f"netns {line.split()[0]}" for line in namespaces.splitlines() if line.startswith("dnlab")]
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if ": dnlab" in line]
    return found + (["lab state"] if Lab.load() is not None else [])


def labelled_services(client: docker.DockerClient) -> list[str]:
    if swarm_state(client) != "active":
        return []
    return [s["Spec"]["Name"] for s in client.api.services(filters={"label": SESSION})]


def quiet(client: docker.DockerClient) -> None:
    """Wait until a swarm leave would break nothing on the engine (see swarm.at_risk): the
    plugin's runs leave their swarm only then, and so do these tests."""
    risk, _ = poll(lambda: at_risk(client), lambda found: not found, timeout=30)
    assert not risk, f"these tests need an engine where a swarm leave breaks nothing; it would break {risk}"


def leave(client: docker.DockerClient) -> None:
    """Leave a swarm the test made, as the plugin does: only once nothing is at risk."""
    quiet(client)
    with gate_for(client).removing():  # see pytest_dockernet.engine.gate
        client.swarm.leave(force=True)
        for network in client.api.networks(names=[GWBRIDGE]):
            client.api.remove_network(network["Id"])


@pytest.fixture
def no_swarm(dockernet_client):
    """These tests start from an engine in no swarm, where a leave would break nothing, and
    leave it in no swarm."""
    assert swarm_state(dockernet_client) == "inactive", "engine 0 is in a swarm already"
    quiet(dockernet_client)
    yield
    assert swarm_state(dockernet_client) == "inactive"


def test_the_scenarios_pass_on_a_three_engine_lab_and_leave_nothing(inner_runs, pytester, dockernet_client, no_swarm):
    pytester.makepyfile(test_overlay=EXAMPLE.read_text())
    result = inner_runs.run_subprocess("--dockernet-lab", "3", "--dockernet-require", "-v", timeout=600)
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["*- dockernet -*", "time: *lab bring-up *, *overlay networks *; made: *services*"])
    # Scenario 7: no lab engine, namespace, link or swarm membership; nothing labelled anywhere.
    assert lab_leftovers() == []
    assert inner_runs.resources() == []
    assert labelled_services(dockernet_client) == []


def test_hosts_option_places_containers_and_services_on_other_engines(inner_runs, pytester, no_swarm):
    """--dockernet-hosts with a swarm made outside the run (here a lab brought up by hand)."""
    lab = Lab.up(2)
    try:
        pytester.makepyfile(
            """
            from pytest_dockernet import assert_reachable, assert_resolves

            def test_placed(dockernet):
                net = dockernet.network("o", driver="overlay")
                here = dockernet.container("here", networks=[net])
                there = dockernet.container("there", networks=[net], host=1)
                svc = dockernet.service(
                    "svc", networks=[net], endpoint_mode="dnsrr", constraints=["node.hostname==dnlab1"]
                )
                assert (here.host, there.host, [t.host for t in svc.tasks()]) == (0, 1, [1])
                assert there.client.info()["Name"] == "dnlab1"
                assert_reachable(here, "there")
                assert_resolves(there, "tasks.svc", to=svc.tasks())
                assert_reachable(svc.tasks()[0], "here")
            """
        )
        result = inner_runs.run("--dockernet-hosts", lab.hosts_option, "--dockernet-require")
        result.assert_outcomes(passed=1)
        assert inner_runs.resources() == []
        assert lab.client(1).api.containers(all=True, filters={"label": SESSION}) == []
    finally:
        lab.down()
    assert lab_leftovers() == []


def test_overlay_is_skipped_without_a_swarm_saying_how_to_enable_it(inner_runs, pytester, no_swarm):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(driver="overlay")
        def test_marked(dockernet):
            pass

        def test_asked(dockernet):
            dockernet.network("n", driver="overlay")
        """
    )
    result = inner_runs.run("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*not in a swarm*--dockernet-swarm auto*"] * 2)

    result = inner_runs.run("--dockernet-require")
    result.assert_outcomes(errors=1, failed=1)  # the marked test's fixture errs; the other test fails
    result.stdout.fnmatch_lines(["*not in a swarm*--dockernet-swarm auto*--dockernet-require is set*"] * 2)


def test_swarm_auto_makes_a_single_node_swarm_for_the_run_and_leaves_it(inner_runs, pytester, no_swarm):
    pytester.makepyfile(
        """
        import pytest
        from pytest_dockernet import assert_reachable, assert_resolves

        @pytest.mark.dockernet(drivers=["bridge", "overlay"])
        def test_both(dockernet, dockernet_client, request):
            from pytest_dockernet.retry import poll

            net = dockernet.network("app")
            # The engine's word; a swarm network's shows its driver a moment after it is made.
            driver, _ = poll(lambda: dockernet_client.api.inspect_network(net.id)["Driver"], bool, timeout=10)
            assert driver == request.node.callspec.id
            a, b = dockernet.containers({"a": {"networks": [net]}, "b": {"networks": [net]}}).values()
            assert_reachable(a, "b")
            assert_resolves(b, "a", to=a)

        def test_service(dockernet):
            net = dockernet.network("o", driver="overlay", encrypted=False)
            svc = dockernet.service("svc", networks=[net], replicas=2, endpoint_mode="dnsrr")
            c = dockernet.container("c", networks=[net])
            assert [t.host for t in svc.tasks()] == [0, 0] and dockernet.get_service("svc") is svc
            # In a swarm, the capability is tried, not assumed.
            tried = dockernet.context.capability("overlay")
            assert tried.present and tried.reason == "a container starts on an attachable overlay network"
            assert_resolves(c, "svc", to=svc.tasks())
            assert_resolves(c, "tasks.svc", to=svc.tasks())
            assert_reachable(svc.tasks()[0], "c")
            # The artifacts' picture and JSON (issue 24): the service, its tasks on the overlay.
            from xml.etree import ElementTree
            from pytest_dockernet.snapshot import snapshot
            from pytest_dockernet.topology_svg import render_svg

            doc = snapshot([dockernet.context])
            (entry,) = doc["services"]
            tasks = [c for c in doc["containers"] if c["service"] == "svc"]
            assert (entry["name"], entry["endpoint_mode"], len(entry["tasks"])) == ("svc", "dnsrr", 2)
            assert sorted(entry["tasks"]) == sorted(c["name"] for c in tasks)
            assert all(c["state"] == "running" and c["endpoints"][0]["network"] == "o" for c in tasks)
            drawn = "".join(ElementTree.fromstring(render_svg(doc).partition("?>")[2]).itertext())
            assert all(name in drawn for name in ["svc", "c", "o", *entry["tasks"]]), drawn
            svc.scale(1)
            assert len(svc.tasks()) == 1 and svc.replicas == 1
            assert_resolves(c, "tasks.svc", to=svc.tasks())

        def test_encrypted(dockernet, dockernet_client):
            sealed = dockernet.network("sealed", driver="overlay", encrypted=True)
            plain = dockernet.network("plain", driver="overlay")
            options = lambda net: dockernet_client.api.inspect_network(net.id)["Options"] or {}
            assert "encrypted" in options(sealed) and "encrypted" not in options(plain)  # the engine's word
            a, b = dockernet.containers({"a": {"networks": [sealed]}, "b": {"networks": [sealed]}}).values()
            assert_reachable(a, "b")
            assert_resolves(b, "a", to=a)
        """
    )
    result = inner_runs.run("--dockernet-swarm", "auto", "--dockernet-require")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["time: *swarm init *, *overlay networks *"])
    assert inner_runs.resources() == []


def test_an_existing_swarm_is_used_and_kept(inner_runs, pytester, dockernet_client, no_swarm):
    with gate_for(dockernet_client).removing():  # see pytest_dockernet.engine.gate
        dockernet_client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        pytester.makepyfile(
            """
            from pytest_dockernet import assert_reachable

            def test_overlay(dockernet):
                net = dockernet.network("o", driver="overlay")
                a, b = dockernet.containers({"a": {"networks": [net]}, "b": {"networks": [net]}}).values()
                assert_reachable(a, b)
            """
        )
        result = inner_runs.run("--dockernet-swarm", "auto", "--dockernet-require")
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*swarm init*")
        assert swarm_state(dockernet_client) == "active"
        assert labelled_services(dockernet_client) == [] and inner_runs.resources() == []
    finally:
        leave(dockernet_client)


VIP_TESTS = """
    HTTPD = "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"

    def test_implicit_vip(dockernet):
        net = dockernet.network("o", driver="overlay")
        web = dockernet.service("web", command=HTTPD, networks=[net])
        c = dockernet.container("c", networks=[net])
        dockernet.assert_reachable(c, "web", port=80)

    def test_explicit_vip(dockernet):
        net = dockernet.network("o", driver="overlay")
        web = dockernet.service("web", command=HTTPD, networks=[net], endpoint_mode="vip")
        c = dockernet.container("c", networks=[net])
        dockernet.assert_reachable(c, "web", port=80)
        dockernet.assert_resolves(c, "web")
        task_addresses = {t.ip(net) for t in web.tasks()}
        code, out = c.exec(["nslookup", "web"])
        assert not task_addresses & set(out.split())  # the name is the virtual IP, not a task
"""


def test_vip_services_pass_where_ipvs_works_and_are_skipped_naming_ipvs_elsewhere(inner_runs, pytester, no_swarm):
    """Found out once per run by looking; here (no IPVS) the skip path runs."""
    pytester.makepyfile(VIP_TESTS)
    result = inner_runs.run("--dockernet-swarm", "auto", "-rs")
    outcomes = result.parseoutcomes()
    if outcomes.get("passed") == 2:  # an engine with IPVS
        return
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*endpoint_mode='vip'*IPVS*use endpoint_mode='dnsrr'*"] * 2)

    # Under --dockernet-require only the test that asked for a VIP explicitly is an error.
    result = inner_runs.run("--dockernet-swarm", "auto", "--dockernet-require", "-rs")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_explicit_vip _*", "service 'web' asks for endpoint_mode='vip'*IPVS*(--dockernet-require is set)"]
    )
    assert inner_runs.resources() == []


def test_the_lab_fixture_needs_the_option(inner_runs, pytester):
    pytester.makepyfile("def test_lab(dockernet_lab): pass")
    inner_runs.run("-rs").stdout.fnmatch_lines(["*SKIPPED*dockernet_lab needs a lab: pass --dockernet-lab N*"])
    inner_runs.run("--dockernet-require").assert_outcomes(errors=1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dockernet-swarm", "sometimes"], "--dockernet-swarm (ini dockernet_swarm) is 'sometimes': use one of"),
        (["--dockernet-lab", "1"], "--dockernet-lab (ini dockernet_lab) is '1': give the number of engines, 2 to 8"),
        (["--dockernet-hosts", "engine1"], "--dockernet-hosts (ini dockernet_hosts): 'engine1' is not an engine URL"),
        (["--dockernet-lab", "3", "--dockernet-hosts", "unix:///x.sock"], "*exclude each other*"),
    ],
)
def test_bad_options_are_usage_errors(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


# -- bad input to the core, without a swarm ------------------------------------------------


@pytest.fixture
def plain(dockernet_client, dockernet):
    t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator)
    yield t
    t.close()


def test_overlay_without_a_swarm_raises_driver_unavailable(plain, no_swarm):
    with pytest.raises(DriverUnavailable, match="not in a swarm.*--dockernet-swarm auto"):
        plain.network("o", driver="overlay")
    assert plain.networks_list == []


def test_bad_service_and_placement_arguments(plain, no_swarm):
    bridge = plain.network("b")
    with pytest.raises(ValueError, match=r"host=1 is not an engine of this run.*--dockernet-hosts"):
        plain.container("c", networks=[bridge], host=1)
    with pytest.raises(ValueError, match=r"host=-1 is not an engine"):
        plain.container("c", host=-1)
    with pytest.raises(ValueError, match="encrypted=True is for overlay networks"):
        plain.network("e", encrypted=True)
    with pytest.raises(ValueError, match="services join overlay networks only"):
        plain.service("s", networks=[bridge])
    with pytest.raises(ValueError, match="replicas=-1 must be a whole number"):
        plain.service("s", replicas=-1)
    with pytest.raises(ValueError, match="endpoint_mode='round-robin' is not one of vip, dnsrr"):
        plain.service("s", endpoint_mode="round-robin")
    with pytest.raises(ValueError, match="timeout=0 must be a positive number of seconds"):
        plain.service("s", timeout=0)
    with pytest.raises(TypeError, match="constraints must be a list"):
        plain.service("s", constraints="node.role==manager")
    with pytest.raises(DriverUnavailable, match="a service needs swarm mode"):
        plain.service("s")
    assert plain.containers_list == [] and plain.services_list == []


OVERLAY_SLEEPER = """
    import time

    from inner_run_spy import ready

    def test_sleeps(dockernet):
        dockernet.network("o", driver="overlay")
        ready()
        time.sleep(60)
"""


def has_gwbridge(client: docker.DockerClient) -> bool:
    return any(n["Name"] == "docker_gwbridge" for n in client.api.networks(names=["docker_gwbridge"]))


def test_the_swarm_of_a_killed_auto_run_is_left_by_the_next_prune(inner_runs, pytester, dockernet_client, no_swarm):
    bridge_before = has_gwbridge(dockernet_client)
    pytester.makepyfile(test_sleeper=OVERLAY_SLEEPER)
    proc = inner_runs.start("--dockernet-swarm", "auto", "test_sleeper.py")
    assert swarm_state(dockernet_client) == "active"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert swarm_state(dockernet_client) == "active"  # SIGKILL: nothing could leave it

    result = inner_runs.run("--dockernet-prune")
    result.stdout.fnmatch_lines(["dockernet: *left the swarm the plugin had made*"])
    assert swarm_state(dockernet_client) == "inactive"
    assert has_gwbridge(dockernet_client) == bridge_before
    assert inner_runs.resources() == []


# With a module's topology, which an interrupt leaves for pytest to tear down at the end of
# the session: the swarm is left after it (its container would otherwise keep the swarm).
MODULE_SLEEPER = """
    import time

    import pytest
    from inner_run_spy import ready

    @pytest.fixture(scope="module")
    def web(dockernet_module):
        return dockernet_module.container("web", networks=[dockernet_module.network("n")])

    def test_sleeps(dockernet, web):
        dockernet.network("o", driver="overlay")
        ready()
        time.sleep(60)
"""


def test_the_last_auto_run_to_end_leaves_the_swarm(inner_runs, pytester, dockernet_client, no_swarm):
    pytester.makepyfile(test_sleeper=MODULE_SLEEPER)
    first = inner_runs.start("--dockernet-swarm", "auto", "test_sleeper.py")
    pytester.makepyfile(test_quick="def test_quick(dockernet): dockernet.network('q', driver='overlay')")
    result = inner_runs.run("--dockernet-swarm", "auto", "--dockernet-require", "test_quick.py")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*swarm init*")  # it used the first run's swarm ...
    assert swarm_state(dockernet_client) == "active"  # ... and left it to the first run, still alive

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == pytest.ExitCode.INTERRUPTED
    assert swarm_state(dockernet_client) == "inactive"
    assert inner_runs.resources() == []


SERVICE_SLEEPER = """
    import time

    from inner_run_spy import ready

    def test_sleeps(dockernet):
        net = dockernet.network("o", driver="overlay")
        dockernet.service("svc", networks=[net], endpoint_mode="dnsrr")
        ready()
        time.sleep(60)
"""


def test_the_services_of_a_killed_run_are_pruned(inner_runs, pytester, dockernet_client, no_swarm):
    """On a swarm of the user's (which is never left), what a SIGKILLed run made there,
    services included, goes with the next prune."""
    with gate_for(dockernet_client).removing():  # see pytest_dockernet.engine.gate
        dockernet_client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        pytester.makepyfile(test_sleeper=SERVICE_SLEEPER)
        proc = inner_runs.start("--dockernet-swarm", "auto", "test_sleeper.py")
        run_id = inner_runs.run_id_of(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert labelled_services(dockernet_client) != []

        result = inner_runs.run("--dockernet-prune")
        result.stdout.fnmatch_lines(
            [f"dockernet: removed * left by 1 dead run ({run_id})*", "  container service dn-*-svc"]
        )
        assert labelled_services(dockernet_client) == []
        assert swarm_state(dockernet_client) == "active"  # the user's swarm stays
        # The manager removes a swarm-scoped network a moment after the call returns.
        left, _ = poll(lambda: inner_runs.resources(run_id), lambda found: not found, timeout=10)
        assert left == []
    finally:
        leave(dockernet_client)


# -- containers the run does not own keep their names (issue 20, item 12) -----------------
#
# Docker wipes the embedded DNS of every container running on a user-defined network when
# the engine leaves a swarm (moby/moby#45144). A run's swarm, its lab's or its own, must
# therefore stay while anything else runs there, until a later run or a prune can leave it.

OVERLAY_THEN_WAIT = """
    import time
    from pathlib import Path

    from inner_run_spy import ready

    def test_overlay(dockernet):
        net = dockernet.network("o", driver="overlay")
        here = dockernet.container("here", networks=[net])
        dockernet.container("there", networks=[net], host={host})
        svc = dockernet.service("svc", networks=[net], endpoint_mode="dnsrr")
        dockernet.assert_reachable(here, "there")
        dockernet.assert_resolves(here, "tasks.svc", to=svc.tasks())
        ready()
        go = Path(__file__).parent / "go"
        for _ in range(600):  # the outer test's go, within a minute
            if go.exists():
                break
            time.sleep(0.1)
"""


@pytest.fixture
def foreign_pair(dockernet_client, dockernet):
    """Two containers on a bridge network made with the Docker SDK alone, as a developer's own
    Compose stack is: nothing of the plugin's labels them. The tests remove them; this, if not."""
    tag = uuid.uuid4().hex[:8]
    network = dockernet_client.networks.create(f"foreign-{tag}", driver="bridge")
    pair = []
    try:
        for name in ("a", "b"):
            pair.append(
                dockernet_client.containers.run(
                    dockernet.probe_image,
                    ["sleep", "600"],
                    name=f"foreign-{tag}-{name}",
                    network=network.name,
                    detach=True,
                )
            )
        yield pair
    finally:
        for container in pair:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        network.remove()


def lost_names(pair: list) -> list[str]:
    """The lookups of the pair's names, one by the other, that do not answer the address (by
    DNS, nslookup: the embedded DNS is what a swarm leave wipes)."""
    lost = []
    for source, target in (pair, pair[::-1]):
        target.reload()
        address = next(iter(target.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        code, out = source.exec_run(["nslookup", target.name])
        if code != 0 or address not in out.decode():
            lost.append(f"{source.name} -> {target.name}: {out.decode().strip()}")
    return lost


def through(inner_runs, pytester, pair: list, *args: str) -> str:
    """A run of OVERLAY_THEN_WAIT with ``args``: the pair resolves during it (at the test's
    ready()) and after it, and the run passes; its output."""
    (pytester.path / "go").unlink(missing_ok=True)
    proc = inner_runs.start(*args, "--dockernet-require", timeout=120)
    assert lost_names(pair) == []  # during
    (pytester.path / "go").touch()
    assert proc.wait(timeout=120) == 0, inner_runs.log(proc)
    assert lost_names(pair) == []  # after
    return inner_runs.log(proc)


def assert_kept_for(pair: list, log: str, client: docker.DockerClient) -> None:
    """The plugin's swarm stayed because of the pair, and the run's summary said so."""
    assert made_by_plugin(client) is not None
    summary = log[log.index("- dockernet -") :]
    assert "swarm: engine 0 stays in the swarm the plugin made" in summary
    assert f"the names of 2 running containers on user-defined networks ({pair[0].name}, {pair[1].name})" in summary


def assert_left_once_the_pair_is_gone(inner_runs, pair: list, client: docker.DockerClient, bridge_before: bool) -> None:
    for container in pair:
        container.remove(force=True)
    result = inner_runs.run("--dockernet-prune")
    result.stdout.fnmatch_lines(["dockernet: *left the swarm the plugin had made*"])
    assert swarm_state(client) == "inactive"
    assert has_gwbridge(client) == bridge_before
    assert inner_runs.resources() == []


def test_an_auto_run_keeps_its_swarm_while_containers_it_does_not_own_would_lose_their_names(
    inner_runs, pytester, dockernet_client, no_swarm, foreign_pair
):
    bridge_before = has_gwbridge(dockernet_client)
    assert lost_names(foreign_pair) == []  # before
    pytester.makepyfile(test_run=OVERLAY_THEN_WAIT.format(host=0))
    log = through(inner_runs, pytester, foreign_pair, "--dockernet-swarm", "auto")
    assert "swarm init" in log  # this run entered the swarm, with the pair running
    assert_kept_for(foreign_pair, log, dockernet_client)

    # A prune while the pair runs keeps the swarm too.
    inner_runs.run("--dockernet-prune").stdout.no_fnmatch_line("*left the swarm*")
    assert lost_names(foreign_pair) == [] and made_by_plugin(dockernet_client) is not None
    assert_left_once_the_pair_is_gone(inner_runs, foreign_pair, dockernet_client, bridge_before)


def test_a_lab_run_keeps_engine_0s_swarm_while_containers_it_does_not_own_would_lose_their_names(
    inner_runs, pytester, dockernet_client, no_swarm, foreign_pair
):
    bridge_before = has_gwbridge(dockernet_client)
    assert lost_names(foreign_pair) == []  # before
    pytester.makepyfile(test_run=OVERLAY_THEN_WAIT.format(host=1))
    log = through(inner_runs, pytester, foreign_pair, "--dockernet-lab", "2")
    assert "lab bring-up" in log
    assert lab_leftovers() == []  # the lab's engines, namespaces and links are gone all the same
    assert_kept_for(foreign_pair, log, dockernet_client)

    # An auto run uses the swarm the lab left (the plugin's), and keeps it likewise.
    pytester.makepyfile(test_run=OVERLAY_THEN_WAIT.format(host=0))
    log = through(inner_runs, pytester, foreign_pair, "--dockernet-swarm", "auto")
    assert "swarm init" not in log
    assert_kept_for(foreign_pair, log, dockernet_client)
    assert_left_once_the_pair_is_gone(inner_runs, foreign_pair, dockernet_client, bridge_before)
