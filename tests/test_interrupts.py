"""An interrupt wins wherever it lands: the run stops as for Ctrl-C, and what the
interrupted call made is removed (compose(), containers())."""

from __future__ import annotations

import signal
import time

import pytest

from pytest_dockernet.labels import NAME, SESSION

# db never gets healthy (its first check is an hour away), and api waits for it to be; db
# mounts a named volume, which can only go after db's container.
NEVER_HEALTHY = """\
services:
  db:
    image: ${PROBE_IMAGE}
    command: sleep 3600
    volumes: [data:/data]
    healthcheck: {test: ["CMD", "true"], interval: 1h}
  api:
    image: ${PROBE_IMAGE}
    depends_on: {db: {condition: service_healthy}}
volumes:
  data: {}
"""

WAITS_FOR_COMPOSE = """
    from pathlib import Path

    from inner_run_spy import ready

    def test_up(dockernet):
        ready()
        dockernet.compose("compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})

    def test_next():
        Path("next-ran").touch()
"""


# Neither gets healthy (the first check is an hour away): containers() waits for both at once.
WAITS_FOR_CONTAINERS = """
    from pathlib import Path

    from inner_run_spy import ready

    NEVER_HEALTHY = {
        "command": ["sleep", "3600"],
        "healthcheck": {"test": ["CMD", "true"], "interval": 3600},
        "ready": "healthy",
        "ready_timeout": 300,
    }

    def test_up(dockernet):
        ready()
        dockernet.containers({"db": NEVER_HEALTHY, "web": NEVER_HEALTHY})

    def test_next():
        Path("next-ran").touch()
"""


@pytest.mark.parametrize("call", ["compose", "containers"])
def test_sigterm_while_a_call_waits_for_a_healthy_container_stops_the_run(inner_runs, pytester, call):
    if call == "compose":
        pytester.makefile(".yaml", compose=NEVER_HEALTHY)
        pytester.makepyfile(WAITS_FOR_COMPOSE)
    else:
        pytester.makepyfile(WAITS_FOR_CONTAINERS)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    api = inner_runs.client.api
    db = {"label": [f"{SESSION}={run_id}", f"{NAME}=db"], "status": "running"}
    for _ in range(600):  # the call waits for db's health once db runs
        if api.containers(filters=db) or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert api.containers(filters=db), inner_runs.log(proc)

    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    status = proc.wait(timeout=60)
    stopped = time.monotonic() - sent

    log = inner_runs.log(proc)
    # As a SIGTERM anywhere else in a run (test_teardown.py::test_sigterm_tears_down_like_ctrl_c).
    assert status == pytest.ExitCode.INTERRUPTED, log
    assert "KeyboardInterrupt" in log and "volume is in use" not in log, log
    assert not (pytester.path / "next-ran").exists(), log
    assert inner_runs.resources(run_id) == []  # containers, networks and volumes
    assert stopped < 10, f"the run took {stopped:.1f} s to stop:\n{log}"
