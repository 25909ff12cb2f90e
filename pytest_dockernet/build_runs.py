"""Running one build: with the engine's legacy builder (docker-py's build) or with
BuildKit (a docker CLI, :mod:`.buildkit`), and what the Dockerfile needs of them.

:mod:`.builds` decides which (``--dockernet-builder``; ``auto`` takes BuildKit wherever a
CLI with it works on the engine: an empty build of a small image measured 0.2-0.4 s with
BuildKit against 0.4-0.7 s with the legacy builder here) and keeps its cache by content.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import buildkit
from .buildkit import Client, Progress
from .dockerfile_needs import FRONTEND, Need, buildkit_needs, syntax_image
from .engine.errors import APIError, ImageNotFound
from .errors import DockernetError

if TYPE_CHECKING:
    from .engine.port import Engine


@dataclass(frozen=True)
class BuildRequest:
    """A build's checked arguments: the context's absolute path, the Dockerfile's path in it
    (or its text, ``inline``), and what else the builder is given."""

    root: str
    dockerfile: str
    buildargs: dict[str, str]
    tag: str | None
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    inline: str | None = None  # the Dockerfile's text, given instead of a file of the context
    network: str | None = None  # the network of RUN steps: default, host or none
    cache_from: tuple[str, ...] = ()

    def dockerfile_text(self) -> str:
        if self.inline is not None:
            return self.inline
        with open(os.path.join(self.root, self.dockerfile), encoding="utf-8", errors="replace") as f:
            return f.read()

    def describe(self) -> str:
        what = "an inline Dockerfile" if self.inline is not None else f"dockerfile {self.dockerfile!r}"
        return f"{self.root!r} ({what}{f', target {self.target!r}' if self.target else ''})"


OUTPUT_LINES = 25  # lines of the build's output a failure shows
HOW_TO_GET_BUILDKIT = (
    "put a docker CLI with BuildKit on PATH (a 18.09 to 22.x client builds with it itself, a newer one "
    "needs its buildx plugin: `docker buildx version` works), pointed at the same engine"
)


def refuse_without_buildkit(request: BuildRequest, needs: list[Need], why: str) -> DockernetError:
    """The error of a Dockerfile that needs BuildKit in a run that builds without it."""
    forms = "; ".join(str(need) for need in needs)
    newer = [need for need in needs if need.level == FRONTEND]
    extra = (
        f"; {', '.join(n.form for n in newer)}: BuildKit with a Dockerfile frontend newer than some engines' "
        "built-in one, which a first line `# syntax=docker/dockerfile:1` loads from an image on the engine or "
        "pullable"
        if newer
        else ""
    )
    return DockernetError(
        f"building {request.describe()}: the Dockerfile needs BuildKit ({forms}), and this run builds with "
        f"the legacy builder: {why}. To build it, {HOW_TO_GET_BUILDKIT}, and leave --dockernet-builder at auto "
        f"(or set it to buildkit){extra}"
    )


def image_id_of(engine: Engine, ref: str) -> str | None:
    """The id of image ``ref`` (None when there is no such image)."""
    try:
        image_id: str = engine.inspect_image(ref)["Id"]
    except ImageNotFound:
        return None
    return image_id


def check_frontend(engine: Engine, request: BuildRequest) -> None:
    """A ``# syntax=IMAGE`` line makes BuildKit run the Dockerfile frontend of IMAGE: it
    must be on the engine or pullable, else the build fails saying so (BuildKit's own error
    names a registry request)."""
    syntax = syntax_image(request.dockerfile_text())
    if syntax is None:
        return
    line, image = syntax
    try:
        engine.inspect_image(image)
        return
    except ImageNotFound:
        pass
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    try:
        engine.pull(repository, tag=tag)
    except APIError as exc:
        raise DockernetError(
            f"building {request.describe()}: line {line} `# syntax={image}` makes BuildKit load its Dockerfile "
            f"frontend from the image {image!r}, which is not on the engine and cannot be pulled "
            f"({str(exc.explanation or exc).strip()}). Load that image onto the engine (`docker pull {image}` "
            "where a registry is reachable, then `docker save`/`docker load`), or remove the line to use the "
            "engine's built-in frontend"
        ) from None


def run_buildkit(client: Client, request: BuildRequest, ref: str, labels: dict[str, str], progress: Progress) -> str:
    """Build ``request`` with BuildKit as ``ref`` with ``labels``; the image's id."""
    arguments = ["--tag", ref]
    for key, value in {**request.labels, **labels}.items():
        arguments += ["--label", f"{key}={value}"]
    for key, value in request.buildargs.items():
        arguments += ["--build-arg", f"{key}={value}"]
    if request.target:
        arguments += ["--target", request.target]
    if request.network:
        arguments += ["--network", request.network]
    for cache in request.cache_from:
        arguments += ["--cache-from", cache]
    with dockerfile_path(request) as dockerfile:
        arguments += ["--file", os.path.join(request.root, dockerfile)]
        try:
            return buildkit.build(client, arguments, request.root, progress)
        except buildkit.BuildKitFailed as exc:
            newer = [n for n in buildkit_needs(request.dockerfile_text()) if n.level == FRONTEND]
            hint = ""
            if newer and syntax_image(request.dockerfile_text()) is None:
                hint = (
                    f" ({'; '.join(map(str, newer))}: the engine's built-in Dockerfile frontend may lack this; "
                    "a first line `# syntax=docker/dockerfile:1` loads a newer one, from an image that must be "
                    "on the engine or pullable)"
                )
            raise failed(request, str(client), exc.error, exc.lines, hint) from None


def needs_of(request: BuildRequest) -> list[Need]:
    """What of the request's Dockerfile needs BuildKit."""
    return buildkit_needs(request.dockerfile_text())


class LegacyOutput:
    """What the (legacy) builder streams: its last lines, and the step images this build
    committed itself (not a FROM's, not the cache's), to be undone if it fails."""

    _STEP = re.compile(r"Step (?P<at>\d+/\d+) : (?P<instruction>\S+)(?P<rest>.*)")
    _RESULT = re.compile(r"\s*---> (?P<id>[0-9a-f]{12,64})")

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self.committed: list[str] = []
        self._partial = ""
        self._new_step = False
        self.step = ""  # the step running, for progress

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line.rstrip())

    def close(self) -> None:
        self._line(self._partial.rstrip())
        self._partial = ""

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self.lines.append(line)
        step = self._STEP.match(line)
        result = self._RESULT.fullmatch(line)
        if step is not None:
            self._new_step = step["instruction"].upper() != "FROM"
            self.step = f"step {step['at']}: {(step['instruction'] + step['rest'])[:60]}"
        elif line.strip() == "---> Using cache":
            self._new_step = False
        elif result is not None and self._new_step:
            self.committed.append(result["id"])
            self._new_step = False


def run_legacy(
    engine: Engine, request: BuildRequest, ref: str, labels: dict[str, str], progress: Progress | None = None
) -> str:
    """Build ``request`` with the engine's legacy builder as ``ref`` with ``labels``; the
    image's id.

    A failed build raises DockernetError with the error and the last lines of the build's
    output, and removes the step images it committed (the cache it found stays).
    """
    image_id: str | None
    output, error, image_id = LegacyOutput(), None, None
    progress = progress or Progress("", None)
    options: dict[str, Any] = {"target": request.target, "network_mode": request.network}
    if request.cache_from:
        options["cache_from"] = list(request.cache_from)
    with dockerfile_path(request) as dockerfile:
        try:
            for chunk in engine.build(
                path=request.root,
                tag=ref,
                dockerfile=dockerfile,
                buildargs=dict(request.buildargs),  # the SDK adds proxy settings to what it is given
                labels={**request.labels, **labels},
                rm=True,
                forcerm=True,
                **{k: v for k, v in options.items() if v is not None},
            ):
                if "stream" in chunk:
                    output.feed(chunk["stream"])
                    progress.at(output.step)
                if "error" in chunk:
                    error = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                if "aux" in chunk:
                    image_id = (chunk["aux"] or {}).get("ID", image_id)
        except APIError as exc:  # refused before it began (e.g. a Dockerfile it cannot parse)
            error = str(exc.explanation or exc)
    output.close()
    if error is None and image_id is None:
        image_id = image_id_of(engine, ref)
    progress.done(error is None and image_id is not None)
    if error is None and image_id is not None:
        return image_id
    for step_image in reversed(output.committed):  # children first; nothing else pruned
        with contextlib.suppress(APIError):
            engine.remove_image(step_image, noprune=True)
    raise failed(request, "the legacy builder", error or "the engine reported no image", list(output.lines))


def failed(request: BuildRequest, builder: str, error: str, lines: list[str], hint: str = "") -> DockernetError:
    shown = "\n".join(f"  {line}" for line in lines) or "  (none)"
    return DockernetError(
        f"building {request.describe()} with {builder} failed: {error.strip()}{hint}\n"
        f"last lines of the build output:\n{shown}"
    )


@contextlib.contextmanager
def dockerfile_path(request: BuildRequest) -> Iterator[str]:
    """The Dockerfile's path for a builder: in the context, or an inline one's text in a file
    outside it (which both builders send along with the context)."""
    if request.inline is None:
        yield request.dockerfile
        return
    with tempfile.TemporaryDirectory(prefix="dockernet-dockerfile-") as where:
        path = os.path.join(where, "Dockerfile")
        with open(path, "w", encoding="utf-8") as f:
            f.write(request.inline)
        yield path
