"""What --dockernet-capture costs a passing test: whole pytest processes running the same
suite of passing tests with capture off and on, in turns.

    python benchmarks/capture.py              # 10 tests per run, 3 runs each way
    python benchmarks/capture.py --quick      # 4 tests, 1 run each way: does it work at all

Each test makes two networks and three containers and probes one path, as a test of the
plugin's typical size does; with capture on, each network gets its sidecar. A first run
with capture on, not counted, builds the sidecars' image and probes the engine once.
Prints each run's wall time, the medians and their ratio, and the extra cost per test:
the median over the rounds of (run with capture - the run without, just before it) over
the number of tests, which a machine busy with other work disturbs less than a difference
of medians. Beside it, the time the tests waited for their tcpdumps (the summary's
``capture`` phase) and the time each test took by pytest's own count (its phases, from
the JUnit XML). A PASS/FAIL line against the target: under 150 ms per passing test.
Traffic goes only to the containers the tests make; the runs remove everything they made.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

TARGET = 0.150  # seconds of extra cost per passing test

TEST = """
def test_path_{n}(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    api = dockernet.container("api", networks=[front, back])
    dockernet.container("web", networks=[front])
    dockernet.container("db", networks=[back])
    dockernet.assert_reachable(api, "db", port=None)
"""


def run(folder: Path, capture: bool, tests: int) -> tuple[float, float, float]:
    """One pytest process over the suite: (wall seconds, seconds the tests took by pytest's
    count, seconds they waited for capture)."""
    report = folder / "junit.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--dockernet-require"]
    command += [f"--junitxml={report}", *(["--dockernet-capture"] if capture else [])]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120 + 30 * tests)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the suite failed (capture {'on' if capture else 'off'}):\n{done.stdout[-3000:]}")
    cases = ET.parse(report).getroot().iter("testcase")
    waited = re.search(r"^time: .*\bcapture ([0-9.]+) s", done.stdout, re.M)
    return wall, sum(float(case.get("time", 0)) for case in cases), float(waited.group(1)) if waited else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=10, help="passing tests per run (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="runs each way, in turns (default 5)")
    parser.add_argument("--quick", action="store_true", help="4 tests, 1 run each way")
    args = parser.parse_args(argv)
    tests, runs = (4, 1) if args.quick else (args.tests, args.runs)
    with tempfile.TemporaryDirectory(prefix="dockernet-bench-capture-") as tmp:
        folder = Path(tmp)
        (folder / "test_suite.py").write_text("".join(TEST.format(n=n) for n in range(tests)))
        (folder / "pytest.ini").write_text("[pytest]\n")
        run(folder, True, tests)  # the sidecars' image, the engine's capability: once, not counted
        samples: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for _ in range(runs):
            for capture in (False, True):
                samples[capture].append(run(folder, capture, tests))
                wall, inside, _ = samples[capture][-1]
                said = "on " if capture else "off"
                print(f"capture {said}: {wall:6.2f} s for {tests} tests ({inside:.2f} s in them)")
    off, on = (statistics.median(s[0] for s in samples[c]) for c in (False, True))
    extra = statistics.median(b[0] - a[0] for a, b in zip(samples[False], samples[True])) / tests
    counted = statistics.median(b[1] - a[1] for a, b in zip(samples[False], samples[True])) / tests
    waited = statistics.median(s[2] for s in samples[True]) / tests
    print(f"median per run: off {off:.2f} s, on {on:.2f} s (ratio {on / off:.2f})")
    print(f"extra per passing test: {extra * 1000:.0f} ms (median of the rounds' differences)")
    print(f"  by pytest's count: {counted * 1000:.0f} ms; waiting for tcpdumps: {waited * 1000:.0f} ms")
    verdict = "PASS" if extra < TARGET else "FAIL"
    print(f"target (extra per passing test < {TARGET * 1000:.0f} ms): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
