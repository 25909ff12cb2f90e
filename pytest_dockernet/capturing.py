"""pytest glue of packet capture (:mod:`.capture`): which tests record their traffic
(``--dockernet-capture``, or the marker's ``capture=``, which wins), a capture sidecar
started as each of their networks is made, and for a failing test its networks' pcaps in
its artifacts folder and their flows in a report section.

A network is recorded when it is made while such a test sets up or runs (a module's
topology made for an earlier test that did not ask is not). Registered by the plugin at
configure time, it reaches the topologies through the plugin's own hooks
(``pytest_dockernet_network_created`` and the like), which every topology calls.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .capture import Capture
from .errors import DockernetError, one_line
from .flows import dpkt_module

if TYPE_CHECKING:
    from collections.abc import Generator

    import pluggy

    from .context import Context
    from .settings import Settings

SECTION = "dockernet capture"
DEFAULT_ROOT = "dockernet-artifacts"  # under the rootdir, when --dockernet-artifacts is not given


def register(config: pytest.Config, settings: Settings) -> None:
    config.pluginmanager.register(CapturePlugin(config, settings), "dockernet-capture")


def artifacts_folder(config: pytest.Config, nodeid: str) -> Path:
    """A test's artifacts folder: under ``--dockernet-artifacts`` (ini ``dockernet_artifacts``),
    else ``<rootdir>/dockernet-artifacts``; named after its node id made safe for file names."""
    root: Any = config.getoption("dockernet_artifacts", None)
    if not root:
        try:
            root = config.getini("dockernet_artifacts")
        except ValueError:  # no such key (yet)
            root = None
    base = Path(root) if root else Path(config.rootpath) / DEFAULT_ROOT
    return base / re.sub(r"[^A-Za-z0-9._-]", "_", nodeid)


class CapturePlugin:
    """The run's capture: one :class:`~.capture.Capture` per topology that records."""

    def __init__(self, config: pytest.Config, settings: Settings):
        self.config = config
        self.settings = settings
        self.current: pytest.Item | None = None  # the test setting up or running, if it records
        self.captures: dict[Context, Capture] = {}
        self.off: str | None = None  # why nothing can be recorded in this process

    def wanted(self, item: pytest.Item) -> bool:
        marker = item.get_closest_marker("dockernet")
        asked = marker.kwargs.get("capture") if marker is not None else None
        return self.settings.capture if asked is None else bool(asked)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.current = item if self.wanted(item) else None
        if self.current is not None and self.off is None:
            try:
                dpkt_module()
            except DockernetError as exc:
                self.off = str(exc)

    def pytest_runtest_logfinish(self) -> None:
        self.current = None

    def pytest_dockernet_network_created(self, network: Any) -> None:
        if self.current is None or self.off is not None:
            return
        context = network.context
        if context not in self.captures:
            self.captures[context] = Capture(context)
        self.captures[context].start(network)

    def pytest_dockernet_container_started(self, container: Any) -> None:
        capture = self.captures.get(container.context)
        if capture is not None:
            capture.ready()  # its traffic is recorded from the start

    def pytest_dockernet_topology_teardown(self, factory: Any) -> None:
        capture = self.captures.pop(factory.context, None)
        if capture is not None:
            capture.close()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, None]:
        for capture in self._used(item):
            capture.ready()
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
        outcome = yield
        report = outcome.get_result()
        if not (report.failed and report.when in ("setup", "call") and self.wanted(item)):
            return
        try:
            text = self._saved(item)
        except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
            text = f"the capture could not be saved: {one_line(exc)}"
        add = getattr(report.longrepr, "addsection", None)
        if add is not None:
            add(SECTION, text)
        else:
            report.sections.append((SECTION, text))

    def _used(self, item: pytest.Item) -> list[Capture]:
        """The captures of the topologies ``item`` may use: its own, its module's, the session's
        (a topology's label is the node id of the node its fixture was made for)."""
        labels = {node.nodeid or "session" for node in item.listchain()}
        return [capture for context, capture in self.captures.items() if context.label in labels]

    def _saved(self, item: pytest.Item) -> str:
        if self.off is not None:
            return f"nothing recorded: {self.off}"
        captures = self._used(item)
        if not captures:
            return "nothing recorded: the test made no network while it recorded"
        folder = artifacts_folder(self.config, item.nodeid)
        return "\n".join(capture.save(folder).describe() for capture in captures)
