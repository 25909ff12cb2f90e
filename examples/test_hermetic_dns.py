"""Hermetic DNS (--dockernet-dns=hermetic, the default): names no container provides
fail inside the engine instead of being asked of the host's resolvers."""

import pytest

from pytest_dockernet import assert_not_resolves, assert_resolves


# An engine without it skips it, naming the capability
@pytest.mark.dockernet(needs=["hermetic-dns"])
def test_unknown_names_fail_inside_the_engine(dockernet):
    # No networks=: joins the factory's "default" network
    api = dockernet.container("api")
    dockernet.container("db")

    assert_resolves(api, "db", to=dockernet.get_container("db"))
    # An empty answer from the engine's own DNS
    assert_not_resolves(api, "no-such-service")
    assert_not_resolves(api, "db.example", timeout=6)  # dotted: asked of no one outside
