"""Fail fast or time out, and ports (issue 25): ``partition(mode="reject")`` answers TCP with a
reset and the rest with ICMP port unreachable, so a client fails at once where a drop makes
it wait out its timeout (told apart by the client's own words, never by a stopwatch);
``partition(ports=[...])`` cuts only connections to those ports, TCP and UDP, both ways or
one way, while ping and other ports pass; verified and described; bad input refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest
from faults_support import host_rules, ipv6_of

from pytest_dockernet import assert_reachable, assert_unreachable
from pytest_dockernet.faults.partition import Connections

pytestmark = pytest.mark.dockernet

ROOT = Path(__file__).resolve().parent.parent
BASE = "pytest-dockernet/app-base:bookworm"
NO_HEALTHCHECK = {"test": ["NONE"]}
PG_READY = {"test": "pg_isready -q -h 127.0.0.1 -U postgres", "interval": 0.5, "timeout": 2, "retries": 120}
# A UDP echo server on 5353 (the client's); an HTTP server on 8000 beside PostgreSQL on 5432.
UDP_ECHO = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 5353))\nwhile True:\n"
UDP_ECHO += "    data, peer = s.recvfrom(100)\n    s.sendto(data, peer)\n"
SERVERS = "python3 -m http.server 8000 >/dev/null 2>&1 & exec /app/start-postgres"
# One datagram from the database to the client's echo: its words for the answer, a refusal
# (ICMP port unreachable: ECONNREFUSED) or silence. Asked from the side without the rules:
# on the side with them, a datagram its own rules drop or reject fails at once with EPERM
# either way (Linux's answer to a local drop), so the two modes look alike there.
UDP_ASK = (
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(3)\n"
    "s.connect(('client', 5353))\ntry:\n    s.send(b'hello')\n    print('echo', s.recv(100))\n"
    "except PermissionError:\n    print('not permitted')\nexcept ConnectionRefusedError:\n    print('refused')\n"
    "except socket.timeout:\n    print('timed out')\n"
)
PSQL = "PGCONNECT_TIMEOUT=3 psql -h database -U postgres -tAc 'select 40 + 2' 2>&1"
BOTH = ["sh", "-c", "httpd -p 5432 && exec httpd -f -p 80"]  # busybox: listeners on 5432 and 80


@pytest.fixture(scope="module")
def app_image(dockernet_client: docker.DockerClient, dockernet_session) -> str:
    """examples/app (PostgreSQL, python3), built once for the run from the local base."""
    try:
        dockernet_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "scripts" / "app-base-image")], check=True)
    return dockernet_session.build(ROOT / "examples" / "app", buildargs={"BASE": BASE})


@pytest.fixture
def stack(dockernet, app_image):
    """A client and a real PostgreSQL (with a UDP echo and an HTTP server beside it)."""
    net = dockernet.network("back")
    database = dockernet.container(
        "database",
        image=app_image,
        command=["sh", "-c", SERVERS],
        user="postgres",
        networks=[net],
        healthcheck=PG_READY,
        ready="healthy",
    )
    client = dockernet.container(
        "client", image=app_image, command=["python3", "-c", UDP_ECHO], networks=[net], healthcheck=NO_HEALTHCHECK
    )
    assert psql(client) == "42"
    return client, database


def psql(client) -> str:
    return client.exec(["sh", "-c", PSQL])[1].strip()


def udp(database) -> str:
    return database.exec(["python3", "-c", UDP_ASK])[1].strip()


def nc(src, dst: str, port: int) -> str:
    """busybox nc's words for one connect with a 3 s timeout: "" when it connected."""
    code, output = src.exec(["sh", "-c", f"nc -w 3 {dst} {port} </dev/null"])
    return "" if code == 0 else output.strip()


def test_reject_refuses_postgres_at_once_where_drop_waits_out_the_clients_timeout(dockernet, stack):
    client, database = stack
    for _ in range(20):  # the echo server starts with the client: asked until it answers
        if udp(database) == "echo b'hello'":
            break
    assert udp(database) == "echo b'hello'"
    with dockernet.partition(client, database, mode="reject") as rejecting:
        assert "Connection refused" in psql(client), psql(client)
        assert udp(database) == "refused"  # ICMP port unreachable, not the 3 s timeout
        assert "partition #1 [client] | [database], reject" in dockernet.describe()
    assert rejecting.healed and psql(client) == "42"
    with dockernet.partition(client, database):
        answer = psql(client)
        assert "timeout expired" in answer and "refused" not in answer, answer
        assert udp(database) == "timed out"
    assert psql(client) == "42" and udp(database) == "echo b'hello'"


def test_reject_answers_both_sides_and_one_way_only_what_a_starts(dockernet, three):
    a, b, c = three
    with dockernet.partition(a, b, mode="reject"):
        assert "Connection refused" in nc(a, "b", 80)
        assert "Connection refused" in nc(b, "a", 80)  # b's SYN gets a's reset
        assert nc(a, "c", 80) == "" and nc(c, "b", 80) == ""
        assert_unreachable(b, a)  # ping: ICMP port unreachable instead of an echo reply
    with dockernet.partition(a, b, one_way=True, mode="reject") as one_way:
        assert "Connection refused" in nc(a, "b", 80)
        assert nc(b, "a", 80) == ""
        assert_reachable(b, a)
        assert one_way.title() == "partition #2 [a] -> [b], reject"
    with dockernet.partition(a, b):
        assert nc(a, "b", 80) == "nc: timed out"
        assert nc(b, "a", 80) == "nc: timed out"
    assert host_rules() == []


def test_a_port_partition_blocks_postgres_and_leaves_ping_and_another_port_open(dockernet, stack):
    client, database = stack
    with dockernet.partition(client, database, ports=[5432]) as cut:
        assert "timeout expired" in psql(client)
        assert_reachable(client, database)  # ping
        assert_reachable(client, database, port=8000)
        assert_reachable(database, client)
        assert cut.title() == "partition #1 [client] | [database], drop, ports 5432"
    assert psql(client) == "42"
    with dockernet.partition(client, database, ports=[5432, 5353], mode="reject"):
        assert "Connection refused" in psql(client)
        assert udp(database) == "refused"  # UDP to a listed port of the client's too
        assert_reachable(client, database, port=8000)
    assert psql(client) == "42"


def test_ports_cut_both_directions_and_one_way_only_a_to_bs_ports(dockernet):
    net = dockernet.network("n")
    a, b, c = (dockernet.container(name, networks=[net], command=BOTH) for name in "abc")
    with dockernet.partition(a, b, ports=[5432]):
        assert nc(a, "b", 5432) == "nc: timed out"
        assert nc(b, "a", 5432) == "nc: timed out"  # b to a's 5432: a's replies are cut too
        assert nc(a, "b", 80) == "" and nc(b, "a", 80) == ""
        assert nc(a, "c", 5432) == "" and nc(c, "a", 5432) == ""
        assert_reachable(a, b)
        assert_reachable(b, a)
    with dockernet.partition(a, b, one_way=True, ports=[5432]):
        assert nc(a, "b", 5432) == "nc: timed out"
        assert nc(b, "a", 5432) == ""  # b to a's 5432 passes one way
        assert nc(a, "b", 80) == ""
    with dockernet.partition(a, b, one_way=True, ports=[5432], mode="reject"):
        assert "Connection refused" in nc(a, "b", 5432)
        assert nc(b, "a", 5432) == "" and nc(a, "b", 80) == ""
    assert [nc(a, "b", 5432), nc(b, "a", 5432)] == ["", ""]


def test_verify_measures_the_cut_and_the_report_says_so(dockernet, three):
    a, b, _ = three
    partition = dockernet.partition(a, b, mode="reject")
    measured = partition.verify()
    assert measured.sent == 20 and measured.loss == 1.0
    assert "partition #1 [a] | [b], reject, since " in dockernet.describe()
    assert "measured loss 1.0" in dockernet.describe()
    partition.heal()
    ports = dockernet.partition(a, b, ports=[8080])  # nothing listens there: verify() listens itself
    connections = ports.verify()
    assert connections == Connections(port=8080, sent=5, received=0) and connections.loss == 1.0
    assert "partition #2 [a] | [b], drop, ports 8080, since " in dockernet.describe()
    assert "measured loss 1.0 on port 8080" in dockernet.describe()
    ports.heal()
    assert b.exec(["sh", "-c", "ps | grep -c '[n]c -ll'"])[1].strip() == "0"  # the listener is gone


BAD = [
    ({"mode": "block"}, ValueError, r"mode='block' must be 'drop' \(packets vanish"),
    ({"ports": [0]}, ValueError, r"ports=\[0\] must be a non-empty list of port numbers \(1-65535\)"),
    ({"ports": "5432"}, ValueError, r"ports='5432' must be a non-empty list of port numbers"),
    ({"ports": []}, ValueError, r"ports=\[\] must be a non-empty list"),
    ({"ports": list(range(1, 17))}, ValueError, r"at most 15 ports per partition"),
]


@pytest.mark.parametrize("arguments, error, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_modes_and_ports_are_refused_before_anything(dockernet, three, arguments, error, message):
    a, b, _ = three
    with pytest.raises(error, match=message):
        dockernet.partition(a, b, **arguments)
    assert dockernet.faults == []
    assert_reachable(a, b, port=80)


@pytest.fixture(scope="module")
def pair(dockernet_module):
    net = dockernet_module.network("n")
    return dockernet_module.containers({n: {"networks": [net], "command": BOTH} for n in ("web", "db")})


@pytest.mark.dockernet(partition={"groups": [["web"], ["db"]], "mode": "reject", "ports": [5432]})
def test_the_markers_dict_form_takes_mode_and_ports(pair, dockernet_module):
    (partition,) = dockernet_module.faults
    assert partition.title() == "partition #1 [web] | [db], reject, ports 5432"
    assert "Connection refused" in nc(pair["web"], "db", 5432)
    assert nc(pair["web"], "db", 80) == ""


def test_the_markers_faults_are_lifted_afterwards(pair, dockernet_module):
    assert dockernet_module.faults == []
    assert nc(pair["web"], "db", 5432) == ""


def why(excinfo) -> str:
    return next(line for line in str(excinfo.value).splitlines() if line.startswith("why: "))


def test_a_failure_names_a_port_partition_for_its_ports_only(dockernet):
    net = dockernet.network("n")
    a, b = (dockernet.container(name, networks=[net], command=BOTH) for name in "ab")
    with dockernet.partition(a, b, ports=[5432]):
        with pytest.raises(AssertionError) as cut:
            assert_reachable(a, b, port=5432, timeout=1)
        assert why(cut).startswith("why: partition #1 [a] | [b], drop, ports 5432 (in force since "), why(cut)
        with pytest.raises(AssertionError) as elsewhere:
            assert_reachable(a, b, port=81, timeout=1)  # nothing listens there: not the partition's doing
        assert "partition" not in why(elsewhere), why(elsewhere)


def test_reject_and_ports_cover_ipv6(dockernet, three6):
    net, (a, b, c) = three6
    with dockernet.partition(a, b, mode="reject"):
        assert "Connection refused" in nc(a, ipv6_of(b, net), 80)
        assert "Connection refused" in nc(b, ipv6_of(a, net), 80)  # a's reset, over ICMPv6's rules
        assert nc(a, ipv6_of(c, net), 80) == ""
    with dockernet.partition(a, b, ports=[80]):
        assert nc(a, ipv6_of(b, net), 80) == "nc: timed out"
        assert_reachable(a, ipv6_of(b, net))  # ping6 passes
    assert nc(a, ipv6_of(b, net), 80) == ""
