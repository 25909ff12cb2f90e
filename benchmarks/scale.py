"""Scale and soak: many networks alive at once, and a long loop of topologies.

    python benchmarks/scale.py                 # 200 networks, 200 topologies
    python benchmarks/scale.py --networks 5 --loops 2   # a smoke run

1. ``--networks N`` plugin networks alive at once on one engine (the engine's own address
   pools give out about 29): prints the create time of the first and last tenth, the
   allocator's own cost per grant at both ends (it must stay flat: it never lists the
   engine's networks again), and that no pool error occurred.
2. ``--loops N`` topologies (1 network, 3 containers started together, all-pairs ICMP,
   teardown), then checks that nothing of them is left (labelled containers and networks,
   their bridge interfaces, iptables rules naming their subnets or bridges) and compares
   the whole engine with how it was before: containers, networks, bridge interfaces and
   iptables rules back where they started (``--own-only`` skips that comparison, for
   runs that share the engine with other work, e.g. the test suite under xdist).

3. ``--memory N``: one pytest session (a process of its own, the plugin as users load it)
   whose session-scoped ``dockernet_session`` holds N networks and N containers alive at
   once (one on each, probed once); prints the process's peak RSS (``VmHWM``) and judges it
   against ``--max-rss`` (150 MB). ``--memory 0`` skips it.

Exits non-zero when a check fails. Traffic goes only to the containers it makes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_dockernet import DockernetError, RunIdentity, Topology, reachability  # noqa: E402
from pytest_dockernet.engine import engine_subnets  # noqa: E402
from pytest_dockernet.image import resolve_probe_image  # noqa: E402
from pytest_dockernet.subnets import SubnetAllocator  # noqa: E402


def engine_state(client: docker.DockerClient) -> dict[str, int]:
    bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return {
        "containers": len(client.api.containers(all=True)),
        "networks": len(client.api.networks()),
        "bridge interfaces": sum(1 for line in bridges.splitlines() if ": br-" in line),
        "iptables rules": sum(1 for line in rules.splitlines() if line.startswith("-A")),
    }


def many_networks(client: docker.DockerClient, image: str, count: int) -> bool:
    allocator = SubnetAllocator(taken=engine_subnets(client))
    grant_costs: list[float] = []
    original = allocator.candidates

    def timed_candidates():
        generator = original()
        while True:
            started = time.perf_counter()
            try:
                subnet = next(generator)
            except StopIteration:
                return
            grant_costs.append(time.perf_counter() - started)
            yield subnet

    allocator.candidates = timed_candidates  # type: ignore[method-assign]
    creates: list[float] = []
    pool_error = None
    with Topology(client, image=image, allocator=allocator, label="scale") as topology:
        for i in range(count):
            started = time.perf_counter()
            try:
                topology.network(f"n{i}")
            except DockernetError as exc:  # the engine's pools or ours ran dry: the claim fails
                pool_error = str(exc)
                break
            creates.append(time.perf_counter() - started)
        alive = len(client.api.networks(filters={"label": f"pytest-dockernet.topology={topology.id}"}))
        started = time.perf_counter()
    removal = time.perf_counter() - started
    tenth = max(1, len(creates) // 10)
    print(
        f"networks alive at once: {alive} of {count} ({'pool error: ' + pool_error if pool_error else 'no pool error'})"
    )
    if not creates:
        return False
    print(
        f"network create, median: first tenth {statistics.median(creates[:tenth]) * 1000:.0f} ms, "
        f"last tenth {statistics.median(creates[-tenth:]) * 1000:.0f} ms"
    )
    first, last = statistics.median(grant_costs[:tenth]), statistics.median(grant_costs[-tenth:])
    print(f"allocator cost per grant, median: first tenth {first * 1e6:.0f} us, last tenth {last * 1e6:.0f} us")
    print(f"removing all {count}: {removal:.1f} s")
    return alive == count


def leftovers(client: docker.DockerClient, identity: RunIdentity, networks: dict[str, str]) -> list[str]:
    """What is left of this run's topologies: networks is {network id: subnet}."""
    label = {"label": f"pytest-dockernet.session={identity.run_id}"}
    found = [f"container {c['Names'][0]}" for c in client.api.containers(all=True, filters=label)]
    found += [f"network {n['Name']}" for n in client.api.networks(filters=label)]
    bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    for network_id, subnet in networks.items():
        bridge = f"br-{network_id[:12]}"
        found += [f"bridge {bridge}" for line in bridges.splitlines() if f": {bridge}:" in line]
        found += [f"iptables rule {line}" for line in rules.splitlines() if bridge in line or subnet in line]
    return found


def loop_topologies(client: docker.DockerClient, image: str, loops: int, own_only: bool = False) -> bool:
    allocator = SubnetAllocator(taken=engine_subnets(client))
    identity = RunIdentity()
    before = engine_state(client)
    durations = []
    made_networks: dict[str, str] = {}
    for i in range(loops):
        started = time.perf_counter()
        with Topology(client, identity=identity, image=image, allocator=allocator, label=f"loop-{i}") as topology:
            net = topology.network("net")
            made_networks[net.id] = net.subnet
            made = topology.containers({name: {"networks": [net]} for name in ("a", "b", "c")})
            matrix = reachability(list(made.values()), list(made.values()))
            if matrix.unreachable():
                print(f"loop {i}: unexpected unreachable pairs {matrix.unreachable()}")
                return False
        durations.append(time.perf_counter() - started)
    after = engine_state(client)
    print(
        f"{loops} topologies: median {statistics.median(durations):.2f} s each "
        f"(min {min(durations):.2f}, max {max(durations):.2f})"
    )
    left = leftovers(client, identity, made_networks)
    print(f"  left of its {loops} topologies: {len(left)}  {'ok' if not left else 'LEFT'}")
    for line in left[:20]:
        print(f"    {line}")
    same = not left
    for key in before:
        changed = before[key] != after[key]
        mark = "ok" if not changed else "changed (not judged: --own-only)" if own_only else "CHANGED"
        same &= own_only or not changed
        print(f"  {key}: before {before[key]}, after {after[key]}  {mark}")
    return same


MEMORY_TEST = """
    import pytest

    COUNT = {count}


    @pytest.fixture(scope="session")
    def alive(dockernet_session):
        nets = [dockernet_session.network(f"n{{i}}") for i in range(COUNT)]
        batch = 20  # started together, as a suite's topologies would be
        made = []
        for start in range(0, COUNT, batch):
            specs = {{f"c{{i}}": {{"networks": [nets[i]]}} for i in range(start, min(start + batch, COUNT))}}
            made += dockernet_session.containers(specs).values()
        return nets, made


    @pytest.mark.parametrize("i", range(0, COUNT, max(1, COUNT // 10)))
    def test_alive(alive, i):
        nets, made = alive
        assert len(nets) == len(made) == COUNT
        assert made[i].ip(nets[i])
        made[i].topology.assert_reachable(made[i], made[i].ip(nets[i]))
"""

MEMORY_CONFTEST = """
    import os
    from pathlib import Path


    def pytest_unconfigure(config):
        status = Path("/proc/self/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        Path(os.environ["DOCKERNET_SCALE_RSS"]).write_text(peak)  # kB
"""


def memory(count: int, max_rss_mb: float) -> bool:
    """A pytest session holding ``count`` networks and ``count`` containers: its peak RSS."""
    with tempfile.TemporaryDirectory(prefix="dockernet-scale-") as tmp:
        Path(tmp, "test_alive.py").write_text(textwrap.dedent(MEMORY_TEST.format(count=count)))
        Path(tmp, "conftest.py").write_text(textwrap.dedent(MEMORY_CONFTEST))
        out = Path(tmp, "rss")
        env = {**os.environ, "DOCKERNET_SCALE_RSS": str(out), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--dockernet-require"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        took = time.perf_counter() - started
        if done.returncode != 0 or not out.exists():
            print(f"memory: the session failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
            return False
        peak_mb = int(out.read_text()) / 1024
    ok = peak_mb < max_rss_mb
    print(
        f"memory: {count} networks and {count} containers alive in one pytest session ({took:.0f} s): "
        f"peak RSS {peak_mb:.0f} MB (< {max_rss_mb:.0f} MB)  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--own-only", action="store_true", help="judge only what the loop itself left")
    parser.add_argument("--memory", type=int, default=200, help="networks and containers of the memory part (0: skip)")
    parser.add_argument("--max-rss", type=float, default=150.0, help="the memory part's bound, MB")
    args = parser.parse_args(argv)
    client = docker.from_env()
    image = resolve_probe_image(client).name
    before = engine_state(client)  # the baseline is taken before anything of this run exists
    ok = many_networks(client, image, args.networks)
    after = engine_state(client)
    for key in before:
        changed = before[key] != after[key]
        ok &= args.own_only or not changed
        mark = "ok" if not changed else "changed (not judged: --own-only)" if args.own_only else "CHANGED"
        print(f"  after the {args.networks} networks, {key}: before {before[key]}, after {after[key]}  {mark}")
    ok &= loop_topologies(client, image, args.loops, args.own_only)
    if args.memory:
        ok &= memory(args.memory, args.max_rss)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
