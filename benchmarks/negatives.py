"""What proving a negative costs: assert_isolated, assert_unreachable (from one container
to all n of the other network) and a reachability matrix whose cells do not answer, for
1x1, 3x3 and 10x10 containers on two networks.

    python benchmarks/negatives.py               # timeout 2 s, 3 rounds
    python benchmarks/negatives.py --timeout 1   # another timeout
    python benchmarks/negatives.py --sizes 1,3   # fewer sizes

Target (issue 15): each call takes at most its timeout plus 0.3 s, whatever the number of
pairs (all pairs and both directions probed at once; the confirmation round only runs for
an unexpected answer). Prints the median of the rounds per call and size, and a PASS/FAIL
line. Traffic goes only to the containers it makes; it removes everything it made.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_dockernet import RunIdentity, Topology  # noqa: E402
from pytest_dockernet.image import resolve_probe_image  # noqa: E402

SIZES = (1, 3, 10)
SLACK = 0.3  # seconds over the timeout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="n of each n x n, e.g. 1,3,10")
    args = parser.parse_args(argv)
    client = docker.from_env()
    image = resolve_probe_image(client).name
    timeout, rows, failed = args.timeout, [], []
    with Topology(client, identity=RunIdentity(), image=image) as topology:
        left, right = topology.network("left"), topology.network("right")
        for n in [int(size) for size in args.sizes.split(",")]:
            a = list(topology.containers({f"a{n}-{i}": {"networks": [left]} for i in range(n)}).values())
            b = list(topology.containers({f"b{n}-{i}": {"networks": [right]} for i in range(n)}).values())
            topology.reachability(a, b, timeout=timeout)  # warm: shells attached, as in a test's second probe
            calls = {
                "assert_isolated": lambda a=a, b=b: topology.assert_isolated(a, b, timeout=timeout),
                "assert_unreachable": lambda a=a, b=b: topology.assert_unreachable(a[0], b, timeout=timeout),
                "reachability": lambda a=a, b=b: topology.reachability(a, b, timeout=timeout),
            }
            for call, run in calls.items():
                samples = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    result = run()
                    samples.append(time.perf_counter() - started)
                    if call == "reachability" and result.reachable():  # type: ignore[union-attr]
                        raise SystemExit(f"two isolated networks reached each other: {result}")
                median = statistics.median(samples)
                rows.append((call, f"{n}x{n}", median))
                if median > timeout + SLACK:
                    failed.append(f"{call} {n}x{n}")
    print(f"timeout {timeout:g} s; the median of {args.rounds} rounds")
    print(f"{'call':<20} {'size':>6} {'seconds':>8} {'over timeout':>13}")
    for call, size, median in rows:
        print(f"{call:<20} {size:>6} {median:>8.2f} {median - timeout:>+13.2f}")
    verdict = "FAIL" if failed else "PASS"
    print(
        f"target (each call <= timeout + {SLACK:g} s at every size): {verdict}"
        + (f" ({', '.join(failed)})" if failed else "")
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
