"""pytest-dockernet: isolated Docker networks for tests, with reachability, DNS and isolation assertions."""

import pytest

pytest.register_assert_rewrite("pytest_dockernet.assertions", "pytest_dockernet.web", "pytest_dockernet.measurements")

from .assertions import (  # noqa: E402
    ReachabilityMatrix,
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)
from .compose import ComposeStack  # noqa: E402
from .errors import ComposeError, DockernetError, DriverUnavailable, ImageUnavailable  # noqa: E402
from .faults import Degradation, DnsFault, Partition  # noqa: E402
from .handles import Container, Network, PublishedPort  # noqa: E402
from .labels import RunIdentity  # noqa: E402
from .measurements import Measurement, measure, throughput  # noqa: E402
from .nemesis import Nemesis, NemesisEvent  # noqa: E402
from .readiness import Listening, LogLine  # noqa: E402
from .swarm import Service  # noqa: E402
from .topology import Remover, Topology  # noqa: E402
from .web import HttpResponse, assert_http, http_get  # noqa: E402

__version__ = "0.1.0"

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
