"""The per-test topology with testcontainers-python: Network() and DockerContainer()."""

from contextlib import ExitStack

import pytest
from benchenv import IMAGE, KEEPALIVE, LABELS, LOOKUPS, NAMES, PAIRS, TESTS, name, resolved
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network


@pytest.mark.parametrize("i", range(TESTS))
def test_topology(i):
    with Network(docker_network_kw={"labels": LABELS}) as net, ExitStack() as stack:
        cs = {
            n: stack.enter_context(
                DockerContainer(IMAGE)
                .with_name(name("tc", n))
                .with_command(KEEPALIVE)
                .with_network(net)
                .with_kwargs(labels=LABELS)
            )
            for n in NAMES
        }
        for src, dst in PAIRS:
            code, output = cs[src].exec(["ping", "-c1", "-W1", name("tc", dst)])
            assert code == 0, output
        for src, dst in LOOKUPS:
            cs[dst].reload()
            ip = cs[dst].get_wrapped_container().attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
            code, output = cs[src].exec(["nslookup", name("tc", dst)])
            assert code == 0 and resolved(output.decode(), ip), output
