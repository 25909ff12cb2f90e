"""pytest glue of packet capture (:mod:`.capture`): which tests record their traffic
(``--dockernet-capture``, or the marker's ``capture=``, which wins), a capture sidecar
started as each of their networks is made, and for a failing test its networks' pcaps in
its artifacts folder (written when :mod:`.artifacts` writes that folder) and their flows in
a report section.

A network is recorded when it is made while such a test sets up or runs (a module's
topology made for an earlier test that did not ask is not). Registered by the plugin at
configure time, it reaches the topologies through the plugin's own hooks
(``pytest_dockernet_network_created`` and the like), which every topology calls.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .artifacts import WRITERS
from .errors import DockernetError, one_line
from .flows import dpkt_module

if TYPE_CHECKING:
    from collections.abc import Generator

    import pluggy

    from .capture import Capture, CaptureHost
    from .context import Context
    from .settings import Settings

SECTION = "dockernet capture"
SAVED = pytest.StashKey[str]()  # on a failing test: what its capture section says


def register(config: pytest.Config, settings: Settings) -> None:
    plugin = CapturePlugin(settings)
    config.pluginmanager.register(plugin, "dockernet-capture")
    config.stash.setdefault(WRITERS, []).append(plugin.write)


class CapturePlugin:
    """The run's capture: one :class:`~.capture.Capture` per topology that records."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.current: pytest.Item | None = None  # the test setting up or running, if it records
        self.captures: dict[Context, Capture] = {}
        self.hosts: dict[str, CaptureHost] = {}  # engine's URL -> the process's capture sidecar there
        self._lock = threading.Lock()
        self.off: str | None = None  # why nothing can be recorded in this process

    def wanted(self, item: pytest.Item) -> bool:
        marker = item.get_closest_marker("dockernet")
        asked = marker.kwargs.get("capture") if marker is not None else None
        return self.settings.capture if asked is None else asked is True  # a bad value fails the test

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
            from .capture import Capture  # here: only a run that records imports the capture

            self.captures[context] = Capture(context, lambda: self.host_for(context))
        self.captures[context].start(network)

    def host_for(self, context: Context) -> CaptureHost:
        # By URL: each factory has an Engine of its own over the same client.
        where = context.engine.base_url or str(id(context.engine))
        with self._lock:
            if where not in self.hosts:
                from .capture import CaptureHost

                self.hosts[where] = CaptureHost(context.engine, context.identity)
            return self.hosts[where]

    # Before the plugin's own, which closes the engine's connection.
    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        for host in self.hosts.values():
            try:
                host.close()
            except Exception as exc:  # noqa: BLE001 - after the summary: one line
                print(f"dockernet: removing the capture sidecar failed: {one_line(exc)}", file=sys.stderr)

    def pytest_dockernet_container_started(self, container: Any) -> None:
        capture = self.captures.get(container.context)
        if capture is not None:
            capture.ready(listening=False)  # its traffic is recorded from (about) the start

    def pytest_dockernet_topology_teardown(self, factory: Any) -> None:
        capture = self.captures.pop(factory.context, None)
        if capture is not None:
            capture.close()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, None]:
        for capture in self._used(item):
            capture.ready()
        yield

    def write(self, item: pytest.Item, folder: Path) -> None:
        """The artifacts' writer: ``item`` failed, its folder is ``folder``."""
        if self.wanted(item):
            item.stash[SAVED] = self._saved(item, folder)

    # Outermost: what it adds comes after the artifacts' own section, whose writing saved it.
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
        outcome = yield
        report = outcome.get_result()
        if not (report.failed and report.when in ("setup", "call") and self.wanted(item)):
            return
        text = item.stash.get(SAVED, None) or self._unsaved(item)
        add = getattr(report.longrepr, "addsection", None)
        if add is not None:
            add(SECTION, text)
        else:
            report.sections.append((SECTION, text))

    def _used(self, item: pytest.Item) -> list[Capture]:
        """The captures of the topologies ``item`` may use: its own first, its module's, the
        session's (a topology's label is the node id of the node its fixture was made for)."""
        labels = [node.nodeid or "session" for node in reversed(item.listchain())]
        used = [(labels.index(c.label), capture) for c, capture in self.captures.items() if c.label in labels]
        return [capture for _, capture in sorted(used, key=lambda pair: pair[0])]

    def _unsaved(self, item: pytest.Item) -> str:
        """Why a failing test that recorded has no capture saved."""
        if self.off is not None:
            return f"nothing recorded: {self.off}"
        if not self._used(item):
            return "nothing recorded: the test made no network while it recorded"
        return "not saved: the test's artifacts folder was not written (see its section)"

    def _saved(self, item: pytest.Item, folder: Path) -> str:
        captures = self._used(item)
        if self.off is not None or not captures:
            return self._unsaved(item)

        # Two factories' networks may share a name: then the test's own keep theirs, the
        # module's and the session's are prefixed ("module-front.pcap").
        def prefix(capture: Capture) -> str:
            label = capture.context.label
            if len(captures) == 1 or label == item.nodeid:
                return ""
            return "session-" if label == "session" else "module-"

        try:
            return "\n".join(capture.save(folder, prefix(capture)).describe() for capture in captures)
        except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
            return f"the capture could not be saved: {one_line(exc)}"
