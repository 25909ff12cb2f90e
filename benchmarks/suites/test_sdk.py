"""The per-test topology with the Docker SDK alone, one step after the other."""

import docker
import pytest
from benchenv import IMAGE, KEEPALIVE, LABELS, LOOKUPS, NAMES, PAIRS, RUN, TESTS, name, resolved


@pytest.fixture(scope="session")
def client():
    client = docker.from_env()
    yield client
    client.close()


@pytest.mark.parametrize("i", range(TESTS))
def test_topology(client, i):
    net = client.networks.create(f"dnb-{RUN}-sdk-net", labels=LABELS)
    cs = {}
    try:
        for n in NAMES:
            cs[n] = client.containers.run(
                IMAGE, KEEPALIVE, name=name("sdk", n), network=net.name, labels=LABELS, detach=True
            )
        for src, dst in PAIRS:
            code, output = cs[src].exec_run(["ping", "-c1", "-W1", name("sdk", dst)])
            assert code == 0, output
        for src, dst in LOOKUPS:
            cs[dst].reload()
            ip = cs[dst].attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
            code, output = cs[src].exec_run(["nslookup", name("sdk", dst)])
            assert code == 0 and resolved(output.decode(), ip), output
    finally:
        for c in cs.values():
            c.remove(force=True)
        net.remove()
