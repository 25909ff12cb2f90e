"""The mechanisms behind the speed: a topology that holds something of the host is removed at
once, not in the background (the resident probe shell: test_probes.py; the remover:
test_remover.py; the engine gate that keeps network removal apart from creation: test_gate.py)."""

from __future__ import annotations

import pytest

from pytest_dockernet import Remover, Topology

pytestmark = pytest.mark.dockernet


def test_a_host_bound_topology_is_removed_at_once(dockernet_client, dockernet):
    remover = Remover()
    t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator)
    c = t.container("c", ports={8080: None})
    assert t.context.host_bound
    t.close(later=remover)
    assert not remover.pending
    assert dockernet_client.api.containers(all=True, filters={"id": c.id}) == []
