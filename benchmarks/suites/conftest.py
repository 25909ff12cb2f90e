"""Records for run.py: each test's wall time (set-up, call and teardown), and what
pytest-dockernet made (so that run.py can check that nothing of it is left)."""

import json
import os
import threading
import time
from pathlib import Path

import pytest
from benchenv import OUT

_times: dict[str, float] = {}
_lock = threading.Lock()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    yield
    _times[item.nodeid] = time.perf_counter() - started


def pytest_sessionfinish(session):
    if OUT and _times:
        Path(OUT, f"times-{os.getpid()}.json").write_text(json.dumps(_times))


def _made(kind: str, handle) -> None:
    if not OUT:
        return
    run_id = getattr(getattr(getattr(handle, "topology", None), "identity", None), "run_id", "")
    with _lock, open(Path(OUT, f"made-{os.getpid()}.txt"), "a") as f:
        f.write(f"{kind} {handle.docker_name} {run_id}\n")


@pytest.hookimpl(optionalhook=True)
def pytest_dockernet_network_created(network):
    _made("network", network)


@pytest.hookimpl(optionalhook=True)
def pytest_dockernet_container_started(container):
    _made("container", container)
