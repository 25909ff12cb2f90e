"""The fault helpers: one container of the fault image (:mod:`.image`) per target, sharing
the target's network namespace with ``NET_ADMIN``, that runs the rule scripts
(:mod:`.rules`) there. The application's image needs nothing and is not made privileged.
A helper carries its topology's labels and goes with it; it is started on first use and
reused, and made afresh after its target restarted (a new namespace).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..engine import exec_in, remove_container
from ..engine.errors import APIError, NotFound
from ..errors import DockernetError, DriverUnavailable
from ..image import image_on, provide_image
from ..shells import NotSent
from ..sidecars import start_resident
from .image import IP6TABLES_MISSING, FaultImage, helper_image
from .rules import link_local
from .tools import preamble

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
        self._no_ipv6 = IP6TABLES_MISSING
        self._preamble = ""  # the tools' paths in the helpers' image, for each script (tools.preamble)
        self._lock = threading.RLock()

    def run(self, member: Container, script: str) -> tuple[int, str]:
        """Run ``script`` in ``member``'s network namespace: (exit code, output). Written to
        the helper's resident shell (about 1 ms, where an exec takes tens: what keeps a
        fault's apply and lift fast), else, while another thread uses it, by an exec."""
        helper = self._helper(member)
        shell = self.context.shells.acquire(member.engine, helper)
        if shell is not None:
            try:
                return shell.run(self._preamble + script, secrets.token_hex(6), float(member.engine.timeout or 60))
            except NotSent:
                shell.close()  # not started: an exec runs it
            except OSError as exc:
                shell.close()
                raise DockernetError(
                    f"the fault helper of {member.name!r} gave no answer ({exc}): is {member.name!r} still "
                    f"running? it is {member.status()}"
                ) from None
            finally:
                shell.lock.release()
        try:
            return exec_in(member.engine, helper, ["sh", "-c", self._preamble + script])
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
            self.context.shells.discard(old)
            remove_container(member.engine, old)

    def require_ipv6(self, member: Container, doing: str, why: str) -> None:
        """Refuse, before anything is applied, a fault that would leave IPv6 uncovered."""
        self._helper(member)
        if not self.ipv6:
            raise DriverUnavailable(f"{doing}: {why}, which needs ip6tables: {self._no_ipv6}; nothing was applied")

    def _helper(self, member: Container) -> str:
        with self._lock:
            if member.id not in self._helpers:
                self._helpers[member.id] = self._start(member)
            return self._helpers[member.id]

    def _start(self, member: Container) -> str:
        context = self.context
        context.need("net-admin", member.host)
        member.reusable = False  # its network namespace gets rules: not for another test
        retried = False
        while True:
            with context.timings.measure("image"):
                built = self._image(member)
            image, self.ipv6, self._no_ipv6, self._preamble = (
                built.tag,
                built.ipv6,
                built.no_ipv6,
                preamble(built.tools),
            )
            try:
                helper_id = start_resident(
                    context,
                    member,
                    image,
                    f"{member.docker_name}-fault{next(self._numbers)}",
                    context.labels_for("fault-helper", member.name),
                    doing=f"starting the fault helper of {member.name!r}",
                    cap_add=["NET_ADMIN", "NET_RAW"],
                )
            except DockernetError:
                # Another run (another version, other host tools) built its fault image and
                # removed this one, unused at that moment (faults.image.fault_image): make it again.
                if retried or image_on(member.engine, image):
                    raise
                retried = True
                continue
            context.timings.count("fault helpers")
            return helper_id

    def _image(self, member: Container) -> FaultImage:
        """The helpers' image on ``member``'s engine: found (and checked) once per run and engine."""
        context, host = self.context, member.host
        known: FaultImage | DockernetError | None = context.facts.fault_images.get(host)
        if isinstance(known, DockernetError):
            raise type(known)(str(known))  # said once per run and engine; each test that needs it fails
        if known is not None and image_on(member.engine, known.tag):
            return known
        check = (
            context.docker_name_for(f"fault-check{next(self._numbers)}"),
            context.labels_for("fault-check", "tools"),
        )
        given = context.settings.fault_image
        try:
            if given:
                if host and not image_on(member.engine, given) and image_on(context.engine, given):
                    provide_image(context.engine, member.engine, given)  # an engine of the lab has no registry
                built = helper_image(member.engine, context.probe_image, given, check)
            else:
                built = helper_image(context.engine, context.probe_image, None, check)
                if host:
                    context.provide_probe_image(host)
                    provide_image(context.engine, member.engine, built.tag)
        except DockernetError as exc:
            context.facts.fault_images[host] = exc
            raise
        context.facts.fault_images[host] = built
        return built


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
