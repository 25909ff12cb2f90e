"""Builds through BuildKit: a ``docker`` CLI that has it, pointed at the run's engine.

docker-py drives only the engine's legacy builder; BuildKit needs the CLI's session
protocol, so a build with it runs ``docker build`` (``DOCKER_BUILDKIT=1``: a 18.09-22.x
client builds with BuildKit itself, a newer one through its buildx plugin). Which CLI can:
each candidate (every ``docker`` on PATH, then the usual places) is asked for an empty
build of ``FROM scratch`` against the engine (about 70 ms), so an engine without BuildKit
(Podman's API) or a client without it (a 23+ client without buildx) is found out before a
real build, and the answer kept for the run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import select
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .errors import DockernetError

# Where a docker CLI is found off PATH (a minimal PATH, Docker Desktop's own directory).
USUAL_PLACES = (
    "/usr/local/bin/docker",
    "/usr/bin/docker",
    "/opt/homebrew/bin/docker",
    "/Applications/Docker.app/Contents/Resources/bin/docker",
)
BUILDERS = ("auto", "buildkit", "legacy")  # --dockernet-builder
PROBE_TIMEOUT = 60.0  # seconds the empty probe build may take (a busy engine)
OUTPUT_LINES = 25  # lines of the build's output a failure shows
_STEP = re.compile(r"#\d+ \[(?:(?P<stage>[^\]]*?) )?(?P<index>\d+)/(?P<count>\d+)\] (?P<instruction>.*)$")
_NOISE = re.compile(r"#\d+ (?:sha256:[0-9a-f]+|DONE [0-9.]+s|CACHED)$")


@dataclass(frozen=True)
class Client:
    """A docker CLI that builds with BuildKit on the run's engine, and its environment."""

    path: str
    version: str
    env: Mapping[str, str]

    def __str__(self) -> str:
        return f"BuildKit (docker CLI {self.path} {self.version})".replace("  ", " ")


@dataclass
class Found:
    """What the search for a BuildKit client found: the client, or why there is none."""

    client: Client | None
    tried: list[str] = field(default_factory=list)  # "PATH: why not", per candidate

    def why_not(self) -> str:
        if not self.tried:
            return "no docker CLI on PATH or in " + ", ".join(USUAL_PLACES)
        return "no docker CLI here builds with BuildKit on this engine (" + "; ".join(self.tried) + ")"


def candidates(path: str | None = None) -> list[str]:
    """Every ``docker`` executable on PATH (in its order), then the usual places; each once."""
    found: list[str] = []
    seen: set[str] = set()
    dirs = (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
    for candidate in [os.path.join(d, "docker") for d in dirs if d] + list(USUAL_PLACES):
        real = os.path.realpath(candidate)
        if real not in seen and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            seen.add(real)
            found.append(candidate)
    return found


def cli_environment(base_url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that points a docker CLI at the engine at ``base_url`` (as the run's
    client has it: ``unix://``, ``tcp://``, ``ssh://``, or docker-py's ``http(s)://`` for
    tcp); TLS files as the environment names them (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)."""
    env = dict(os.environ if environ is None else environ)
    if base_url:
        scheme, _, rest = base_url.partition("://")
        if scheme == "http":
            env.pop("DOCKER_TLS_VERIFY", None)
        env["DOCKER_HOST"] = f"tcp://{rest}" if scheme in ("http", "https") else base_url
        env.pop("DOCKER_CONTEXT", None)  # DOCKER_HOST is the engine; a context would name another
    env["DOCKER_BUILDKIT"] = "1"
    env["BUILDKIT_PROGRESS"] = "plain"
    return env


def find_client(base_url: str, path: str | None = None) -> Found:
    """The first candidate CLI whose empty BuildKit build on the engine succeeds."""
    env = cli_environment(base_url)
    found = Found(None)
    for cli in candidates(path):
        with tempfile.TemporaryDirectory(prefix="dockernet-buildkit-") as out:
            try:
                probe = subprocess.run(
                    [cli, "build", "--quiet", "--output", f"type=local,dest={out}", "-"],
                    input=b"FROM scratch\n",
                    env=env,
                    capture_output=True,
                    timeout=PROBE_TIMEOUT,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                found.tried.append(f"{cli}: {exc}")
                continue
        if probe.returncode != 0:
            said = [line.strip() for line in probe.stderr.decode(errors="replace").splitlines() if line.strip()]
            found.tried.append(f"{cli}: {said[0] if said else f'exit status {probe.returncode}'}")
            continue
        version = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"], env=env, capture_output=True, timeout=PROBE_TIMEOUT
        ).stdout.decode(errors="replace")
        found.client = Client(cli, version.strip(), env)
        return found
    return found


class Progress:
    """What a build says on the terminal: nothing for its first ``after`` seconds, then its
    current step when it changes (at most one line per ``every`` seconds, and one at least
    every ``quiet`` seconds while a step runs on), and how long it took once done."""

    def __init__(
        self,
        what: str,
        say: Callable[[str], None] | None,
        *,
        after: float = 2.0,
        every: float = 2.0,
        quiet: float = 10.0,
    ):
        self.what, self.say = what, say
        self.after, self.every, self.quiet = after, every, quiet
        self.start = self.last = time.monotonic()
        self.step = ""
        self.shown: str | None = None  # the step last said; None: nothing said yet

    def at(self, step: str) -> None:
        self.step = step
        self.tick()

    def tick(self) -> None:
        if self.say is None:
            return
        now = time.monotonic()
        if now - self.start < self.after or now - self.last < self.every:
            return
        if self.shown is not None and self.step == self.shown and now - self.last < self.quiet:
            return
        self.last, self.shown = now, self.step
        step = f" ({self.step})" if self.step else ""
        self.say(f"dockernet: building {self.what}{step} {now - self.start:.0f} s ...")

    def done(self, ok: bool) -> None:
        if self.say is not None and self.shown is not None:
            verb = "built" if ok else "failed building"
            self.say(f"dockernet: {verb} {self.what} in {time.monotonic() - self.start:.1f} s")


def _lines(process: subprocess.Popen[bytes], tick: Callable[[], None]) -> Iterable[str]:
    """The lines ``process`` writes to its stderr, ``tick`` called at least once a second."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    partial = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        tick()
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, partial = (partial + chunk).split(b"\n")
        for line in lines:
            yield line.decode(errors="replace").rstrip()
    if partial:
        yield partial.decode(errors="replace").rstrip()


def build(client: Client, arguments: list[str], context: str, progress: Progress) -> str:
    """Run ``docker build ARGUMENTS CONTEXT`` with BuildKit; the image's id. A failure
    raises DockernetError with BuildKit's error and the last lines of its output."""
    shown: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
    with tempfile.TemporaryDirectory(prefix="dockernet-build-") as scratch:
        iidfile = os.path.join(scratch, "iid")
        command = [client.path, "build", "--progress=plain", "--iidfile", iidfile, *arguments, context]
        with subprocess.Popen(
            command, env=dict(client.env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as process:
            try:
                for line in _lines(process, progress.tick):
                    step = _STEP.match(line)
                    if step is not None:
                        progress.at(f"step {step['index']}/{step['count']}: {step['instruction'][:60]}")
                    if line and not _NOISE.match(line):
                        shown.append(line)
            except BaseException:
                with contextlib.suppress(OSError):
                    process.kill()
                raise
        image_id = ""
        with contextlib.suppress(OSError), open(iidfile) as f:
            image_id = f.read().strip()
    progress.done(process.returncode == 0 and bool(image_id))
    if process.returncode == 0 and image_id:
        return image_id
    error = shown[-1] if shown else f"docker build exited with status {process.returncode}"
    raise BuildKitFailed(error, list(shown))


class BuildKitFailed(DockernetError):
    """A BuildKit build failed: ``error`` is its last word, ``lines`` its output's last lines."""

    def __init__(self, error: str, lines: list[str]):
        super().__init__(error)
        self.error, self.lines = error, lines
