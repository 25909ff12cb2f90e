"""The per-test topology with the Docker SDK, done as fast as it goes by hand: containers
started and removed in threads, one exec per source probing all its targets at once."""

import shlex
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
from benchenv import IMAGE, KEEPALIVE, LABELS, LOOKUPS, NAMES, PAIRS, RUN, TESTS, name, resolved


@pytest.fixture(scope="session")
def client():
    client = docker.from_env()
    yield client
    client.close()


def probe_all(container, pings: list[str], lookups: list[str]) -> str:
    """Every ping and lookup of one source, concurrently, in one exec."""
    parts = [f"ping -c1 -W1 {shlex.quote(t)} >/dev/null 2>&1 && echo PING-OK {t} &" for t in pings]
    parts += [f"echo NS {t} $(nslookup {shlex.quote(t)} 2>&1) &" for t in lookups]
    code, output = container.exec_run(["sh", "-c", "\n".join(parts) + "\nwait"])
    return output.decode()


@pytest.mark.parametrize("i", range(TESTS))
def test_topology(client, i):
    net = client.networks.create(f"dnb-{RUN}-sdkt-net", labels=LABELS)
    cs = {}
    try:
        with ThreadPoolExecutor(len(NAMES)) as pool:

            def run(n):
                cs[n] = client.containers.run(
                    IMAGE, KEEPALIVE, name=name("sdkt", n), network=net.name, labels=LABELS, detach=True
                )

            list(pool.map(run, NAMES))
            ips = {}
            for n, c in cs.items():
                c.reload()
                ips[n] = c.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]

            def probe(src):
                pings = [name("sdkt", d) for s, d in PAIRS if s == src]
                lookups = [name("sdkt", d) for s, d in LOOKUPS if s == src]
                return src, probe_all(cs[src], pings, lookups)

            for src, output in pool.map(probe, NAMES):
                for s, d in PAIRS:
                    if s == src:
                        assert f"PING-OK {name('sdkt', d)}" in output, output
                for s, d in LOOKUPS:
                    if s == src:
                        line = next(x for x in output.splitlines() if x.startswith(f"NS {name('sdkt', d)} "))
                        assert resolved(line, ips[d]), output
    finally:
        with ThreadPoolExecutor(len(NAMES) + 1) as pool:
            list(pool.map(lambda c: c.remove(force=True), cs.values()))
        net.remove()
