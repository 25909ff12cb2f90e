"""The fault helpers: one container of the fault image (:mod:`.image`) per target, sharing
the target's network namespace with ``NET_ADMIN``, that runs the rule scripts
(:mod:`.rules`) there. The application's image needs nothing and is not made privileged.
A helper carries its topology's labels and goes with it; it is started on first use and
reused, and made afresh after its target restarted (a new namespace).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..engine import exec_in, remove_container
from ..engine.errors import APIError, NotFound
from ..errors import DockernetError, DriverUnavailable
from ..image import provide_image
from ..sidecars import start_resident
from .image import IP6TABLES_MISSING, fault_image
from .rules import link_local

if TYPE_CHECKING:
    from ..context import Context
    from ..handles import Container


class FaultHelpers:
    """The fault helpers of one topology's containers."""

    def __init__(self, context: Context):
        self.context = context
        self._numbers = itertools.count(1)
        self._helpers: dict[str, str] = {}  # container id -> its fault helper's id
        self.ipv6 = False  # the helpers' image has ip6tables (known once one started)
        self._lock = threading.RLock()

    def run(self, member: Container, script: str) -> tuple[int, str]:
        """Run ``script`` in ``member``'s network namespace: (exit code, output)."""
        helper = self._helper(member)
        try:
            return exec_in(member.engine, helper, ["sh", "-c", script])
        except APIError as exc:
            raise DockernetError(
                f"the fault helper of {member.name!r} cannot run ({exc.explanation or exc}): "
                f"is {member.name!r} still running? it is {member.status()}"
            ) from None

    def renew(self, member: Container) -> None:
        """``member`` restarted: its helper shared the old namespace; the next is made on use."""
        with self._lock:
            old = self._helpers.pop(member.id, None)
        if old is not None:
            remove_container(member.engine, old)

    def require_ipv6(self, member: Container, doing: str, why: str) -> None:
        """Refuse, before anything is applied, a fault that would leave IPv6 uncovered."""
        self._helper(member)
        if not self.ipv6:
            raise DriverUnavailable(f"{doing}: {why}, which needs ip6tables: {IP6TABLES_MISSING}; nothing was applied")

    def _helper(self, member: Container) -> str:
        with self._lock:
            if member.id not in self._helpers:
                self._helpers[member.id] = self._start(member)
            return self._helpers[member.id]

    def _start(self, member: Container) -> str:
        context = self.context
        member.reusable = False  # its network namespace gets rules: not for another test
        engine = member.engine
        with context.timings.measure("image"):
            built = fault_image(context.engine, context.probe_image)
            image, self.ipv6 = built.tag, built.ipv6
            if member.host:
                context.provide_probe_image(member.host)
                provide_image(context.engine, engine, image)
        helper_id = start_resident(
            context,
            member,
            image,
            f"{member.docker_name}-fault{next(self._numbers)}",
            context.labels_for("fault-helper", member.name),
            doing=f"starting the fault helper of {member.name!r}",
            cap_add=["NET_ADMIN", "NET_RAW"],
        )
        context.timings.count("fault helpers")
        return helper_id


def addresses(group: Iterable[Container]) -> tuple[list[str], list[str]]:
    """The IPv4 and IPv6 addresses of ``group`` on every network. IPv6 from the engine
    (the handles know IPv4 only), with the link-local address of each IPv6 endpoint."""
    ipv4: set[str] = set()
    ipv6: set[str] = set()
    for container in group:
        ipv4.update(e.ip for e in container.endpoints.values() if e.ip)
        try:
            info = container.engine.inspect_container(container.id)
        except NotFound:
            continue
        for endpoint in (info["NetworkSettings"].get("Networks") or {}).values():
            if endpoint.get("GlobalIPv6Address"):
                local = link_local(endpoint.get("MacAddress") or "")
                ipv6.update([endpoint["GlobalIPv6Address"], *([local] if local else [])])
    return sorted(ipv4), sorted(ipv6)


def put_again(member: Container, apply: Callable[[], None]) -> None:
    """``apply()`` a fault again on ``member``; a stopped member gets it when it starts
    again (its restart puts every fault back)."""
    try:
        apply()
    except DriverUnavailable:
        raise
    except DockernetError:
        if member.status().startswith("running"):
            raise
