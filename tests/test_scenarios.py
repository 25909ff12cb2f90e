"""The issue's scenarios, as real topologies on the engine."""

import shutil
import socket
import warnings

import pytest

from pytest_dockernet import (
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)
from pytest_dockernet.image import find_busybox

HTTPD = ["httpd", "-f", "-p", "8080"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_containers_reach_each_other_by_name(dockernet):
    net = dockernet.network("app")
    api = dockernet.container("api", networks=[net], command=HTTPD)
    db = dockernet.container("db", networks=[net], command=HTTPD)

    assert_reachable(api, "db")
    assert_reachable(db, "api")
    assert_reachable(api, "db", port=8080)
    assert_reachable(db, api, port=8080)
    assert_resolves(api, "db", to=db)
    assert_resolves(db, "api", to=api)
    assert api.ip(net) != db.ip(net)


def test_separate_bridges_are_isolated_and_a_container_on_both_reaches_both(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    db = dockernet.container("db", networks=[back])
    both = dockernet.container("both", networks=[front, back])

    assert_reachable(web, both)  # controls first: the probes on each side work
    assert_reachable(db, both)
    assert_unreachable(web, db)
    assert_unreachable(db, web)
    assert_isolated([web], [db])
    assert_reachable(both, web)
    assert_reachable(both, db)
    assert_resolves(both, "db", to=db)
    assert_not_resolves(web, "db")
    matrix = reachability([web, db, both], [web, db, both])
    assert matrix[web, both] and matrix[db, both] and not matrix[web, db] and not matrix[db, web]


def test_isolated_networks_listed_by_network(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    dockernet.container("proxy", networks=[front])
    dockernet.container("db", networks=[back])
    assert_reachable(web, "proxy")  # control: web's probes work
    dockernet.assert_isolated(front, back)


def test_alias_resolves_only_on_its_network(dockernet):
    one, two = dockernet.network("one"), dockernet.network("two")
    db = dockernet.container("db", networks={one: ["database"], two: []})
    on_one = dockernet.container("c1", networks=[one])
    on_two = dockernet.container("c2", networks=[two])

    assert_resolves(on_one, "database", to=db.ip(one))
    assert_not_resolves(on_two, "database")
    assert_resolves(on_two, "db", to=db.ip(two))
    assert_reachable(on_one, "database")


def test_custom_subnet_gateway_and_pinned_address(dockernet):
    net = dockernet.network("pinned", subnet="10.98.7.0/24", gateway="10.98.7.254")
    ipam = dockernet.client.api.inspect_network(net.id)["IPAM"]["Config"]  # the engine's word
    assert [(c["Subnet"], c["Gateway"]) for c in ipam] == [("10.98.7.0/24", "10.98.7.254")]
    fixed = dockernet.container("fixed", networks={net: {"ipv4_address": "10.98.7.42"}})
    other = dockernet.container("other", networks=[net])

    assert fixed.ip() == "10.98.7.42"
    assert other.ip().startswith("10.98.7.")
    assert_reachable(other, "fixed")
    assert_resolves(other, "fixed", to="10.98.7.42")
    assert_reachable(other, net.gateway)


def test_internal_network_members_reach_each_other_but_not_outside(dockernet):
    outside_net = dockernet.network("outside")
    outside = dockernet.container("outside", networks=[outside_net], command=HTTPD, ports={"8080/tcp": None})
    internal = dockernet.network("private", internal=True)
    assert dockernet.client.api.inspect_network(internal.id)["Internal"] is True
    a = dockernet.container("a", networks=[internal])
    b = dockernet.container("b", networks=[internal])

    assert_reachable(a, "b")
    assert_reachable(b, a, port=None)
    assert_unreachable(a, outside)
    assert_unreachable(a, outside, port=8080)
    # What an ordinary bridge reaches through its gateway (a published port) stays out of reach.
    published = int(outside.topology.client.api.port(outside.id, 8080)[0]["HostPort"])
    ordinary = dockernet.container("ordinary", networks=[dockernet.network("ordinary")])
    assert_reachable(ordinary, ordinary.networks[0].gateway, port=published)
    assert_unreachable(a, internal.gateway, port=published)


def test_host_network_container_serves_on_the_host(dockernet):
    port = free_port()
    server = dockernet.container("server", network_mode="host", command=["httpd", "-f", "-p", str(port)])
    assert server.ip() is None
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    net = dockernet.network("bridged")
    client = dockernet.container("client", networks=[net])
    assert_reachable(client, net.gateway, port=port)
    assert_reachable(client, server, port=port)  # a host-mode target is reached at the gateway


def test_host_network_handle_runs_a_container_in_the_host_namespace(dockernet):
    host = dockernet.network("h", driver="host")
    assert (host.docker_name, host.driver, host.subnet) == ("host", "host", None)
    port = free_port()
    server = dockernet.container("server", networks=[host], command=["httpd", "-f", "-p", str(port)])
    assert server.network_mode == "host"
    assert_reachable(server, "127.0.0.1", port=port)


def test_legacy_links_on_the_default_bridge(dockernet):
    db = dockernet.container("db", network_mode="bridge", command=HTTPD)
    with pytest.warns(DeprecationWarning, match="user-defined network"):
        app = dockernet.container("app", links={"db": "database"})
    assert app.network_mode == "bridge"
    assert_resolves(app, "database", to=db.ip("bridge"))
    assert_reachable(app, "database", port=8080)


@pytest.fixture(scope="session")
def shell_less_image(dockernet_session, tmp_path_factory):
    """An image with no shell and no tools: busybox as /busybox, no /bin/sh, running httpd
    (the run's own build, removed at its end)."""
    busybox, why = find_busybox(None)
    if busybox is None:
        pytest.fail(f"building the shell-less image needs a static busybox: {why}")
    context = tmp_path_factory.mktemp("shell-less")
    shutil.copy(busybox, context / "busybox")
    entrypoint = '["/busybox", "httpd", "-f", "-p", "80"]'
    (context / "Dockerfile").write_text(f"FROM scratch\nCOPY busybox /busybox\nENTRYPOINT {entrypoint}\n")
    return dockernet_session.build(context)


def test_every_helper_works_from_a_source_without_a_shell(dockernet, shell_less_image):
    net, other = dockernet.network("net"), dockernet.network("other")
    bare = dockernet.container("bare", image=shell_less_image, networks={net: ["naked"]})
    peer = dockernet.container("peer", networks=[net], command=HTTPD)
    stranger = dockernet.container("stranger", networks=[other])
    assert not bare.can_probe
    code, _ = bare.exec(["/busybox", "true"])
    assert code == 0
    code, output = bare.exec("sh -c true")
    assert code != 0, output  # really no shell in there

    assert_reachable(bare, peer)
    assert_reachable(bare, "peer", port=8080)
    assert_reachable(peer, "naked", port=80)
    assert_unreachable(bare, stranger)
    assert_resolves(bare, "peer", to=peer)
    assert_not_resolves(bare, "stranger")
    assert_isolated([bare], [stranger])
    matrix = reachability([bare], [peer, stranger])
    assert matrix[bare, peer] and not matrix[bare, stranger]
    # One sidecar served every probe of `bare`.
    sidecars = dockernet.client.api.containers(filters={"label": f"pytest-dockernet.sidecar-of={bare.id}"})
    assert [c["Id"] for c in sidecars] == [bare.sidecar_id]


def test_disconnect_and_connect(dockernet):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    b = dockernet.container("b", networks=[net], command=HTTPD)
    assert_reachable(a, "b")
    address = b.ip(net)

    dockernet.disconnect(b, net)
    assert b.networks == []
    assert_unreachable(a, address)
    assert_not_resolves(a, "b")

    dockernet.connect(b, net, aliases=["bee"])
    assert_reachable(a, "b", port=8080)
    assert_resolves(a, "bee", to=b)


def test_default_network_is_made_once_and_logical_names_resolve(dockernet):
    a = dockernet.container("a")
    b = dockernet.container("b")
    assert [n.name for n in a.networks] == [n.name for n in b.networks] == ["default"]
    assert dockernet.get_network("default").subnet
    assert_resolves(a, "b", to=b)


def test_hermetic_dns_answers_unknown_names_locally(dockernet):
    a = dockernet.container("a")
    assert_not_resolves(a, "no-such-name-anywhere")
    code, resolv = a.exec("cat /etc/resolv.conf")
    assert code == 0 and "ndots:1" in resolv and "127.0.0.11" in resolv


def test_reachability_matrix_draws_logical_names(dockernet):
    net = dockernet.network("net")
    a, b = dockernet.container("alpha", networks=[net]), dockernet.container("beta", networks=[net])
    lone = dockernet.container("lone", networks=[dockernet.network("elsewhere")])
    matrix = dockernet.reachability([a, b, lone], [a, b, lone])
    assert matrix[a, b] and matrix["beta", "alpha"]
    assert not matrix[a, lone] and not matrix[lone, b]
    assert sorted(matrix.reachable()) == [("alpha", "beta"), ("beta", "alpha")]
    drawn = str(matrix)
    for name in ("alpha", "beta", "lone"):
        assert name in drawn


def test_tcp_matrix_sees_closed_ports(dockernet):
    server = dockernet.container("server", command=HTTPD)
    client = dockernet.container("client")
    assert dockernet.reachability([client], [server], port=8080)[client, server]
    assert not dockernet.reachability([client], [server], port=9)[client, server]


def test_ipv6_network(dockernet):
    net = dockernet.network("six", ipv6=True)
    a = dockernet.container("a", networks=[net])
    b = dockernet.container("b", networks=[net])
    assert_reachable(a, b)
    code, out = a.exec(f"ip -6 addr show {a.interface(net)}")
    assert code == 0 and "fd0d:e7e7:213:" in out


def test_failure_message_shows_diagnosis_and_probe(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    db = dockernet.container("db", networks={back: ["database"]})
    # Docker 20.10 deletes and re-inserts FORWARD's jump to its isolation chains whenever it
    # makes a network (libnetwork's ensureJumpRule), so under xdist another worker's network
    # may let one ping through that moment: a few tries, for the message of one that fails.
    for _ in range(5):
        try:
            assert_reachable(web, db, timeout=0.5)
        except AssertionError as failed:
            message = str(failed)
            break
    else:
        pytest.fail("web reached db, on another network, in each of 5 tries")
    assert message.splitlines()[0] == "why: web and db share no network: web is on front, db on back"
    for expected in ("web did not reach db", "ping -c1", "exit code", db.ip(back)):
        assert expected in message, expected
    assert back.docker_name not in message  # the topology: in the report's section, once

    with pytest.raises(AssertionError, match="expected 'db' to resolve"):
        assert_resolves(web, "db", timeout=0.5)
    with pytest.raises(AssertionError, match="to be isolated"):
        both = dockernet.container("both", networks=[front, back])
        assert_isolated([web], [both])


def test_module_level_helpers_need_containers(dockernet):
    with pytest.raises(TypeError, match="src must be a Container"):
        assert_reachable("web", "db")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = dockernet.container("a")
    with pytest.raises(ValueError, match="port="):
        assert_reachable(a, a, port=70000)
    with pytest.raises(ValueError, match="timeout="):
        assert_unreachable(a, a, timeout=0)


def test_containers_start_together(dockernet):
    net = dockernet.network("net")
    started = dockernet.containers(
        {
            "web": {"networks": [net], "command": HTTPD},
            "api": {"networks": {net: ["backend"]}},
            "db": None,  # on the default network
        }
    )
    assert list(started) == ["web", "api", "db"]
    assert {c.name for c in dockernet.containers_list} == {"web", "api", "db"}
    assert [n.name for n in started["db"].networks] == ["default"]
    assert_resolves(started["web"], "backend", to=started["api"])
    assert_reachable(started["api"], "web", port=8080)


def test_containers_batch_failing_half_way_leaves_nothing(dockernet):
    from pytest_dockernet import DockernetError

    with pytest.raises(DockernetError, match="starting container 'broken' failed"):
        dockernet.containers({"fine": None, "also-fine": None, "broken": {"command": ["no-such-binary"]}})
    assert dockernet.containers_list == []
    api = dockernet.client.api
    assert api.containers(all=True, filters={"label": f"pytest-dockernet.topology={dockernet.id}"}) == []
    with pytest.raises(TypeError, match=r"containers\(\) takes a non-empty dict"):
        dockernet.containers([])
    with pytest.raises(TypeError, match=r"containers\(\)\['x'\] must be a dict"):
        dockernet.containers({"x": ["bad"]})
