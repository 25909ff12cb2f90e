"""The assertion helpers' own machinery (assertions.py): an answer where none is expected is
asked again before it counts, and a target that has exited, named as a container, by its
logical name or by an alias, is reported as not running (reached: at once, without waiting)."""

from __future__ import annotations

import pytest

from pytest_dockernet import DockernetError, assert_reachable, assert_resolves
from pytest_dockernet.diagnosis import named_container

pytestmark = pytest.mark.dockernet


def test_an_answer_that_does_not_repeat_is_not_counted(dockernet):
    """A negative probe's answer is asked again (Docker's isolation rules flicker while
    networks come and go): only one that repeats counts."""
    from pytest_dockernet.assertions import _confirmed

    src = dockernet.container("src")
    once = "test ! -e /tmp/answered && touch /tmp/answered"
    assert _confirmed(src, [once, "true", "false"]) == [False, True, False]


def test_reaching_a_container_that_exited_fails_at_once_with_its_output(dockernet):
    a = dockernet.container("a")
    db = dockernet.container("db", command=["sh", "-c", "sleep 0.5; echo 'FATAL: no data directory' >&2; exit 3"])
    dockernet.client.api.wait(db.id, timeout=30)
    stopped = r"(?s)a cannot reach db: it is not running \(exited, exit code 3\).*FATAL"
    with pytest.raises(DockernetError, match=stopped):
        assert_reachable(a, db, timeout=60)


def test_a_name_means_a_container_by_its_logical_name_or_an_alias_on_a_shared_network(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    src = dockernet.container("src", networks=[front])
    db = dockernet.container("db", networks={front: ["database"]})
    hidden = dockernet.container("hidden", networks={back: ["secret"]})
    assert named_container(src, "db") is db
    assert named_container(src, "database") is db  # its alias where src can use it
    assert named_container(src, "hidden") is hidden  # a logical name, on any network
    assert named_container(src, "secret") is None  # an alias on a network src is not on
    assert named_container(src, "src") is None  # never the source itself
    assert named_container(src, "nobody") is None


def test_an_alias_that_does_not_resolve_because_its_container_exited_says_so(dockernet):
    net = dockernet.network("n")
    src = dockernet.container("src", networks=[net])
    db = dockernet.container("db", networks={net: ["database"]}, command=["sh", "-c", "sleep 0.5; exit 4"])
    dockernet.client.api.wait(db.id, timeout=30)
    with pytest.raises(DockernetError, match=r"src cannot resolve db: it is not running \(exited, exit code 4\)"):
        assert_resolves(src, "database", timeout=2)
