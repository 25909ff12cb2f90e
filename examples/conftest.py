"""pytest-dockernet's hooks, implemented as a project's conftest.py would.

``optionalhook=True``: the project's tests still run (those that need Docker deselected
with ``-m "not dockernet"``) where the plugin is not installed or is turned off with
``-p no:dockernet``, e.g. in a CI job without Docker.
"""

import tempfile
from pathlib import Path

import pytest

LOG_DIR = Path(tempfile.gettempdir()) / "dockernet-logs"


@pytest.hookimpl(optionalhook=True)
def pytest_dockernet_topology_teardown(factory):
    """Keep the logs of every container of a failed test (removed right after)."""
    if factory.failed:
        LOG_DIR.mkdir(exist_ok=True)
        for container in factory.containers_list:
            (LOG_DIR / f"{container.docker_name}.log").write_text(container.logs())
