"""Separate bridge networks are isolated; a container on both reaches both sides."""

from pytest_dockernet import (
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
)


def test_separate_networks_are_isolated(dockernet):
    front = dockernet.network("front")
    back = dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    proxy = dockernet.container("proxy", networks=[front])
    db = dockernet.container("db", networks=[back])

    # Controls first: web's probes do reach and resolve a neighbour, so the "no" answers
    # below come from the network, not from a probe that cannot work.
    assert_reachable(web, proxy)
    assert_resolves(web, "proxy")

    # No container of one reaches any of the other, both ways
    assert_isolated(front, back)
    assert_unreachable(web, db)  # db's address on back
    cache = dockernet.container("cache", networks=[back])
    # Several targets: probed at once, one timeout
    assert_unreachable(web, [db, cache], port=6379)
    assert_not_resolves(web, "db")


def test_container_on_both_networks_reaches_both_sides(dockernet):
    front = dockernet.network("front")
    back = dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    db = dockernet.container("db", networks=[back])
    api = dockernet.container("api", networks=[front, back])

    assert_reachable(api, "web")
    assert_reachable(api, "db")
    # The networks now share api, so compare the containers that must stay apart.
    assert_isolated([web], [db])
    assert_reachable(web, api)  # control: web's probes work, so its "no" to db is real
