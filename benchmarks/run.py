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
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SUITES = HERE / "suites"
PEERS_VENV = HERE / ".venv-peers"
PEERS_PACKAGES = ["pytest", "pytest-docker-tools", "testcontainers", "docker"]
BENCH_LABEL = "pytest-dockernet-bench"  # as in suites/benchenv.py
SESSION_LABEL = "pytest-dockernet.session"  # pytest-dockernet's own run label
# Unrelated plugins of a development environment that would only slow pytest's start.
MAIN_PYTEST_ARGS = ["-p", "no:hypothesispytest", "-p", "no:benchmark"]

sys.path.insert(0, str(REPO))  # measure this checkout's pytest_dockernet, whatever is installed

# The tools of the per-test suites: (label, test file, runs in the peers' venv).
TOOLS = {
    "dockernet": ("pytest-dockernet", "test_dockernet.py", False),
    "pdt": ("pytest-docker-tools", "test_docker_tools.py", True),
    "tc": ("testcontainers-python", "test_testcontainers.py", True),
    "sdk": ("raw SDK, sequential", "test_sdk.py", False),
    "sdk-threads": ("raw SDK, threads + exec per source", "test_sdk_threads.py", False),
    "waiting": ("pytest-dockernet, waiting suite", "test_waiting.py", False),
}


def log(message: str) -> None:
    print(message, flush=True)


# -- the peers' environment --------------------------------------------------------------


def peers_python() -> tuple[str | None, str]:
    """The peers' venv python (made once, then reused), or None and why not."""
    python = PEERS_VENV / "bin" / "python"
    check = [str(python), "-c", "import pytest, pytest_docker_tools, testcontainers, docker"]

    def usable() -> bool:
        return python.exists() and subprocess.run(check, capture_output=True, timeout=60).returncode == 0

    try:
        if usable():
            return str(python), ""
        log(f"creating the peers' venv {PEERS_VENV.relative_to(REPO)}: pip install {' '.join(PEERS_PACKAGES)}")
        steps = [
            [sys.executable, "-m", "venv", str(PEERS_VENV)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEERS_PACKAGES],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                return None, f"{shlex.join(step)} failed:\n{(done.stdout + done.stderr)[-2000:]}"
        if usable():
            return str(python), ""
        return None, "the peers' venv was made but cannot import its packages"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"making the peers' venv failed: {exc}"


def versions(python: str, packages: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([python, "-c", code, *packages], capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout or "{}")


# -- engine resources: what each run made, and whether any of it is left ----------------


class Ledger:
    """The labels of everything this benchmark made (directly or through a pytest run)."""

    def __init__(self, client, run: str):
        self.client = client
        self.run = run
        self.session_ids: set[str] = set()  # pytest-dockernet run ids seen
        self.left: list[str] = []  # what a run left, found (and then removed) by sweep()
        self.foreign = 0  # the most containers of others (not of this benchmark) seen at once

    def filters(self) -> list[dict]:
        return [{"label": f"{BENCH_LABEL}={self.run}"}] + [
            {"label": f"{SESSION_LABEL}={s}"} for s in sorted(self.session_ids)
        ]

    def note_made_files(self, out: Path) -> None:
        for path in out.glob("made-*.txt"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[2]:
                    self.session_ids.add(parts[2])

    def sweep(self, after: str) -> list[str]:
        """Remove whatever of ours is on the engine; returns it (so it counts as left)."""
        found = []
        everything = self.client.api.containers(all=True)
        ours = {
            c["Id"] for f in self.filters() for c in self.client.api.containers(all=True, filters=f)
        }  # the runs were stopped, so what is ours now was left behind
        self.foreign = max(self.foreign, len([c for c in everything if c["Id"] not in ours]))
        for filters in self.filters():
            for c in self.client.api.containers(all=True, filters=filters):
                found.append(f"container {c['Names'][0].lstrip('/')}")
                self.client.api.remove_container(c["Id"], force=True, v=True)
        for filters in self.filters():
            for n in self.client.api.networks(filters=filters):
                found.append(f"network {n['Name']}")
                try:
                    self.client.api.remove_network(n["Id"])
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    found.append(f"  (could not remove it: {exc})")
        self.left += [f"{what} (after {after})" for what in found]
        return found


# -- running one pytest suite ------------------------------------------------------------


@dataclass
class SuiteRun:
    tool: str
    workers: int
    tests: int
    wall: float = 0.0
    per_test: list[float] = field(default_factory=list)
    summary: str = ""  # pytest-dockernet's "time: ..." line
    ok: bool = False
    output: str = ""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BENCH_"))}
    env.update(extra)
    return env


def run_suite(args, ctx, tool: str, tests: int, workers: int = 0) -> SuiteRun:
    label, test_file, in_peers = TOOLS[tool]
    out = Path(tempfile.mkdtemp(prefix="out-", dir=ctx.tmp))
    env = child_env(
        {
            "BENCH_IMAGE": ctx.image,
            "BENCH_RUN": ctx.run,
            "BENCH_TESTS": str(tests),
            "BENCH_OUT": str(out),
            "TESTCONTAINERS_RYUK_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    if in_peers:
        # Not this checkout: its pytest_dockernet.egg-info would register the plugin there.
        env.pop("PYTHONPATH", None)
        command = [ctx.peers_python, "-m", "pytest", "-q", test_file]
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "pytest", "-q", *MAIN_PYTEST_ARGS, test_file]
        if tool in ("dockernet", "waiting"):
            command += ["--dockernet-require"]
            if ctx.xdist:
                command += ["-n", str(workers)]
        else:
            command += ["-p", "no:dockernet"]
    if tests == 0:  # the empty run: start-up and session only, every test deselected
        command += ["-k", "not test_"]
    result = SuiteRun(tool, workers, tests)
    timeout = 60 + 20 * tests
    log_path = out / "pytest.log"
    with open(log_path, "w") as logfile:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=SUITES, env=env, stdout=logfile, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            code = -1
        except BaseException:  # Ctrl-C here: let the run tear down first
            stop(proc)
            raise
        result.wall = time.perf_counter() - started
    result.output = log_path.read_text(errors="replace")
    if code == -1:
        result.output += f"\n(benchmark: stopped after the {timeout} s time limit)"
    result.ok = code == (5 if tests == 0 else 0)  # 5: pytest's 'no tests ran'
    for path in out.glob("times-*.json"):
        result.per_test += list(json.loads(path.read_text()).values())
    match = re.search(r"^time(?: \(summed over \d+ workers\))?: .*$", result.output, re.M)
    result.summary = match.group(0) if match else ""
    ctx.ledger.note_made_files(out)
    what = f"{label}{f' -n {workers}' if workers else ''}"
    left = ctx.ledger.sweep(what)
    status = "ok" if result.ok and not left else "FAILED" if not result.ok else "LEFT RESOURCES"
    log(f"  {what:<45} {tests:>3} tests  {result.wall:6.1f} s  {status}")
    if not result.ok:
        ctx.errors.append(f"{what}: pytest failed (exit {code}):\n{tail(result.output)}")
    return result


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (pytest-dockernet tears down on it), then SIGKILL if the run does not end."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


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


# -- the table ---------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    tool: str
    samples: list[float]
    check: str = ""  # the ratio against the target, when this row is the one judged
    result: str = ""  # PASS, FAIL or n/a

    def cells(self) -> list[str]:
        if not self.samples:
            return [self.scenario, self.tool, "0", "-", "-", "-", self.check, self.result]
        return [
            self.scenario,
            self.tool,
            str(len(self.samples)),
            f"{min(self.samples):.2f}",
            f"{statistics.median(self.samples):.2f}",
            f"{max(self.samples):.2f}",
            self.check,
            self.result,
        ]


HEADER = ["scenario", "tool", "n", "min (s)", "median (s)", "max (s)", "ratio vs target", "result"]


def median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def judge(ratio: float | None, limit: float, at_most: bool, what: str) -> tuple[str, str]:
    if ratio is None:
        return "", "n/a"
    ok = ratio <= limit if at_most else ratio >= limit
    return f"{what} = {ratio:.2f} ({'≤' if at_most else '≥'} {limit:g})", "PASS" if ok else "FAIL"


def text_table(rows: list[Row]) -> str:
    table = [HEADER] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    right = {2, 3, 4, 5}
    lines = []
    for k, line in enumerate(table):
        lines.append(
            "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(" --- " for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c or " " for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def phases(summary: str) -> dict[str, float]:
    """pytest-dockernet's "time: image 0.01 s, set-up 3.28 s, ..." as numbers."""
    head = summary.split(";")[0]
    return {k: float(v) for k, v in re.findall(r"([a-z][\w-]*) ([\d.]+) s", head)}


def breakdown(runs: list[SuiteRun]) -> str:
    """pytest-dockernet's own account of where a test's time went, per test (medians over runs)."""
    per_run = [(phases(r.summary), r.tests) for r in runs if r.summary and r.tests]
    if not per_run:
        return ""
    names = list(dict.fromkeys(k for p, _ in per_run for k in p))
    parts = [f"{k} {statistics.median([p.get(k, 0.0) / n for p, n in per_run]):.2f} s" for k in names]
    return "per test, from its terminal summary: " + ", ".join(parts)


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
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="dockernet-bench-") as tmp:
        ctx = Context(client, image, run, tmp, Ledger(client, run), importlib.util.find_spec("xdist") is not None)
        ctx.engine = client.version()
        notes = [f"image {image}; benchmark run {run}"]
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
    runs: list[SuiteRun] = []
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        order = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]  # no tool always first or last
        for tool, tests, workers in order:
            runs.append(run_suite(args, ctx, tool, tests, workers))
    log("scenario 2: reachability")
    reach = reachability_scenario(args, ctx)

    def of(tool: str, workers: int = 0, empty: bool = False) -> list[SuiteRun]:
        return [r for r in runs if r.tool == tool and r.workers == workers and (r.tests == 0) == empty]

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
    args.results.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
