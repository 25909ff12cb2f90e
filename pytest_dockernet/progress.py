"""A long build's progress on the terminal: what the parts say through the run's
``RunFacts.build_progress``, written by pytest's terminal reporter between a test's
captured output (nothing under ``-q``, nor from an xdist worker, whose terminal is not shown)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest


def build_progress(config: pytest.Config) -> Callable[[str], None] | None:
    """The callback that writes one progress line, or None where nothing is to be shown."""
    if int(config.getoption("verbose", 0) or 0) < 0 or hasattr(config, "workerinput"):
        return None

    def say(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        # A test's output is being captured: the line goes to the terminal, not into it.
        suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with suspended:
            reporter.ensure_newline()
            reporter.write_line(line)

    return say
