"""A service's ``build:`` as a :class:`BuildDef`: what ``dockernet.build()`` is given.

Each key of the Compose Specification's build definition is read, ignored with a reason
(listed in compose()'s warning: it cannot change the image a test runs, or what it sees),
or refused with the reason: the statuses are :mod:`.spec_keys`' (section ``build``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from .spec_keys import check_keys
from .values import items, mapping, scalar, strings, text

NETWORKS = ("default", "host", "none")


@dataclass
class BuildDef:
    context: Path
    dockerfile: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    dockerfile_inline: str | None = None
    network: str | None = None
    cache_from: list[str] = field(default_factory=list)

    def key(self) -> tuple[object, ...]:
        """What makes two services' builds the same build (a YAML anchor's)."""
        return (
            self.context,
            self.dockerfile,
            self.dockerfile_inline,
            self.target,
            self.network,
            tuple(sorted(self.args.items())),
            tuple(sorted(self.labels.items())),
            tuple(self.cache_from),
        )

    def options(self) -> dict[str, Any]:
        """The keywords of ``dockernet.build()`` besides the context."""
        return {
            "dockerfile": self.dockerfile,
            "buildargs": self.args or None,
            "target": self.target,
            "labels": self.labels or None,
            "dockerfile_inline": self.dockerfile_inline,
            "network": self.network,
            "cache_from": self.cache_from or None,
        }


def build_def(value: object, where: str, root: Path, ignored: list[str]) -> BuildDef | None:
    """``build:`` of a service (``where`` is ``FILE: services.NAME.build``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"context": value}
    spec = mapping(value, where)
    path = where.split(": ", 1)[-1]
    check_keys("build", spec, where, "build", ignored, path)
    given = text(spec.get("context"), f"{where}.context") or "."
    if "://" in given or given.startswith("git@"):
        raise ComposeError(
            f"{where}.context: {given!r} is a remote context, which the plugin does not fetch: give a directory"
        )
    context = (root / given).resolve()
    if not context.is_dir():
        raise ComposeError(f"{where}.context: {context} is not a directory")
    build = BuildDef(context, text(spec.get("dockerfile"), f"{where}.dockerfile"))
    build.dockerfile_inline = text(spec.get("dockerfile_inline"), f"{where}.dockerfile_inline")
    if build.dockerfile and build.dockerfile_inline:
        raise ComposeError(f"{where}: dockerfile and dockerfile_inline exclude each other; give one")
    build.args = _pairs(spec.get("args"), f"{where}.args")
    build.labels = _pairs(spec.get("labels"), f"{where}.labels")
    build.target = text(spec.get("target"), f"{where}.target")
    network = text(spec.get("network"), f"{where}.network")
    if network is not None and network not in NETWORKS:
        raise ComposeError(
            f"{where}.network: {network!r} cannot be used by a build: the image is built before the file's "
            f"networks exist, and a build's RUN steps join none of them; use one of {', '.join(NETWORKS)}"
        )
    build.network = None if network == "default" else network
    build.cache_from = strings(spec.get("cache_from"), f"{where}.cache_from", "an image reference")
    return build


def _pairs(value: object, where: str) -> dict[str, str]:
    """A mapping, or a list of ``KEY=VALUE`` (``KEY`` alone: an empty value), as text."""
    if isinstance(value, list):
        pairs = {}
        for i, entry in enumerate(items(value, where)):
            if not isinstance(entry, str) or not entry or entry.startswith("="):
                raise ComposeError(f"{where}[{i}] must be 'KEY=VALUE' or 'KEY', got {entry!r}")
            key, _, val = entry.partition("=")
            pairs[key] = val
        return pairs
    if value is not None and not isinstance(value, Mapping):
        raise ComposeError(f"{where} must be a mapping or a list of 'KEY=VALUE', got {value!r}")
    return {str(k): "" if v is None else scalar(v, f"{where}.{k}") for k, v in mapping(value, where).items()}
