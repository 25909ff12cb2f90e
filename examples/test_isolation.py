"""Separate bridge networks are isolated; a container on both reaches both sides."""

from pytest_dockernet import assert_isolated, assert_not_resolves, assert_reachable, assert_unreachable


def test_separate_networks_are_isolated(dockernet):
    front = dockernet.network("front")
    back = dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    db = dockernet.container("db", networks=[back])

    assert_isolated(front, back)  # no container of one reaches any of the other, both ways
    assert_unreachable(web, db)  # db's address on back
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
