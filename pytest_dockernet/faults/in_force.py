"""The faults part of a topology (:class:`Faults`): the faults in force on its containers,
kept in order of kind (partitions, then degradations: :data:`KINDS`), put again where a
container restarted (:meth:`Faults.reapply`) or joined or left a network
(:meth:`Faults.follow`), so that they cover the networks it is on now."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DockernetError
from ..handles import Container, check_owned
from .degradation import Degradation, check_degrade, check_settings
from .dns import DnsFault, Responders, check_dns_fault
from .fault import Fault
from .helpers import FaultHelpers
from .partition import Partition, check_partition
from .rules import Settings

if TYPE_CHECKING:
    from ..context import Context
    from ..handles import Network

KINDS: tuple[type, ...] = (Partition, Degradation, DnsFault)  # the order they are listed in
K = TypeVar("K", Partition, Degradation)
MAX_LIFTED = 200  # a session's topology lives through many tests: its oldest lifted faults go


def _not_given(what: str) -> Callable[..., Any]:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise DockernetError(f"verify() needs {what}(), which this topology's faults part was not given")

    return refuse


class Faults:
    """The faults in force on one topology's containers, and their helpers."""

    def __init__(
        self,
        context: Context,
        measure: Callable[..., Any] | None = None,
        throughput: Callable[..., Any] | None = None,
    ):
        self.context = context
        self.helpers = FaultHelpers(context)
        self.dns = Responders(context, self.helpers)
        self.lock = threading.RLock()
        self.measure = measure or _not_given("measure")
        self.throughput = throughput or _not_given("throughput")
        self._in_force: list[Fault] = []
        self._lifted: list[Fault] = []  # for the report: those lifted during the current test
        self._numbers = itertools.count(1)  # every kind's #n: partitions' chains are named after it
        self._started = time.monotonic()
        context.faults_in_force = self.in_force
        context.faults_lifted = self.lifted
        context.faults = self

    def in_force(self) -> list[Fault]:
        """The faults in force: partitions, then degradations, each in the order made."""
        with self.lock:
            return sorted(self._in_force, key=lambda f: KINDS.index(type(f)))

    def lifted(self) -> list[Fault]:
        """The faults lifted since the current test's call phase began (all of them outside
        a test), in the order lifted."""
        origin = self.context.timeline.origin
        with self.lock:
            return [f for f in self._lifted if origin is None or (f.lifted_at or 0.0) >= origin]

    def forget(self, fault: Fault) -> None:
        with self.lock:
            if fault in self._in_force:
                self._in_force.remove(fault)
                self._lifted.append(fault)
                del self._lifted[:-MAX_LIFTED]
                self.record(fault, "lifted")

    def relative(self, at: float) -> float:
        seconds = self.context.timeline.relative(at)
        return at - self._started if seconds is None else seconds

    def record(self, fault: Fault, what: str) -> None:
        self.context.timeline.add(f"{fault.title()}: {what}")

    def number(self) -> int:
        """The next fault's ``#n`` (a kind calls it when it makes one)."""
        return next(self._numbers)

    def _of(self, kind: type[K]) -> list[K]:
        return [f for f in self._in_force if isinstance(f, kind)]

    def _add(self, fault: Fault) -> None:
        """Apply ``fault`` and prove it took (``check()``): if not, what was applied is lifted
        and the error raised."""
        fault.apply()
        try:
            fault.check()
        except BaseException:
            try:
                fault.lift()  # not in force yet: lifting it only takes its rules off
            except DockernetError:
                pass  # the check's error says what is wrong
            raise
        fault.since = time.monotonic()
        self._in_force.append(fault)
        self.record(fault, "applied")

    def _lift(self, kind: type[K], fault: K | None, stranger: str) -> None:
        """Lift ``fault``, or every fault of ``kind`` in force."""
        with self.lock:
            for f in self._of(kind) if fault is None else [fault]:
                if f.lifted:
                    continue
                if f not in self._in_force:
                    raise ValueError(f"{f!r} {stranger}")
                f.lift()

    # -- partitions ----------------------------------------------------------------------

    def partition(self, a: object, b: object, one_way: bool, mode: object = "drop", ports: object = None) -> Partition:
        if not isinstance(one_way, bool):
            raise TypeError(f"one_way must be True or False, got {one_way!r}")
        checked = check_partition(mode, ports)
        group_a, group_b = self._group(a, "a"), self._group(b, "b")
        both = {c.name for c in group_a} & {c.name for c in group_b}
        if both:
            raise ValueError(f"partition: {sorted(both)} in both groups: a container cannot be cut off from itself")
        with self.lock:
            partition = Partition(self, self.number(), group_a, group_b, one_way, str(mode), checked)
            self._add(partition)
            return partition

    def heal(self, partition: Partition | None = None) -> None:
        """Lift ``partition``, or every partition in force."""
        self._lift(Partition, partition, "is not a partition of this topology")

    # -- degradations --------------------------------------------------------------------

    def degrade(self, container: object, settings: Settings, to: object, network: Network | None) -> Degradation:
        (member,) = self._group(container, "container")
        check_settings(**settings)
        targets = [] if to is None else self._group(to, "to")
        check_degrade(self.helpers, member, settings, to, network, self.context.capability_missing)
        with self.lock:
            for previous in self._of(Degradation):
                if previous.container is member:
                    previous.lift()  # a second degrade replaces the first
            degradation = Degradation(self, self.number(), member, settings, targets, network)
            self._add(degradation)
            return degradation

    def restore(self, degradation: Degradation | None = None) -> None:
        """Lift ``degradation``, or every degradation in force."""
        self._lift(Degradation, degradation, "is not a degradation in force in this topology")

    # -- DNS faults ----------------------------------------------------------------------

    def dns_fault(self, container: object, name: object, **settings: Any) -> DnsFault:
        """From ``container``, ``name`` fails, answers late or resolves elsewhere (:mod:`.dns`)."""
        if isinstance(container, Container) and container.network_mode == "host":
            raise ValueError(
                f"container: {container.name!r} runs in the host's network namespace; "
                "a DNS fault there would redirect the host's own lookups"
            )
        (member,) = self._group(container, "container")
        check_dns_fault(name, **settings)
        if isinstance(settings["answer"], Container):
            check_owned(settings["answer"], self.context, "answer")
        with self.lock:
            fault = DnsFault(self, self.number(), self.dns, member, str(name), **settings)
            for previous in [f for f in self._in_force if isinstance(f, DnsFault)]:
                if previous.container is member and previous.name == fault.name:
                    previous.lift()  # a second fault on one name replaces the first
            self._add(fault)
            return fault

    # -- following the containers --------------------------------------------------------

    def reapply(self, container: Container) -> None:
        """After ``container`` restarted (a new network namespace, maybe a new address):
        a new helper, and every fault it takes part in put back."""
        with self.lock:
            self.helpers.renew(container)
            self.dns.renew(container)  # also with none of its DNS faults in force now
            self._put_again(container)

    def follow(self, container: Container, undo: Callable[[], None] | None = None) -> None:
        """After ``container`` joined or left a network: every fault it takes part in put
        again, so that it covers the networks it is on now. When that fails, ``undo()``
        (the join) and the faults put back as they were, then the error."""
        with self.lock:
            try:
                self._put_again(container)
            except BaseException:
                if undo is not None:
                    undo()
                    try:
                        self._put_again(container)
                    except DockernetError:
                        pass  # the first error says what is wrong
                raise

    def _put_again(self, container: Container) -> None:
        for fault in self.in_force():
            fault.reapply(container)

    def _group(self, side: object, argument: str) -> list[Container]:
        members = (
            [side] if isinstance(side, Container) else list(side) if isinstance(side, (list, tuple, set)) else None
        )
        if not members:
            raise TypeError(f"{argument} must be a container or a non-empty list of containers, got {side!r}")
        for member in members:
            if not isinstance(member, Container):
                raise TypeError(f"{argument}: expected containers from dockernet.container(), got {member!r}")
            check_owned(member, self.context, argument)
            if member.network_mode == "host":
                raise ValueError(
                    f"{argument}: {member.name!r} runs in the host's network namespace; "
                    "a partition there would cut the host itself off"
                )
        return members
