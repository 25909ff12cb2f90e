"""Record a test's traffic; a failing test keeps each network's as <network>.pcap."""

import pytest

from pytest_dockernet import assert_reachable, assert_unreachable


@pytest.mark.dockernet(capture=True)  # or --dockernet-capture for every test
def test_only_api_reaches_the_database(dockernet):
    front = dockernet.network("front")
    back = dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    api = dockernet.container("api", networks=[front, back])
    db = dockernet.container(
        "db", networks=[back], command=["httpd", "-f", "-p", "5432"]
    )

    assert_reachable(api, db, port=5432)
    assert_unreachable(web, db)  # web is on front only
