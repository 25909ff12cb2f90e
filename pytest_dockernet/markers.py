"""pytest glue: the ``dockernet`` marker's arguments, checked where a test sets up (or where
``drivers=`` parametrizes it), each refusal naming the test and the argument."""

from __future__ import annotations

from typing import Any

import pytest

from .capabilities import check_needs
from .faults import marker as fault_marker

MARKER_KWARGS = ("driver", "drivers", "needs", "capture", *fault_marker.ARGUMENTS)


def marker_kwargs(marker: pytest.Mark | None, where: str) -> dict[str, Any]:
    if marker is None:
        return {}
    from .networks import DRIVERS  # here: a run without the marker does not import the parts

    if marker.args:
        pytest.fail(f"{where}: @pytest.mark.dockernet takes keyword arguments only (driver=, drivers=)", pytrace=False)
    unknown = sorted(set(marker.kwargs) - set(MARKER_KWARGS))
    if unknown:
        pytest.fail(
            f"{where}: @pytest.mark.dockernet got unknown arguments {unknown}; "
            f"it takes {', '.join(f'{k}=' for k in MARKER_KWARGS[:-1])} and {MARKER_KWARGS[-1]}=",
            pytrace=False,
        )
    driver, drivers = marker.kwargs.get("driver"), marker.kwargs.get("drivers")
    if drivers is not None:
        if not isinstance(drivers, (list, tuple)) or not drivers:
            pytest.fail(
                f"{where}: @pytest.mark.dockernet(drivers=...) takes a non-empty list such as ['bridge'], "
                f"got {drivers!r}",
                pytrace=False,
            )
        if driver is not None:
            pytest.fail(f"{where}: @pytest.mark.dockernet takes driver= or drivers=, not both", pytrace=False)
    for name in [driver or "bridge", *(drivers or [])]:
        if name not in DRIVERS:
            pytest.fail(
                f"{where}: @pytest.mark.dockernet driver {name!r} is not one of {', '.join(DRIVERS)}", pytrace=False
            )
    capture = marker.kwargs.get("capture")
    if capture is not None and not isinstance(capture, bool):
        pytest.fail(f"{where}: @pytest.mark.dockernet(capture=...) takes True or False, got {capture!r}", pytrace=False)
    needs = marker.kwargs.get("needs")
    if needs is not None and check_needs(needs):
        pytest.fail(f"{where}: @pytest.mark.dockernet(needs=...) {check_needs(needs)}", pytrace=False)
    return dict(marker.kwargs)


def check_marker(node: pytest.Item | pytest.Function, fixturenames: list[str]) -> dict[str, Any]:
    kwargs = marker_kwargs(node.get_closest_marker("dockernet"), node.nodeid)
    if kwargs.get("drivers") and "dockernet" not in fixturenames:
        pytest.fail(
            f"{node.nodeid}: @pytest.mark.dockernet(drivers=...) needs the test to use "
            "the function-scoped dockernet fixture",
            pytrace=False,
        )
    return kwargs
