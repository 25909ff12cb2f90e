"""The engine going away in the middle of a run: one short message, no flood of tracebacks.

The inner run talks to the real engine through a socket forwarder that this test stops
half-way, so that, seen from the run, the engine stops answering (as a remote engine does
when its host goes down); nothing of Docker itself is imitated.
"""

from __future__ import annotations

import os

import pytest
from relay import Relay

INNER = """
    import os
    import time

    from inner_run_spy import ready, record

    def test_first(dockernet):
        # Nothing of the warm pool's (a network with an option, a container with a command):
        # the whole topology goes in the background removal, whose network removal waits on
        # the gate until the engine is gone.
        net = dockernet.network("n", internal=True)
        record(net, dockernet.container("c", networks=[net], command=["sleep", "600"]))
        ready()
        for _ in range(600):
            if os.path.exists("engine-gone"):
                break
            time.sleep(0.1)
        dockernet.container("late")

    def test_second(dockernet):
        dockernet.network("m")

    def test_third(dockernet):
        pass
"""


@pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="needs the engine's unix socket")
def test_an_engine_that_stops_answering_gives_one_line_per_test(inner_runs, pytester, monkeypatch, tmp_path):
    path = str(tmp_path / "engine.sock")
    forwarder = Relay(path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makepyfile(test_inner=INNER)
    proc = inner_runs.start("-p", "no:cacheprovider", "-rs", "test_inner.py")
    forwarder.close()
    (pytester.path / "engine-gone").touch()
    proc.wait(timeout=180)
    log = inner_runs.log(proc)
    try:
        assert proc.returncode == pytest.ExitCode.TESTS_FAILED, log
        message = f"the Docker engine at unix://{path} stopped answering"
        lines = log.splitlines()
        assert any(f"test_inner.py::test_first: {message}" in line for line in lines), log
        # One line per skipped test, each at its own test (not one folded line at the plugin's).
        skips = [line for line in lines if "SKIPPED" in line and message in line and "earlier in this run" in line]
        assert len(skips) == 2 and "test_inner.py:" in skips[0], log
        assert "2 skipped" in log and "1 failed" in log, log
        assert any(line.startswith("teardown of test_inner.py::test_first failed: ") for line in lines), log
        assert any(line.startswith("  remove with: docker rm -f") for line in lines), log
        assert "Traceback" not in log and "requests.exceptions" not in log, log
        assert len(lines) < 80, log  # not a thousand lines of the SDK's traceback per test
    finally:
        inner_runs.remove_resources()  # what the run could not remove, through the real socket


def test_a_tests_own_connection_error_is_not_taken_for_the_engine(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_own_service(dockernet):
            requests.get("http://127.0.0.1:9", timeout=2)  # nothing listens on the discard port

        def test_next(dockernet):
            dockernet.network("n")
        """
    )
    result = pytester.runpytest("--dockernet-require")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.no_fnmatch_line("*stopped answering*")
    result.stdout.fnmatch_lines(["*requests.exceptions.ConnectionError*"])


BACKGROUND = """
    import os
    import time

    from inner_run_spy import ready, record

    def test_first(dockernet):
        # Nothing of the warm pool's (a network with an option, a container with a command):
        # the whole topology goes in the background removal, whose network removal waits on
        # the gate until the engine is gone.
        net = dockernet.network("n", internal=True)
        record(net, dockernet.container("c", networks=[net], command=["sleep", "600"]))
        ready()

    def test_second():
        for _ in range(600):
            if os.path.exists("engine-gone"):
                break
            time.sleep(0.1)
"""


@pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="needs the engine's unix socket")
def test_a_background_teardown_that_fails_fails_the_run(inner_runs, pytester, monkeypatch, tmp_path, dockernet_client):
    from pytest_dockernet.capabilities import Capabilities
    from pytest_dockernet.engine import as_engine
    from pytest_dockernet.engine.gate import gate_for
    from pytest_dockernet.image import resolve_probe_image
    from pytest_dockernet.labels import RunIdentity

    # The engine's capabilities known (kept on this machine) before the gate is held below:
    # the inner run's capability probe would wait on it like its teardown.
    engine = as_engine(dockernet_client)
    Capabilities().of(engine).verdict("warm-pool-joins", lambda: resolve_probe_image(engine).name, RunIdentity().labels)
    path = str(tmp_path / "engine.sock")
    forwarder = Relay(path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makepyfile(test_inner=BACKGROUND)
    try:
        # Holding the gate as a builder keeps the inner run's network removal (which needs
        # it alone) waiting until the engine has gone away for that run; holding the warm
        # pool's join lock does the same for the hand-back of its container (which leaves
        # its networks under that lock), so the teardown cannot finish before the engine goes.
        gate = gate_for(dockernet_client)
        with gate.building(), gate.joining():
            proc = inner_runs.start("-p", "no:cacheprovider", "test_inner.py")
            forwarder.close()
        (pytester.path / "engine-gone").touch()
        proc.wait(timeout=180)
        log = inner_runs.log(proc)
        assert "2 passed" in log, log
        assert proc.returncode == pytest.ExitCode.TESTS_FAILED, log  # every test passed; the teardown did not
        assert "teardown of test_inner.py::test_first failed: the Docker engine stopped answering" in log, log
        assert "  remove with: docker rm -f $(docker ps -aq --filter label=pytest-dockernet.topology=" in log, log
        ends = [line for line in log.splitlines() if line.startswith("dockernet: at the end of the run: ")]
        assert ends and all("the Docker engine stopped answering" in line for line in ends), log
    finally:
        inner_runs.remove_resources()
