"""disconnect() takes a container off a network; connect() puts it back."""

import pytest

from pytest_dockernet import (
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
)


# An engine without it skips it, naming the capability
@pytest.mark.dockernet(needs=["connect-disconnect"])
def test_disconnect_and_connect(dockernet):
    net = dockernet.network("app")
    api = dockernet.container("api", networks=[net])
    db = dockernet.container("db", networks=[net])
    assert_reachable(api, "db")
    old_address = db.ip(net)

    dockernet.disconnect(db, net)
    assert_unreachable(api, old_address)
    assert_not_resolves(api, "db")

    dockernet.connect(db, net, aliases=["database"])
    assert_reachable(api, "db")
    assert_resolves(api, "database", to=db)
