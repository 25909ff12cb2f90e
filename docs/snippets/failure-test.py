"""The API must reach the database, but it was put on the front network only."""

from pytest_dockernet import assert_reachable


def test_the_api_reaches_the_database(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    dockernet.container("web", networks=[front])
    api = dockernet.container("api", networks=[front])  # forgot: networks=[front, back]
    db = dockernet.container("db", networks={back: ["database"]})

    assert_reachable(api, db)
