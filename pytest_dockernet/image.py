"""The probe image: the configured one when the engine has it or can pull it, else one
built here ``FROM scratch`` around a static busybox binary (air-gapped CI, no registry);
and getting an image onto a further engine without a registry (save, then load)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .engine import Client, as_engine
from .engine.errors import APIError, BuildError, ImageNotFound
from .errors import ImageUnavailable

if TYPE_CHECKING:
    from .engine.port import Engine

DEFAULT_IMAGE = "busybox:stable"
LOCAL_REPOSITORY = "pytest-dockernet/busybox"
KIND = "pytest-dockernet.image"  # label of a probe image built here: "busybox"
STAND_IN_FOR = "pytest-dockernet.stand-in-for"  # label: the image it stands in for
# How a build's output names the image it made (as docker-py's images.build reads it)
_BUILT = re.compile(r"(^Successfully built |sha256:)([0-9a-f]+)$")
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]
RUN ["/bin/busybox", "mkdir", "-p", "/root", "/var/www", "/home"]
LABEL pytest-dockernet.image=busybox
"""


@dataclass(frozen=True)
class ProbeImage:
    name: str  # what containers are created from
    built_from: str | None = None  # the busybox binary, when built here
    requested: str = DEFAULT_IMAGE
    reused: bool = False  # built by an earlier run, so the registry was not asked this time
    pulled: bool = False  # pulled by this run

    @property
    def changed(self) -> bool:
        """Whether resolving it changed the engine: this run pulled or built the image."""
        return self.pulled or (self.built_from is not None and not self.reused)

    def describe(self) -> str:
        if self.built_from is None:
            return f"probe image {self.name}" + (": pulled by this run" if self.pulled else "")
        if self.reused:
            return (
                f"{self.requested} is not on the engine; using {self.name}, built FROM scratch around "
                f"{self.built_from} by an earlier run that could not pull it (docker rmi it to retry the pull)"
            )
        return (
            f"{self.requested} is not on the engine and could not be pulled; "
            f"using {self.name}, built FROM scratch around {self.built_from}"
        )


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF":
                return False
            is64, little = head[4] == 2, head[5] == 1
            end = "<" if little else ">"
            if is64:
                (phoff,) = struct.unpack_from(end + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                (phoff,) = struct.unpack_from(end + "I", head, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    PT_INTERP = 3
    return all(struct.unpack_from(end + "I", table, i * phentsize)[0] != PT_INTERP for i in range(phnum))


def libraries_of(binary: str) -> list[str]:
    """The shared libraries ``binary`` loads, the dynamic loader included (``ldd`` lists it
    without an arrow), as paths that exist here: what an image built around a host tool
    (the fault helpers' iptables and tc, the capture's tcpdump) must carry. OSError when
    ``ldd`` cannot be run."""
    try:
        listed = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"ldd {binary} did not finish within {exc.timeout:g} s") from None
    found = []
    for line in listed.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 3 else parts[0] if parts and parts[0].startswith("/") else ""
        if path and os.path.exists(path):
            found.append(path)
    return found


def library_files(binary: str, error: type[Exception], doing: str) -> dict[str, str]:
    """``{real path here: path in the image}`` of ``binary``'s shared libraries
    (:func:`libraries_of`): an image built around a host binary carries them at the paths
    the binary names. ``error`` (``doing: cannot list ...``) when ``ldd`` cannot be run."""
    try:
        libraries = libraries_of(binary)
    except OSError as exc:
        raise error(f"{doing}: cannot list the libraries of {binary} (ldd: {exc})") from None
    return {os.path.realpath(path): path.lstrip("/") for path in libraries}


def find_busybox(explicit: str | None) -> tuple[str | None, str]:
    """The static busybox to build from, and why there is none when there isn't."""
    if explicit:
        if not os.path.isfile(explicit):
            return None, f"--dockernet-busybox {explicit}: no such file"
        if not is_static_elf(explicit):
            return None, f"--dockernet-busybox {explicit}: not a statically linked executable"
        return explicit, ""
    found = shutil.which("busybox")
    if found is None:
        return None, f"no busybox on PATH ({os.environ.get('PATH', '')})"
    if not is_static_elf(os.path.realpath(found)):
        return None, f"the busybox on PATH ({found}) is not statically linked"
    return found, ""


def _image_exists(engine: Engine, name: str) -> bool:
    try:
        engine.inspect_image(name)
        return True
    except ImageNotFound:
        return False


def image_on(engine: Client, name: str) -> bool:
    """Whether ``engine`` has image ``name`` (False for a reference it refuses)."""
    try:
        return _image_exists(as_engine(engine), name)
    except APIError:
        return False


def repository_tag(name: str) -> tuple[str, str | None]:
    """``(repository, tag)`` of an image reference as the engine's pull takes them (a digest,
    ``@sha256:...``, as the tag); a port in a registry's address is no tag."""
    if "@" in name:
        repository, digest = name.rsplit("@", 1)
        return repository, digest
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        return name, None
    return repository, tag


def ensure_image(engine: Client, name: str) -> None:
    """Make ``name`` present on the engine, pulling it if need be.

    Raises ValueError naming the image when it is neither there nor pullable.
    """
    engine = as_engine(engine)
    try:
        if _image_exists(engine, name):
            return
    except APIError as exc:  # e.g. 400 invalid reference format
        why = exc.explanation or exc
        raise ValueError(f"image={name!r} is not an image reference the engine takes: {why}") from None
    repository, tag = repository_tag(name)
    try:
        engine.pull(repository, tag=tag or "latest")
    except APIError as exc:
        raise ValueError(
            f"image {name!r} is not on the engine and could not be pulled: {exc.explanation or exc}"
        ) from None


def build_around_busybox(
    engine: Client,
    busybox: str,
    tag: str,
    dockerfile: bytes = DOCKERFILE,
    labels: dict[str, str] | None = None,
) -> None:
    """Build ``tag`` from ``dockerfile`` with the binary ``busybox`` in the context as
    ``busybox``, with ``labels`` besides the Dockerfile's. A failed build raises
    :class:`~.engine.errors.BuildError` with the engine's reason and the build's log."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(busybox, arcname="busybox")
    context.seek(0)
    options = {"fileobj": context, "custom_context": True, "tag": tag, "rm": True, "forcerm": True, "labels": labels}
    log: list[dict[str, Any]] = []
    built = False
    for event in as_engine(engine).build(**options):
        log.append(event)
        if "error" in event:
            raise BuildError(str(event["error"]), iter(log))
        built = built or bool(_BUILT.search(str(event.get("stream", ""))))
    if not built:  # the engine's answer ended without saying it built the image
        raise BuildError(str(log[-1]) if log else "Unknown", iter(log))


def _local_tag(requested: str, busybox: str) -> str:
    """The tag of the stand-in for ``requested`` built from ``busybox`` (same inputs, same tag)."""
    digest = hashlib.sha256(requested.encode() + b"\0" + DOCKERFILE + b"\0")
    with open(busybox, "rb") as f:
        digest.update(f.read())
    return f"{LOCAL_REPOSITORY}:{digest.hexdigest()[:12]}"


def resolve_probe_image(engine: Client, requested: str = DEFAULT_IMAGE, busybox: str | None = None) -> ProbeImage:
    """The image probes and default containers run: ``requested`` if present or pullable,
    else a local build from a static busybox.

    A stand-in built by an earlier run (its tag names the requested image and the binary) is
    used without trying the registry again: every pull attempt costs a lookup of the
    registry's name, and an engine without a registry would fail it on every run.
    """
    engine = as_engine(engine)
    if _image_exists(engine, requested):
        return ProbeImage(requested, requested=requested)
    binary, why_not = find_busybox(busybox)
    tag = _local_tag(requested, binary) if binary else None
    if tag and _image_exists(engine, tag):
        remove_stale_stand_ins(engine, requested, tag)
        return ProbeImage(tag, built_from=binary, requested=requested, reused=True)
    try:
        ensure_image(engine, requested)
        return ProbeImage(requested, requested=requested, pulled=True)
    except ValueError as exc:
        pull_error = str(exc)
    ways_out = (
        "Either make the image available (docker pull / docker load it, or name another one with "
        "--dockernet-image), or install a statically linked busybox (Debian: busybox-static) on PATH "
        "or point --dockernet-busybox at it."
    )
    if binary is None:
        raise ImageUnavailable(f"{pull_error}\nNo image could be built instead: {why_not}.\n{ways_out}")
    tag = cast(str, tag)  # made whenever binary is found
    try:
        build_around_busybox(engine, binary, tag, labels={STAND_IN_FOR: requested})
    except BuildError as exc:
        raise ImageUnavailable(
            f"{pull_error}\nBuilding one instead FROM scratch around {binary} failed too: {exc.msg}.\n{ways_out}"
        ) from None
    remove_stale_stand_ins(engine, requested, tag)
    return ProbeImage(tag, built_from=binary, requested=requested)


def remove_stale_stand_ins(engine: Engine, requested: str, current: str) -> list[str]:
    """Remove the stand-ins for ``requested`` built from other inputs than ``current``
    (by an earlier version of the plugin, around an earlier busybox), so that the engine
    keeps one probe image, not one per version. The tags removed."""

    def stands_in(labels: dict[str, str]) -> bool:
        # One built before this label was set stood in for the default image.
        return labels.get(STAND_IN_FOR, DEFAULT_IMAGE) == requested

    return remove_stale_builds(engine, "busybox", LOCAL_REPOSITORY, current, stands_in)


def remove_stale_builds(
    engine: Client,
    kind: str,
    repository: str,
    current: str,
    belongs: Callable[[dict[str, str]], bool] = lambda labels: True,
) -> list[str]:
    """Remove the images of ``kind`` (label ``pytest-dockernet.image``) tagged in ``repository``
    other than ``current`` (and for which ``belongs(labels)``): what earlier inputs or versions
    built, kept one per content otherwise. An image a container uses (a live run's, through its
    lease) is refused by the engine and stays. The tags removed."""
    engine = as_engine(engine)
    removed: list[str] = []
    try:
        images = engine.images(filters={"label": f"{KIND}={kind}"})
    except APIError:
        return removed
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t.startswith(repository + ":")]
        if current in tags or not belongs(image.get("Labels") or {}):
            continue
        for stale in tags:
            try:
                engine.remove_image(stale)
            except APIError:
                continue  # in use, or gone meanwhile
            removed.append(stale)
    return removed


def copy_image(src_client: Client, dst_client: Client, tag: str) -> bool:
    """Make image ``tag`` of ``src_client``'s engine present on ``dst_client``'s (docker save |
    docker load); each a docker-py client or an Engine.

    Returns False when the destination had it already, True when it was copied.
    """
    src, dst = as_engine(src_client), as_engine(dst_client)
    if _image_exists(dst, tag):
        return False
    if not _image_exists(src, tag):
        raise ValueError(f"tag={tag!r} is not an image of the source engine: build or pull it there first")
    dst.load_image(src.export_image(tag))  # streamed, not held in memory
    dst.inspect_image(tag)  # raises if the load did not produce it
    return True


def provide_image(src: Client, dst: Client, tag: str) -> bool:
    """Make ``tag`` present on engine ``dst``: there already, pulled, or copied from engine
    ``src``. Whether it had to be copied."""
    dst = as_engine(dst)
    if _image_exists(dst, tag):
        return False
    repository, pinned = repository_tag(tag)
    try:
        dst.pull(repository, tag=pinned or "latest")
        return False
    except APIError:
        return copy_image(src, dst, tag)
