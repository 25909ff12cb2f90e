"""Scenario 6 of run.py (issue 26): one, five and twenty tests as whole pytest processes.

What a developer waits for when they run a test, measured from outside: the wall time of
the whole `pytest` process (interpreter and pytest start, plugin import, the run's own
start, the tests, teardown, and whatever runs after the summary line until the process
exits), for pytest-dockernet and both peers, in the same benchmark run. Nothing is
subtracted. The twenty-test runs are scenario 3's (pytest-dockernet, pytest-docker-tools);
the peers run their suites as in scenario 1.

Targets (issue 26): pytest-dockernet's median at most 0.6 × pytest-docker-tools' for one
test, 0.25 × for five, 0.2 × for twenty (the suite size, ``--suite``). ``--quick`` runs one
test and the suite size (2) only: no five-test runs, and the verdicts mean nothing there.
"""

from __future__ import annotations

from harness import TOOLS, Row, SuiteRun, judge, median

PEERS = ("pdt", "tc")
BASE = "pdt"  # the targets are against pytest-docker-tools
ISSUE_26 = {"one": 0.6, "five": 0.25, "suite": 0.2}  # pytest-dockernet / pytest-docker-tools, at most


def sizes(args) -> dict[int, str]:
    """The run sizes, each with its target's name."""
    chosen = {1: "one"} if args.quick else {1: "one", 5: "five"}
    chosen.setdefault(args.suite, "suite")
    return chosen


def jobs(args, peers: bool, planned: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The (tool, tests, workers) runs this scenario needs that run.py does not run already."""
    tools = ["dockernet", *(PEERS if peers else ())]
    return [(t, n, 0) for n in sizes(args) for t in tools if (t, n, 0) not in planned]


def of(runs: list[SuiteRun], tool: str, tests: int) -> list[SuiteRun]:
    return [r for r in runs if r.tool == tool and r.workers == 0 and r.tests == tests]


def walls(runs: list[SuiteRun], tool: str, tests: int) -> list[float]:
    return [r.wall for r in of(runs, tool, tests)]


def report(args, runs: list[SuiteRun], peers: bool) -> tuple[list[Row], list[str]]:
    """The rows of scenario 6 and its target lines."""
    rows: list[Row] = []
    targets: list[str] = []
    for n, role in sizes(args).items():
        scenario = f"6 whole process, {n} test{'s' if n > 1 else ''}"

        dn = Row(scenario, "pytest-dockernet", walls(runs, "dockernet", n))
        rows.append(dn)
        limit = ISSUE_26[role]
        what = {"one": "one test", "five": "five tests", "suite": f"{n} tests"}[role]
        if not peers:
            dn.result = "n/a"
        else:
            base = median(walls(runs, BASE, n))
            mine = median(dn.samples)
            dn.check, dn.result = judge(mine / base if mine and base else None, limit, True, f"/ {TOOLS[BASE][0]}")
            for tool in PEERS:
                peer = Row(scenario, TOOLS[tool][0], walls(runs, tool, n))
                theirs = median(peer.samples)
                if tool != BASE and mine and theirs:
                    peer.check = f"pytest-dockernet / this = {mine / theirs:.2f}"
                rows.append(peer)
        failed = [r for tool in ("dockernet", *PEERS) for r in of(runs, tool, n) if not r.ok]
        if failed:
            dn.result, dn.check = "FAIL", f"{dn.check}; {len(failed)} failed runs".lstrip("; ")
        targets.append(
            f"issue 26 target, {what} (whole process ≤ {limit:g} × {TOOLS[BASE][0]}): {dn.result} {dn.check}".rstrip()
        )
    return rows, targets
