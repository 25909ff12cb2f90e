"""What a failing test leaves with --dockernet-artifacts DIR: its topology drawn and
as JSON, each container's log, and the timeline of what the plugin did. This test
passes, so it leaves nothing; without its heal() it fails (docs/how-to/artifacts.md).
"""

from pytest_dockernet import assert_reachable, assert_unreachable


def test_the_api_reaches_its_database_once_healed(dockernet):
    front = dockernet.network("front")
    api = dockernet.container(
        "api", networks=[front], command=["sh", "-c", "echo api up; exec sleep 600"]
    )
    db = dockernet.container(
        "db", networks=[front], command=["httpd", "-f", "-p", "5432"]
    )

    cut = dockernet.partition(api, db)
    assert_unreachable(api, db, port=5432)
    dockernet.heal(cut)
    assert_reachable(api, db, port=5432)
