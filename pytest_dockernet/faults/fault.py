"""What every kind of fault is: the :class:`Fault` protocol the faults part (:mod:`.in_force`)
works through, and :class:`FaultBase`, what the kinds share (lifting it once, as a context
manager too, and its repr)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from ..handles import Container
    from .helpers import FaultHelpers


F = TypeVar("F", bound="FaultBase")


class Fault(Protocol):
    """One fault on a topology's containers."""

    lifted: bool
    since: float | None  # time.monotonic() when it was put in force; None before

    def apply(self) -> None:
        """Put it in force in its members' network namespaces; if that fails, none of it stays."""

    def verify(self) -> None:
        """Check that its rules are in force in each member's namespace; DockernetError naming
        a member that lacks them."""

    def lift(self) -> None:
        """Take it off (``heal()``, ``restore()``); a no-op once lifted."""

    def reapply(self, container: Container) -> None:
        """Put it again where ``container`` takes part, after a restart (a new namespace) or a
        ``connect()``/``disconnect()`` (other addresses, other interfaces)."""

    def describe(self) -> str:
        """One line for failure reports: ``partition 1: [a] <-> [b] dropped``."""


class Keeper(Protocol):
    """What a fault asks of the faults part that keeps it."""

    lock: threading.RLock
    helpers: FaultHelpers

    def forget(self, fault: Fault) -> None: ...


class FaultBase(ABC):
    """What the kinds share: lifted once (from its keeper's list too), a context manager
    that lifts it on exit. A kind implements ``apply``, ``verify``, ``reapply``,
    ``describe`` and ``_take_off`` (its rules removed from every member)."""

    lifted_as = "lifted"  # the word its repr shows once it is lifted

    def __init__(self, keeper: Keeper):
        self._keeper = keeper
        self.lifted = False
        # time.monotonic() once put in force: failure messages and artifacts say since when
        self.since: float | None = None

    @abstractmethod
    def apply(self) -> None: ...

    @abstractmethod
    def verify(self) -> None: ...

    @abstractmethod
    def reapply(self, container: Container) -> None: ...

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def _take_off(self) -> None:
        """Its rules removed from every member's namespace (one that stopped lost them)."""

    def lift(self) -> None:
        """Take it off; a no-op once lifted."""
        with self._keeper.lock:
            if self.lifted:
                return
            self._take_off()
            self.lifted = True
            self._keeper.forget(self)

    def __enter__(self: F) -> F:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lift()

    def __repr__(self) -> str:
        return f"<{self.describe()}{f' ({self.lifted_as})' if self.lifted else ''}>"
