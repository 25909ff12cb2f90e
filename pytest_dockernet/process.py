"""What the plugin does to the pytest process itself: a SIGTERM that tears down as Ctrl-C
does, and the objects of pytest's start-up out of the garbage collector's way.

At its end a pytest session (9.x) collects garbage five times over, to report the
exceptions of objects that die there; each full collection walks every object the
interpreter tracks, pytest's, its plugins' and the Docker SDK's among them: 80-90 ms of
a one-test run's 1 s. Those objects live as long as the process, so the plugin moves them
to the collector's permanent generation (:func:`gc.freeze`) once, when pytest has loaded
its plugins and before it loads the first conftest: the user's code, their tests' objects
and whatever they leave behind are collected (and their finalizers run) as before.

What it changes: :func:`gc.get_referrers` and :func:`gc.get_objects` do not list frozen
objects. A conftest that needs them listed calls :func:`gc.unfreeze` (conftests load
after the freeze).
"""

from __future__ import annotations

import gc
import signal
import threading
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    import pytest

_done = False


def freeze_start_up() -> None:
    """Freeze what the interpreter tracks now, once per process (a pytester in-process
    run loads the plugin again: what it makes is collected as the outer run's tests' is)."""
    global _done
    if _done:
        return
    _done = True
    gc.freeze()


def install_sigterm_handler(config: pytest.Config) -> None:
    """SIGTERM (CI cancelling a job, ``timeout``) tears down like Ctrl-C instead of leaking;
    a handler installed before (another plugin's, the project's) is called first."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set there; the next connection in it will
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or getattr(previous, "dockernet", False):
        return  # ignored on purpose, or already ours

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt("SIGTERM")

    interrupt.dockernet = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, interrupt)
    # getsignal() says None for a handler not set from Python: the default is all we can put back.
    restore = signal.SIG_DFL if previous is None else previous
    config.add_cleanup(cast("Callable[[], None]", lambda: signal.signal(signal.SIGTERM, restore)))
