"""The engine package: the only place that talks to docker-py.

:mod:`.port` is the :class:`~.port.Engine` Protocol the parts talk through, and
:mod:`.docker_engine` its Docker implementation; :mod:`.errors` what an engine raises.
:mod:`.connect` reaches an engine, :mod:`.removal` removes what the plugin made,
:mod:`.calls` holds small calls several parts make, and :mod:`.gate` keeps network removal
apart from creation on one engine. What the rest of the package uses is re-exported here.
"""

from __future__ import annotations

from .calls import engine_subnets, exec_in, has_network
from .connect import Client, answers, as_engine, connect, lost, where
from .port import Engine
from .removal import (
    Filters,
    remove_container,
    remove_containers_named,
    remove_labelled,
    remove_network,
    remove_network_if_unused,
    remove_networks_named,
    remove_service,
    remove_services,
    remove_volume,
    remove_volumes,
    undone_on_failure,
)

__all__ = [
    "Client",
    "Engine",
    "Filters",
    "answers",
    "as_engine",
    "connect",
    "engine_subnets",
    "exec_in",
    "has_network",
    "lost",
    "remove_container",
    "remove_containers_named",
    "remove_labelled",
    "remove_network",
    "remove_network_if_unused",
    "remove_networks_named",
    "remove_service",
    "remove_services",
    "remove_volume",
    "remove_volumes",
    "undone_on_failure",
    "where",
]
