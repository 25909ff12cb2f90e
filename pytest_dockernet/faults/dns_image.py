"""The DNS responders' image (:mod:`.dns`): a Python to run :mod:`.dns_responder` in.

A separate image from the fault helpers', made only when a test first asks for a DNS fault,
so that partitions and degradations do not carry (nor build) a Python. The first that works:

1. ``--dockernet-fault-image``, when given and it has ``python3``;
2. the probe image plus the Python running these tests, copied from this machine at the
   same absolute paths: the interpreter, its libraries (``ldd``), the standard library
   files the responder imports (asked of a ``-S -I`` run of it) and ``encodings``; built
   through the API, so a remote engine gets it too (a CI job's ``docker:dind``), when the
   engine runs this machine's programs (Linux, one architecture);
3. the public-base fault image (:data:`.image.PUBLIC_DOCKERFILE` adds ``python3``).

Else DriverUnavailable naming why each did not.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import exec_in, remove_container
from ..engine.errors import APIError
from ..errors import DockernetError, DriverUnavailable
from ..image import image_on, library_files, remove_stale_builds
from .image import OPTION, build_image, public_image

if TYPE_CHECKING:
    from ..engine.port import Engine

DNS_REPOSITORY = "pytest-dockernet/dns"
DNS_BASE = "pytest-dockernet.dns-base"  # label: the probe image it was built on
# Passed to python -c: the responder is data of the package, never imported here.
SOURCE = Path(__file__).with_name("dns_responder.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ResponderImage:
    tag: str
    python: str  # the interpreter's path in the image


def responder_command(image: ResponderImage, *arguments: str) -> list[str]:
    return [image.python, "-S", "-I", "-c", SOURCE, *arguments]


def responder_image(
    engine: Engine, probe_image: str, given: str | None, check: tuple[str, dict[str, str]], native: bool
) -> ResponderImage:
    """The responders' image on ``engine`` in the module's order; ``native``: the engine runs
    this machine's programs (:attr:`.EngineInfo.runs_this_machines_programs`)."""
    tried: list[str] = []
    if given:
        image = ResponderImage(given, "python3")
        try:
            _check_python(engine, image, f"{OPTION} {given}", check)
            return image
        except DriverUnavailable as exc:
            tried.append(str(exc))
    if native:
        try:
            return python_image(engine, probe_image)
        except DriverUnavailable as exc:
            tried.append(str(exc))
    else:
        tried.append(f"the Python running these tests ({sys.platform}, {platform.machine()}) cannot run on the engine")
    try:
        public = public_image(engine, check)
        image = ResponderImage(public.tag, "python3")
        _check_python(engine, image, f"the fault helper image {public.tag}", check)
        return image
    except DriverUnavailable as exc:
        tried.append(str(exc).splitlines()[0])
    raise DriverUnavailable(
        "DNS faults run a small Python responder in the target's network namespace, and no image for it "
        f"could be had: {'; '.join(tried)}. Give {OPTION} an image with python3 (and iptables, ip6tables, tc)"
    )


def _check_python(engine: Engine, image: ResponderImage, named: str, check: tuple[str, dict[str, str]]) -> None:
    name, labels = check
    try:
        created = engine.create_container(
            image.tag,
            command=[image.python, "-c", "import time; time.sleep(60)"],
            name=name,
            labels=labels,
            host_config=engine.create_host_config(network_mode="none"),
            detach=True,
        )
    except APIError as exc:
        raise DockernetError(f"{named}: the engine cannot make a container of it: {exc.explanation or exc}") from None
    try:
        engine.start(created["Id"])
        code, output = exec_in(engine, created["Id"], responder_command(image, "modules"))
    except APIError as exc:
        code, output = 1, str(exc.explanation or exc)
    finally:
        remove_container(engine, created["Id"])
    if code != 0:
        raise DriverUnavailable(
            f"DNS faults run a small Python responder in the target's network namespace: {named} has no "
            f"working python3 ({output.strip()[-200:]})"
        )


def python_files() -> dict[str, str]:
    """``{path on this machine: path in the image}``: the Python running the tests, its
    libraries and the standard library files the responder needs."""
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    try:
        listed = subprocess.run(
            [python, "-S", "-I", "-c", SOURCE, "modules"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise DriverUnavailable(f"DNS faults: cannot ask {python} which modules the responder needs: {exc}") from None
    modules = [path for path in listed if os.path.isfile(path)]
    package = os.path.join("encodings", "__init__.py")
    encodings = next((os.path.dirname(p) for p in modules if p.endswith(package)), None)
    if encodings is not None:
        # Whatever codec the container's locale asks for at start-up.
        modules += [os.path.join(encodings, n) for n in os.listdir(encodings) if n.endswith(".py")]
    files: dict[str, str] = {}
    for binary in [python, *(p for p in modules if p.endswith(".so"))]:
        files[binary] = binary.lstrip("/")
        files.update(library_files(binary, DriverUnavailable, "DNS faults"))
    for module in modules:
        files.setdefault(os.path.realpath(module), module.lstrip("/"))
    return files


def python_image(engine: Engine, probe_image: str) -> ResponderImage:
    """The probe image plus this machine's Python, built once per content (tag by digest)."""
    files = python_files()
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    dockerfile = (
        f"FROM {probe_image}\nCOPY root/ /\nLABEL pytest-dockernet.image=dns {DNS_BASE}={probe_image}\n"
    ).encode()
    digest = hashlib.sha256(dockerfile)
    for source in sorted(files):
        digest.update(f"{source} {files[source]} {os.stat(source).st_size}".encode())
    tag = f"{DNS_REPOSITORY}:{digest.hexdigest()[:12]}"
    image = ResponderImage(tag, python)
    if image_on(engine, tag):
        return image
    build_image(engine, dockerfile, files, tag)
    remove_stale_builds(
        engine, "dns", DNS_REPOSITORY, tag, lambda labels: labels.get(DNS_BASE, probe_image) == probe_image
    )
    return image
