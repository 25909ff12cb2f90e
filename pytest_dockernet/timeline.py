"""What the plugin did for one topology, in order: its :class:`Timeline`.

Networks and containers made, restarts, faults applied and lifted, each probe with its
verdict: one line each, stamped with ``time.monotonic()`` when it happened. A failing
test's artifacts (``timeline.txt``) show them in seconds from the start of the test's call
phase (:attr:`Timeline.origin`), so set-up's events are negative and the test body's
positive. Parts add a line where they act; nothing here asks the engine.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

# A session's topology lives through many tests: its oldest events go first.
MAX_EVENTS = 5000


class Event(NamedTuple):
    at: float  # time.monotonic()
    what: str
    times: int = 1  # the same line again right after (a probe polled until it passes)
    last: float = 0.0  # when it happened the last time


class Timeline:
    """One topology's events; thread-safe (a batch of containers starts in threads)."""

    def __init__(self) -> None:
        self.origin: float | None = None  # the current test's call phase began (monotonic)
        self.dropped = 0  # events pushed out by MAX_EVENTS
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()

    def add(self, what: str) -> None:
        now = time.monotonic()
        with self._lock:
            if self._events and self._events[-1].what == what:
                previous = self._events[-1]
                self._events[-1] = previous._replace(times=previous.times + 1, last=now)
                return
            if len(self._events) == MAX_EVENTS:
                self.dropped += 1
            self._events.append(Event(now, what, 1, now))

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def relative(self, at: float) -> float | None:
        """Seconds from :attr:`origin` to ``at`` (None when no test has set an origin)."""
        return None if self.origin is None else at - self.origin


CALL = "the start of the test's call phase (set-up before it: negative)"
SET_UP = "the start of the test's set-up (the test failed there: it has no call phase)"


def render(timelines: Sequence[tuple[str, Timeline]], origin: float, since: str = CALL) -> str:
    """The events of ``timelines`` (``(label, timeline)`` pairs) merged in time order, one a
    line, in seconds from ``origin`` (which ``since`` names); a label, when given, says whose
    event it is."""
    merged: list[tuple[Event, str]] = []
    lines = [f"seconds from {since}"]
    lines += [
        f"({label or 'this topology'}: its first {t.dropped} events are not kept)"
        for label, t in timelines
        if t.dropped
    ]
    for label, timeline in timelines:
        merged.extend((event, label) for event in timeline.events())
    merged.sort(key=lambda entry: entry[0].at)
    for event, label in merged:
        again = f"  (x{event.times}, the last at {event.last - origin:+.3f})" if event.times > 1 else ""
        lines.append(f"{event.at - origin:+10.3f}  {f'[{label}] ' if label else ''}{event.what}{again}")
    if not merged:
        lines.append("(nothing happened)")
    return "\n".join(lines) + "\n"
