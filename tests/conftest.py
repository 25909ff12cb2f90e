"""What the plugin's own tests share: pytester, and a record of what inner runs left on the engine."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import pytest

from pytest_dockernet import end_of_run
from pytest_dockernet.engine import remove_container, remove_network
from pytest_dockernet.labels import SESSION
from pytest_dockernet.plugin import STATE
from pytest_dockernet.skips import PluginSkip

pytest_plugins = ["pytester"]

# Tests of another engine than the default one need that engine up, which their own part of
# .ci/run starts first: collected only when DOCKERNET_TEST_ENGINE names that engine
# (`DOCKERNET_TEST_ENGINE=remote python -m pytest tests/test_remote_engine.py`).
OTHER_ENGINE_FILES = {
    "test_remote_engine.py": "remote",
    "test_podman.py": "podman",
    "test_podman_capabilities.py": "podman",
}
collect_ignore = [name for name, on in OTHER_ENGINE_FILES.items() if os.environ.get("DOCKERNET_TEST_ENGINE") != on]

# Tests that change the engine as a whole (its swarm state, a lab of engines around it) or
# assert it is in a given state: under `pytest -n N` they go to one worker, one after the
# other (xdist's loadgroup), while the rest of the suite shares the engine freely.
ENGINE_WIDE_FILES = {"test_lab.py", "test_overlay.py"}
# Also tests that count which run prunes a killed run: another worker's inner run would
# prune it first.
ENGINE_WIDE_TESTS = {
    "test_marker_drivers_runs_the_test_once_per_driver",
    "test_dead_runs_are_pruned_by_one_worker_only",
}


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
    # ignored, and so would every inner run: their Ctrl-C tests need it delivered.
    config.addinivalue_line("markers", "matrix: the part of the suite run on every pytest x Docker SDK pair")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if getattr(config.option, "dist", "no") == "load":  # plain -n N: group as below
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get("loadgroup"):
        config.option.loadgroup = True  # a worker parses the command line afresh


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    node.workerinput["loadgroup"] = node.config.option.dist == "loadgroup"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item):
    """Under xdist, an engine-wide test runs alone: Docker 20.10 loses the DNS records of
    bridge networks in use when the engine leaves a swarm, so the other workers'
    tests wait (a turnstile first, so that waiting for the exclusive turn cannot starve)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    exclusive = any(m.args == ("engine-wide",) for m in item.iter_markers("xdist_group"))
    base = os.path.join(tempfile.gettempdir(), "pytest-dockernet-tests")
    turnstile = os.open(base + ".turnstile", os.O_RDWR | os.O_CREAT, 0o666)
    lock = os.open(base + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        else:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_SH)
        yield
    finally:
        os.close(lock)
        os.close(turnstile)


# The part of the suite `.ci/run` runs on every other pytest x Docker SDK pair of tox.ini
# (`-m matrix`): what touches their APIs (options, marker, fixtures, hooks, reports,
# signals, the SDK's calls through compose()), within a minute or so each.
MATRIX_FILES = {
    "test_hooks.py",
    "test_bad_input.py",
    "test_compose_file.py",
    "test_compose_env.py",
    "test_compose_values.py",
    "test_units.py",
}
MATRIX_TESTS = {
    "test_marker_is_registered_and_documented",
    "test_tests_using_the_fixtures_are_marked_automatically",
    "test_a_bad_marker_fails_its_own_test",
    "test_every_option_is_in_help_with_its_ini_key",
    "test_bad_option_values_are_usage_errors",
    "test_command_line_wins_over_ini",
    "test_summary_shows_where_the_time_went",
    "test_a_failing_assert_shows_the_topology_and_the_logs_of_the_containers_with_output",
    "test_a_three_tier_file_resolves_reaches_and_isolates_as_written",
    "test_a_bad_file_fails_clearly_and_leaves_nothing",
    "test_compose_works_at_every_fixture_scope_and_after_a_failure",
    "test_the_sigterm_handler_comes_with_the_first_docker_call",
    "test_not_dockernet_deselects_every_test_that_needs_docker",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        engine_wide = item.path.name in ENGINE_WIDE_FILES or item.originalname in ENGINE_WIDE_TESTS
        # A test that asserts the engine is in no swarm (test_overlay.no_swarm), wherever it is.
        if engine_wide or "no_swarm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("engine-wide"))
        if item.path.name in MATRIX_FILES or item.originalname in MATRIX_TESTS:
            item.add_marker(pytest.mark.matrix)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """This suite's own skips fail under --dockernet-require, as CI runs it, so that CI cannot
    pass on a skip (the plugin leaves a user's skips alone; its own kernel-feature skips pass)."""
    report = (yield).get_result()
    if report.skipped and item.config.stash[STATE].settings.require and "dockernet" in item.keywords:
        if not hasattr(report, "wasxfail") and not isinstance(getattr(call.excinfo, "value", None), PluginSkip):
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: this suite may not skip under --dockernet-require: {report.longrepr}"


@pytest.fixture(autouse=True)
def _no_parked_topology_for_swarm_tests(request: pytest.FixtureRequest) -> None:
    """Tests that make or leave a swarm wait until no container is on a user-defined network
    (swarm.at_risk): a topology this process's warm pool keeps whole would wait forever."""
    if request.module.__name__.rpartition(".")[2] in ("test_overlay", "test_lab", "test_swarm"):
        pool = request.config.stash[STATE].pool
        if pool is not None:
            pool.unpark()


# A plugin loaded into every inner run (pytester.plugins), in-process or not. It notes each
# run's id (every resource the run makes carries it as the label pytest-dockernet.session)
# with the run's pid, and gives inner tests `record(*handles)` to note what they made and
# `ready()` to say that a background run has made it.
SPY = '''
"""Notes the run ids of inner runs and what their tests made, next to this file."""

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


_config = []


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    from pytest_dockernet.plugin import STATE

    _config[:] = [config]
    with open(HERE / "run-ids", "a") as f:
        f.write(f"{config.stash[STATE].identity.run_id} {os.getpid()}\\n")


def record(*handles):
    with open(HERE / "made", "a") as f:
        for handle in handles:
            f.write(handle.docker_name + "\\n")


def ready():
    # A run's lease starts a moment after the run made it (pytest_dockernet.lease): a test
    # that waits for ready() deals with a run whose lease runs, as every run longer than that.
    from pytest_dockernet.plugin import STATE

    lease = _config[0].stash[STATE].lease if _config else None
    if lease is not None:
        lease.wait_started()
    (HERE / f"ready-{os.getpid()}").touch()
'''


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Plugins installed here but unused by these tests: hypothesis imports itself afresh in
    # every in-process run (seconds each time), pytest-benchmark warns in each run under xdist.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark")
    # An inner run leaves the end of its removal to a detached process (end_of_run): each
    # run returns once that is done, so that no test meets an earlier one's leftovers.
    for name in ("runpytest", "runpytest_subprocess", "run"):
        monkeypatch.setattr(pytester, name, _settled(getattr(pytester, name)))
    return pytester


def _settled(run: Callable[..., pytest.RunResult]) -> Callable[..., pytest.RunResult]:
    @functools.wraps(run)
    def settled(*args: Any, **kwargs: Any) -> pytest.RunResult:
        result = run(*args, **kwargs)
        assert end_of_run.wait(), "an inner run's end-of-run removal took over 60 s"
        return result

    return settled


class InnerRuns:
    """Inner pytest runs of one test, and the Docker resources they made or left behind."""

    def __init__(self, pytester: pytest.Pytester, client: docker.DockerClient):
        self.pytester = pytester
        self.client = client
        self.processes: list[subprocess.Popen] = []
        self._commands = 0
        pytester.makepyfile(inner_run_spy=SPY)
        pytester.syspathinsert()
        pytester.plugins.append("inner_run_spy")

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*args)

    def run_subprocess(self, *args: str, timeout: float = 120) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*args, timeout=timeout)

    def pytest_command(self, *args: str, host: str | None = None) -> list[str]:
        """``python -m pytest ARGS`` with the spy, on the host name ``host`` if given (see own_host)."""
        self._commands += 1
        basetemp = self.pytester.path / f"basetemp-{self._commands}"
        command = [sys.executable, "-m", "pytest", "-p", "inner_run_spy", f"--basetemp={basetemp}", *args]
        if host is None:
            return command
        return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host, *command]

    def own_host(self) -> str | None:
        """A host name of its own for runs whose leftovers a test wants to judge alone.

        Every run prunes the leftovers of dead runs of its host when it starts, and other runs
        share this engine; resources labelled with a host name nobody else has are left to the
        runs of this test. Needs root for a UTS namespace; without, None (this host's name).
        """
        if shutil.which("unshare") is None:
            return None
        host = f"dn-test-{uuid.uuid4().hex[:8]}"
        probe = subprocess.run(["unshare", "--uts", "hostname", host], capture_output=True, check=False)
        return host if probe.returncode == 0 else None

    def run_on(self, host: str | None, *args: str, timeout: float = 120) -> pytest.RunResult:
        """A run in a separate process, on the host name ``host``."""
        return self.pytester.run(*self.pytest_command(*args, host=host), timeout=timeout)

    def start(self, *args: str, host: str | None = None, timeout: float = 60) -> subprocess.Popen:
        """Start a run in the background; return once its test has called ``inner_run_spy.ready()``."""
        with open(self.pytester.path / f"background-{len(self.processes)}.log", "w") as log:
            proc = self.pytester.popen(
                self.pytest_command("-s", *args, host=host),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append(proc)
        deadline = time.monotonic() + timeout
        while not (self.pytester.path / f"ready-{proc.pid}").exists():
            if proc.poll() is not None:
                pytest.fail(f"the background run exited with {proc.returncode}:\n{self.log(proc)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the background run did not get ready in {timeout}s:\n{self.log(proc)}")
            time.sleep(0.1)
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        return (self.pytester.path / f"background-{self.processes.index(proc)}.log").read_text()

    def run_ids(self) -> list[str]:
        path = self.pytester.path / "run-ids"
        return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []

    def run_id_of(self, proc: subprocess.Popen) -> str:
        for line in (self.pytester.path / "run-ids").read_text().splitlines():
            run_id, pid = line.split()
            if int(pid) == proc.pid:
                return run_id
        raise LookupError(f"no run id noted for pid {proc.pid}")

    def made(self) -> list[str]:
        """The Docker names inner tests passed to ``inner_run_spy.record``."""
        path = self.pytester.path / "made"
        return path.read_text().split() if path.exists() else []

    def resources(self, *run_ids: str) -> list[str]:
        """``container NAME``, ``network NAME`` and ``volume NAME`` for each resource of these
        runs (all runs so far when none are named) that exists on the engine now (once
        their end-of-run removals are done)."""
        end_of_run.wait(run_ids or self.run_ids())
        found = []
        for run_id in run_ids or self.run_ids():
            filters = {"label": f"{SESSION}={run_id}"}
            containers = self.client.api.containers(all=True, filters=filters)
            found += [f"container {c['Names'][0].lstrip('/')}" for c in containers]
            found += [f"network {n['Name']}" for n in self.client.api.networks(filters=filters)]
            found += [f"volume {v['Name']}" for v in self.volumes(filters)]
        return found

    def volumes(self, filters: dict) -> list[dict]:
        return (self.client.api.volumes(filters=filters) or {}).get("Volumes") or []

    def existing(self, docker_names: list[str]) -> list[str]:
        """Which of these container or network names exist on the engine now (once the
        inner runs' end-of-run removals are done)."""
        end_of_run.wait(self.run_ids())
        present = []
        for name in docker_names:
            for lookup in (self.client.api.inspect_container, self.client.api.inspect_network):
                try:
                    lookup(name)
                except docker.errors.NotFound:
                    continue
                present.append(name)
                break
        return present

    def remove_resources(self) -> None:
        """Remove whatever inner runs left: containers first, then networks and volumes."""
        for run_id in self.run_ids():
            filters = {"label": f"{SESSION}={run_id}"}
            # The plugin's own removals: a removal the engine has under way already (an inner
            # run's, sent just before it lost the engine) is no error, nor a network's
            # container not gone yet.
            for c in self.client.api.containers(all=True, filters=filters):
                remove_container(self.client, c["Id"])
            for n in self.client.api.networks(filters=filters):
                remove_network(self.client, n["Id"])
            for v in self.volumes(filters):
                self.client.api.remove_volume(v["Name"], force=True)

    def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # which tears down; SIGKILL if it does not
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)


@pytest.fixture
def inner_runs(pytester: pytest.Pytester, dockernet_client: docker.DockerClient):
    """Inner runs against the real engine; after the test, nothing labelled with one of their
    run ids may remain (whatever remains is removed, then reported as an error)."""
    runs = InnerRuns(pytester, dockernet_client)
    yield runs
    runs.stop_processes()
    left = runs.resources()
    runs.remove_resources()
    assert not left, "inner runs left resources behind:\n" + "\n".join(left)


# Three web servers on one network (IPv4; IPv6 for three6): the fault tests' usual members.
FAULT_MEMBERS = ("a", "b", "c")


@pytest.fixture
def three(dockernet):
    net = dockernet.network("n")
    return [dockernet.container(name, networks=[net], command=["httpd", "-f", "-p", "80"]) for name in FAULT_MEMBERS]


@pytest.fixture
def three6(dockernet):
    net = dockernet.network("v6", ipv6=True)
    return net, [dockernet.container(n, networks=[net], command=["httpd", "-f", "-p", "80"]) for n in FAULT_MEMBERS]
