"""Seeded chaos: a :class:`Nemesis` puts faults on a group of containers, one at a time, in a
background thread while a ``with`` block runs, and lifts them all when it ends.

The schedule is drawn from ``random.Random(seed)`` alone (never from the clock), so one seed
gives the same sequence of faults, targets and durations in every run: a failure found at
random replays with the seed. Jepsen's nemeses alternate calm and trouble; so does this one:
a calm, then a fault held for a while, then the fault lifted, then the next calm. Each of
those durations is drawn from ``every`` (seconds, low to high).

A topology's :class:`Nemeses` hands out the seeds: the k-th nemesis of a test without
``seed=`` gets the test's base seed plus k - 1 (``--dockernet-seed N`` sets the base; without
it each test draws one), so one number replays every nemesis of a test; it also writes the
failing test's report section (the seeds, the histories, the command that replays them).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DockernetError, one_line
from .handles import Container, check_owned

if TYPE_CHECKING:
    from .context import Context

KINDS = ("partition-halves", "isolate-one", "kill-restart", "pause", "loss")
CUTS = ("partition-halves", "isolate-one")  # the kinds that need two members or more
LOSS = (0.2, 0.8)  # the loss of a "loss" fault, drawn from this range
SECTION = "dockernet nemesis"  # the failing test's report section
EVERY = (1.0, 3.0)  # seconds: each calm and each fault lasts from 1 to 3
Every = tuple[float, float]


def base_seed(given: int | None = None) -> int:
    """A test's base seed: ``--dockernet-seed``'s, else a fresh one (not from the ``random``
    module's state, which a test may have seeded)."""
    return random.SystemRandom().randrange(10**9) if given is None else given


@dataclass(frozen=True)
class NemesisEvent:
    """One fault of a nemesis's history: its kind, the containers it hit (for a cut, the side
    cut off from the other members), when it was applied and lifted (seconds from the start of
    the ``with`` block; ``lifted`` is None while it is in force) and what else it was
    (``"[a] | [b, c]"``, ``"loss 0.35"``)."""

    fault: str
    targets: tuple[str, ...]
    applied: float
    lifted: float | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.lifted is None:
            return f"{self.applied:6.2f} s on   {self.fault} {self.detail} (in force)"
        return f"{self.applied:6.2f} -{self.lifted:6.2f} s  {self.fault} {self.detail}"


@dataclass(frozen=True)
class Step:
    """What the schedule does next: a calm, then ``fault`` on ``targets`` held for ``hold``
    seconds; ``others`` is the other side of a cut; ``loss`` that of a "loss" fault."""

    fault: str
    targets: tuple[str, ...]
    calm: float
    hold: float
    others: tuple[str, ...] = ()
    loss: float = 0.0

    @property
    def detail(self) -> str:
        if self.fault in CUTS:
            return f"[{', '.join(self.targets)}] | [{', '.join(self.others)}]"
        return f"{self.targets[0]}, loss {self.loss:g}" if self.fault == "loss" else self.targets[0]


class Injector(Protocol):
    """What a nemesis applies its faults through (the topology's own methods)."""

    def partition(self, a: Sequence[Container], b: Sequence[Container]) -> Any: ...
    def degrade(self, container: Container, *, loss: float) -> Any: ...


def check_every(every: object) -> tuple[float, float]:
    numbers = (
        isinstance(every, (tuple, list))
        and len(every) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in every)
    )
    if not numbers:
        raise TypeError(f"every must be a pair (low, high) of seconds, e.g. (1.0, 3.0), got {every!r}")
    low, high = float(every[0]), float(every[1])  # type: ignore[index]  # a pair, checked above
    if not 0 <= low <= high:
        raise ValueError(f"every={every!r}: low and high must be seconds with 0 <= low <= high")
    return low, high


def check_faults(faults: object, members: int) -> tuple[str, ...]:
    if isinstance(faults, str) or not isinstance(faults, (tuple, list)) or not faults:
        raise TypeError(f"faults must be a non-empty list of fault kinds ({', '.join(KINDS)}), got {faults!r}")
    for kind in faults:
        if kind not in KINDS:
            raise ValueError(f"faults: {kind!r} is not a fault kind; use some of {', '.join(KINDS)}")
        if kind in CUTS and members < 2:
            raise ValueError(f"faults: {kind!r} cuts members from each other: give at least 2 members, or leave it out")
    return tuple(faults)


def check_members(members: object, context: Context) -> list[Container]:
    if isinstance(members, Container):
        members = [members]
    if not isinstance(members, (tuple, list)) or not members:
        raise TypeError(f"members must be a non-empty list of containers from dockernet.container(), got {members!r}")
    for member in members:
        if not isinstance(member, Container):
            raise TypeError(f"members: expected containers from dockernet.container(), got {member!r}")
        check_owned(member, context, "members")
        if member.network_mode == "host":
            raise ValueError(
                f"members: {member.name!r} runs in the host's network namespace; faults there hit the host"
            )
    if len({m.name for m in members}) != len(members):
        raise ValueError(f"members: a container is named twice in {[m.name for m in members]}")
    return list(members)


class Nemesis:
    """Faults drawn from ``seed`` put on ``members`` one at a time while its ``with`` block
    runs; everything lifted when the block ends (returns, raises, Ctrl-C, SIGTERM). An error
    of the nemesis itself stops it and is raised at the block's end."""

    def __init__(
        self,
        context: Context,
        injector: Injector,
        members: list[Container],
        seed: int,
        faults: tuple[str, ...],
        every: tuple[float, float],
        seed_given: bool = False,
    ):
        self.context, self._injector = context, injector
        self.members, self.seed, self.faults, self.every = members, seed, faults, every
        self.seed_given = seed_given  # seed= given, not drawn from the test's base seed
        self.error: BaseException | None = None  # what stopped the thread, raised at the block's end
        self.failed_at = ""  # the step it stopped at: "pause db"
        self._history: list[NemesisEvent] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    @property
    def history(self) -> list[NemesisEvent]:
        """The faults applied so far, in order (one in force has ``lifted`` None)."""
        with self._lock:
            return list(self._history)

    def plan(self, count: int) -> list[Step]:
        """The first ``count`` steps this seed draws: what the block runs, whatever its timing."""
        rng = random.Random(self.seed)
        return [self._draw(rng) for _ in range(count)]

    def _draw(self, rng: random.Random) -> Step:
        kind = rng.choice(self.faults)
        calm, hold = rng.uniform(*self.every), rng.uniform(*self.every)
        names = [m.name for m in self.members]
        if kind == "partition-halves":
            rng.shuffle(names)
            half = len(names) // 2
            return Step(kind, tuple(names[:half]), calm, hold, others=tuple(names[half:]))
        one = rng.choice(names)
        if kind == "isolate-one":
            return Step(kind, (one,), calm, hold, others=tuple(n for n in names if n != one))
        loss = round(rng.uniform(*LOSS), 2) if kind == "loss" else 0.0
        return Step(kind, (one,), calm, hold, loss=loss)

    def __enter__(self) -> Nemesis:
        if self._thread is not None:
            raise DockernetError(f"nemesis (seed {self.seed}) has run already: make another with dockernet.nemesis()")
        self._started = time.monotonic()
        self.context.timeline.add(f"nemesis (seed {self.seed}) started")
        self._thread = threading.Thread(target=self._run, name=f"dockernet-nemesis-{self.seed}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc_info: object) -> None:
        self.stop()
        if self.error is not None and kind is None:
            raise DockernetError(
                f"nemesis (seed {self.seed}) failed at {self.failed_at}: {one_line(self.error)}"
            ) from self.error

    def stop(self) -> None:
        """End the schedule: the fault in force is lifted, the thread joined. Idempotent."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join()
            self.context.timeline.add(f"nemesis (seed {self.seed}) stopped")

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        step: Step | None = None
        try:
            while not self._stopping.is_set():
                step = self._draw(rng)
                if self._stopping.wait(step.calm):
                    return
                self._hold(step)
        except BaseException as exc:  # noqa: BLE001 - raised in the test at the block's end
            self.error = exc
            self.failed_at = f"{step.fault} {step.detail}" if step is not None else ""

    def _hold(self, step: Step) -> None:
        """Apply ``step``'s fault, hold it (cut short by stop()), lift it."""
        self.context.timeline.add(f"nemesis (seed {self.seed}): {step.fault} {step.detail}")
        lift = self._apply(step)
        with self._lock:
            index = len(self._history)
            self._history.append(NemesisEvent(step.fault, step.targets, self._now(), None, step.detail))
        try:
            self._stopping.wait(step.hold)
        finally:
            lift()
            with self._lock:
                self._history[index] = replace(self._history[index], lifted=self._now())

    def _apply(self, step: Step) -> Callable[[], object]:
        by_name = {m.name: m for m in self.members}
        target = by_name[step.targets[0]]
        if step.fault in CUTS:
            cut = self._injector.partition([by_name[n] for n in step.targets], [by_name[n] for n in step.others])
            return cut.lift  # type: ignore[no-any-return]  # a Partition
        if step.fault == "loss":
            return self._injector.degrade(target, loss=step.loss).lift  # type: ignore[no-any-return]
        if step.fault == "pause":
            target.pause()
            return target.unpause
        target.kill()
        return target.start  # started again on lifting: its faults are put back (a new namespace)

    def _now(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def describe(self) -> str:
        names = ", ".join(m.name for m in self.members)
        low, high = self.every
        given = " (given)" if self.seed_given else ""
        lines = [f"seed {self.seed}{given}: {', '.join(self.faults)} on {names}, every {low:g}-{high:g} s"]
        lines += [f"  {event.describe()}" for event in self.history] or ["  (no fault applied yet)"]
        if self.error is not None:
            lines.append(f"  stopped by an error at {self.failed_at}: {one_line(self.error)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Nemesis seed {self.seed}: {len(self.history)} faults{' (running)' if self.running else ''}>"


class Nemeses:
    """A topology's nemeses of the current test, and the base seed theirs come from."""

    def __init__(self, context: Context):
        self.context = context
        self.base = base_seed()
        self.made: list[Nemesis] = []
        self._count = 0
        context.nemeses = self

    def begin(self, base: int) -> None:
        """A test begins: its nemeses draw from ``base``; earlier tests' finished ones are forgotten."""
        self.base, self._count = base, 0
        self.made = [n for n in self.made if n.running]

    def make(self, injector: Injector, members: object, seed: object, faults: object, every: object) -> Nemesis:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an integer or None (the test's: --dockernet-seed), got {seed!r}")
        low_high = check_every(every)
        chosen = check_members(members, self.context)
        kinds = check_faults(faults, len(chosen))
        for member in chosen:
            if "pause" in kinds:
                self.context.need("pause", member.host)  # before the block, not in its thread
            if "kill-restart" in kinds and member.lifecycle is None:
                raise ValueError(f"members: {member.name!r} is a swarm task, which kill-restart cannot start again")
        self._count += 1
        drawn = self.base + self._count - 1
        nemesis = Nemesis(
            self.context, injector, chosen, drawn if seed is None else seed, kinds, low_high, seed is not None
        )
        self.made.append(nemesis)
        return nemesis

    def stop(self) -> None:
        """Stop every nemesis still running (the topology is closing)."""
        for nemesis in self.made:
            nemesis.stop()

    def report(self, test: str) -> str:
        """The report section's text for ``test`` (its node id): each nemesis, its seed and
        history, and the command that replays them; "" when the test made none."""
        started = [n for n in self.made if n.started]
        if not started:
            return ""
        lines = [f"nemesis {i}, {n.describe()}" for i, n in enumerate(started, 1)]
        # Where every one was given its seed, the base changes nothing: the first one's reads best.
        base = self.base if not all(n.seed_given for n in started) else started[0].seed
        lines.append(f"replay: pytest '{test}' --dockernet-seed {base}")
        return "\n".join(lines)
