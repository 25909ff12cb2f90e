"""Legacy links on the default bridge (prefer user-defined networks and aliases)."""

import pytest

from pytest_dockernet import assert_reachable, assert_resolves


# An engine without links skips it, naming the capability
@pytest.mark.dockernet(needs=["links"])
def test_link_alias_resolves_in_the_linking_container(dockernet):
    db = dockernet.container("db", network_mode="bridge")
    with pytest.warns(DeprecationWarning, match="user-defined network"):
        api = dockernet.container(
            "api", network_mode="bridge", links={"db": "database"}
        )

    # The default bridge has no DNS: the link is an /etc/hosts entry, which counts.
    assert_resolves(api, "database", to=db)
    assert_reachable(api, "database")
