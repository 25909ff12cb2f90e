"""pytest-dockernet's hooks, implemented as a project's conftest.py would."""

import tempfile
from pathlib import Path

LOG_DIR = Path(tempfile.gettempdir()) / "dockernet-logs"


def pytest_dockernet_topology_teardown(factory):
    """Keep the logs of every container of a failed test (they are removed right after)."""
    if factory.failed:
        LOG_DIR.mkdir(exist_ok=True)
        for container in factory.containers_list:
            (LOG_DIR / f"{container.docker_name}.log").write_text(container.logs())
