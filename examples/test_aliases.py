"""An alias given on one network resolves on that network only."""

from pytest_dockernet import assert_not_resolves, assert_reachable, assert_resolves


def test_alias_resolves_only_on_its_network(dockernet):
    backend = dockernet.network("backend")
    frontend = dockernet.network("frontend")
    db = dockernet.container("db", networks={backend: ["database"], frontend: []})
    api = dockernet.container("api", networks=[backend])
    web = dockernet.container("web", networks=[frontend])

    assert_resolves(api, "database", to=db.ip(backend))
    assert_reachable(api, "database")
    assert_not_resolves(web, "database")

    # The logical name resolves on every network the container joins.
    assert_resolves(web, "db", to=db.ip(frontend))
