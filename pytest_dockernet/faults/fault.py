"""What every kind of fault is: the :class:`Fault` protocol the faults part (:mod:`.in_force`)
works through, and :class:`FaultBase`, what the kinds share (lifting it once, as a context
manager too, its proof (``check``, ``verify``), its description and its repr).

Proof of injection: the faults part calls ``check()`` right after ``apply()`` (the kernel's
word that the rules are in the namespace), so a fault that did not take fails the call that
made it; ``verify()`` also measures the effect on demand and records what it saw."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import DockernetError

if TYPE_CHECKING:
    from ..handles import Container
    from .helpers import FaultHelpers


F = TypeVar("F", bound="FaultBase")


class Fault(Protocol):
    """One fault on a topology's containers."""

    number: int  # its ``#n``: one counter per topology for every kind
    lifted: bool
    since: float | None  # time.monotonic() when it was put in force; None before
    lifted_at: float | None  # time.monotonic() when it was lifted; None before
    measured: str | None  # what the last verify() saw, e.g. "loss 1.0"; None before

    def apply(self) -> None:
        """Put it in force in its members' network namespaces; if that fails, none of it stays."""

    def check(self) -> None:
        """Check that its rules are in force in each member's namespace; DockernetError naming
        a member that lacks them."""

    def verify(self) -> Any:
        """``check()``, then measure its effect: the measurement (also recorded in ``measured``)."""

    def lift(self) -> None:
        """Take it off (``heal()``, ``restore()``); a no-op once lifted."""

    def reapply(self, container: Container) -> None:
        """Put it again where ``container`` takes part, after a restart (a new namespace) or a
        ``connect()``/``disconnect()`` (other addresses, other interfaces)."""

    def title(self) -> str:
        """What it is: ``partition #1 [api] | [db], drop``."""

    def describe(self) -> str:
        """One line for failure reports: ``partition #1 [api] | [db], drop, since 0.42 s,
        measured loss 1.0``."""


class Keeper(Protocol):
    """What a fault asks of the faults part that keeps it."""

    lock: threading.RLock
    helpers: FaultHelpers
    # measurements.measure and measurements.throughput, given by the facade (the faults part
    # does not import them: measurements reach the diagnosis, which names the fault kinds)
    measure: Callable[..., Any]
    throughput: Callable[..., Any]

    def forget(self, fault: Fault) -> None: ...

    def relative(self, at: float) -> float:
        """Seconds from the start of the current test's call phase (else the topology's) to ``at``."""

    def record(self, fault: Fault, what: str) -> None:
        """A line in the topology's timeline: ``partition #1 [a] | [b], drop: applied``."""


class FaultBase(ABC):
    """What the kinds share: lifted once (from its keeper's list too), a context manager
    that lifts it on exit, ``verify()`` (``check()``, then ``_measure()``, recorded) and
    ``describe()`` (``title()`` and what happened to it). A kind implements ``apply``,
    ``check``, ``reapply``, ``title``, ``_measure`` and ``_take_off`` (its rules removed
    from every member)."""

    lifted_as = "lifted"  # the word its repr shows once it is lifted

    def __init__(self, keeper: Keeper, number: int):
        self._keeper = keeper
        self.number = number
        """Its ``#n`` in reports: one counter per topology for every kind."""
        self.lifted = False
        """Whether it was lifted (``lift()``, ``heal()``, ``restore()``, the end of the test)."""
        self.since: float | None = None
        """``time.monotonic()`` when it was put in force (None before): reports say since when."""
        self.lifted_at: float | None = None
        """``time.monotonic()`` when it was lifted (None before)."""
        self.measured: str | None = None
        """What the last ``verify()`` measured, in short (``"loss 1.0"``); None before."""
        self.measurement: Any = None
        """What the last ``verify()`` returned."""

    @abstractmethod
    def apply(self) -> None: ...

    @abstractmethod
    def check(self) -> None: ...

    @abstractmethod
    def reapply(self, container: Container) -> None: ...

    @abstractmethod
    def title(self) -> str: ...

    @abstractmethod
    def _take_off(self) -> None:
        """Its rules removed from every member's namespace (one that stopped lost them)."""

    def _measure(self) -> tuple[Any, str]:
        """Its effect measured now: (the measurement, a short text such as ``"loss 1.0"``)."""
        raise NotImplementedError(f"{self.title()}: verify() cannot measure this kind of fault")

    def verify(self) -> Any:
        """Prove it is in force: its rules are there (``check()``, DockernetError naming the
        member that lacks them), then measure its effect and return the measurement (a
        ``Measurement`` for loss and partitions, bits per second for a rate, a lookup's
        result for a DNS fault); recorded in ``measured``, the timeline and ``describe()``."""
        if self.lifted:
            raise DockernetError(f"{self.title()}: it was lifted; there is nothing in force to verify")
        self.check()
        measurement, text = self._measure()
        self.measurement, self.measured = measurement, text
        self._keeper.record(self, f"measured {text}")
        return measurement

    def describe(self) -> str:
        """``title()``, since when (seconds from the start of the test's call phase), how
        long it was in force once lifted, and what ``verify()`` measured."""
        parts = [self.title()]
        if self.since is not None:
            parts.append(f"since {self._keeper.relative(self.since):.2f} s")
            if self.lifted_at is not None:
                parts.append(f"lifted after {self.lifted_at - self.since:.1f} s")
        if self.measured is not None:
            parts.append(f"measured {self.measured}")
        return ", ".join(parts)

    def lift(self) -> None:
        """Take it off; a no-op once lifted."""
        with self._keeper.lock:
            if self.lifted:
                return
            self._take_off()
            self.lifted = True
            self.lifted_at = time.monotonic()
            self._keeper.forget(self)

    def __enter__(self: F) -> F:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lift()

    def __repr__(self) -> str:
        return f"<{self.describe()}{f' ({self.lifted_as})' if self.lifted else ''}>"
