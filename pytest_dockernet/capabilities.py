"""Named capabilities of an engine: what a feature needs that some engines lack, probed
once per run and per engine, when a feature first asks (:class:`Capabilities`).

Each engine is the Docker implementation of :class:`~.engine.port.Engine` plus what the
probe found: a part asks ``context.need("hermetic-dns")`` where it uses the feature, and
never which engine it talks to. A missing capability skips the test that needed it,
naming the engine and the capability ("Podman 4.3.1: hermetic DNS unavailable ...");
under ``--dockernet-require`` that skip passes only for a test marked as needing it
(``@pytest.mark.dockernet(needs=[...])``).

How each is probed is :mod:`.capability_probes`'s; what a user sees of them is
``pytest --dockernet-capabilities`` (:func:`table`) and the summary's line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import capability_probes as probes
from .engine import connect, where
from .engine.errors import EngineException
from .engine.gate import open_lock
from .engine.info import EngineInfo, read_info
from .errors import DockernetError, EngineUnavailable, ImageUnavailable, one_line
from .labels import SESSION, RunIdentity

if TYPE_CHECKING:
    from .engine.port import Engine

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: processes of one run may each probe
    fcntl = None

# The public names (what users put in ``needs=``), and what each means.
CAPABILITIES: Mapping[str, str] = {
    "hermetic-dns": "containers' names resolve with --dockernet-dns=hermetic's settings (nameserver 127.0.0.1)",
    "aliases": "a network alias resolves, on every network a container is on",
    "links": "links= aliases resolve (legacy links, and links scoped to a user-defined network)",
    "icmp": "a container pings with the engine's default capabilities (NET_RAW); the plugin adds it where not",
    "healthchecks": "the engine runs a container's HEALTHCHECK by itself; the plugin runs it where not",
    "internal-dns": "containers on an internal network (internal=True) resolve and reach each other",
    "gateway-ports": "a container's published port is reachable from another network's containers at their gateway",
    "network-isolation": "containers on different networks do not reach each other; the plugin isolates where not",
    "connect-disconnect": "a running container joins and leaves networks and still reaches the others",
    "warm-pool-joins": "the warm pool's way: a renamed running container leaves networks and joins others",
    "warm-pool-parking": "a container renamed while on its networks answers to its new name only (the pool's parking)",
    "swarm": "swarm mode: overlay networks, services, --dockernet-swarm auto",
    "overlay": "overlay networks carry containers and services (tried once the engine is a swarm manager)",
    "ipv6": "IPv6 networks (ipv6=True) give their containers addresses",
    "net-admin": "a container given NET_ADMIN changes its network namespace (faults' helpers)",
    "pause": "a container is paused and unpaused (the cgroup freezer): pause(), a nemesis's pause",
    "host-network": "a host-mode container shares this process's network namespace (its 127.0.0.1 is the test's)",
    "bind-mounts": "a bind mount of this machine's path reaches the engine's containers",
    "capture": "a host-mode container sees a network's bridge (--dockernet-capture records it there)",
    "lab": "the multi-engine lab (--dockernet-lab): root on the engine's own host",
}
PROBE_OF = {name: group for group, (_, names) in probes.PROBES.items() for name in names}
# Verdicts kept between runs are those of these probes: a changed probe probes again.
PROBES_DIGEST = hashlib.sha1(Path(probes.__file__).read_bytes()).hexdigest()[:12]
CACHE_PREFIX = "pytest-dockernet-capabilities-"


def plugin_version() -> str:
    try:
        return package_version("pytest-dockernet")
    except PackageNotFoundError:
        return "unknown"


def check_needs(names: object) -> str | None:
    """What is wrong with ``needs=[...]`` of the marker (None: nothing)."""
    if not isinstance(names, (list, tuple)):
        return f"got {names!r}; give a list of capabilities among: {', '.join(CAPABILITIES)}"
    strangers = [repr(n) for n in names if n not in CAPABILITIES]
    if strangers:
        return f"names no capability: {', '.join(strangers)}; the capabilities are: {', '.join(CAPABILITIES)}"
    return None


@dataclass(frozen=True)
class Verdict:
    """One capability of one engine: present or missing, and why."""

    name: str
    present: bool
    reason: str
    engine: str  # the engine, as EngineInfo.describe() says it

    def skip_reason(self) -> str:
        """What a test that needed it is skipped with."""
        return f"{self.engine}: {self.reason} [capability {self.name!r}]"


class Store:
    """Where the verdicts of the container probes are kept between runs: a file per engine
    (its host's name, data root, kind and version, whatever address it is reached at) and
    plugin version in this machine's
    temporary directory, so that later runs, xdist workers and pytester's inner runs on
    the same engine do not probe again. ``pytest --dockernet-capabilities`` probes afresh
    and rewrites it. ``directory=None``: nowhere."""

    def __init__(self, directory: str | None = tempfile.gettempdir()):
        self.directory = directory

    def _path(self, key: str) -> str | None:
        return None if self.directory is None else os.path.join(self.directory, f"{CACHE_PREFIX}{key}.json")

    def get(self, key: str) -> dict[str, Any]:
        path = self._path(key)
        if path is None:
            return {}
        try:
            with open(path) as file:
                value = json.load(file)
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def set(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            with tempfile.NamedTemporaryFile("w", dir=self.directory, delete=False, suffix=".tmp") as file:
                json.dump(value, file)
            os.replace(file.name, path)  # whole or not at all, for a reader in another process
        except OSError:
            pass  # not kept: the next run probes again


@dataclass(eq=False)
class EngineCapabilities:
    """One engine's capabilities: what it is (read once), and each probe's verdicts (run
    once, when one of its capabilities is first asked for)."""

    engine: Engine
    store: Store
    fresh: bool = False  # probe again, whatever the store holds
    _info: EngineInfo | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    probe_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> EngineInfo:
        with self.lock:
            if self._info is None:
                self._info = read_info(self.engine)
            return self._info

    def verdict(self, name: str, image: Callable[[], str], labels: Callable[[], dict[str, str]]) -> Verdict:
        """Capability ``name``: from this run's verdicts, the store's, or its probe (run now)."""
        if name not in CAPABILITIES:
            raise ValueError(f"no capability named {name!r}; the capabilities are: {', '.join(CAPABILITIES)}")
        with self.lock:
            if name in self.verdicts:
                return self.verdicts[name]
        with self.probe_lock:  # one probe at a time per engine: a second asker waits and reads
            if name not in self.verdicts:
                self._probe(PROBE_OF[name], image, labels)
            return self.verdicts[name]

    def _probe(self, group: str, image: Callable[[], str], labels: Callable[[], dict[str, str]]) -> None:
        info = self.info
        key = hashlib.sha1(f"{info.cache_key}\0{plugin_version()}\0{PROBES_DIGEST}".encode()).hexdigest()[:16]
        run, names = probes.PROBES[group]
        kept: dict[str, Any] = {}
        # Other processes of this machine (xdist workers, other runs) wait, then read what this one found.
        with _machine_lock(key) if group in probes.KEPT else contextlib.nullcontext():
            if group in probes.KEPT and not self.fresh:
                kept = self.store.get(key)
            if not all(n in kept for n in names):
                owner = labels()  # its run id names what it makes: unique on an engine shared by machines
                probe = probes.Probe(
                    self.engine, info, image, owner, f"dn-cap-{owner.get(SESSION, os.getpid())}-{group}"
                )
                with probes.cleaned(probe):
                    kept = {n: list(v) for n, v in run(probe).items()}
                if group in probes.KEPT:
                    self.store.set(key, {**self.store.get(key), **kept})
        with self.lock:
            for name in names:
                present, reason = kept[name]
                self.verdicts[name] = Verdict(name, bool(present), str(reason), info.describe())


@contextlib.contextmanager
def _machine_lock(key: str) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    path = os.path.join(tempfile.gettempdir(), f"{CACHE_PREFIX}{key}.lock")
    fd = open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(eq=False)
class Capabilities:
    """A run's capabilities of its engines (one :class:`EngineCapabilities` per engine,
    by where it answers), shared by its topologies."""

    store: Store = field(default_factory=Store)
    fresh: bool = False
    engines: MutableMapping[str, EngineCapabilities] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, engine: Engine) -> EngineCapabilities:
        key = where(engine)
        with self.lock:
            if key not in self.engines:
                self.engines[key] = EngineCapabilities(engine, self.store, self.fresh)
            return self.engines[key]

    def missing(self) -> list[Verdict]:
        """Every capability found missing in this run, on any engine."""
        with self.lock:
            found = [v for e in self.engines.values() for v in e.verdicts.values()]
        return [v for v in found if not v.present]

    def summary(self) -> list[str]:
        """The summary's lines: each engine the run asked about, with what it lacks."""
        lines = []
        with self.lock:
            engines = list(self.engines.values())
        for capabilities in engines:
            if capabilities._info is None:
                continue
            missing = sorted(v.name for v in capabilities.verdicts.values() if not v.present)
            said = f"missing: {', '.join(missing)}" if missing else "no capability found missing"
            lines.append(f"engine: {capabilities.info.describe()} at {capabilities.info.url} ({said})")
        return lines


def table(capabilities: EngineCapabilities, image: Callable[[], str], labels: Callable[[], dict[str, str]]) -> str:
    """Every capability of one engine, probed: the ``--dockernet-capabilities`` table."""
    info = capabilities.info
    backend = f", network backend {info.network_backend}" if info.network_backend else ""
    head = (
        f"{info.describe()} at {info.url} (API {info.api_version}, {info.os}/{info.arch}{backend})\n"
        f"  this machine's host: {'yes' if info.shares_host else 'no'}; {info.host_reason}"
    )
    width = max(len(n) for n in CAPABILITIES)
    rows = []
    for name in CAPABILITIES:
        verdict = capabilities.verdict(name, image, labels)
        rows.append(f"  {name:<{width}}  {'present' if verdict.present else 'MISSING'}  {verdict.reason}")
    return "\n".join([head, *rows])


def probe_engines(urls: Iterable[str | None], probe_image: Callable[[Engine], str]) -> tuple[list[str], list[str]]:
    """The table of each engine at ``urls`` (None: the environment's), probed afresh, and
    what could not be probed (an engine that does not answer, an image that cannot be had)."""
    tables, errors, labels = [], [], RunIdentity().labels
    for url in urls:
        try:
            engine = connect(url)
        except EngineUnavailable as exc:
            errors.append(str(exc))
            continue
        image: list[str] = []

        def once(engine: Engine = engine, image: list[str] = image) -> str:
            if not image:
                image.append(probe_image(engine))
            return image[0]

        try:
            tables.append(table(Capabilities(fresh=True).of(engine), once, labels))
        except (DockernetError, ImageUnavailable, EngineException, OSError) as exc:
            errors.append(f"probing {where(engine)} failed: {one_line(exc)}")
        finally:
            engine.close()
    return tables, errors
