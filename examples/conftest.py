"""pytest-dockernet's hooks, implemented as a project's conftest.py would.

``optionalhook=True``: the project's tests still run (those that need Docker deselected
with ``-m "not dockernet"``) where the plugin is not installed or is turned off with
``-p no:dockernet``, e.g. in a CI job without Docker.
"""

import tempfile
from pathlib import Path

import pytest

from pytest_dockernet import Listening

LOG_DIR = Path(tempfile.gettempdir()) / "dockernet-logs"


@pytest.hookimpl(optionalhook=True)
def pytest_dockernet_topology_teardown(factory):
    """Keep the logs of every container of a failed test (removed right after)."""
    if factory.failed:
        LOG_DIR.mkdir(exist_ok=True)
        for container in factory.containers_list:
            (LOG_DIR / f"{container.docker_name}.log").write_text(container.logs())


# --8<-- [start:app]
APP = Path(__file__).parent / "app"
# Made by scripts/app-base-image (no registry here)
LOCAL_BASE = "pytest-dockernet/app-base:bookworm"


def app_stack(dockernet, dockernet_client):
    """The example application on one network: the API, its database and cache, and a
    client in the probe image that stands in for the API's users."""
    local = dockernet_client.images.list(name=LOCAL_BASE)
    buildargs = {"BASE": LOCAL_BASE} if local else {}
    # The same build as test_application's
    image = dockernet.build(APP, buildargs=buildargs)
    net = dockernet.network("app")
    no_healthcheck = {"test": ["NONE"]}
    return dockernet.containers(
        {
            "database": {
                "image": image,
                "command": ["/app/start-postgres"],
                "user": "postgres",
                "networks": [net],
                "healthcheck": no_healthcheck,
                "ready": Listening(5432),
            },
            "cache": {
                "image": image,
                "command": ["redis-server", "--protected-mode", "no"],
                "networks": [net],
                "healthcheck": no_healthcheck,
                "ready": Listening(6379),
            },
            "api": {"image": image, "networks": [net], "ready": "healthy"},
            "client": {"networks": [net]},
        }
    )


@pytest.fixture(scope="module")
def stack(dockernet_module, dockernet_client):
    """The application, once per module (the fault examples lift what they put)."""
    return app_stack(dockernet_module, dockernet_client)


@pytest.fixture
def fresh_stack(dockernet, dockernet_client):
    """The application for one test (one that kills and restarts its containers)."""
    return app_stack(dockernet, dockernet_client)


# --8<-- [end:app]
