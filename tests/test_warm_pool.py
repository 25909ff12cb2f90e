"""The warm pool (issue 15): running containers handed to container() calls that ask for
nothing of their own, used again by later tests when nothing but probes ran in them, and
what must stay true of them."""

from __future__ import annotations

import dataclasses
import re
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_dockernet.container_specs import Attachment, ContainerSpec
from pytest_dockernet.context import POOL_NEUTRAL
from pytest_dockernet.handles import Network
from pytest_dockernet.networks import NetworkSpec
from pytest_dockernet.readiness import check_ready
from pytest_dockernet.warm_pool import asks_nothing, poolable

EXAMPLES = Path(__file__).parent.parent / "examples"
# The examples that run without a lab or a swarm (the examples part of CI runs the others).
ENGINE_ONLY_EXAMPLES = [
    "test_aliases.py",
    "test_bridge_by_name.py",
    "test_connect_disconnect.py",
    "test_custom_subnet.py",
    "test_faults.py",
    "test_fixture_scopes.py",
    "test_hermetic_dns.py",
    "test_host_network.py",
    "test_internal_network.py",
    "test_isolation.py",
    "test_links.py",
    "test_no_shell_source.py",
    "test_reachability_matrix.py",
    "test_start_together.py",
]

POOLED = """
import ipaddress

import docker.errors
import pytest
from inner_run_spy import record

seen = {}


def test_pooled(dockernet, dockernet_client):
    assert dockernet.context.warm_pool.idle == 0  # the first test: nothing waits, so they are started
    net = dockernet.network("net")
    a = dockernet.container("a", networks={net: ["alias-a"]})
    b = dockernet.container("b", networks=[net])
    record(a, b)
    assert a.pooled and b.pooled
    assert a.docker_name == dockernet.context.docker_name_for("a")
    assert ipaddress.ip_address(a.ip(net)) in ipaddress.ip_network(net.subnet)
    for name in ("a", "alias-a", a.docker_name):
        dockernet.assert_resolves(b, name, to=a)
    dockernet.assert_reachable(a, "b")
    assert [n.name for n in a.networks] == ["net"]
    hostname = dockernet_client.api.inspect_container(a.id)["Config"]["Hostname"]
    assert "-pool-" in hostname  # the pool's, as documented (an exec() would keep it from the pool)
    seen.update(a=a.id, b=b.id, a_name=a.docker_name)


def test_used_again(dockernet, dockernet_client):
    api = dockernet_client.api
    with pytest.raises(docker.errors.NotFound):  # its last test's name went with that test
        api.inspect_container(seen["a_name"])
    net = dockernet.network("other")
    c = dockernet.container("c", networks=[net])
    d = dockernet.container("d", networks=[net])
    assert {c.id, d.id} == {seen["a"], seen["b"]}  # the same two, only probed before
    assert api.logs(c.id) != b""  # the last test's probes printed to it...
    assert c.logs() == "" and c.logs(tail=5) == ""  # ...which is not this test's output
    dockernet.assert_resolves(d, "c", to=c)
    dockernet.assert_not_resolves(d, "a")
    dockernet.assert_not_resolves(d, "alias-a")
    code, addresses = c.exec(["ip", "-o", "-4", "addr", "show"])
    interfaces = {line.split()[1]: line.split()[3] for line in addresses.splitlines()}
    assert code == 0 and len(interfaces) == 2 and interfaces.pop("lo").startswith("127.")  # nothing else's
    assert [address.split("/")[0] for address in interfaces.values()] == [c.ip(net)]
    assert c.interface(net) == next(iter(interfaces)).split("@")[0]
    code, hostname = c.exec(["cat", "/etc/hostname"])
    assert code == 0 and "-pool-" in hostname  # the pool's, as documented
    assert c.ip(net) in c.logs()  # interface()'s probe ran in this test: it shows
    seen.update(d=d.id)  # c ran exec(): it is not used again; d was only probed


def test_handed_over_onto_two_networks(dockernet):
    assert dockernet.context.warm_pool.idle == 1
    front, back = dockernet.network("front"), dockernet.network("back")
    e = dockernet.container("e", networks={front: ["web"], back: ["api"]})
    assert e.id == seen["d"]  # handed over, onto both networks
    f, g = dockernet.container("f", networks=[front]), dockernet.container("g", networks=[back])
    for peer, net, alias, other in ((f, front, "web", "api"), (g, back, "api", "web")):
        dockernet.assert_resolves(peer, "e", to=e.ip(net))  # each network answers with its own address
        dockernet.assert_resolves(peer, alias, to=e.ip(net))
        dockernet.assert_not_resolves(peer, other)  # an alias is its network's only
        dockernet.assert_reachable(peer, alias)
    dockernet.assert_isolated([f], [g])
"""


def test_a_pooled_container_is_what_container_makes_and_is_used_again(inner_runs, pytester):
    pytester.makepyfile(test_pooled=POOLED)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "2")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["warm pool: 3 of the containers and * networks were earlier tests', used again"])
    assert inner_runs.resources() == []


CHANGED = """
import pytest

ids = {}


CHANGES = ["exec", "restart", "pause", "stop", "kill", "partition", "degrade", "discard", "kept"]


@pytest.fixture(scope="module", params=CHANGES)
def how(request):  # module-scoped: each test_changes runs right before its test_after
    return request.param


def test_changes(dockernet, how):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    b = dockernet.container("b", networks=[net])
    assert a.pooled and b.pooled
    if how == "exec":
        a.exec(["touch", "/tmp/mine"])
    elif how == "restart":
        a.restart(timeout=0)
    elif how == "pause":
        a.pause()
        a.unpause()
    elif how == "stop":
        a.stop(timeout=0)
    elif how == "kill":
        a.kill("SIGTERM")  # its PID 1 has no handler: it still runs, but a signal reached it
        assert a.status() == "running"
    elif how == "partition":
        dockernet.partition([a], [b])
        dockernet.heal()
    elif how == "degrade":
        dockernet.restore(dockernet.degrade(a, loss=0.5))
    elif how == "discard":
        dockernet.discard(a)
    dockernet.assert_reachable(b, b.ip(net))
    ids[how] = a.id, b.id


def test_after(dockernet, dockernet_client, how):
    changed, probed = ids[how]
    net = dockernet.network("net")
    got = {dockernet.container(n, networks=[net]).id for n in ("x", "y", "z")}
    if how == "kept":  # nothing but probes ran in either
        assert {changed, probed} <= got
    else:
        assert changed not in got and probed in got
        assert dockernet_client.api.containers(all=True, filters={"id": changed}) == []
"""


def test_a_container_a_test_changed_is_removed_not_used_again(inner_runs, pytester):
    pytester.makepyfile(test_changed=CHANGED)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "3")
    result.assert_outcomes(passed=18)
    assert inner_runs.resources() == []


def test_the_pool_is_off_with_0_and_with_keep(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest

        seen = []

        @pytest.mark.parametrize("i", range(2))
        def test_unpooled(dockernet, dockernet_client, i):
            assert dockernet.context.warm_pool is None
            net = dockernet.network("n")
            a = dockernet.container("a", networks=[net])
            assert not a.pooled
            assert a.exec("hostname") == (0, "a\\n")
            seen.append((a.id, net.docker_name))
            if i == 1:  # the first test's container and network are gone, not handed on
                (first, first_net), (second, second_net) = seen
                assert first != second and first_net != second_net
                assert dockernet_client.api.containers(all=True, filters={"id": first}) == []
        """
    )
    for args in (["--dockernet-pool", "0"], ["--dockernet-keep"]):
        result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", *args)
        result.assert_outcomes(passed=2)
        assert "warm pool" not in result.stdout.str()


OWN = """
seen = {}


def test_what_asks_for_something_of_its_own_is_started_as_usual(dockernet, tmp_path):
    (tmp_path / "Dockerfile").write_text(f'FROM {dockernet.probe_image}\\nCMD ["sleep", "3600"]\\n')
    net = dockernet.network("net")
    asks = {
        "image": {"image": dockernet.build(tmp_path)},  # the probe image and a command of its own
        "none": {"network_mode": "none"},
        "engine-bridge": {"network_mode": "bridge"},  # the engine's default bridge, not the topology's
        "env": {"environment": {"X": "1"}},
        "cmd": {"command": ["sleep", "60"]},
        "host": {"hostname": "h"},
        "label": {"labels": {"x": "y"}},
        "capability": {"cap_add": ["NET_ADMIN"]},
        "user": {"user": "1000"},
        "port": {"ports": {80: None}},
    }
    made = dockernet.containers(
        {name: {"networks": [net], **extra} if "network_mode" not in extra else extra for name, extra in asks.items()}
    )
    assert [c.name for c in made.values() if c.pooled] == []
    plain = dockernet.container("plain", networks=[net])
    assert plain.pooled
    seen["plain"] = plain.id


def test_a_pooled_container_takes_the_address_the_test_pins(dockernet):
    assert dockernet.context.warm_pool.idle == 1  # the last test's plain container, only probed
    net = dockernet.network("mine", subnet="10.77.9.0/24")
    a = dockernet.container("a", networks={net: {"ipv4_address": "10.77.9.23"}})
    assert a.id == seen["plain"]  # handed over, not started
    assert a.ip(net) == "10.77.9.23" and a.pooled
    dockernet.assert_reachable(dockernet.container("b", networks=[net]), "10.77.9.23")
"""


def test_only_what_asks_for_nothing_of_its_own_comes_from_the_pool(inner_runs, pytester):
    pytester.makepyfile(test_own=OWN)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "2")
    result.assert_outcomes(passed=2)
    assert inner_runs.resources() == []


def test_the_pool_is_on_by_default_and_its_ini_key_sizes_it(inner_runs, pytester):
    for ini, option, size in ((None, (), 4), ("2", (), 2), ("0", (), 0), ("0", ("--dockernet-pool", "3"), 3)):
        pytester.makeini(f"[pytest]\ndockernet_pool = {ini}\n" if ini is not None else "[pytest]\n")
        pytester.makepyfile(
            test_size=f"""
            def test_size(dockernet):
                assert (dockernet.context.warm_pool.size if dockernet.context.warm_pool else 0) == {size}
                assert dockernet.container("a").pooled == {size > 0}
            """
        )
        result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", *option)
        result.assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["-1", "many", "33"])
def test_a_bad_pool_size_is_a_usage_error(pytester, value):
    result = pytester.runpytest("--dockernet-pool", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--dockernet-pool (ini dockernet_pool) is '{value}'*0 to 32*"])


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcome, from ``-rA``'s summary."""
    found = re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", result.stdout.str(), re.M)
    return {test: outcome for outcome, test in found}


def test_the_examples_give_the_same_results_with_the_pool_on_and_off(inner_runs, pytester):
    for name in [*ENGINE_ONLY_EXAMPLES, "conftest.py"]:
        shutil.copy(EXAMPLES / name, pytester.path / name)
    shutil.copytree(EXAMPLES / "app", pytester.path / "app")  # test_faults.py builds it
    results = {}
    for size in ("0", "4"):
        result = inner_runs.run_subprocess(
            "--dockernet-require", "-p", "no:xdist", "-rA", "--dockernet-pool", size, timeout=600
        )
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        results[size] = outcomes(result)
        assert ("warm pool:" in result.stdout.str()) == (size != "0")
    assert results["0"] == results["4"]
    assert len(results["0"]) >= len(ENGINE_ONLY_EXAMPLES) and set(results["0"].values()) == {"PASSED"}


SLEEPER = """
from inner_run_spy import ready, record
import time

def test_first(dockernet):
    net = dockernet.network("first")
    dockernet.containers({"x": {"networks": [net]}, "y": {"networks": [net]}})


def test_sleeps(dockernet):
    assert dockernet.context.warm_pool.idle == 2
    net = dockernet.network("n")
    record(net, dockernet.container("c", networks=[net]))
    assert dockernet.context.warm_pool.idle == 1
    ready()
    time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_no_pool_behind(inner_runs, pytester, sig):
    pytester.makepyfile(test_sleeper=SLEEPER)
    proc = inner_runs.start("--dockernet-pool", "3")
    run_id = inner_runs.run_id_of(proc)
    # the test's network and container, the lease, the container waiting in the pool, and the
    # first test's network once its removal in the background has given it to the pool
    left = inner_runs.resources(run_id)
    assert len(left) in (4, 5) and sum("-pool-" in r for r in left) in (2, 3), left
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == pytest.ExitCode.INTERRUPTED, inner_runs.log(proc)
    assert inner_runs.resources(run_id) == []


def test_a_killed_run_s_pool_is_pruned_by_the_next_run(inner_runs, pytester):
    pytester.makepyfile(test_sleeper=SLEEPER)
    host = inner_runs.own_host()
    proc = inner_runs.start("--dockernet-pool", "3", host=host)
    run_id = inner_runs.run_id_of(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(inner_runs.resources(run_id)) in (4, 5)

    pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
    result = inner_runs.run_on(host, "test_next.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"removed 3 containers and * network* left by 1 dead run (*{run_id}*)"])
    assert inner_runs.resources(run_id) == []


def test_interface_names_the_interface_of_a_network(dockernet):
    one, two = dockernet.network("one"), dockernet.network("two")
    c = dockernet.container("c", networks=[one, two])
    names = {c.interface(one), c.interface(two)}
    assert len(names) == 2 and all(name.startswith("eth") for name in names)
    code, out = c.exec(["ip", "-o", "-4", "addr", "show", c.interface(two)])
    assert code == 0 and f"{c.ip(two)}/" in out
    with pytest.raises(ValueError, match="is not on network 'three'"):
        c.interface("three")
    host = dockernet.container("h", network_mode="host")
    with pytest.raises(ValueError, match="host's network namespace: no interface of its own"):
        host.interface()


NETWORKS = """
import pytest

seen = {}


def test_first(dockernet, dockernet_client):
    net = dockernet.network("net")
    a = dockernet.container("a", networks={net: ["alias-a"]})
    mine = dockernet.network("mine", internal=True)  # asks for something: not the pool's
    assert net.warm and not mine.warm
    assert net.docker_name.startswith("dn-") and "-pool-net" in net.docker_name
    seen.update(net=net.id, mine=mine.id, a=a.id)


def test_second(dockernet, dockernet_client):
    api = dockernet_client.api
    with pytest.raises(Exception, match="No such network|not found"):
        api.inspect_network(seen["mine"])  # removed with its topology
    other = dockernet.network("other")
    assert other.id == seen["net"] and other.warm  # the same network, empty
    assert api.inspect_network(other.id)["Containers"] == {}
    b = dockernet.container("b", networks=[other])
    c = dockernet.container("c", networks=[other])
    assert b.id == seen["a"]
    dockernet.assert_resolves(c, "b", to=b)
    dockernet.assert_not_resolves(c, "a")
    dockernet.assert_not_resolves(c, "alias-a")
    dockernet.assert_reachable(c, b)


def test_discard_removes_a_pooled_network(dockernet, dockernet_client):
    net = dockernet.network("net")
    assert net.warm
    dockernet.discard(net)
    with pytest.raises(Exception, match="No such network|not found"):
        dockernet_client.api.inspect_network(net.id)
"""


def test_an_empty_network_is_used_again_by_the_next_test(inner_runs, pytester):
    pytester.makepyfile(test_networks=NETWORKS)
    args = ("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "2", "--dockernet-teardown=wait")
    result = inner_runs.run_subprocess(*args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["warm pool: * containers and 2 of the networks were earlier tests', used again"])
    assert inner_runs.resources() == []


# The run's subnet pool is 10.219.0.0/22 (four /24s): the earlier tests leave its networks
# waiting in the warm pool (or on their way back to it), and "big" asks for all of it.
WHOLE_POOL = """
import ipaddress

POOL = ipaddress.ip_network("10.219.0.0/22")


def test_one(dockernet):
    dockernet.network("a"), dockernet.network("b")


def test_two(dockernet):
    assert ipaddress.ip_network(dockernet.network("c").subnet).subnet_of(POOL)


def test_big(dockernet, dockernet_client):
    pooled = {"label": "pytest-dockernet.role=pooled network"}
    assert [n for n in dockernet_client.api.networks(filters=pooled) if dockernet.context.identity.run_id in n["Name"]]
    net = dockernet.network("big", subnet=str(POOL))
    a = dockernet.container("a", networks=[net])
    assert ipaddress.ip_address(a.ip(net)) in POOL
    dockernet.assert_reachable(dockernet.container("b", networks=[net]), a.ip(net))


def test_after(dockernet):
    assert ipaddress.ip_network(dockernet.network("d").subnet).subnet_of(POOL)
"""


def test_an_explicit_subnet_takes_the_place_of_the_run_s_waiting_pooled_networks(inner_runs, pytester):
    pytester.makepyfile(test_whole_pool=WHOLE_POOL)
    result = inner_runs.run_subprocess(
        "--dockernet-require", "-p", "no:xdist", "--dockernet-subnet-pool", "10.219.0.0/22:24", "-v"
    )
    result.assert_outcomes(passed=4)
    assert inner_runs.resources() == []


LEFT_RUNNING = """
from pytest_dockernet.errors import ProbeFailed
from pytest_dockernet.probes import run

import pytest

seen = {}


def test_a_process_outlives_the_probes(dockernet):
    net = dockernet.network("net")
    a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
    # out of the probe's reach on purpose (a session and a mark of its own), as a user's could be
    run(a, "DN_PROBE= setsid sleep 300 </dev/null >/dev/null 2>&1 & sleep 0.5")
    dockernet.assert_reachable(b, a)
    assert a.reusable and b.reusable  # only probes ran in them
    seen.update(a=a.id, b=b.id)


def test_only_the_idle_one_is_used_again(dockernet, dockernet_client):
    net = dockernet.network("net")
    got = {dockernet.container(n, networks=[net]).id for n in ("x", "y")}
    assert seen["b"] in got and seen["a"] not in got
    assert dockernet_client.api.containers(all=True, filters={"id": seen["a"]}) == []


def test_a_throughput_fails_after_starting_its_receiver(dockernet):
    net = dockernet.network("net")
    a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
    a.stop(timeout=0)
    with pytest.raises(ProbeFailed):
        dockernet.throughput(a, b, seconds=1)
    seen.update(receiver=b.id)


def test_the_next_test_finds_the_port_free(dockernet):
    net = dockernet.network("net")
    b, c = dockernet.container("b", networks=[net]), dockernet.container("c", networks=[net])
    assert seen["receiver"] in {b.id, c.id}  # handed over again: nothing of the last test runs in it
    assert dockernet.throughput(c, b, seconds=1) > 1e6 and dockernet.throughput(b, c, seconds=1) > 1e6
"""


def test_a_container_goes_back_to_the_pool_only_running_what_a_fresh_one_runs(inner_runs, pytester):
    pytester.makepyfile(test_left_running=LEFT_RUNNING)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "2")
    result.assert_outcomes(passed=4)
    assert inner_runs.resources() == []


# -- poolability: from the specs' defaults ----------------------------------------------

# A value of its own for each field of ContainerSpec the pool may not ignore, as a test gives it.
OWN_VALUES = {
    "image": "busybox:latest",
    "command": "sleep 60",
    "environment": {"MODE": "test"},
    "ports": {8080: None},
    "expose": [8080],
    "links": {"db": "database"},
    "network_mode": "bridge",
    "cap_add": ["NET_ADMIN"],
    "privileged": True,
    "host": 1,
    "entrypoint": ["sh"],
    "user": "nobody",
    "working_dir": "/tmp",
    "hostname": "h",
    "volumes": ["/data"],
    "healthcheck": {"test": ["CMD", "true"]},
    "labels": {"team": "a"},
    "docker_options": {"mem_limit": "64m"},
    "files": {"/run/secrets/token": "s3cret"},
    "dns": ["10.99.0.53"],
    "dns_search": ["inside.test"],
    "dns_opt": ["ndots:2"],
    "stop_timeout": 5,
}
NEUTRAL = {"name", "networks", "ready", "ready_timeout"}  # the pool joins networks; ready asks its strategy


def launch_of(spec: ContainerSpec) -> SimpleNamespace:
    """What container() decides for a spec that asks nothing of the launch itself: the probe
    image's resident shell on a bridge the topology made (held fixed: the spec is on trial)."""
    bridge = Network(None, "net", "dn-net", "net-id", "bridge")
    ready, attachments = check_ready(spec.ready), [Attachment(bridge, [], None)]
    return SimpleNamespace(spec=spec, ready=ready, resident=True, network_mode=None, attachments=attachments)


def neutral_fields(spec_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(spec_class) if f.metadata == POOL_NEUTRAL}


def test_a_spec_that_asks_nothing_is_poolable_and_empty_values_ask_nothing():
    for spec in (
        ContainerSpec("a"),
        ContainerSpec("a", networks=[], ready="running", ready_timeout=5.0),
        ContainerSpec("a", environment={}, labels={}, cap_add=[], volumes=[], privileged=False, host=0),
    ):
        assert poolable(spec, launch_of(spec)), spec


def test_every_field_not_declared_pool_neutral_keeps_a_container_out_of_the_pool():
    fields = {f.name for f in dataclasses.fields(ContainerSpec)}
    assert neutral_fields(ContainerSpec) == NEUTRAL  # declaring one neutral is a decision: say so here
    assert set(OWN_VALUES) == fields - NEUTRAL  # every other field is tried below
    for name, value in OWN_VALUES.items():
        spec = ContainerSpec("a", **{name: value})
        assert not asks_nothing(spec), name
        assert not poolable(spec, launch_of(spec)), name
    for ready in ("healthy", "completed"):  # neutral, but only "running" is what a pooled one is
        spec = ContainerSpec("a", ready=ready)
        assert not poolable(spec, launch_of(spec)), ready


@dataclasses.dataclass
class LaterSpec(ContainerSpec):
    """ContainerSpec with container options added after the pool was written."""

    shm_size: str | None = None
    sysctls: dict[str, str] = dataclasses.field(default_factory=dict)
    comment: str | None = dataclasses.field(default=None, metadata=POOL_NEUTRAL)  # declared: the pool may ignore it


def test_a_field_added_to_the_spec_keeps_what_sets_it_out_of_the_pool_unless_declared_neutral():
    assert poolable(LaterSpec("a"), launch_of(LaterSpec("a")))  # at their defaults they ask nothing
    for spec in (LaterSpec("a", shm_size="1g"), LaterSpec("a", sysctls={"net.core.somaxconn": "1024"})):
        assert not asks_nothing(spec) and not poolable(spec, launch_of(spec)), spec
    spec = LaterSpec("a", comment="only a note")
    assert poolable(spec, launch_of(spec))


def test_a_network_spec_that_asks_for_anything_of_its_own_gets_a_network_of_its_own():
    assert neutral_fields(NetworkSpec) == {"name", "driver"}  # the pool's are bridges: checked as resolved
    assert asks_nothing(NetworkSpec("n")) and asks_nothing(NetworkSpec("n", driver="bridge", options={}))
    own = {
        "internal": True,
        "subnet": "10.99.0.0/24",
        "gateway": "10.99.0.1",
        "ipv6": True,
        "options": {"com.docker.network.bridge.enable_icc": "true"},
        "labels": {"team": "a"},
        "encrypted": True,
        "ipv6_subnet": "fd00:99::/64",
    }
    assert set(own) == {f.name for f in dataclasses.fields(NetworkSpec)} - {"name", "driver"}
    for name, value in own.items():
        assert not asks_nothing(NetworkSpec("n", **{name: value})), name

    @dataclasses.dataclass
    class LaterNetworkSpec(NetworkSpec):
        mtu: int | None = None

    assert asks_nothing(LaterNetworkSpec("n")) and not asks_nothing(LaterNetworkSpec("n", mtu=1400))
