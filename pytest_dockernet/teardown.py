"""A topology's removal: what ``Topology.close()`` runs now or hands to a
:class:`~pytest_dockernet.remover.Remover`, once.

Removal sweeps by the topology's label, so a call interrupted half-way leaves nothing it
does not find: containers first (forced, with anonymous volumes), then networks, engine 0
last (the overlay networks it holds wait for the other engines' endpoints).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .engine import remove_labelled, remove_services

if TYPE_CHECKING:
    from .containers import Containers
    from .context import Context
    from .networks import Networks


class Removal:
    """Removes everything of one topology, once (``remove()`` again is a no-op)."""

    def __init__(self, context: Context, containers: Containers, networks: Networks):
        self.context = context
        self._containers = containers
        self._networks = networks
        self._done = False

    def remove(self) -> None:
        if self._done:
            return
        context = self.context
        with context.timings.measure("teardown"):
            self._containers.return_pooled()
            filters = context.filters()
            if context.services:
                remove_services(context.engine, filters)
                engines: Iterable[int] = range(len(context.engines))  # their tasks ran anywhere
            else:
                engines = self._containers.engines_used
            for engine in sorted(engines, reverse=True):
                # Another engine's copy of an overlay network goes with its last container;
                # the network itself is the manager's (engine 0's) to remove.
                remove_labelled(context.engines[engine], filters, networks=engine == 0)
            self._networks.return_warm()  # empty now: the warm pool's wait for a later test
        self._done = True
        self._networks.release_subnets()
