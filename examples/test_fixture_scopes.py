"""One factory per scope: dockernet (function), dockernet_module, dockernet_session.

Each removes what it made when its scope ends. Containers join networks of their own
factory only, so a topology shared by a module is built from dockernet_module.
"""

import pytest

from pytest_dockernet import assert_reachable, assert_resolves


@pytest.fixture(scope="module")
def api(dockernet_module):
    """Built once for this module, removed after its last test."""
    backend = dockernet_module.network("backend")
    dockernet_module.container("db", networks={backend: ["database"]})
    return dockernet_module.container("api", networks=[backend])


def test_api_reaches_the_database(api):
    assert_reachable(api, "database")


def test_api_resolves_the_database(api, dockernet_module):
    assert_resolves(api, "database", to=dockernet_module.get_container("db"))


def test_a_topology_of_its_own(dockernet):
    """The function-scoped factory starts empty for every test."""
    assert dockernet.containers_list == []
    worker = dockernet.container("worker")
    assert worker.ip() == worker.ip(dockernet.get_network("default"))
