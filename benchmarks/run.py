#!/usr/bin/env python3
"""pytest-dockernet against its peers and the raw Docker SDK, side by side in one run.

    python benchmarks/run.py [--rounds N] [--quick] [--no-peers]

See README.md beside this file for what each scenario measures. Exits 0 when every
scenario ran and nothing was left on the engine (whatever the targets say, unless
--strict), 1 when a suite failed or something was left behind, 2 on a usage or set-up error.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import wholeprocess
from harness import (
    HERE,
    PEERS_PACKAGES,
    REPO,
    TOOLS,
    Ledger,
    Row,
    SuiteRun,
    breakdown,
    judge,
    log,
    markdown_table,
    median,
    peers_python,
    run_suite,
    text_table,
    versions,
)

# -- scenario 2: reachability among N containers -----------------------------------------


def reachability_scenario(args, ctx) -> dict[str, list[float]]:
    """(a) pytest-dockernet's reachability(); (b) raw SDK, one exec per ordered pair; (c) raw
    SDK, one exec per source probing all its targets; (d) as (c), sources in a thread pool.
    All four probe the same running containers (made once, by a Topology): only probing is timed."""
    from pytest_dockernet import Topology

    client = ctx.client
    n = args.containers
    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    topology = Topology(client, image=ctx.image, label="benchmark reachability")
    ctx.ledger.session_ids.add(topology.context.identity.run_id)
    try:
        net = topology.network("bench")
        cs = list(topology.containers({f"n{i}": {"networks": [net]} for i in range(n)}).values())
        raw = {c.name: client.containers.get(c.id) for c in cs}
        ips = {c.name: c.ip() for c in cs}
        pairs = [(s.name, d.name) for s in cs for d in cs if s is not d]

        def ping(address: str) -> list[str]:
            return ["ping", "-c1", "-W1", address]

        def per_source(src: str) -> int:
            script = "\n".join(f"ping -c1 -W1 {ips[d]} >/dev/null 2>&1 && echo OK {d} &" for s, d in pairs if s == src)
            _, output = raw[src].exec_run(["sh", "-c", script + "\nwait"])
            return output.decode().count("OK ")

        def a() -> int:
            return len(topology.reachability(cs, cs).reachable())

        def b() -> int:
            return sum(raw[s].exec_run(ping(ips[d]))[0] == 0 for s, d in pairs)

        def c() -> int:
            return sum(per_source(s.name) for s in cs)

        def d() -> int:
            with ThreadPoolExecutor(max_workers=len(cs)) as pool:
                return sum(pool.map(per_source, [s.name for s in cs]))

        methods = {"a": a, "b": b, "c": c, "d": d}
        d()  # untimed: the first ping of each pair also pays for ARP
        for r in range(args.rounds):
            order = list(methods)[r % 4 :] + list(methods)[: r % 4]
            for key in order:
                started = time.perf_counter()
                reached = methods[key]()
                times[key].append(time.perf_counter() - started)
                if reached != len(pairs):
                    ctx.errors.append(f"reachability ({key}): {reached} of {len(pairs)} pairs answered")
        log(
            "  reachability: "
            + ", ".join(f"({k}) {statistics.median(v):.2f} s" for k, v in times.items())
            + f"  [{len(pairs)} pairs, {args.rounds} round{'s' if args.rounds > 1 else ''}]"
        )
    finally:
        topology.close()
        ctx.ledger.sweep("the reachability scenario")
    return times


# -- main --------------------------------------------------------------------------------


@dataclass
class Context:
    client: object
    image: str
    run: str
    tmp: str
    ledger: Ledger
    xdist: bool
    engine: dict = field(default_factory=dict)
    peers_python: str | None = None
    errors: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every scenario (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: 1 round, 2 tests per suite, 4 containers")
    parser.add_argument("--no-peers", action="store_true", help="pytest-dockernet and the raw SDK only")
    parser.add_argument("--suite", type=int, default=None, help="tests in the suite of scenarios 3 and 4 (default 20)")
    parser.add_argument(
        "--s1-tests",
        type=int,
        default=None,
        help="tests per round of the tools measured in scenario 1 only: testcontainers and the raw SDK (default 6)",
    )
    parser.add_argument("--containers", type=int, default=None, help="containers of scenario 2 (default 10)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="markdown file for the table (default: benchmarks/RESULTS.md for a full run with the peers; "
        "none for --quick or --no-peers)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.suite = args.suite or (2 if quick else 20)
    args.s1_tests = args.s1_tests or (2 if quick else 6)
    args.containers = args.containers or (4 if quick else 10)
    if min(args.rounds, args.suite, args.s1_tests) < 1 or args.containers < 2:
        parser.error("--rounds, --suite and --s1-tests must be at least 1, --containers at least 2")
    if args.results is None and not (quick or args.no_peers):
        args.results = HERE / "RESULTS.md"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    import importlib.util

    import docker

    from pytest_dockernet.image import resolve_probe_image

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; all mean "no engine"
        log(f"benchmark: Docker is not available ({exc}); start it with scripts/ensure-docker")
        return 2
    image = resolve_probe_image(client).name
    # Compile this checkout's bytecode now, as a user's earlier run would have (and see the
    # warm-up runs below for pytest's own cache of rewritten modules).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "pytest_dockernet")], check=False)
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="dockernet-bench-") as tmp:
        ctx = Context(client, image, run, tmp, Ledger(client, run), importlib.util.find_spec("xdist") is not None)
        ctx.engine = client.version()
        notes = [f"image {image}; benchmark run {run}"]
        load_before = os.getloadavg()
        if args.no_peers:
            notes.append("peers skipped (--no-peers)")
        else:
            ctx.peers_python, why = peers_python()
            if ctx.peers_python is None:
                if not args.quick:
                    log(f"benchmark: the peers are required without --quick or --no-peers.\n{why}")
                    return 2
                notes.append(f"peers skipped: their venv could not be made ({why.splitlines()[0]})")
        if not ctx.xdist:
            notes.append("pytest-xdist is not installed: scenario 4 skipped (pip install -e '.[test]')")
        try:
            rows, targets = run_all(args, ctx, notes)
        finally:
            left = ctx.ledger.sweep("the benchmark")
            client.close()
    elapsed = time.perf_counter() - started
    log("")
    log(text_table(rows))
    log("")
    for line in targets:
        log(line)
    if ctx.ledger.foreign:
        notes.append(
            f"other containers were on the engine during the benchmark (up to {ctx.ledger.foreign}): "
            "someone else's work may have slowed some runs"
        )
    notes.append(
        f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} "
        f"at the start, {'/'.join(f'{x:.1f}' for x in os.getloadavg())} at the end: a busy machine makes "
        "every figure noisy"
    )
    if args.quick:
        notes.append("--quick: tiny sizes, so the targets' verdicts mean nothing")
    for note in notes:
        log(f"note: {note}")
    if ctx.ledger.left:
        log("LEFT ON THE ENGINE (removed now):\n  " + "\n  ".join(ctx.ledger.left))
    else:
        log("left on the engine: nothing (containers and networks of every run checked)")
    log(f"benchmark took {elapsed:.0f} s")
    if args.results:
        write_results(args, ctx, rows, targets, notes, elapsed)
        log(f"wrote {args.results}")
    for error in ctx.errors:
        log(f"ERROR: {error}")
    if ctx.errors or ctx.ledger.left or left:
        return 1
    if args.strict and any(line.startswith("target") and "FAIL" in line for line in targets):
        return 1
    return 0


def run_all(args, ctx: Context, notes: list[str]) -> tuple[list[Row], list[str]]:
    peers = ctx.peers_python is not None
    jobs = [("dockernet", args.suite, 0), ("dockernet", 0, 0)]
    if peers:
        jobs += [("pdt", args.suite, 0), ("tc", args.s1_tests, 0), ("pdt", 0, 0), ("tc", 0, 0)]
    jobs += [("sdk", args.s1_tests, 0), ("sdk-threads", args.s1_tests, 0)]
    if ctx.xdist:
        jobs += [("dockernet", args.suite, 2), ("waiting", args.suite, 0), ("waiting", args.suite, 2)]
    jobs += wholeprocess.jobs(args, peers, jobs)  # scenario 6: what it does not share with 1 and 3
    # One unmeasured run of each tool first: a user's run follows earlier ones, whose bytecode
    # and pytest's cache of rewritten modules (see harness.child_env) it finds.
    log("warm-up: one run of each tool, not measured")
    for tool in dict.fromkeys(tool for tool, _, _ in jobs):
        run_suite(args, ctx, tool, 1)
    runs: list[SuiteRun] = []
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        order = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]  # no tool always first or last
        for tool, tests, workers in order:
            runs.append(run_suite(args, ctx, tool, tests, workers))
    log("scenario 2: reachability")
    reach = reachability_scenario(args, ctx)

    size = {tool: args.suite if tool in ("dockernet", "pdt", "waiting") else args.s1_tests for tool in TOOLS}

    def of(tool: str, workers: int = 0, empty: bool = False) -> list[SuiteRun]:
        """The runs of scenarios 1 to 5 (their own sizes: scenario 6's other sizes are not theirs)."""
        tests = 0 if empty else size[tool]
        return [r for r in runs if r.tool == tool and r.workers == workers and r.tests == tests]

    def per_test(tool: str) -> list[float]:
        return [t for r in of(tool) for t in r.per_test]

    def walls(tool: str, workers: int = 0) -> list[float]:
        return [r.wall for r in of(tool, workers)]

    def whole_process(tool: str) -> list[float]:
        """Per test, from outside: each run's wall time minus the median empty run of the
        same tool (pytest start-up, plugin load, session start and end), over its tests.
        It includes everything the process does for its tests, background removal too."""
        empty = median([r.wall for r in of(tool, empty=True)])
        return [(r.wall - empty) / r.tests for r in of(tool)] if empty is not None else []

    rows: list[Row] = []
    targets: list[str] = []

    # 1: the per-test topology. The primary figure is the whole process's time per test
    # (what a user waits for, background teardown included); the in-process clock of each
    # test (which stops before pytest-dockernet's background removal ends) is beside it.
    s1 = "1 per-test topology"
    dn = Row(s1, "pytest-dockernet, whole process", whole_process("dockernet"))
    dn_in = Row(s1, "pytest-dockernet, in-process clock", per_test("dockernet"))
    rows += [dn, dn_in]
    whole_medians, in_medians = {}, {}
    if peers:
        for tool in ("pdt", "tc"):
            label = TOOLS[tool][0]
            rows.append(Row(s1, f"{label}, whole process", whole_process(tool)))
            rows.append(Row(s1, f"{label}, in-process clock", per_test(tool)))
            whole_medians[label], in_medians[label] = median(whole_process(tool)), median(per_test(tool))
    rows += [Row(s1, f"{TOOLS[t][0]}, in-process clock", per_test(t)) for t in ("sdk", "sdk-threads")]
    for row, medians in ((dn, whole_medians), (dn_in, in_medians)):
        if medians and median(row.samples) is not None and all(medians.values()):
            fastest = min(medians, key=medians.get)
            row.check, row.result = judge(median(row.samples) / medians[fastest], 0.4, True, f"/ {fastest}")
        else:
            row.result = "n/a"
    targets.append(
        f"target 1 (per-test median ≤ 0.4 × the faster peer, whole process): {dn.result} {dn.check}; "
        f"in-process clock: {dn_in.result} {dn_in.check}".rstrip()
    )

    # 2: reachability among N containers
    s2 = f"2 reachability {args.containers}"
    labels = {
        "a": "(a) pytest-dockernet reachability()",
        "b": "(b) raw SDK, exec per pair",
        "c": "(c) raw SDK, exec per source",
        "d": "(d) raw SDK, exec per source, threads",
    }
    r2 = {k: Row(s2, labels[k], reach[k]) for k in labels}
    ma, mb, md = median(reach["a"]), median(reach["b"]), median(reach["d"])
    r2["a"].check, r2["a"].result = judge(ma / md if ma and md else None, 1.2, True, "(a) / (d)")
    r2["b"].check, r2["b"].result = judge(mb / ma if ma and mb else None, 10, False, "(b) / (a)")
    rows += list(r2.values())
    t2 = "PASS" if r2["a"].result == r2["b"].result == "PASS" else "FAIL"
    targets.append(
        f"target 5 (no regression: reachability ≤ 1.2 × (d) and ≥ 10× faster than (b)): {t2} {r2['a'].check}; "
        f"{r2['b'].check}"
    )

    # 3: the suite, whole pytest run
    s3 = f"3 suite of {args.suite}"
    d3 = Row(s3, "pytest-dockernet", walls("dockernet"))
    rows.append(d3)
    if peers:
        p3 = walls("pdt")
        rows.append(Row(s3, "pytest-docker-tools", p3))
        d3.check, d3.result = judge(
            median(d3.samples) / median(p3) if d3.samples and p3 else None, 0.6, True, "/ pytest-docker-tools"
        )
    else:
        d3.result = "n/a"
    targets.append(f"suite target (suite ≤ 0.6 × pytest-docker-tools): {d3.result} {d3.check}".rstrip())

    def xdist_rows(scenario: str, tool: str, at_least: float) -> Row:
        """The -n 0 and -n 2 rows of ``tool``'s suite; returns the judged (-n 2) row."""
        if not ctx.xdist:
            rows.append(Row(scenario, "pytest-dockernet -n 2", [], "pytest-xdist not installed", "n/a"))
            return rows[-1]
        n0, n2 = walls(tool, 0), walls(tool, 2)
        rows.append(Row(scenario, "pytest-dockernet -n 0", n0))
        judged = Row(scenario, "pytest-dockernet -n 2", n2)
        rows.append(judged)
        judged.check, judged.result = judge(median(n0) / median(n2) if n0 and n2 else None, at_least, False, "speed-up")
        failed = [r for r in of(tool, 0) + of(tool, 2) if not r.ok]
        if failed:
            judged.result, judged.check = "FAIL", judged.check + f"; {len(failed)} failed runs"
        return judged

    # 4: the topology suite under xdist (nothing of it may be left); 5: a suite whose tests
    # wait (each waits out an isolation timeout), under xdist
    x = xdist_rows(f"4 xdist, suite of {args.suite}", "dockernet", 0.95)
    if ctx.xdist:
        left = [item for item in ctx.ledger.left if "-n 2" in item]
        x.result = "FAIL" if left else x.result
        x.check += f"; {len(left)} left behind" if left else "; nothing left"
    w = xdist_rows(f"5 xdist, waiting suite of {args.suite}", "waiting", 1.6)
    both = "PASS" if x.result == w.result == "PASS" else "n/a" if "n/a" in (x.result, w.result) else "FAIL"
    targets.append(
        f"target 2 (xdist: waiting suite -n 2 ≥ 1.6× faster than -n 0; topology suite -n 2 ≥ 0.95×, no leak): "
        f"{both} waiting {w.check}; topology {x.check}".rstrip()
    )

    where = breakdown(of("dockernet"))
    if where:
        notes.append(f"pytest-dockernet, scenario 1/3 runs, {where}")
    where2 = breakdown(of("dockernet", 2))
    if where2:
        notes.append(f"pytest-dockernet -n 2 (phases summed over the workers), {where2}")
    notes.append(
        f"scenario 1: the per-test times of scenario 3's runs for pytest-dockernet and pytest-docker-tools "
        f"({args.suite} tests × {args.rounds} rounds); {args.s1_tests} tests × {args.rounds} rounds for the others"
    )
    notes.append("scenario 4: '-n 0' is scenario 3's pytest-dockernet runs")
    notes.append(
        "the other no-regression targets are measured apart, as before: isolation cost by negatives.py, "
        "200 networks' memory by scale.py --memory 200"
    )

    # 6: one, five and twenty tests, each a whole pytest process timed from outside (issue 26)
    rows6, targets6 = wholeprocess.report(args, runs, peers)
    rows += rows6
    targets += targets6
    notes.append(
        f"scenario 6: wall time of each whole pytest process, nothing subtracted; its {args.suite}-test runs "
        "of pytest-dockernet and pytest-docker-tools are scenario 3's"
    )
    return rows, targets


def write_results(args, ctx: Context, rows: list[Row], targets: list[str], notes: list[str], elapsed: float) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    engine = ctx.engine
    main_versions = versions(sys.executable, ["pytest", "docker", "pytest-xdist"])
    lines = [
        "# Benchmark results",
        "",
        f"Taken {now} with `{shlex.join(['python', 'benchmarks/run.py', *sys.argv[1:]])}` "
        f"({args.rounds} round{'s' if args.rounds > 1 else ''}, suite of {args.suite}, "
        f"{args.containers} containers; {elapsed:.0f} s).",
        "",
        f"Docker Engine {engine.get('Version')} (API {engine.get('ApiVersion')}), {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; main environment: "
        + ", ".join(f"{k} {v}" for k, v in main_versions.items())
        + (
            "; peers' venv: " + ", ".join(f"{k} {v}" for k, v in versions(ctx.peers_python, PEERS_PACKAGES).items())
            if ctx.peers_python
            else ""
        )
        + ".",
        "",
        markdown_table(rows),
        "",
        *[f"- {t}" for t in targets],
        "",
        *[f"- {n}" for n in notes],
        "",
        "How to run, and what each scenario measures: [README.md](README.md).",
        "",
    ]
    # The other benchmarks' sections (negatives.py, scale.py, capture.py, faults.py: each
    # "## ..." after this table) are kept: this run measured none of them.
    before = args.results.read_text() if args.results.exists() else ""
    kept = before[before.index("\n## ") + 1 :] if "\n## " in before else ""
    args.results.write_text("\n".join(lines) + (f"\n{kept}" if kept else ""))


if __name__ == "__main__":
    sys.exit(main())
