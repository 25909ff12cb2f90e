"""The probe image: the configured one when the engine has it or can pull it, else one
built here ``FROM scratch`` around a static busybox binary (air-gapped CI, no registry);
and getting an image onto a further engine without a registry (save, then load)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import docker
import docker.errors
import docker.utils

from .engine import Client
from .errors import ImageUnavailable

DEFAULT_IMAGE = "busybox:stable"
LOCAL_REPOSITORY = "pytest-dockernet/busybox"
KIND = "pytest-dockernet.image"  # label of a probe image built here: "busybox"
STAND_IN_FOR = "pytest-dockernet.stand-in-for"  # label: the image it stands in for
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
        return None, "no busybox on PATH"
    if not is_static_elf(os.path.realpath(found)):
        return None, f"the busybox on PATH ({found}) is not statically linked"
    return found, ""


def _image_exists(client: Client, name: str) -> bool:
    try:
        getattr(client, "api", client).inspect_image(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_on(client: docker.DockerClient, name: str) -> bool:
    """Whether ``client``'s engine has image ``name`` (False for a reference it refuses)."""
    try:
        return _image_exists(client, name)
    except docker.errors.APIError:
        return False


def ensure_image(client: Client, name: str) -> None:
    """Make ``name`` present on the engine, pulling it if need be.

    Raises ValueError naming the image when it is neither there nor pullable.
    """
    try:
        if _image_exists(client, name):
            return
    except docker.errors.APIError as exc:  # e.g. 400 invalid reference format
        why = exc.explanation or exc
        raise ValueError(f"image={name!r} is not an image reference the engine takes: {why}") from None
    repository, tag = docker.utils.parse_repository_tag(name)
    try:
        getattr(client, "api", client).pull(repository, tag=tag or "latest")
    except docker.errors.APIError as exc:
        raise ValueError(
            f"image {name!r} is not on the engine and could not be pulled: {exc.explanation or exc}"
        ) from None


def build_around_busybox(
    client: docker.DockerClient,
    busybox: str,
    tag: str,
    dockerfile: bytes = DOCKERFILE,
    labels: dict[str, str] | None = None,
) -> None:
    """Build ``tag`` from ``dockerfile`` with the binary ``busybox`` in the context as
    ``busybox``, with ``labels`` besides the Dockerfile's."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(busybox, arcname="busybox")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, labels=labels)


def _local_tag(requested: str, busybox: str) -> str:
    """The tag of the stand-in for ``requested`` built from ``busybox`` (same inputs, same tag)."""
    digest = hashlib.sha256(requested.encode() + b"\0" + DOCKERFILE + b"\0")
    with open(busybox, "rb") as f:
        digest.update(f.read())
    return f"{LOCAL_REPOSITORY}:{digest.hexdigest()[:12]}"


def resolve_probe_image(
    client: docker.DockerClient, requested: str = DEFAULT_IMAGE, busybox: str | None = None
) -> ProbeImage:
    """The image probes and default containers run: ``requested`` if present or pullable,
    else a local build from a static busybox.

    A stand-in built by an earlier run (its tag names the requested image and the binary) is
    used without trying the registry again: every pull attempt costs a lookup of the
    registry's name, and an engine without a registry would fail it on every run.
    """
    if _image_exists(client, requested):
        return ProbeImage(requested, requested=requested)
    binary, why_not = find_busybox(busybox)
    tag = _local_tag(requested, binary) if binary else None
    if tag and _image_exists(client, tag):
        remove_stale_stand_ins(client, requested, tag)
        return ProbeImage(tag, built_from=binary, requested=requested, reused=True)
    try:
        ensure_image(client, requested)
        return ProbeImage(requested, requested=requested, pulled=True)
    except ValueError as exc:
        pull_error = str(exc)
    if binary is None:
        raise ImageUnavailable(
            f"{pull_error}\nNo image could be built instead: {why_not}.\n"
            "Either make the image available (docker pull / docker load it, or name another "
            "one with --dockernet-image), or install a statically linked busybox (Debian: "
            "busybox-static) and point --dockernet-busybox at it."
        )
    tag = cast(str, tag)  # made whenever binary is found
    build_around_busybox(client, binary, tag, labels={STAND_IN_FOR: requested})
    remove_stale_stand_ins(client, requested, tag)
    return ProbeImage(tag, built_from=binary, requested=requested)


def remove_stale_stand_ins(client: docker.DockerClient, requested: str, current: str) -> list[str]:
    """Remove the stand-ins for ``requested`` built from other inputs than ``current``
    (by an earlier version of the plugin, around an earlier busybox), so that the engine
    keeps one probe image, not one per version. The tags removed."""

    def stands_in(labels: dict[str, str]) -> bool:
        # One built before this label was set stood in for the default image.
        return labels.get(STAND_IN_FOR, DEFAULT_IMAGE) == requested

    return remove_stale_builds(client, "busybox", LOCAL_REPOSITORY, current, stands_in)


def remove_stale_builds(
    client: docker.DockerClient,
    kind: str,
    repository: str,
    current: str,
    belongs: Callable[[dict[str, str]], bool] = lambda labels: True,
) -> list[str]:
    """Remove the images of ``kind`` (label ``pytest-dockernet.image``) tagged in ``repository``
    other than ``current`` (and for which ``belongs(labels)``): what earlier inputs or versions
    built, kept one per content otherwise. An image a container uses (a live run's, through its
    lease) is refused by the engine and stays. The tags removed."""
    removed: list[str] = []
    try:
        images = client.api.images(filters={"label": f"{KIND}={kind}"})
    except docker.errors.APIError:
        return removed
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t.startswith(repository + ":")]
        if current in tags or not belongs(image.get("Labels") or {}):
            continue
        for stale in tags:
            try:
                client.api.remove_image(stale)
            except docker.errors.APIError:
                continue  # in use, or gone meanwhile
            removed.append(stale)
    return removed


def copy_image(src_client: docker.DockerClient, dst_client: docker.DockerClient, tag: str) -> bool:
    """Make image ``tag`` of ``src_client``'s engine present on ``dst_client``'s (docker save | docker load).

    Returns False when the destination had it already, True when it was copied.
    """
    if _image_exists(dst_client, tag):
        return False
    if not _image_exists(src_client, tag):
        raise ValueError(f"tag={tag!r} is not an image of the source engine: build or pull it there first")
    dst_client.api.load_image(src_client.api.get_image(tag))  # type: ignore[no-untyped-call]  # types-docker: unannotated; streamed, not held in memory
    dst_client.api.inspect_image(tag)  # type: ignore[no-untyped-call]  # types-docker: unannotated; raises if the load did not produce it
    return True


def provide_image(src_client: docker.DockerClient, dst_client: docker.DockerClient, tag: str) -> bool:
    """Make ``tag`` present on ``dst_client``'s engine: there already, pulled, or copied from
    ``src_client``'s. Whether it had to be copied."""
    if _image_exists(dst_client, tag):
        return False
    try:
        dst_client.images.pull(tag)
        return False
    except docker.errors.APIError:
        return copy_image(src_client, dst_client, tag)
