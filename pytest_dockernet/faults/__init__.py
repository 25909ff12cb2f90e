"""Faults on a topology's containers: partitions between groups, degraded links; lifted on demand.

A fault is applied from a *fault helper* (:mod:`.helpers`): a container of the fault image
(the probe image plus ``iptables``, ``ip6tables`` and ``tc``, copied here from this machine
with their libraries, so no registry is needed: :mod:`.image`) that shares the target's
network namespace with ``NET_ADMIN``. Rules (:mod:`.rules`) live in the target's own
namespace, so they die with it; the helpers carry the topology's labels and go with it.

Each kind is a module implementing the :class:`~.fault.Fault` protocol (apply, verify,
lift, reapply, describe) on :class:`~.fault.FaultBase`: :mod:`.partition`,
:mod:`.degradation`. The topology's :class:`~.in_force.Faults` keeps those in force and
makes a fault follow its containers: after a restart (a new namespace) and after a
``connect()`` or ``disconnect()`` (other addresses, other interfaces) it is put again, so
it covers the networks they are on now. The marker's ``partition=``/``degrade=`` are read
in :mod:`.marker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy

if TYPE_CHECKING:
    from .degradation import Degradation
    from .dns import DnsFault, Lookup
    from .fault import Fault, FaultBase
    from .in_force import Faults
    from .partition import Connections, Partition

# Imported when first used (PEP 562): every run reads the marker's arguments (.marker),
# only a run that applies a fault needs the faults themselves and their images.
_HOMES = {
    "Connections": "partition",
    "Degradation": "degradation",
    "DnsFault": "dns",
    "Fault": "fault",
    "FaultBase": "fault",
    "Faults": "in_force",
    "Lookup": "dns",
    "Partition": "partition",
}


__getattr__, __dir__ = lazy(__name__, _HOMES, globals())


__all__ = ["Connections", "Degradation", "DnsFault", "Fault", "FaultBase", "Faults", "Lookup", "Partition"]
