"""pytest-dockernet: isolated Docker networks for tests, with reachability, DNS and isolation assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.register_assert_rewrite("pytest_dockernet.assertions", "pytest_dockernet.web", "pytest_dockernet.measurements")

from .errors import ComposeError, DockernetError, DriverUnavailable, ImageUnavailable  # noqa: E402
from .exports import lazy  # noqa: E402
from .labels import RunIdentity  # noqa: E402

if TYPE_CHECKING:
    from .assertions import (
        ReachabilityMatrix,
        assert_isolated,
        assert_not_resolves,
        assert_reachable,
        assert_resolves,
        assert_unreachable,
        reachability,
    )
    from .compose import ComposeStack
    from .faults import Degradation, DnsFault, Partition
    from .handles import Container, Network, PublishedPort
    from .measurements import Measurement, measure, throughput
    from .nemesis import Nemesis, NemesisEvent
    from .readiness import Listening, LogLine
    from .swarm import Service
    from .topology import Remover, Topology  # Remover through topology, as before: the docs' inventory keeps its path
    from .web import HttpResponse, assert_http, http_get

__version__ = "0.1.0"

# Every pytest run in an environment with the plugin installed imports this package; the
# parts behind these names (the engine's client, compose and YAML, the faults...) are
# imported when a name is first used (PEP 562), so a run that never uses them does not pay.
_HOMES = {
    **dict.fromkeys(
        (
            "ReachabilityMatrix",
            "assert_isolated",
            "assert_not_resolves",
            "assert_reachable",
            "assert_resolves",
            "assert_unreachable",
            "reachability",
        ),
        "assertions",
    ),
    "ComposeStack": "compose",
    **dict.fromkeys(("Degradation", "DnsFault", "Partition"), "faults"),
    **dict.fromkeys(("Container", "Network", "PublishedPort"), "handles"),
    **dict.fromkeys(("Measurement", "measure", "throughput"), "measurements"),
    **dict.fromkeys(("Nemesis", "NemesisEvent"), "nemesis"),
    **dict.fromkeys(("Listening", "LogLine"), "readiness"),
    "Service": "swarm",
    "Remover": "remover",
    "Topology": "topology",
    **dict.fromkeys(("HttpResponse", "assert_http", "http_get"), "web"),
}


__getattr__, __dir__ = lazy(__name__, _HOMES, globals())


__all__ = [
    "ComposeError",
    "ComposeStack",
    "Container",
    "Degradation",
    "DnsFault",
    "DockernetError",
    "DriverUnavailable",
    "HttpResponse",
    "ImageUnavailable",
    "Measurement",
    "Nemesis",
    "NemesisEvent",
    "Listening",
    "LogLine",
    "Network",
    "Partition",
    "PublishedPort",
    "ReachabilityMatrix",
    "Remover",
    "RunIdentity",
    "Service",
    "Topology",
    "assert_http",
    "assert_isolated",
    "assert_not_resolves",
    "assert_reachable",
    "assert_resolves",
    "assert_unreachable",
    "http_get",
    "measure",
    "reachability",
    "throughput",
]
