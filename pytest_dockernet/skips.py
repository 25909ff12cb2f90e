"""The plugin's own skips (no engine, a missing capability), told apart from a user's.

``--dockernet-require`` exists so that the plugin cannot hide untested code behind a skip:
under it, a skip of the plugin's fails unless a kernel feature is missing, or an engine's
capability the test is marked as needing (``@pytest.mark.dockernet(needs=[...])``). A skip the user
wrote (``skip``, ``skipif``, ``pytest.skip()`` in a test or a fixture) is theirs and stays a
skip. A skip of the plugin's is reported at the test that needed what is missing, not at
the plugin's line that noticed it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from _pytest.outcomes import Skipped  # pytest.skip.Exception, named where mypy sees it
else:
    Skipped = pytest.skip.Exception

# Kernel features a machine may lack: the only reasons a skip of the plugin's passes under
# --dockernet-require (a test cannot make the kernel grow them).
ALLOWED_SKIPS = ("IPVS", "netem", "CONFIG_IFB", "sch_ingress", "act_mirred")  # the last three: ingress shaping
# How a skip for a missing capability names it (capabilities.Verdict.skip_reason).
CAPABILITY = re.compile(r"\[capability '([a-z0-9-]+)'\]")
# What a test's run needs of the engine because of its marker's driver, marked or not.
DRIVER_NEEDS = {"overlay": ("swarm", "overlay")}


class PluginSkip(Skipped):
    """A skip raised by the plugin, not by the user's code."""


def skip(reason: str) -> NoReturn:
    """Skip the running test because the plugin lacks what it needs (see :class:`PluginSkip`)."""
    __tracebackhide__ = True
    raise PluginSkip(reason)


def allowed(reason: str) -> bool:
    """Whether a skip of the plugin's for ``reason`` passes under --dockernet-require."""
    return any(feature in reason for feature in ALLOWED_SKIPS)


def capability_of(reason: str) -> str | None:
    """The capability a skip's reason says is missing, if any."""
    found = CAPABILITY.search(reason)
    return found.group(1) if found else None


def needs(item: pytest.Item) -> set[str]:
    """The capabilities ``item`` is marked as needing (``needs=`` of every dockernet marker
    on it: the function's, its class's, its module's), and those its run's driver needs:
    the ``[overlay]`` run of ``drivers=["bridge", "overlay"]`` needs a swarm whose overlay
    networks carry containers ("overlay"), its ``[bridge]`` run does not."""
    marked = {str(n) for m in item.iter_markers("dockernet") for n in m.kwargs.get("needs") or ()}
    return marked | set(DRIVER_NEEDS.get(run_driver(item) or "", ()))


def run_driver(item: pytest.Item) -> str | None:
    """The default driver of ``item``'s ``dockernet`` factory, when the marker sets one: this
    run's of ``drivers=[...]``, else ``driver=``."""
    if "dockernet" not in getattr(item, "fixturenames", ()):
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "dockernet" in params:
        return str(params["dockernet"])
    marker = item.get_closest_marker("dockernet")
    driver = marker.kwargs.get("driver") if marker is not None else None
    return driver if isinstance(driver, str) else None


def judge(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, require: bool) -> None:
    """A skip of the plugin's, pointed at the test (under ``require`` a failure unless a kernel
    feature is missing or the test is marked as needing the missing capability); any other
    skip is left as pytest made it."""
    excinfo = call.excinfo
    if not report.skipped or excinfo is None or not isinstance(excinfo.value, PluginSkip):
        return
    reason = str(excinfo.value.msg or "")
    path, line = _in_the_test(item, excinfo if call.when == "call" else None)
    report.longrepr = (path, line, f"Skipped: {reason}")
    capability = capability_of(reason)
    if not require or hasattr(report, "wasxfail") or allowed(reason) or capability in needs(item):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid}: skipped by the plugin under --dockernet-require, which allows its skips only for a "
        f"missing kernel feature ({', '.join(ALLOWED_SKIPS)}) or a capability the test is marked as needing"
        f"{f' (@pytest.mark.dockernet(needs=[{capability!r}]))' if capability else ''}: {reason}"
    )


def _in_the_test(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException] | None) -> tuple[str, int]:
    """Where the test asked for what is missing: in its body, the last line of the skip's
    traceback in the test's own file; else (a fixture's skip, as pytest shows those) the
    test's definition. Lines count from 1."""
    for entry in reversed(excinfo.traceback if excinfo is not None else []):
        if Path(entry.path) == item.path:
            return str(entry.path), entry.lineno + 1
    path, line = item.reportinfo()[:2]
    return str(path), (line or 0) + 1
