"""Start several containers at once: containers() starts a batch concurrently."""

from pytest_dockernet import assert_resolves


def test_three_tiers_start_together(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    tiers = dockernet.containers(
        {
            "web": {"networks": [front], "command": ["httpd", "-f", "-p", "8080"]},
            "api": {"networks": {front: [], back: ["backend"]}},
            "db": {"networks": {back: ["database"]}},
        }
    )

    matrix = dockernet.reachability(tiers.values(), tiers.values())
    assert matrix["api", "web"] and matrix["api", "db"]
    assert not matrix["web", "db"]
    assert_resolves(tiers["api"], "database", to=tiers["db"])
