"""A failing test's artifacts (``--dockernet-artifacts DIR``): a folder per failing test, named
after its node id, with its topology (``topology.svg``, ``topology.json``), each container's
full log and ``timeline.txt``; the report's section listing them, the JUnit XML's
``[[ATTACHMENT|path]]`` lines, and the picture in pytest-html's row of the test.

Only a test that fails in set-up or in its call gets a folder: a passing test costs one
stamp of the clock. Like the report's other sections, nothing here may fail the report:
what cannot be written is said in one line of the section instead.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import timeline
from .engine import answers, lost, where
from .errors import one_line
from .timeline import Timeline, render

if TYPE_CHECKING:
    import pluggy

    from .settings import Settings
    from .topology import Topology

SECTION = "dockernet artifacts"
PLUGIN = "dockernet-artifacts"  # its name in the plugin manager
# Where a test's capture goes (--dockernet-capture, capture=True) when no folder is named.
DEFAULT_FOLDER = "dockernet-artifacts"
# What else a failing test's folder gets (the capture's pcaps): called with the test and its
# folder, after the plugin's own files and before the folder is listed.
WRITERS = pytest.StashKey[list[Callable[[pytest.Item, Path], None]]]()
OWN_FIXTURE = "dockernet"  # the test's own factory: its containers' logs go by their names alone
# The clock at the start of a test's set-up and of its call: timeline.txt counts from the call.
SET_UP = pytest.StashKey[float]()
CALLED = pytest.StashKey[float]()
MAX_NAME = 120  # characters of a folder's name, at most (file systems allow 255 bytes)

Used = Callable[[pytest.Item], Sequence[tuple[str, "Topology"]]]


def register(config: pytest.Config, settings: Settings, used: Used) -> None:
    """Register the artifacts' hooks for this run; ``used`` gives the factories a test used
    (``(fixture name, topology)`` pairs, its own first)."""
    config.stash.setdefault(WRITERS, [])  # the capture may register its writer first
    config.pluginmanager.register(Artifacts(config, settings, used), PLUGIN)


def safe_name(nodeid: str) -> str:
    """``nodeid`` as one file name: ``tests/test_a.py::test_b[x/y]`` -> ``tests_test_a.py__test_b_x_y``;
    a long one is cut and ends with a digest of the whole, so that two stay apart."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", nodeid.replace("::", "__")).strip("._") or "test"
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 13]}-{hashlib.sha256(nodeid.encode()).hexdigest()[:12]}"


class Artifacts:
    """The hooks: the clock at each test's set-up and call, and for a failing test its folder,
    its report's section, its JUnit attachments and its pytest-html picture."""

    def __init__(self, config: pytest.Config, settings: Settings, used: Used):
        self.config, self.settings, self.used = config, settings, used
        self.html = bool(getattr(config.option, "htmlpath", None)) and _html_extras() is not None
        self.junit: list[tuple[Any, list[str]]] = []  # (a JUnit test case's reporter, its lines)

    def folder_for(self, item: pytest.Item) -> Path | None:
        """Where ``item``'s artifacts go: --dockernet-artifacts, else the default folder when the
        test's traffic is captured, else nowhere."""
        if self.settings.artifacts is not None:
            return self.settings.artifacts
        marker = item.get_closest_marker("dockernet")
        if self.settings.capture or (marker is not None and marker.kwargs.get("capture")):
            return self.config.rootpath / DEFAULT_FOLDER
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[SET_UP] = time.monotonic()

    # First of the wrappers: the marker's faults are applied inside, after the call began.
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        item.stash[CALLED] = started = time.monotonic()
        for _, topology in self.used(item):
            topology.context.timeline.origin = started
            topology.context.timeline.add(f"{item.name}: its call phase starts")  # a module's topology serves many
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
        outcome = yield
        report = outcome.get_result()
        if not (report.failed and report.when in ("setup", "call")):
            return
        folder = self.folder_for(item)
        if folder is None and not self.html:
            return
        try:
            used = list(self.used(item))
            if not used:
                return
            gone = lost(call.excinfo.value) if call.excinfo is not None else None
            if gone is not None and not answers(where(used[0][1].context.engine)):
                # Each question would wait out its timeout: one line instead.
                lines = [f"not written: the Docker engine stopped answering ({gone})"]
            else:
                failed = call.excinfo.typename if call.excinfo is not None else "failed"
                for _, topology in used:
                    topology.context.timeline.add(f"{item.name}: {report.when} failed ({failed})")
                lines = self._write(item, report, used, folder)
        except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
            lines = [f"not written: {type(exc).__name__}: {one_line(exc)}"]
        if lines:
            add = getattr(report.longrepr, "addsection", None)
            if add is not None:
                add(SECTION, "\n".join(lines))
            else:
                report.sections.append((SECTION, "\n".join(lines)))

    def _write(
        self, item: pytest.Item, report: pytest.TestReport, used: list[tuple[str, Topology]], folder: Path | None
    ) -> list[str]:
        """Write the test's folder (if any) and its pytest-html picture; the section's lines."""
        called = report.when == "call" and CALLED in item.stash
        origin = item.stash[CALLED] if called else item.stash.get(SET_UP, time.monotonic())
        contexts = [topology.context for _, topology in used]
        for context in contexts:
            context.timeline.origin = origin  # a set-up that failed: seconds from its start
        from .snapshot import snapshot  # here: only a failing test of the plugin's draws its topology
        from .topology_svg import render_svg

        doc = snapshot(contexts, failing=getattr(contexts[0], "failed_probe", None))
        svg = render_svg(doc, id_prefix=f"dn-{safe_name(item.nodeid)}-")
        if self.html:
            _add_html(report, svg)
        if folder is None:
            return []
        test_folder = folder / safe_name(item.nodeid)
        if test_folder.exists():
            # An earlier run's, of this test, is written afresh; anything else stays untouched.
            if not (test_folder.is_dir() and (test_folder / "timeline.txt").is_file()):
                raise FileExistsError(f"{test_folder} is in the way (not a folder of this option's)")
            shutil.rmtree(test_folder)
        test_folder.mkdir(parents=True)
        problems: list[str] = []

        def write(name: str, text: Callable[[], str]) -> None:
            try:
                (test_folder / name).write_text(text(), encoding="utf-8")
            except Exception as exc:  # noqa: BLE001 - one line of the section
                problems.append(f"{name}: not written: {one_line(exc)}")

        write("topology.svg", lambda: svg)
        write("topology.json", lambda: json.dumps(doc, indent=2) + "\n")
        for fixture, topology in used:
            for container in topology.containers_list:
                name = container.name if fixture == OWN_FIXTURE else f"{fixture}.{container.name}"
                write(f"{safe_name(name)}.log", lambda c=container: c.logs())  # type: ignore[misc]
        timelines: list[tuple[str, Timeline]] = [
            ("" if len(used) == 1 else fixture, topology.context.timeline) for fixture, topology in used
        ]
        write("timeline.txt", lambda: render(timelines, origin, timeline.CALL if called else timeline.SET_UP))
        for writer in self.config.stash.get(WRITERS, []):
            try:
                writer(item, test_folder)
            except Exception as exc:  # noqa: BLE001 - one line of the section
                problems.append(f"{getattr(writer, '__qualname__', writer)}: {one_line(exc)}")
        files = sorted(p for p in test_folder.iterdir() if p.is_file())
        report.dockernet_attachments = [str(p) for p in files]  # type: ignore[attr-defined]  # read by the JUnit part
        return [f"{test_folder}/", f"  {'  '.join(p.name for p in files)}", *problems]

    # -- JUnit XML ----------------------------------------------------------------------
    # Jenkins (junit-attachments) and GitLab read "[[ATTACHMENT|/abs/path]]" lines from a test
    # case's <system-out>. pytest writes that element only under some junit_logging values,
    # so the lines are put into the test case's element once it is made, whatever pytest
    # wrote: into its <system-out>, or a new one. Reports come to this hook in the process
    # that writes the XML (xdist's controller too: the attribute travels with the report).

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        attachments: list[str] = getattr(report, "dockernet_attachments", None) or []
        xml = _junit_xml(self.config) if attachments else None
        if xml is None:
            return
        try:
            reporter = xml.node_reporter(report)
        except Exception:  # noqa: BLE001 - another pytest's JUnit part: no attachments
            return
        self.junit.append((reporter, [f"[[ATTACHMENT|{path}]]" for path in attachments]))

    @pytest.hookimpl(tryfirst=True)  # before the JUnit part writes its file
    def pytest_sessionfinish(self) -> None:
        for reporter, lines in self.junit:
            try:
                testcase = reporter.to_xml()  # finalized: the element the file will have
                out = testcase.find("system-out")
                if out is None:
                    out = type(testcase)("system-out")
                    testcase.append(out)
                out.text = "\n".join(filter(None, [(out.text or "").rstrip("\n"), *lines])) + "\n"
            except Exception:  # noqa: BLE001, S112 - the XML keeps what pytest wrote
                continue
        self.junit.clear()


def _junit_xml(config: pytest.Config) -> Any:
    """pytest's JUnit XML writer of this run (``--junitxml``), or None."""
    if not getattr(config.option, "xmlpath", None):
        return None
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "LogXML" and hasattr(plugin, "node_reporter"):
            return plugin
    return None


def _html_extras() -> Any:
    """pytest-html's ``extras`` module where it is installed, else None."""
    try:
        return importlib.import_module("pytest_html.extras")
    except ImportError:
        return None


def _add_html(report: pytest.TestReport, svg: str) -> None:
    """The topology's picture in the test's row of pytest-html's report (inline: the report
    may be self-contained, and the SVG needs no file beside it)."""
    extras = _html_extras()
    inline = svg[svg.index("<svg") :] if "<svg" in svg else svg  # without the XML declaration
    html = f'<div class="dockernet-topology">{inline}</div>'
    report.extras = [*getattr(report, "extras", []), extras.html(html)]  # type: ignore[attr-defined]


def folder_for(item: pytest.Item) -> Path | None:
    """Where ``item``'s artifacts go (its folder is a name under it: :func:`safe_name`), or
    None when they go nowhere (see :meth:`Artifacts.folder_for`)."""
    artifacts = item.config.pluginmanager.get_plugin(PLUGIN)
    return artifacts.folder_for(item) if isinstance(artifacts, Artifacts) else None
