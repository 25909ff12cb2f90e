"""The per-test topology with pytest-docker-tools: its network and container fixture factories."""

import pytest
from benchenv import IMAGE, KEEPALIVE, LABELS, LOOKUPS, PAIRS, TESTS, name, resolved
from pytest_docker_tools import container, network

bench_net = network(labels=LABELS)
a = container(image=IMAGE, name=name("pdt", "a"), command=KEEPALIVE, network="{bench_net.name}", labels=LABELS)
b = container(image=IMAGE, name=name("pdt", "b"), command=KEEPALIVE, network="{bench_net.name}", labels=LABELS)
c = container(image=IMAGE, name=name("pdt", "c"), command=KEEPALIVE, network="{bench_net.name}", labels=LABELS)


@pytest.mark.parametrize("i", range(TESTS))
def test_topology(i, a, b, c):
    cs = {"a": a, "b": b, "c": c}
    for src, dst in PAIRS:
        code, output = cs[src].exec_run(["ping", "-c1", "-W1", cs[dst].name])
        assert code == 0, output
    for src, dst in LOOKUPS:
        code, output = cs[src].exec_run(["nslookup", cs[dst].name])
        assert code == 0 and resolved(output.decode(), cs[dst].ips.primary), output
