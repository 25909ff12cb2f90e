"""The background removal of closed topologies (:mod:`pytest_dockernet.remover`)."""

from __future__ import annotations

import threading

import pytest

from pytest_dockernet import Remover, Topology


def test_the_remover_finishes_in_the_background_and_bounds_its_backlog(dockernet_client, dockernet):
    remover = Remover(backlog=2)
    made = []
    for _ in range(4):
        t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator)
        made.append(t.container("c").id)
        t.close(later=remover)
        assert len(remover.pending) <= 2
    assert remover.wait() == []
    assert not remover.pending
    assert [c for c in made if dockernet_client.api.containers(all=True, filters={"id": c})] == []


def test_remover_rejects_a_backlog_below_one():
    with pytest.raises(ValueError, match="backlog=0 must be at least 1"):
        Remover(backlog=0)


class Removal:
    """Anything with ``remove()`` is removable: the remover needs nothing else of a topology."""

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.thread: str | None = None

    def remove(self) -> None:
        self.thread = threading.current_thread().name
        if self.error is not None:
            raise self.error


def test_a_failed_removal_is_reported_once_with_its_error():
    remover: Remover[Removal] = Remover()
    fine, broken = Removal(), Removal(RuntimeError("engine refused"))
    remover.submit(fine)
    remover.submit(broken)
    failed = remover.wait()
    assert failed == [(broken, broken.error)]
    assert fine.thread == broken.thread and fine.thread.startswith("dockernet-teardown")  # off the test's thread
    assert remover.wait() == []
