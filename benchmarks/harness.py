"""What run.py and wholeprocess.py share: the peers' venv, the ledger of what a run made,
running one pytest suite as a whole process, and the rows of the table."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
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


def other_plugins(*keep: str) -> list[str]:
    """``-p no:NAME`` for every pytest plugin of this environment but pytest-dockernet and
    ``keep``: the peers' venv has pytest and the peers only, so each tool runs with pytest
    and itself (pytest-xdist, pytest-html and the rest cost the main environment's runs
    ~40 ms of start-up that are no tool's)."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="pytest11") if ep.dist is None or ep.dist.name != "pytest-dockernet"}
    return [arg for name in sorted(names - set(keep)) for arg in ("-p", f"no:{name}")]


MAIN_PYTEST_ARGS = other_plugins()

sys.path.insert(0, str(REPO))  # measure this checkout's pytest_dockernet, whatever is installed

from pytest_dockernet import end_of_run  # noqa: E402 - from the checkout, as above

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
    # Without PYTHONDONTWRITEBYTECODE, as users' runs go: pytest rewrites the asserts of every
    # module of a plugin's distribution and caches the result only where it may write
    # bytecode (else each run re-compiles them: +0.35 s for pytest-dockernet's ~90 modules).
    drop = ("PYTEST_", "BENCH_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
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
        }
    )
    if in_peers:
        # Not this checkout: its pytest_dockernet.egg-info would register the plugin there.
        env.pop("PYTHONPATH", None)
        command = [ctx.peers_python, "-m", "pytest", "-q", test_file]
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        plugins = other_plugins("xdist", "xdist.looponfail") if ctx.xdist and workers else MAIN_PYTEST_ARGS
        command = [sys.executable, "-m", "pytest", "-q", *plugins, test_file]
        if tool in ("dockernet", "waiting"):
            command += ["--dockernet-require"]
            if ctx.xdist and workers:
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
    # A run hands the end of its removal to a detached process (pytest_dockernet.end_of_run),
    # which nobody waits for; the next run starts once it is done, uncounted, so that it does
    # not slow whichever tool comes next.
    end_of_run.wait()
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
