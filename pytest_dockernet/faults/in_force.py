"""The faults part of a topology (:class:`Faults`): the faults in force on its containers,
kept in order of kind (partitions, then degradations: :data:`KINDS`), put again where a
container restarted (:meth:`Faults.reapply`) or joined or left a network
(:meth:`Faults.follow`), so that they cover the networks it is on now."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..errors import DockernetError
from ..handles import Container, check_owned
from .degradation import Degradation, check_degrade, check_settings
from .fault import Fault
from .helpers import FaultHelpers
from .partition import Partition
from .rules import Settings

if TYPE_CHECKING:
    from ..context import Context
    from ..handles import Network

KINDS: tuple[type, ...] = (Partition, Degradation)  # the order they are listed in
K = TypeVar("K", Partition, Degradation)


class Faults:
    """The faults in force on one topology's containers, and their helpers."""

    def __init__(self, context: Context):
        self.context = context
        self.helpers = FaultHelpers(context)
        self.lock = threading.RLock()
        self._in_force: list[Fault] = []
        self._numbers = itertools.count(1)  # partitions'
        context.faults_in_force = self.in_force
        context.faults = self

    def in_force(self) -> list[Fault]:
        """The faults in force: partitions, then degradations, each in the order made."""
        with self.lock:
            return sorted(self._in_force, key=lambda f: KINDS.index(type(f)))

    def forget(self, fault: Fault) -> None:
        with self.lock:
            if fault in self._in_force:
                self._in_force.remove(fault)
                self.context.timeline.add(f"{fault.describe()}: lifted")

    def _of(self, kind: type[K]) -> list[K]:
        return [f for f in self._in_force if isinstance(f, kind)]

    def _add(self, fault: Fault) -> None:
        fault.apply()
        fault.since = time.monotonic()
        self._in_force.append(fault)
        self.context.timeline.add(f"{fault.describe()}: applied")

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

    def partition(self, a: object, b: object, one_way: bool) -> Partition:
        if not isinstance(one_way, bool):
            raise TypeError(f"one_way must be True or False, got {one_way!r}")
        group_a, group_b = self._group(a, "a"), self._group(b, "b")
        both = {c.name for c in group_a} & {c.name for c in group_b}
        if both:
            raise ValueError(f"partition: {sorted(both)} in both groups: a container cannot be cut off from itself")
        with self.lock:
            partition = Partition(self, next(self._numbers), group_a, group_b, one_way)
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
            degradation = Degradation(self, member, settings, targets, network)
            self._add(degradation)
            return degradation

    def restore(self, degradation: Degradation | None = None) -> None:
        """Lift ``degradation``, or every degradation in force."""
        self._lift(Degradation, degradation, "is not a degradation in force in this topology")

    # -- following the containers --------------------------------------------------------

    def reapply(self, container: Container) -> None:
        """After ``container`` restarted (a new network namespace, maybe a new address):
        a new helper, and every fault it takes part in put back."""
        with self.lock:
            self.helpers.renew(container)
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
