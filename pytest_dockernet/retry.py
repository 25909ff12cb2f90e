"""Waiting until something holds: the package's one polling loop, on tenacity.

Servers and DNS records come up late, swarm tasks take a moment to run, a lab engine
takes a second to answer: every such wait polls with :func:`poll`, so that timeouts,
intervals and attempt counts mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")


def poll(
    attempt: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.2
) -> tuple[T, int]:
    """Call ``attempt`` until ``done(result)`` holds or ``timeout`` seconds have passed.

    Returns the last result (which the caller checks again to tell success from a timeout)
    and the number of attempts. An exception from ``attempt`` or ``done`` ends the wait.
    """
    import tenacity  # here: every run imports this module, not every run waits

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda result: not done(result)),
        retry_error_callback=lambda state: cast(tenacity.Future, state.outcome).result(),  # an attempt ran: set
    )
    result = retrying(attempt)
    return result, retrying.statistics.get("attempt_number", 1)
