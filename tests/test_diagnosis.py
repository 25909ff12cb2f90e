"""The diagnosis line a failing helper's message starts with: each kind provoked on the
engine and its line checked, then in inner runs that it comes first and that the
topology appears once in the report."""

from __future__ import annotations

import re

import pytest

from pytest_dockernet import (
    DockernetError,
    Listening,
    LogLine,
    assert_http,
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)
from pytest_dockernet.diagnosis import sockets

HTTPD = ["httpd", "-f", "-p", "80"]
# A port nothing listens on. A probe across two networks goes there, so that it fails even
# when a packet gets through: Docker rewrites its isolation rules whenever any network on
# the engine is made, and other runs make them all the time.
CLOSED = 9


def why(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """The first line of the message, which must be the diagnosis."""
    first = str(excinfo.value).splitlines()[0]
    assert first.startswith("why: "), str(excinfo.value)
    return first


@pytest.fixture
def tiers(dockernet):
    """api on front, db on back (aliased 'database'), web on front: the docs' example."""
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front], command=HTTPD, ready=Listening(80))
    api = dockernet.container("api", networks=[front])
    db = dockernet.container("db", networks={back: ["database"]}, command=HTTPD, ready=Listening(80))
    return front, back, web, api, db


def test_two_containers_that_share_no_network(tiers):
    front, back, web, api, db = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, db, port=CLOSED, timeout=1)
    assert why(excinfo) == "why: api and db share no network: api is on front, db on back"
    message = str(excinfo.value)
    assert message.splitlines()[1].startswith(f"api did not reach db ({db.ip()}) on TCP port {CLOSED}")
    assert "topology " not in message  # the plugin's report shows it, once
    probe = api.context.failed_probe  # for the artifacts' picture
    assert (probe.source, probe.target, probe.kind, probe.port, probe.address) == ("api", "db", "tcp", CLOSED, db.ip())
    assert probe.diagnosis == "api and db share no network: api is on front, db on back"


def test_an_alias_on_a_network_the_source_is_not_on(tiers):
    _, _, _, api, _ = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, "database", timeout=1)
    assert why(excinfo) == "why: 'database' is an alias of db on back, not on a network of api (api is on front)"
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(api, "database", timeout=1)
    assert "'database' is an alias of db on back" in why(excinfo)
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(api, "db", timeout=1)  # its logical name: known, but not from api
    assert why(excinfo) == "why: db is on back, not on a network of api (api is on front)"


def test_a_partition_in_force_is_named_with_since_when(dockernet, tiers):
    _, _, web, api, _ = tiers
    partition = dockernet.partition(api, web)
    assert partition.since is not None
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, web, port=80, timeout=1)
    line = why(excinfo)
    assert re.fullmatch(
        r"why: partition #\d+ \[api\] \| \[web\], drop \(in force since \d\d:\d\d:\d\d, \d+\.\d s\): "
        r"in force between api and web",
        line,
    ), line
    partition.heal()
    assert_reachable(api, web, port=80)


def test_a_degradation_in_force_is_named(dockernet, tiers):
    _, _, web, api, _ = tiers
    dockernet.degrade(web, loss=1.0)  # what web sends: the replies
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, web, timeout=1)
    assert re.fullmatch(
        r"why: degrade #\d+ web: loss 1 \(in force since [\d:]+, [\d.]+ s\): in force between api and web", why(excinfo)
    )


def test_a_target_not_listening_on_the_port_says_where_it_listens(tiers):
    _, _, web, api, _ = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, web, port=81, timeout=1)
    assert why(excinfo) == "why: web is not listening on TCP port 81: it listens on 80"


def test_a_server_bound_to_loopback_only(dockernet, tiers):
    front, _, _, api, _ = tiers
    local = dockernet.container(
        "local", networks=[front], command=["httpd", "-f", "-p", "127.0.0.1:8080"], ready=Listening(8080)
    )
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, local, port=8080, timeout=1)
    assert why(excinfo) == (
        "why: local listens on TCP port 8080 only at 127.0.0.1 (loopback): "
        "nothing outside its own namespace reaches that"
    )


def test_a_paused_target_is_not_running(tiers):
    _, _, web, api, _ = tiers
    web.pause()
    try:
        with pytest.raises(AssertionError) as excinfo:
            assert_http(api, "http://web/", timeout=1)
        assert why(excinfo) == "why: web is not running (paused)"
    finally:
        web.unpause()


def test_a_stopped_target_probed_at_its_address_gives_its_state_and_exit_code(tiers):
    _, _, web, api, _ = tiers
    address = web.ip()
    web.kill()
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, address, timeout=1)
    assert why(excinfo) == "why: web is not running (exited (137))"
    # Given as a container, it is found stopped at the first attempt: no waiting, the same cause first.
    with pytest.raises(DockernetError) as excinfo:
        assert_reachable(api, web, timeout=1)
    assert str(excinfo.value).splitlines()[0] == (
        "api cannot reach web: it is not running (exited, exit code 137); the end of its output:"
    )


def test_a_target_removed_behind_the_topology_s_back(tiers, dockernet_client):
    _, _, web, api, _ = tiers
    address = web.ip()
    dockernet_client.api.remove_container(web.id, force=True)
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, address, timeout=1)
    assert why(excinfo) == "why: web no longer exists (its container was removed)"


def test_a_resolver_that_does_not_answer(tiers):
    _, _, _, api, _ = tiers
    # Loopback, where nothing listens: the resolver refuses at once (no traffic leaves).
    assert api.exec(["sh", "-c", "echo nameserver 127.0.0.1 > /etc/resolv.conf"])[0] == 0
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(api, "web", timeout=1)
    assert why(excinfo) == "why: api's resolver does not answer: not even its own name 'api' resolved"


def test_a_resolver_that_answers_another_address(tiers):
    _, _, web, api, _ = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(api, "web", to=api, timeout=1)
    assert why(excinfo) == f"why: api resolves 'web' to {web.ip()} (web's), not to {api.ip()} (api's)"


def test_a_name_nothing_has(tiers):
    _, _, _, api, _ = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(api, "nobody", timeout=1)
    nobody = "the topology has no container or alias 'nobody'"
    assert why(excinfo) == f"why: api's resolver has no address for 'nobody'; {nobody}"


def test_an_internal_network_does_not_reach_a_published_port(dockernet, dockernet_client):
    internal = dockernet.network("internal", internal=True)
    app = dockernet.container("app", networks=[internal])
    outside = dockernet.network("outside")
    server = dockernet.container("server", networks=[outside], command=HTTPD, ports={"80/tcp": None})
    published = int(dockernet_client.api.port(server.id, 80)[0]["HostPort"])
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(app, internal.gateway, port=published, timeout=1)
    assert why(excinfo) == (
        "why: app is only on internal network internal: its gateway reaches the host's own sockets, "
        "not a port the host forwards (one a container of another network publishes)"
    )


def test_the_host_network_has_none_of_the_topology_s_names(dockernet, tiers):
    hosted = dockernet.container("hosted", network_mode="host")
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(hosted, "database", timeout=1)
    assert why(excinfo).startswith("why: 'database' is an alias of db on back, not on a network of hosted")
    with pytest.raises(AssertionError) as excinfo:
        assert_resolves(hosted, "database", timeout=1)
    assert "'database' is an alias of db on back" in why(excinfo)


def test_nothing_explains_it(dockernet, tiers):
    front, _, _, api, _ = tiers
    # Its kernel ignores echo requests: nothing the plugin knows of explains the silence.
    deaf = dockernet.container(
        "deaf", networks=[front], docker_options={"sysctls": {"net.ipv4.icmp_echo_ignore_all": "1"}}
    )
    with pytest.raises(AssertionError) as excinfo:
        assert_reachable(api, deaf, timeout=1)
    assert why(excinfo) == (
        f"why: both on front, no fault in force, deaf ({deaf.ip()}) running: the probe itself got no answer"
    )


def test_an_answer_where_none_was_expected(tiers):
    _, _, web, api, _ = tiers
    with pytest.raises(AssertionError) as excinfo:
        assert_unreachable(api, web)
    assert why(excinfo) == "why: api and web are both on front, and no fault in force cuts them apart"
    with pytest.raises(AssertionError) as excinfo:
        assert_not_resolves(api, "web")
    assert why(excinfo) == "why: 'web' is its name on front, which api is on too, so web answers"


def test_an_answer_past_a_one_way_partition(dockernet, tiers):
    _, _, web, api, _ = tiers
    dockernet.partition(web, api, one_way=True)  # what web starts towards api
    with pytest.raises(AssertionError) as excinfo:
        assert_unreachable(api, web)
    assert re.fullmatch(
        r"why: partition #\d+ \[web\] -> \[api\], drop \(in force since [\d:]+, [\d.]+ s\) is one-way: "
        r"it drops what web starts, not api",
        why(excinfo),
    ), why(excinfo)


def test_an_isolation_leak(dockernet, tiers):
    front, back, web, api, db = tiers
    dockernet.connect(api, back)
    with pytest.raises(AssertionError) as excinfo:
        assert_isolated(front, back)
    assert why(excinfo) == "why: api and db are both on back, and no fault in force cuts them apart"
    probe = api.context.failed_probe
    assert (probe.source, probe.target, probe.verdict) == ("api", "db", "answered, expected not to")


def test_a_readiness_timeout_says_where_it_listens(dockernet, tiers):
    _, _, web, _, _ = tiers
    with pytest.raises(DockernetError) as excinfo:
        web.wait_until(Listening(81), timeout=1)
    assert why(excinfo) == "why: web is not listening on TCP port 81: it listens on 80"
    with pytest.raises(DockernetError) as excinfo:
        web.wait_until(Listening(5353, proto="udp"), timeout=1)
    assert why(excinfo) == "why: web is not bound to UDP port 5353: it has bound no UDP port"


def test_a_readiness_timeout_on_a_healthcheck_or_a_log_line(dockernet, tiers):
    front, _, web, _, _ = tiers
    sick = dockernet.container(
        "sick", networks=[front], command=["sleep", "600"], healthcheck={"test": "exit 1", "interval": 0.2}
    )
    with pytest.raises(DockernetError) as excinfo:
        sick.wait_until("healthy", timeout=2)
    assert re.fullmatch(
        r"why: sick runs, and its healthcheck says (starting|unhealthy, \d+ failing checks in a row)", why(excinfo)
    )
    with pytest.raises(DockernetError) as excinfo:
        web.wait_until(LogLine("ready to serve"), timeout=1)
    assert why(excinfo) == "why: web runs, and it has printed nothing, so no line matches 'ready to serve'"


def test_a_reachability_cell_has_its_diagnosis(tiers):
    _, _, web, api, db = tiers
    matrix = reachability([api], [web, (db, CLOSED), (web, 81)], timeout=1)
    assert matrix.why(api, (db, CLOSED)) == "why: api and db share no network: api is on front, db on back"
    assert matrix.why(api, (web, 81)) == "why: web is not listening on TCP port 81: it listens on 80"
    assert matrix.why(api, web) == "why: api and web are both on front, and no fault in force cuts them apart"
    shown = matrix.compared({(api, web): True, (api, (db, CLOSED)): True})
    assert shown is not None
    assert shown[0] == "<ReachabilityMatrix 1x3> == {...}: differing cells: 1 of 2"
    assert shown[1] == "api -> db:9: no, expected yes; why: api and db share no network: api is on front, db on back"
    assert shown[2] == "cells not in both: api -> web:81"
    assert shown[3:] == str(matrix).splitlines()


def test_sockets_reads_the_kernel_s_tables():
    table = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1F90 00000000:0000 0A\n"
        "   1: 00000000:0050 00000000:0000 0A\n"
        "   2: 0200000A:C350 0300000A:0050 01\n"
    )
    assert sockets(table) == [("127.0.0.1", 8080), ("0.0.0.0", 80)]
    six = "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A\n"
    assert sockets(six) == [("::1", 22)]
    assert sockets("   0: 0100007F:1F9\n   1: 0100:1F90 00000000:0000 0A\n") == []  # rows cut short


FAILING = """
from pytest_dockernet import assert_reachable

def test_tiers(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    api = dockernet.container("api", networks=[front])
    db = dockernet.container("db", networks=[back])
    assert_reachable(api, db, port=9, timeout=1)

def test_matrix(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    api = dockernet.container("api", networks=[front])
    db = dockernet.container("db", networks=[back])
    assert dockernet.reachability([api], [(db, 9)]) == {(api, (db, 9)): True}
"""


def test_the_line_comes_first_and_the_topology_once_per_report(inner_runs, pytester):
    pytester.makepyfile(test_tiers=FAILING)
    result = inner_runs.run()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: why: api and db share no network: api is on front, db on back",
            "E       api did not reach db (*) on TCP port 9 within 1 s (*)",
        ]
    )
    assert out.count("topology test_tiers.py::test_tiers:") == 1, out  # in its section only
    assert len(re.findall(r"^-+ dockernet topology -+$", out, re.M)) == 2  # one per failed test
    result.stdout.fnmatch_lines(["FAILED test_tiers.py::test_tiers - AssertionError: why: api and db share no*"])
    # a matrix compared with the cells expected: each differing cell with its line, then the grid
    result.stdout.fnmatch_lines(
        [
            "E       *assert <ReachabilityMatrix 1x1> == {...}: differing cells: 1 of 1",
            "E         api -> db:9: no, expected yes; why: api and db share no network: api is on front, db on back",
            "E         reachability (TCP to each column's port):",
        ]
    )


def test_a_topology_made_outside_the_fixtures_is_shown_in_the_message(dockernet_client):
    from pytest_dockernet import Topology

    with Topology(dockernet_client) as t:
        a = t.container("a", networks=[t.network("one")])
        b = t.container("b", networks=[t.network("two")])
        with pytest.raises(AssertionError) as excinfo:
            assert_reachable(a, b, port=CLOSED, timeout=1)
    assert why(excinfo) == "why: a and b share no network: a is on one, b on two"
    assert f"topology {t.label}:" in str(excinfo.value)  # no report will show it


TEARDOWN = """
import pytest
from pytest_dockernet import assert_reachable

@pytest.fixture
def pair(dockernet):
    api = dockernet.container("api", networks=[dockernet.network("front")])
    db = dockernet.container("db", networks=[dockernet.network("back")])
    yield api, db
    assert_reachable(api, db, port=9, timeout=1)  # in the teardown, where the report has no sections

def test_pair(pair):
    pass
"""


def test_a_failure_in_a_teardown_shows_the_topology_in_its_message(inner_runs, pytester):
    pytester.makepyfile(test_failing_teardown=TEARDOWN)
    result = inner_runs.run()
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["E       AssertionError: why: api and db share no network: api is on front, db on *"])
    # In the message, once. Not counting the short summary: on CI (the CI variable set) pytest
    # prints each message there whole, the topology with it.
    shown = out.split("short test summary info")[0].count("topology test_failing_teardown.py::test_pair:")
    assert shown == 1, f"shown {shown} times:\n" + "\n".join(line for line in out.splitlines() if line[:1] in "E_=")
    assert not re.search(r"^-+ dockernet topology -+$", out, re.M)


MODULE = """
import pytest
from pytest_dockernet import assert_reachable

def test_first(dockernet_module):
    a = dockernet_module.container("a", networks=[dockernet_module.network("one")])
    b = dockernet_module.container("b", networks=[dockernet_module.network("two")])
    with pytest.raises(AssertionError):
        assert_reachable(a, b, port=9, timeout=1)
    assert a.context.failed_probe.target == "b"

def test_second(dockernet_module):
    assert dockernet_module.context.failed_probe is None  # the first test's is not this one's
"""


def test_a_module_s_topology_forgets_an_earlier_test_s_failed_probe(inner_runs, pytester):
    pytester.makepyfile(test_module=MODULE)
    inner_runs.run().assert_outcomes(passed=2)


def test_a_dns_fault_in_force_is_named(dockernet, tiers):
    """A name that fails, or resolves where it should not, because of a DNS fault: the
    fault is the line, whatever else is true of the name."""
    _, _, web, api, _ = tiers
    named = r"\(in force since [\d:]+, [\d.]+ s\): in force on api"
    with dockernet.dns_fault(api, "web", nxdomain=True):
        with pytest.raises(AssertionError) as excinfo:
            assert_resolves(api, "web", timeout=1)
        assert re.fullmatch(rf"why: dns fault #\d+ api: web nxdomain {named}", why(excinfo)), why(excinfo)
        with pytest.raises(AssertionError) as excinfo:
            assert_reachable(api, "web", port=80, timeout=1)
        assert re.fullmatch(rf"why: dns fault #\d+ api: web nxdomain {named}", why(excinfo)), why(excinfo)
    with dockernet.dns_fault(api, "ghost", answer=web):
        with pytest.raises(AssertionError) as excinfo:
            assert_not_resolves(api, "ghost")
        assert re.fullmatch(rf"why: dns fault #\d+ api: ghost -> web {named}", why(excinfo)), why(excinfo)
    assert_resolves(api, "web", to=web)
