"""Packet capture of a topology's networks (``--dockernet-capture``, marker ``capture=True``):
a tcpdump per network, in the engine host's network namespace on the network's bridge,
into a bounded ring of files (:data:`RING_FILES` of :data:`RING_FILE_MB` MB), kept only
when the test fails.

Why the bridge, seen from the host's namespace: one tcpdump sees every container of the
network, it can start before any container does (it joins none), and it works wherever the
engine runs (the sidecar runs on the engine's host; the files come back through the engine's
archive API). What it misses: the embedded DNS (answered inside each container's namespace),
and a packet sent to another network shows only in its sender's network's file (the
engine's isolation rules drop it before the other bridge).

The tcpdumps run in one resident sidecar per process and engine (:class:`CaptureHost`),
started and stopped through its resident shell: a write on its attach stream, not a
container made and removed per network, which on a busy engine costs a passing test more
than the target allows. A network's tcpdump starts in a thread when the network is made
(:meth:`Capture.start`), beside the topology's own work; :meth:`Capture.ready` waits for
those still being started (before a container counts as started) and until they listen
(before the test body, and before their files are fetched), so that the test's traffic is
recorded. A failing test's files are fetched and merged
(:meth:`Capture.save`); at the topology's teardown each tcpdump is stopped and its files
removed (:meth:`Capture.close`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
import shlex
import shutil
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import flows
from .engine import exec_in, remove_container, remove_containers_named, undone_on_failure
from .engine.errors import APIError, EngineException
from .errors import DockernetError, one_line
from .image import image_on, library_files, remove_stale_builds
from .labels import ROLE
from .probes import RESIDENT
from .shells import NotSent, Shell

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine
    from .handles import Network
    from .labels import RunIdentity
    from .timings import Timings

CAPTURE_REPOSITORY = "pytest-dockernet/capture"
CAPTURE_BASE = "pytest-dockernet.capture-base"  # label: the probe image it was built on
CAPTURE_ROLE = "capture"
RING_FILES = 5  # -W: files of the ring
RING_FILE_MB = 1  # -C: millions of bytes per file; the ring keeps the last 4 to 5 MB
SNAPLEN = 256  # every header and the start of a payload; whole frames drop packets under load
DIRECTORY = "/capture"  # in the sidecar: a folder per network (the writable layer: fetched after a stop too)
READY_WITHIN = 10.0  # seconds for tcpdump to say it listens
BRIDGE_OPTION = "com.docker.network.bridge.name"
# Debian's tcpdump drops privileges to this user, which must exist; uid 0, so that it may
# still write the ring's files.
PASSWD = b"root:x:0:0:root:/:/bin/sh\ntcpdump:x:0:0:tcpdump:/:/bin/false\n"
INSTALL = "capture needs tcpdump on this machine to build its sidecar image (Debian: apt-get install tcpdump)"
_building = threading.Lock()


@dataclass
class Recorder:
    """One network's running tcpdump."""

    network: Network
    folder: str  # its ring's folder in the capture sidecar
    listening: bool = False  # seen listening (see Capture.ready)


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


def start_script(bridge: str, folder: str) -> str:
    """Start tcpdump on ``bridge`` into ``folder`` (its pid and what it says go there too),
    without waiting for it (:func:`listening_script` does, for several at once); exit 3 when
    there is no such bridge. tcpdump leaves the script's session and drops the script's
    mark (shells.contained), so that it outlives the script."""
    f, options = shlex.quote(folder), f"-U --immediate-mode -n -Z root -s {SNAPLEN} -C {RING_FILE_MB} -W {RING_FILES}"
    tcpdump = f"env -u DN_PROBE setsid /usr/bin/tcpdump -i {shlex.quote(bridge)} {options} -w {f}/ring.pcap"
    return (
        f"[ -e /sys/class/net/{shlex.quote(bridge)} ] || exit 3; rm -rf {f}; mkdir -p {f} || exit 1; "
        f"{tcpdump} </dev/null >/dev/null 2>{f}/said & p=$!; echo $p >{f}/pid; "
        # Not before it is a session of its own: the script's end kills the script's session.
        f"for i in $(seq {int(READY_WITHIN * 200)}); do read -r _ _ _ _ _ sid _ </proc/$p/stat || break; "
        f'[ "$sid" = "$p" ] && break; sleep 0.005; done'
    )


def listening_script(folders: list[str]) -> str:
    """Wait until each tcpdump of ``folders`` has opened its first file (it does once it
    listens); print ``@@FOLDER what it said`` for each that ended instead or kept silent."""
    waits = []
    for folder in folders:
        f = shlex.quote(folder)
        waits.append(
            f"p=$(cat {f}/pid); for i in $(seq {int(READY_WITHIN * 200)}); do [ -e {f}/ring.pcap0 ] && break; "
            f"kill -0 $p 2>/dev/null || break; sleep 0.005; done; "
            f"[ -e {f}/ring.pcap0 ] || echo @@{f} $(cat {f}/said)"
        )
    return "; ".join(waits)


def stop_script(folders: list[str]) -> str:
    """Stop the tcpdumps of ``folders`` and remove their files (one process: ``rm``)."""
    quoted = [shlex.quote(f) for f in folders]
    kills = "".join(f"read -r p <{f}/pid && kill $p 2>/dev/null; " for f in quoted)
    return f"{kills}rm -rf {' '.join(quoted)}"


class CaptureHost:
    """The capture sidecar of one process on one engine: a resident shell in the engine
    host's network namespace that starts and stops a tcpdump per recorded network. Made on
    first use, labelled with the run's identity (a dead run's is pruned with the rest of
    it), removed by :meth:`close` at the end of the run."""

    def __init__(self, engine: Engine, identity: RunIdentity):
        self.engine = engine
        self.identity = identity
        self._id: str | None = None
        self._shell: Shell | None = None
        self._lock = threading.Lock()
        self._marks = itertools.count()
        self._images: dict[str, str] = {}  # probe image -> the capture image built on it

    def run(self, image: str, script: str) -> tuple[int, str]:
        """Run ``script`` in the sidecar (started on first use, of ``image``; started again
        once when it is gone, e.g. removed by hand: its tcpdumps went with it)."""
        with self._lock:
            for again in (False, True):
                if self._id is None:
                    self._id = self._start(image)
                    self._shell = Shell(self.engine, self._id)
                shell = self._shell
                if shell is None or shell.broken:
                    break
                try:
                    return shell.run(script, f"capture{os.getpid()}-{next(self._marks)}", READY_WITHIN + 5)
                except OSError as exc:  # NotSent too
                    shell.close()
                    if self._running():  # it cannot attach (then an exec), or the script hangs
                        if isinstance(exc, NotSent):
                            break
                        raise
                    if again or not image:
                        raise DockernetError("the capture sidecar is gone") from None
                    remove_container(self.engine, self._id)  # gone: made again, once
                    self._id = None
            if self._id is None:
                raise DockernetError("the capture sidecar is gone")
            return exec_in(self.engine, self._id, ["sh", "-c", script])

    def _running(self) -> bool:
        try:
            return bool(self._id and self.engine.inspect_container(self._id)["State"].get("Running"))
        except EngineException:
            return False

    def image(self, probe_image: str, timings: Timings) -> str:
        """The sidecar's image (see :func:`capture_image`): found or built once."""
        with self._lock:
            if probe_image not in self._images:
                with timings.measure("image"):
                    self._images[probe_image] = capture_image(self.engine, probe_image)
            return self._images[probe_image]

    def stop(self, folders: list[str]) -> None:
        """Stop the tcpdumps writing into ``folders`` and remove their files, if the sidecar runs."""
        with self._lock:
            running = self._id is not None
        if running and folders:
            self.run("", stop_script(folders))

    def fetch(self, folder: str) -> list[bytes]:
        """The ring's files in ``folder``, read live: tcpdump writes each packet whole as it comes (-U)."""
        if self._id is None:
            return []
        data = self.engine.get_archive(self._id, folder)
        ring = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() and ".pcap" in member.name else None
                if extracted is not None:
                    ring.append(extracted.read())
        return ring

    def close(self) -> None:
        with self._lock:
            container, self._id = self._id, None
            if self._shell is not None:
                self._shell.close()
            if container is not None:
                remove_container(self.engine, container)

    def _start(self, image: str) -> str:
        engine, name = self.engine, f"dn-{self.identity.run_id}-capture-{os.getpid()}"
        labels = {**self.identity.labels(), ROLE: CAPTURE_ROLE}
        undo = functools.partial(remove_containers_named, engine, name, {"label": f"{ROLE}={CAPTURE_ROLE}"})
        # No gate (engine.gate): the sidecar joins no network, so it cannot race a removal's DNS.
        with undone_on_failure("starting the capture sidecar", undo):
            created = engine.create_container(
                image,
                command=RESIDENT,
                stdin_open=True,
                name=name,
                labels=labels,
                host_config=engine.create_host_config(network_mode="host", cap_add=["NET_RAW"]),
                detach=True,
            )
            engine.start(created["Id"])
        started: str = created["Id"]
        return started


class Capture:
    """The recorded networks of one topology."""

    def __init__(self, context: Context, host: Callable[[], CaptureHost]):
        self.context = context
        self.host = host  # the process's capture sidecar on the topology's engine
        self._lock = threading.Lock()
        self._jobs: dict[str, Future[Recorder | str]] = {}  # network's logical name -> recorder, or why none
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dockernet-capture")
        self._ready = threading.Lock()  # one wait for listening tcpdumps at a time
        self._failed: dict[str, str] = {}  # network's logical name -> why its tcpdump did not listen

    def start(self, network: Network) -> None:
        """Start recording ``network`` in the background (once per network)."""
        with self._lock:
            if network.name not in self._jobs:
                self._jobs[network.name] = self._pool.submit(self._record, network)

    def ready(self, *, listening: bool = True, timeout: float = 2 * READY_WITHIN) -> None:
        """Wait for the tcpdumps still being started and, with ``listening``, until they all
        listen (their failures are said by :meth:`save`). Without: a tcpdump started listens
        within milliseconds, before a container just started sends much."""
        with self._lock:
            pending = [job for job in self._jobs.values() if not job.done()]
        with self._ready, self.context.timings.measure("capture"):
            if pending:
                wait(pending, timeout=timeout)
            starting = [r for r in self._done().values() if isinstance(r, Recorder) and not r.listening]
            if not starting or not listening:
                return
            try:
                _, said = self.host().run("", listening_script([r.folder for r in starting]))
            except (OSError, EngineException, DockernetError) as exc:
                said = "\n".join(f"@@{r.folder} {one_line(exc)}" for r in starting)
            for recorder in starting:
                recorder.listening = True
                mark = f"@@{recorder.folder}"
                failed = next((line for line in said.splitlines() if line.split(" ", 1)[0] == mark), None)
                if failed is not None:
                    why = failed.partition(" ")[2].strip() or "no output"
                    self._failed[recorder.network.name] = f"tcpdump did not start listening: {why[-300:]}"

    def save(self, folder: Path, prefix: str = "") -> Saved:
        """Fetch each network's ring into ``folder/<prefix><network>.pcap`` and summarize its
        flows; never raises (a report is being made): what fails is a line of :attr:`Saved.missing`."""
        self.ready()
        saved = Saved()
        names = flows.names_of(self.context)
        for name, done in self._done().items():
            if isinstance(done, str):
                saved.missing.append(f"{prefix}{name}: not captured: {done}")
                continue
            try:
                path = folder / f"{prefix}{name}.pcap"
                ring = self.host().fetch(done.folder)
                folder.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as out:
                    flows.merge(ring, out)
                saved.files[prefix + name] = path
                saved.summaries[prefix + name] = flows.summarize(path, names)
            except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
                saved.missing.append(f"{prefix}{name}: capture not saved: {one_line(exc)}")
        return saved

    def close(self) -> None:
        """Stop each tcpdump and remove its files (the topology's scope ends)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.host().stop([done.folder for done in self._done().values() if isinstance(done, Recorder)])
        except (OSError, EngineException, DockernetError):
            pass  # the sidecar is gone: so are its tcpdumps

    def _done(self) -> dict[str, Recorder | str]:
        with self._lock:
            jobs = dict(self._jobs)
        done: dict[str, Recorder | str] = {}
        for name, job in jobs.items():
            try:
                done[name] = self._failed.get(name) or job.result(timeout=0)
            except Exception as exc:  # noqa: BLE001 - said in the report
                done[name] = f"it did not start: {one_line(exc)}"
        return done

    def _record(self, network: Network) -> Recorder | str:
        """Start ``network``'s tcpdump (:meth:`ready` waits until it listens); or say why there is none."""
        context = self.context
        if network.driver != "bridge":
            return f"its driver {network.driver!r} has no bridge in the engine host's namespace"
        verdict = context.capability("capture")
        if not verdict.present:
            return verdict.skip_reason()
        engine = context.engine
        try:
            image = self.host().image(context.probe_image, context.timings)
            folder, bridge = f"{DIRECTORY}/{network.id[:12]}", f"br-{network.id[:12]}"
            code, said = self.host().run(image, start_script(bridge, folder))
            if code == 3:  # a bridge named by the network's options
                bridge = (engine.inspect_network(network.id).get("Options") or {}).get(BRIDGE_OPTION) or bridge
                code, said = self.host().run(image, start_script(bridge, folder))
        except (DockernetError, EngineException, OSError) as exc:
            return one_line(exc)
        if code != 0:
            return f"tcpdump could not be started on {bridge}: {' '.join(said.split())[-300:] or 'no output'}"
        context.timings.count("captures")
        return Recorder(network, folder)


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
    files.update(library_files(tcpdump, DockernetError, "capture"))
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
