"""Hooks that pytest-dockernet calls, for conftest files and other plugins to implement.

Each is called with keyword arguments, at the moment its name says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .handles import Container, Network
    from .topology import Topology


@pytest.hookspec
def pytest_dockernet_network_created(network: Network) -> None:
    """A network was created (not called for the engine's own ``host`` network).

    :param pytest_dockernet.Network network: its handle; ``network.topology`` is the factory.

    .. versionadded:: 0.1

    For example, to record what a test made::

        def pytest_dockernet_network_created(network):
            print(f"made {network.name} as {network.docker_name} ({network.subnet})")
    """


@pytest.hookspec
def pytest_dockernet_container_started(container: Container) -> None:
    """A container is running and attached to all its networks.

    :param pytest_dockernet.Container container: its handle, addresses known.

    .. versionadded:: 0.1

    For example, to wait for an application inside to be ready::

        def pytest_dockernet_container_started(container):
            if container.name == "db":
                wait_until_db_answers(container.ip())
    """


@pytest.hookspec
def pytest_dockernet_topology_teardown(factory: Topology) -> None:
    """A factory's scope ended; its networks and containers still exist, and are removed
    right after this returns (or kept, with ``--dockernet-keep`` after a failure).

    :param pytest_dockernet.Topology factory: the factory (``factory.containers_list``,
        ``factory.networks_list``, ``factory.failed``).

    .. versionadded:: 0.1

    For example, to keep the logs of every container of a failed test::

        def pytest_dockernet_topology_teardown(factory):
            if factory.failed:
                for c in factory.containers_list:
                    (LOG_DIR / f"{c.docker_name}.log").write_text(c.logs())
    """
