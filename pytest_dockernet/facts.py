"""What a run finds out once and shares between its topologies: about its engines, and
what it has built.

Asking again per topology would cost an API call (or a probe) per test; the answers do not
change during a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunFacts:
    swarm: bool | None = None  # engine 0 is a swarm manager (None: not asked yet)
    swarm_state: str = "unknown"  # its LocalNodeState, for messages
    probe_image_on: set[int] = field(default_factory=set)  # engines known to have the probe image
    nodes: dict[str, int] = field(default_factory=dict)  # swarm node id -> engine index
    vip: bool | None = None  # swarm virtual IPs work (IPVS); None: not found out yet
    # The identity labels of the process whose end ends the run (under xdist, the
    # controller: every worker's build() labels the run's images with them); None: the
    # topology's own identity.
    owner: dict[str, str] | None = None
    builds: dict[str, str] = field(default_factory=dict)  # build() content key -> image reference, this process
    capabilities: Any = None  # a capabilities.Capabilities: each engine's, probed once per run
    fault_images: dict[int, Any] = field(default_factory=dict)  # engine index -> its faults.image.FaultImage
    dns_images: dict[int, Any] = field(default_factory=dict)  # engine index -> its faults.dns_image.ResponderImage
    # (engine index, kernel feature a fault needs) -> "" if it has it, else why not (faults.degradation)
    kernel_features: dict[tuple[int, str], str] = field(default_factory=dict)
    builder: str = "auto"  # --dockernet-builder: auto | buildkit | legacy
    buildkit: dict[str, Any] = field(default_factory=dict)  # engine URL -> buildkit.Found, searched once per run
    build_progress: Callable[[str], None] | None = None  # where a long build's progress lines go (the terminal)
