"""Files put into a container before it starts: ``container(files=...)``, and what
``compose()`` makes of a service's secrets and configs.

They go in through the engine's archive API (one tar, between create and start), not as
bind mounts: the owner and mode are the ones asked for (a bind mount keeps the host file's,
and a test process rarely runs as the container's user), and an engine on another machine
gets them too (a bind mount names a path on the engine's machine, where the test's files
are not). Read-only by their mode (0444 unless given), as Compose's secrets are; a root
process in the container could still write to one, which a read-only bind mount would
refuse. A container with files never comes from the warm pool, nor goes back to it: the
pool takes only ``container()`` calls that ask for nothing of their own.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODE = 0o444
FILE_KEYS = ("content", "mode", "uid", "gid")
_EXAMPLE = "{'/run/secrets/token': 's3cret', '/etc/app.conf': {'content': Path('app.conf'), 'mode': 0o440}}"


@dataclass(frozen=True)
class ContainerFile:
    """One file's content, mode and owner (numeric: no name is looked up in the image)."""

    content: bytes = field(repr=False)  # may be a secret: kept out of reprs and reports
    mode: int = DEFAULT_MODE
    uid: int = 0
    gid: int = 0


def check_files(
    value: object, mount_points: Iterable[str] = (), host_config: Mapping[str, object] | None = None
) -> dict[str, ContainerFile]:
    """``files=`` as given, by normalised absolute path: each value is the content (a str,
    bytes, or a path of the test process's whose file is read now), a mapping with
    ``content`` and optionally ``mode``, ``uid``, ``gid``, or a :class:`ContainerFile`.
    ``mount_points`` (the container's volumes) and ``host_config`` (its docker options'
    read-only root file system and tmpfs mounts) are where a file could not go."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"files must be a dict of paths in the container to contents, e.g. {_EXAMPLE}; got {value!r}")
    files: dict[str, ContainerFile] = {}
    for path, spec in value.items():
        where = f"files[{path!r}]"
        checked = _path(path, where)
        if checked in files:
            raise ValueError(f"{where}: the path is given twice (as {checked!r}); give each file once")
        files[checked] = spec if isinstance(spec, ContainerFile) else _file(spec, where)
    for path in files:
        for other in files:
            if other.startswith(path + "/"):
                raise ValueError(f"files[{other!r}]: {path!r} is a file of files= too; a file cannot hold another")
    _check_room(files, mount_points, host_config or {})
    return files


def _path(path: object, where: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"{where}: the path in the container must be absolute, such as '/run/secrets/token'")
    if ".." in path.split("/") or "\0" in path:
        raise ValueError(f"{where}: the path may not go up ('..'): give the file's own absolute path")
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal == "/":
        raise ValueError(f"{where}: '/' is a directory: give a file's path, such as '/run/secrets/token'")
    return normal


def _file(spec: object, where: str) -> ContainerFile:
    if not isinstance(spec, Mapping):
        return ContainerFile(_content(spec, where))
    unknown = sorted(str(k) for k in set(spec) - set(FILE_KEYS))
    if unknown or "content" not in spec:
        why = f"unknown keys {unknown}" if unknown else "no 'content'"
        raise ValueError(f"{where}: {why}; a file is a dict with {', '.join(FILE_KEYS)} (content required)")
    mode = spec.get("mode", DEFAULT_MODE)
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise ValueError(f"{where}['mode']: {mode!r} is not a file mode such as 0o444 (an int, written in octal)")
    ids = []
    for key in ("uid", "gid"):
        number = spec.get(key, 0)
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**31:
            raise ValueError(f"{where}[{key!r}]: {number!r} is not a numeric {key} such as 0 or 1000")
        ids.append(number)
    return ContainerFile(_content(spec["content"], f"{where}['content']"), mode, ids[0], ids[1])


def _content(value: object, where: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, os.PathLike):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{where}: {str(path)!r}: no such file ({path.resolve()})")
        return path.read_bytes()
    raise TypeError(f"{where}: the content must be a str, bytes or a path of a file here (a Path), got {value!r}")


def _check_room(
    files: dict[str, ContainerFile], mount_points: Iterable[str], host_config: Mapping[str, object]
) -> None:
    """A file goes into the container's own file system before it starts: what is mounted
    over its path (a volume, a tmpfs) would hide it or take it, and a read-only root file
    system refuses it."""
    if host_config.get("read_only") and files:
        raise ValueError(
            "files cannot go into a container whose root file system is read-only (read_only): drop read_only, "
            "or mount the files as volumes"
        )
    tmpfs = host_config.get("tmpfs") or {}
    mounts = [(m, "volumes") for m in mount_points]
    if isinstance(tmpfs, Mapping):
        mounts += [(str(m), "a tmpfs") for m in tmpfs]
    elif isinstance(tmpfs, (list, tuple)):
        mounts += [(str(m).partition(":")[0], "a tmpfs") for m in tmpfs]
    for path in files:
        for mount, what in mounts:
            mount = posixpath.normpath(mount)
            if path == mount or path.startswith(mount.rstrip("/") + "/"):
                raise ValueError(
                    f"files[{path!r}]: {mount} is mounted over it ({what}): the file would be hidden (or go into the "
                    "volume); put it at a path outside the mount"
                )


def archive(files: Mapping[str, ContainerFile]) -> bytes:
    """A tar of ``files`` for the engine's archive API, extracted at ``/``: directories
    missing on the way are made by the engine (root's, mode 0755), existing ones are left
    as they are (the tar holds no entry for them)."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, file in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(file.content), file.mode, file.uid, file.gid, now
            tar.addfile(info, io.BytesIO(file.content))
    return buffer.getvalue()
