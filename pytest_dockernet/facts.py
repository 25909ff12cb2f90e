"""What a run finds out about its engines once and shares between its topologies.

Asking again per topology would cost an API call (or a probe) per test; the answers do not
change during a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunFacts:
    swarm: bool | None = None  # engine 0 is a swarm manager (None: not asked yet)
    swarm_state: str = "unknown"  # its LocalNodeState, for messages
    probe_image_on: set[int] = field(default_factory=set)  # engines known to have the probe image
    nodes: dict[str, int] = field(default_factory=dict)  # swarm node id -> engine index
    vip: bool | None = None  # swarm virtual IPs work (IPVS); None: not found out yet
