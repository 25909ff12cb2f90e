"""DNS faults (``dockernet.dns_fault``): a name fails (NXDOMAIN, SERVFAIL), answers late or
resolves elsewhere from one container; other names and other containers resolve as before;
images without tools; a real application's getaddrinfo; hermetic and host DNS; restarts;
the marker form; bad input."""

from __future__ import annotations

import pytest
from faults_support import NO_SHELL

from pytest_dockernet import DnsFault
from pytest_dockernet.errors import DockernetError
from pytest_dockernet.faults import Lookup
from pytest_dockernet.labels import ROLE

pytestmark = pytest.mark.dockernet

APP_BASE = "pytest-dockernet/app-base:bookworm"  # python3 (scripts/app-base-image)
# getaddrinfo as an application calls it: the addresses, or the error's number
# (EAI_NONAME -2: the name does not exist; EAI_AGAIN -3: the server failed or did not answer).
RESOLVE = (
    "import socket, sys\n"
    "try:\n"
    "    print(' '.join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)})))\n"
    "except socket.gaierror as exc:\n"
    "    print('gaierror', exc.errno)\n"
)
NONAME, AGAIN = "gaierror -2", "gaierror -3"


def resolve(container, name: str) -> str:
    code, output = container.exec(["python3", "-c", RESOLVE, name])
    assert code == 0, output
    return output.strip()


@pytest.fixture
def app(dockernet):
    """An application container (Debian, python3) that resolves ``db`` and ``cache``, with
    a resolver that gives up after one second (a delayed answer is a timeout for it)."""
    net = dockernet.network("n")
    db = dockernet.container("db", networks=[net])
    cache = dockernet.container("cache", networks=[net])
    api = dockernet.container(
        "api",
        image=APP_BASE,
        command=["sleep", "infinity"],
        networks=[net],
        dns_opt=["timeout:1", "attempts:1"],
    )
    return api, db, cache


def test_each_mode_as_an_applications_getaddrinfo_sees_it(dockernet, app):
    api, db, cache = app
    assert resolve(api, "db") == db.ip()
    with dockernet.dns_fault(api, "db", nxdomain=True) as fault:
        assert isinstance(fault, DnsFault)
        assert resolve(api, "db") == NONAME
        assert resolve(api, "cache") == cache.ip()  # other names as before
    assert resolve(api, "db") == db.ip()
    with dockernet.dns_fault(api, "db", servfail=True):
        assert resolve(api, "db") == AGAIN
    with dockernet.dns_fault(api, "db", answer="10.1.2.3"):
        assert resolve(api, "db") == "10.1.2.3"
    with dockernet.dns_fault(api, "db", answer=cache):  # another container: its address
        assert resolve(api, "db") == cache.ip()
    with dockernet.dns_fault(api, "db", delay="3s"):
        assert resolve(api, "db") == AGAIN  # its resolver's one second ran out
        assert resolve(api, "cache") == cache.ip()
    assert resolve(api, "db") == db.ip()
    assert dockernet.faults == []


def test_other_containers_resolve_as_before(dockernet, app):
    api, db, cache = app
    other = dockernet.container("other", image=APP_BASE, command=["sleep", "infinity"], networks=api.networks)
    with dockernet.dns_fault(api, "db", nxdomain=True), dockernet.dns_fault(api, "cache", answer="10.9.9.9"):
        assert resolve(api, "db") == NONAME
        assert resolve(api, "cache") == "10.9.9.9"
        assert resolve(other, "db") == db.ip()
        assert resolve(other, "cache") == cache.ip()
        code, output = db.exec(["nslookup", "cache"])  # busybox: DNS only, another resolver
        assert code == 0 and cache.ip() in output, output


def test_proof_verify_and_the_description(dockernet, app):
    api, db, _ = app
    fault = dockernet.dns_fault(api, "db", nxdomain=True)
    assert fault.title() == f"dns fault #{fault.number} api: db nxdomain"
    lookup = fault.verify()
    assert isinstance(lookup, Lookup) and lookup.rcode == "nxdomain" and lookup.addresses == ()
    assert fault.measured is not None and fault.measured.startswith("nxdomain in ")
    assert ", measured nxdomain in " in fault.describe()
    answered = dockernet.dns_fault(api, "cache", answer=db)
    assert answered.title().endswith("api: cache -> db")
    assert answered.verify().addresses == (db.ip(),)
    six = dockernet.dns_fault(api, "six", answer="fd00::9")  # an AAAA answer; A: none
    assert six.verify().addresses == ("fd00::9",)
    assert resolve(api, "six") in (NONAME, "gaierror -5")  # no IPv4 address (EAI_NODATA on some libcs)
    six.lift()
    delayed = dockernet.dns_fault(api, "other", delay="2s", nxdomain=True)
    assert delayed.title().endswith("api: other nxdomain, delayed 2s")
    assert delayed.verify().rcode == "nxdomain"  # after the delay
    assert [f.title() for f in dockernet.faults] == [fault.title(), answered.title(), delayed.title()]
    dockernet.dns_fault(api, "db", servfail=True)  # a second fault on one name replaces the first
    assert fault.lifted and resolve(api, "db") == AGAIN


def test_rules_that_vanish_fail_the_check_naming_the_container(dockernet, app):
    api, db, _ = app
    fault = dockernet.dns_fault(api, "db", nxdomain=True)
    fault.check()
    helper = dockernet.context.faults.helpers
    code, output = helper.run(api, "iptables -w -t nat -D OUTPUT -j DN-DNS")
    assert code == 0, output
    with pytest.raises(DockernetError, match=r"dns fault #\d+ api: db nxdomain: its rules are not in force in 'api'"):
        fault.verify()
    assert resolve(api, "db") == db.ip()  # what the check saw
    fault.lift()


def test_a_fault_whose_proof_fails_leaves_nothing(dockernet, app, dockernet_client, monkeypatch):
    """The lookup right after apply does not show the fault (here: made to disagree): the
    call raises naming it, and neither the nat rules nor the responder stay."""
    api, db, _ = app
    monkeypatch.setattr(DnsFault, "_shows", lambda self, lookup, held: False)
    with pytest.raises(DockernetError, match=r"api: db nxdomain: a lookup of 'db' from 'api' did not show the fault"):
        dockernet.dns_fault(api, "db", nxdomain=True)
    assert dockernet.faults == []
    code, output = dockernet.context.faults.helpers.run(api, "iptables -w -t nat -S")
    assert code == 0 and "DN-DNS" not in output, output
    responders = dockernet_client.api.containers(
        all=True, filters={"label": [f"{ROLE}=dns-responder", dockernet.context.filters()["label"]]}
    )
    assert responders == []
    assert resolve(api, "db") == db.ip()


def test_a_target_without_any_tools(dockernet, tmp_path, dockernet_client):
    """Everything runs in helpers: a FROM-scratch target with one static binary (no shell,
    no resolver tools) gets the fault; a process of its namespace sees it."""
    (tmp_path / "Dockerfile").write_text(NO_SHELL)
    image = dockernet.build(tmp_path, buildargs={"PROBE": dockernet.probe_image})
    net = dockernet.network("n")
    bare = dockernet.container("bare", image=image, networks=[net])
    db = dockernet.container("db", networks=[net])
    with dockernet.dns_fault(bare, "db", servfail=True) as fault:
        assert fault.verify().rcode == "servfail"
        with dockernet.dns_fault(bare, "cache", answer="192.0.2.7") as answered:
            assert answered.verify().addresses == ("192.0.2.7",)
    assert fault.lifted
    (responder,) = dockernet_client.api.containers(
        filters={"label": [f"{ROLE}=dns-responder", dockernet.context.filters()["label"]]}
    )
    assert responder["HostConfig"]["NetworkMode"] == f"container:{bare.id}"
    assert db.status().startswith("running")


def test_a_restart_keeps_it_and_lift_restores(dockernet, app):
    api, db, _ = app
    fault = dockernet.dns_fault(api, "db", nxdomain=True)
    api.restart()
    assert resolve(api, "db") == NONAME  # a new namespace, a new responder
    fault.check()
    api.stop()
    api.start()
    assert resolve(api, "db") == NONAME
    fault.lift()
    assert resolve(api, "db") == db.ip()
    assert fault.describe().startswith(f"dns fault #{fault.number} api: db nxdomain, since ")


def test_lifted_while_stopped_then_a_new_fault_after_the_start(dockernet, app):
    """The last fault lifted while the container is stopped: its responder is of the old
    namespace; the next fault after the start gets a new one."""
    api, db, _ = app
    fault = dockernet.dns_fault(api, "db", nxdomain=True)
    api.stop()
    fault.lift()
    api.start()
    assert resolve(api, "db") == db.ip()
    with dockernet.dns_fault(api, "db", servfail=True):
        assert resolve(api, "db") == AGAIN


# One query over TCP, as a resolver falls back to it for a truncated answer: the rcode and
# the first answer's address (an A record's last four bytes).
TCP_QUERY = (
    "import os, socket, struct, sys\n"
    "name = b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split('.'))\n"
    "query = os.urandom(2) + struct.pack('!HHHHH', 0x0100, 1, 0, 0, 0) + name + b'\\0\\0\\1\\0\\1'\n"
    "server = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]\n"
    "with socket.create_connection((server, 53), timeout=5) as s:\n"
    "    s.sendall(struct.pack('!H', len(query)) + query)\n"
    "    size = struct.unpack('!H', s.recv(2))[0]\n"
    "    data = b''\n"
    "    while len(data) < size:\n"
    "        data += s.recv(size - len(data))\n"
    "answers = struct.unpack('!H', data[6:8])[0]\n"
    "print(data[3] & 15, socket.inet_ntoa(data[-4:]) if answers else '-')\n"
)


def test_queries_over_tcp_are_faulted_and_forwarded_too(dockernet, app):
    api, db, cache = app

    def over_tcp(name: str) -> str:
        code, output = api.exec(["python3", "-c", TCP_QUERY, name])
        assert code == 0, output
        return output.strip()

    assert over_tcp("db") == f"0 {db.ip()}"
    with dockernet.dns_fault(api, "db", nxdomain=True), dockernet.dns_fault(api, "cache", answer="10.4.4.4"):
        assert over_tcp("db") == "3 -"
        assert over_tcp("cache") == "0 10.4.4.4"
        assert over_tcp("api") == f"0 {api.ip()}"  # forwarded over TCP
    assert over_tcp("cache") == f"0 {cache.ip()}"


def test_an_answer_container_that_restarts_is_followed(dockernet, app):
    api, db, cache = app
    with dockernet.dns_fault(api, "db", answer=cache):
        cache.restart()
        assert resolve(api, "db") == cache.ip()


def test_bad_input_is_refused_naming_the_argument(dockernet, app):
    api, db, _ = app
    lonely = dockernet.container("lonely", network_mode="none")
    for kwargs, message in (
        ({"name": "bad name!", "nxdomain": True}, "name='bad name!' must be a DNS name"),
        ({"name": "db"}, "dns_fault() needs one of nxdomain=True, servfail=True, delay= or answer="),
        ({"name": "db", "nxdomain": True, "servfail": True}, "nxdomain and servfail exclude each other"),
        ({"name": "db", "delay": "soon"}, "delay='soon' must be a duration such as '2s'"),
        ({"name": "db", "answer": "db.example"}, "answer='db.example' must be an IPv4 or IPv6 address"),
        ({"name": "db", "answer": lonely}, "answer='lonely' shares no network with 'api'"),
    ):
        with pytest.raises(ValueError, match=None) as raised:
            dockernet.dns_fault(api, **kwargs)
        assert message in str(raised.value)
    with pytest.raises(TypeError, match="nxdomain must be True or False, got 'yes'"):
        dockernet.dns_fault(api, "db", nxdomain="yes")
    with pytest.raises(TypeError, match="container must be a container"):
        dockernet.dns_fault("api", "db", nxdomain=True)
    assert dockernet.faults == []
    assert resolve(api, "db") == db.ip()


INNER = """
import pytest

@pytest.fixture(scope="module")
def stack(dockernet_module):
    net = dockernet_module.network("n")
    return dockernet_module.containers({n: {"networks": [net]} for n in ("api", "db", "cache")})

def lookup(container, name):
    code, output = container.exec(["nslookup", name])
    return output

@pytest.mark.dockernet(dns_faults={"api": {"db": "nxdomain", "cache": {"answer": "db"}}})
def test_marked(stack, dockernet_module):
    api, db, cache = stack["api"], stack["db"], stack["cache"]
    assert "NXDOMAIN" in lookup(api, "db")
    assert db.ip() in lookup(api, "cache")
    assert db.ip() in lookup(cache, "db")  # another container: as before
    assert len(dockernet_module.faults) == 2

def test_lifted_afterwards(stack, dockernet_module):
    api, db = stack["api"], stack["db"]
    assert dockernet_module.faults == []
    assert db.ip() in lookup(api, "db")

def test_called(stack, dockernet_module):
    api, db = stack["api"], stack["db"]
    with dockernet_module.dns_fault(api, "db", servfail=True) as fault:
        assert fault.verify().rcode == "servfail"
        assert "SERVFAIL" in lookup(api, "db")
    assert db.ip() in lookup(api, "db")

@pytest.mark.dockernet(dns_faults={"api": {"db": "wrong"}})
def test_bad_value(stack):
    pass

@pytest.mark.dockernet(dns_faults={"api": {"db": {"nxdomain": True, "ttl": 3}}})
def test_bad_key(stack):
    pass
"""


@pytest.mark.parametrize("mode", ["hermetic", "host"])
def test_the_marker_and_both_dns_modes(inner_runs, pytester, mode):
    pytester.makepyfile(test_inner=INNER)
    result = inner_runs.run("-rf", f"--dockernet-dns={mode}")
    result.assert_outcomes(passed=3, failed=2)
    output = result.stdout.str()
    assert "dns_faults['api']['db']='wrong' must be 'nxdomain', 'servfail' or a dict of dns_fault() arguments" in output
    assert "dns_faults['api']['db'] has unknown keys ['ttl']: use nxdomain, servfail, delay, answer" in output


GIVEN = """
import pytest

def test_dns_fault(dockernet):
    net = dockernet.network("n")
    api, db = dockernet.container("api", networks=[net]), dockernet.container("db", networks=[net])
    with dockernet.dns_fault(api, "db", nxdomain=True) as fault:
        assert fault.verify().rcode == "nxdomain"
"""


@pytest.fixture
def given_images(dockernet, dockernet_client):
    """Two images for --dockernet-fault-image: the plugin's fault image (iptables, tc, no
    Python), and the same with this machine's Python as ``python3`` on its PATH and no ``nc``."""
    import io
    import uuid

    from pytest_dockernet.engine.docker_engine import DockerEngine
    from pytest_dockernet.faults.dns_image import python_image
    from pytest_dockernet.faults.image import fault_image

    engine = DockerEngine(dockernet_client)
    tools = fault_image(engine, dockernet.probe_image).tag
    with_python = python_image(engine, tools)
    tag = f"dockernet-test/faults-python:{uuid.uuid4().hex[:10]}"
    # Without nc too: the rules and lookups then go to the responder through a Python exec.
    dockerfile = f"FROM {with_python.tag}\nRUN ln -s {with_python.python} /bin/python3 && rm /bin/nc\n"
    dockernet_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    yield tools, tag
    # Only the test's own tag: the other two are the plugin's (content-addressed, kept across
    # runs as the probe image is), which other tests and xdist workers use at the same time.
    dockernet_client.images.remove(tag)


def test_a_given_fault_image_runs_the_responder_with_its_python3(inner_runs, pytester, given_images):
    tools, with_python = given_images
    pytester.makepyfile(test_given=GIVEN)
    inner_runs.run("--dockernet-require", "--dockernet-fault-image", with_python).assert_outcomes(passed=1)
    # One without Python (a CI job's tools image with a remote engine): this machine's Python then.
    inner_runs.run("--dockernet-require", "--dockernet-fault-image", tools).assert_outcomes(passed=1)


def test_without_any_python_for_the_responder_the_refusal_names_each_way(dockernet, given_images):
    """An engine that cannot run this machine's programs (Docker Desktop's host), a given
    image without python3, no registry for the public base: each way named, nothing left."""
    from pytest_dockernet.engine.docker_engine import DockerEngine
    from pytest_dockernet.errors import DriverUnavailable
    from pytest_dockernet.faults.dns_image import responder_image

    tools, _ = given_images
    engine = DockerEngine(dockernet.client)
    check = (dockernet.context.docker_name_for("dns-check-test"), dockernet.context.labels_for("dns-check", "python"))
    with pytest.raises(DriverUnavailable) as raised:
        responder_image(engine, dockernet.probe_image, tools, check, native=False)
    message = str(raised.value)
    assert f"--dockernet-fault-image {tools} has no working python3" in message, message
    assert "the Python running these tests" in message and "cannot run on the engine" in message, message
    assert "alpine" in message and "Give --dockernet-fault-image an image with python3" in message, message
    assert not dockernet.client.containers.list(all=True, filters={"name": check[0]})


def test_a_nameserver_off_the_loopback_gets_the_faulted_answer_from_its_own_address(dockernet):
    """As with Podman, whose resolv.conf names its resolver at the network's gateway: the
    redirected query goes to the loopback, and the answer must leave from there for the
    redirect to be undone; one from the container's own address is dropped by the client
    (busybox's nslookup, glibc), which then times out, while a lookup that takes any answer
    would see the fault."""
    net = dockernet.network("n")
    server = dockernet.container("server", networks=[net])  # answers nothing: never asked
    x = dockernet.container("x", network_mode="bridge", dns=[server.ip(net)])
    code, output = x.exec(["cat", "/etc/resolv.conf"])
    assert f"nameserver {server.ip(net)}" in output, output
    with dockernet.dns_fault(x, "db", answer="10.7.7.8") as fault:
        assert fault.verify().addresses == ("10.7.7.8",)
        code, output = x.exec(["nslookup", "-type=a", "db"])
        assert code == 0 and "Address: 10.7.7.8" in output, output


def test_the_default_bridge_where_resolv_conf_names_127_0_0_1(dockernet):
    """No embedded DNS there: hermetic mode's resolv.conf names 127.0.0.1, where nothing
    listens. The faulted name answers; another still fails at once (refused), not by a
    timeout."""
    x = dockernet.container("x", network_mode="bridge")
    code, output = x.exec(["cat", "/etc/resolv.conf"])
    assert "nameserver 127.0.0.1" in output, output
    with dockernet.dns_fault(x, "db", answer="10.7.7.7"):
        code, output = x.exec(["nslookup", "-type=a", "db"])
        assert code == 0 and "Address: 10.7.7.7" in output, output
        code, output = x.exec(["nslookup", "-type=a", "other"])
        assert code != 0 and "REFUSED" in output, output
