"""How fast a fault takes effect: partition() and degrade() on containers whose fault
helpers already run (the first fault on a container starts its helper; later ones reuse it).

    python benchmarks/faults.py              # 20 rounds
    python benchmarks/faults.py --rounds 5   # a smoke run

Each call returns once its rules are in place (partition() checks the chain lists one rule
per peer), so the call's time is the time to effect. Prints min/median/max per kind, the
one-off cost of a helper's start, and a PASS/FAIL line against the target: median under
150 ms. Traffic goes only to the containers it makes; it removes everything it made.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_dockernet import RunIdentity, Topology, assert_unreachable  # noqa: E402
from pytest_dockernet.image import resolve_probe_image  # noqa: E402

TARGET = 0.150  # seconds, median


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    client = docker.from_env()
    image = resolve_probe_image(client).name
    results: dict[str, list[float]] = {"partition": [], "heal": [], "degrade (loss)": [], "restore": []}
    with Topology(client, identity=RunIdentity(), image=image) as topology:
        net = topology.network("bench")
        a, b = topology.containers({"a": {"networks": [net]}, "b": {"networks": [net]}}).values()
        first = timed(lambda: topology.partition(a, b).heal())  # starts a's helper
        for _ in range(args.rounds):
            started = time.perf_counter()
            partition = topology.partition(a, b)
            results["partition"].append(time.perf_counter() - started)
            results["heal"].append(timed(partition.heal))
            started = time.perf_counter()
            degradation = topology.degrade(a, loss=0.5)
            results["degrade (loss)"].append(time.perf_counter() - started)
            results["restore"].append(timed(degradation.restore))
        with topology.partition(a, b):
            assert_unreachable(a, b, timeout=1)  # the effect is real, not just the call
    print(f"first fault on a container (starts its helper): {first * 1000:.0f} ms")
    print(f"{'fault':<16} {'n':>3} {'min ms':>8} {'median ms':>10} {'max ms':>8}")
    for kind, samples in results.items():
        print(
            f"{kind:<16} {len(samples):>3} {min(samples) * 1000:>8.1f} {statistics.median(samples) * 1000:>10.1f} "
            f"{max(samples) * 1000:>8.1f}"
        )
    worst = max(statistics.median(results["partition"]), statistics.median(results["degrade (loss)"]))
    verdict = "PASS" if worst < TARGET else "FAIL"
    print(
        f"target (partition and degrade median < {TARGET * 1000:.0f} ms): {verdict} "
        f"(worst median {worst * 1000:.1f} ms)"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
