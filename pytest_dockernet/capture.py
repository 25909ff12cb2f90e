"""Packet capture of a topology's networks (``--dockernet-capture``, marker ``capture=True``):
one sidecar per network running tcpdump in the engine host's network namespace on the
network's bridge, into a bounded ring of files (:data:`RING`), kept only when the test fails.

Why the bridge, seen from the host's namespace: one sidecar sees every container of the
network, it can start before any container does (it joins none), and it works wherever the
engine runs (the sidecar runs on the engine's host; the files come back through the engine's
archive API). What it misses: the embedded DNS (answered inside each container's namespace),
and a packet sent to another network shows only in its sender's network's file (the
engine's isolation rules drop it before the other bridge).

A sidecar starts in a thread when its network is made (:meth:`Capture.start`), beside the
topology's own work; :meth:`Capture.ready` waits for those still starting (before a
container counts as started, and before the test body), so that the test's traffic is
recorded. A passing test's sidecars go with its topology (they carry its labels); a
failing test's files are fetched and merged (:meth:`Capture.save`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import flows
from .engine import remove_containers_named, undone_on_failure
from .engine.errors import APIError, EngineException
from .engine.gate import gate_for
from .errors import DockernetError, one_line
from .image import image_on, remove_stale_builds
from .retry import poll

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine
    from .handles import Network

CAPTURE_REPOSITORY = "pytest-dockernet/capture"
CAPTURE_BASE = "pytest-dockernet.capture-base"  # label: the probe image it was built on
RING_FILES = 5  # -W: files of the ring
RING_FILE_MB = 1  # -C: millions of bytes per file; the ring keeps the last 4 to 5 MB
SNAPLEN = 256  # every header and the start of a payload; whole frames drop packets under load
DIRECTORY = "/capture"  # in the sidecar: the ring's files (the writable layer: fetched after a stop too)
READY_WITHIN = 10.0  # seconds for tcpdump to say it listens
BRIDGE_OPTION = "com.docker.network.bridge.name"
# Debian's tcpdump drops privileges to this user, which must exist; uid 0, so that it may
# still write the ring's files.
PASSWD = b"root:x:0:0:root:/:/bin/sh\ntcpdump:x:0:0:tcpdump:/:/bin/false\n"
_building = threading.Lock()
INSTALL = "capture needs tcpdump on this machine to build its sidecar image (Debian: apt-get install tcpdump)"


@dataclass
class Recorder:
    """One network's running capture sidecar."""

    network: Network
    container: str  # the sidecar's id
    bridge: str


@dataclass
class Saved:
    """What :meth:`Capture.save` wrote, and what it could not."""

    files: dict[str, Path] = field(default_factory=dict)  # network's logical name -> its pcap
    summaries: dict[str, list[str]] = field(default_factory=dict)  # network's logical name -> flow lines
    missing: list[str] = field(default_factory=list)  # one line per network not captured, saying why

    def describe(self) -> str:
        """The report's section: each network's file and flows, then what is missing."""
        lines = []
        for name, path in self.files.items():
            lines.append(f"{name}: {path}")
            lines.extend(f"  {line}" for line in self.summaries.get(name) or ["(no packets)"])
        lines.extend(self.missing)
        return "\n".join(lines) or "no network was captured"


class Capture:
    """The capture sidecars of one topology's networks."""

    def __init__(self, context: Context):
        self.context = context
        self._lock = threading.Lock()
        self._jobs: dict[str, Future[Recorder | str]] = {}  # network's logical name -> recorder, or why none
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-capture")

    def start(self, network: Network) -> None:
        """Start recording ``network`` in the background (once per network)."""
        with self._lock:
            if network.name not in self._jobs:
                self._jobs[network.name] = self._pool.submit(self._record, network)

    def ready(self, timeout: float = 2 * READY_WITHIN) -> None:
        """Wait for the sidecars still starting (their failures are said by :meth:`save`)."""
        with self._lock:
            pending = [job for job in self._jobs.values() if not job.done()]
        if pending:
            wait(pending, timeout=timeout)

    def save(self, folder: Path) -> Saved:
        """Fetch each network's ring into ``folder/<network>.pcap`` and summarize its flows;
        never raises (a report is being made): what fails is a line of :attr:`Saved.missing`."""
        self.ready()
        saved = Saved()
        with self._lock:
            jobs = dict(self._jobs)
        names = flows.names_of(self.context)
        for name, job in jobs.items():
            try:
                done = job.result(timeout=0)
            except Exception as exc:  # noqa: BLE001 - said in the report
                done = f"the capture sidecar did not start: {one_line(exc)}"
            if isinstance(done, str):
                saved.missing.append(f"{name}: not captured: {done}")
                continue
            try:
                path = folder / f"{name}.pcap"
                ring = self._fetch(done)
                folder.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as out:
                    flows.merge(ring, out)
                saved.files[name] = path
                saved.summaries[name] = flows.summarize(path, names)
            except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
                saved.missing.append(f"{name}: capture not saved: {one_line(exc)}")
        return saved

    def close(self) -> None:
        """Stop starting sidecars (those running go with the topology's containers)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, recorder: Recorder) -> list[bytes]:
        """The ring's files, read live: tcpdump writes each packet whole as it comes (-U)."""
        engine = self.context.engine
        data = engine.get_archive(recorder.container, DIRECTORY)
        ring = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        ring.append(extracted.read())
        return ring

    def _record(self, network: Network) -> Recorder | str:
        """Start ``network``'s sidecar and wait until tcpdump listens; or say why there is none."""
        context = self.context
        if network.driver != "bridge":
            return f"a {network.driver} network has no bridge in the engine host's namespace"
        verdict = context.capability("capture")
        if not verdict.present:
            return verdict.skip_reason()
        engine = context.engine
        try:
            with context.timings.measure("image"):
                image = capture_image(engine, context.probe_image)
            info = engine.inspect_network(network.id)
        except (DockernetError, EngineException) as exc:
            return one_line(exc)
        bridge = (info.get("Options") or {}).get(BRIDGE_OPTION) or f"br-{network.id[:12]}"
        name = f"{network.docker_name}-capture"
        command = [
            "/usr/bin/tcpdump", "-i", bridge, "-U", "--immediate-mode", "-n", "-Z", "root",
            "-s", str(SNAPLEN), "-C", str(RING_FILE_MB), "-W", str(RING_FILES), "-w", f"{DIRECTORY}/ring.pcap",
        ]  # fmt: skip
        doing = f"starting the capture sidecar of network {network.name!r}"
        with undone_on_failure(doing, lambda: remove_containers_named(engine, name, context.filters())):
            with gate_for(engine).building():
                created = engine.create_container(
                    image,
                    command=command,
                    name=name,
                    labels=context.labels_for("capture", network.name),
                    host_config=engine.create_host_config(network_mode="host", cap_add=["NET_RAW"]),
                    detach=True,
                )
                engine.start(created["Id"])
        listening = _listening(engine, created["Id"])
        if listening is not None:
            return listening
        context.timings.count("capture sidecars")
        return Recorder(network, created["Id"], bridge)


def _listening(engine: Engine, container: str) -> str | None:
    """None once tcpdump says it listens; else why it does not (it exited, or is silent)."""

    def look() -> tuple[str, bool]:  # what it said, and whether that is the end of the wait
        said = engine.logs(container, stdout=False, stderr=True).decode(errors="replace")
        return said, "listening on" in said or not engine.inspect_container(container)["State"].get("Running")

    (said, ended), _ = poll(look, lambda seen: seen[1], timeout=READY_WITHIN, interval=0.005)
    if "listening on" in said:
        return None
    if ended:
        return f"tcpdump exited: {said.strip()[-300:] or 'no output'}"
    return f"tcpdump did not start listening within {READY_WITHIN:g} s: {said.strip()[-300:]}"


def find_tcpdump() -> str | None:
    """Where tcpdump is on this machine (PATH, then the sbin directories), or None."""
    candidates = ("/usr/bin/tcpdump", "/usr/sbin/tcpdump", "/sbin/tcpdump")
    return shutil.which("tcpdump") or next((p for p in candidates if os.access(p, os.X_OK)), None)


@functools.lru_cache(maxsize=1)
def host_files() -> dict[str, str]:
    """``{path on this machine: path in the image}``: tcpdump and its libraries (the dynamic
    loader too: ldd names it without an arrow); DockernetError when tcpdump is missing."""
    found = find_tcpdump()
    if found is None:
        raise DockernetError(INSTALL)
    tcpdump = os.path.realpath(found)
    files = {tcpdump: "usr/bin/tcpdump"}
    try:
        ldd = subprocess.run(["ldd", tcpdump], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DockernetError(f"capture: cannot list the libraries of {tcpdump} (ldd: {exc})") from None
    for line in ldd.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 3 else parts[0] if parts and parts[0].startswith("/") else ""
        if path and os.path.exists(path):
            files[os.path.realpath(path)] = path.lstrip("/")
    return files


def capture_image(engine: Engine, probe_image: str) -> str:
    """The capture sidecars' image on ``engine``: the probe image plus this machine's tcpdump,
    built once per content (tagged by digest); a build removes those of other contents."""
    with _building:  # a topology's networks start their sidecars at once: one build
        return _capture_image(engine, probe_image)


def _capture_image(engine: Engine, probe_image: str) -> str:
    files = host_files()
    dockerfile = (
        f"FROM {probe_image}\nCOPY root/ /\nLABEL pytest-dockernet.image=capture {CAPTURE_BASE}={probe_image}\n"
    ).encode()
    digest = hashlib.sha256(dockerfile + PASSWD)
    for source in sorted(files):
        digest.update(f"{source} {os.stat(source).st_size}".encode())
    tag = f"{CAPTURE_REPOSITORY}:{digest.hexdigest()[:12]}"
    if image_on(engine, tag):
        return tag
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("root/etc/passwd", PASSWD)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo(f"root{DIRECTORY}")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o777
        tar.addfile(directory)
        for source, target in files.items():
            tar.add(source, arcname=f"root/{target}")
    context.seek(0)
    try:
        steps = list(engine.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True))
    except APIError as exc:
        raise DockernetError(f"building the capture image {tag} failed: {one_line(exc)}") from None
    failure = next((str(step["error"]) for step in steps if "error" in step), None)
    if failure is not None or not image_on(engine, tag):
        raise DockernetError(f"building the capture image {tag} failed: {failure or 'unknown'}")
    remove_stale_builds(
        engine, "capture", CAPTURE_REPOSITORY, tag, lambda labels: labels.get(CAPTURE_BASE) == probe_image
    )
    return tag
