"""Images built from a test's own context directory: once per run, by content.

The key of a build is a digest of what docker would send (the context's files as
``.dockerignore`` leaves them, with their modes and symlink targets, not their times),
the Dockerfile's path, the build arguments and the tag. The image carries the key and the
run's id as labels, so that whoever asks for the same key in the same run (another test,
another xdist worker) finds it instead of building again; a lock file per key keeps two
processes from building it at the same moment.

An image built without a tag is the run's: named ``pytest-dockernet/build:<key>-<run id>``,
labelled with the identity of the process that ends the run (the xdist controller, or the
only process), removed by that process at the end and, if it was killed, by a later run's
prune (:mod:`.reaper`). An image built with a tag is the user's and stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .build_runs import (
    HOW_TO_GET_BUILDKIT,
    BuildRequest,
    check_frontend,
    image_id_of,
    needs_of,
    refuse_without_buildkit,
    run_buildkit,
    run_legacy,
)
from .buildkit import Client, Progress, find_client
from .engine.errors import APIError, ImageNotFound, NotFound
from .engine.gate import open_lock
from .errors import DockernetError
from .labels import PREFIX, ROLE, SESSION

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no flock; two workers may then both build (same result)
    fcntl = None

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine

REPOSITORY = f"{PREFIX}/build"  # the repository of images named by the plugin
BUILD = f"{PREFIX}.build"  # label: the build's content key
BUILD_RUN = f"{PREFIX}.build-run"  # label: the run it was built for
BUILD_ROLE = "build"  # role of an image the run removes at its end (built without a tag)
TAGGED_ROLE = "tagged-build"  # role of an image built with a tag (the user's: never removed)
BUILDER = f"{PREFIX}.builder"  # label: which builder made it (buildkit or legacy)
BUILD_NETWORKS = ("default", "host", "none")
INLINE_NAME = ".dockerfile.inline"  # what an inline Dockerfile is called in the context's listing

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# As docker's reference grammar has it (github.com/distribution/reference), without a digest.
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)


def check_build(
    path: object,
    tag: object,
    dockerfile: object,
    buildargs: object,
    *,
    target: object = None,
    labels: object = None,
    dockerfile_inline: object = None,
    network: object = None,
    cache_from: object = None,
) -> BuildRequest:
    """The arguments of ``build()``, checked before anything is read or built: each error
    names the argument and how to fix it."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"path must be a directory's path as a str or pathlib.Path, got {path!r}")
    root = os.path.abspath(path)
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.exists(root) else "is not a directory"
        raise ValueError(
            f"path={path!r} {what}: give the build context, the directory holding the Dockerfile "
            "and the files it copies"
        )
    if dockerfile_inline is not None:
        if dockerfile is not None:
            raise ValueError("dockerfile= and dockerfile_inline= exclude each other: give the file's path or its text")
        if not isinstance(dockerfile_inline, str) or not dockerfile_inline.strip():
            raise TypeError(f"dockerfile_inline must be a Dockerfile's text as a str, got {dockerfile_inline!r}")
        checked = INLINE_NAME
    else:
        checked = _check_dockerfile(root, dockerfile)
    return BuildRequest(
        root,
        checked,
        _check_buildargs(buildargs),
        _check_tag(tag),
        _check_name(target, "target", "a stage of the Dockerfile ('FROM ... AS NAME')"),
        _check_labels(labels),
        dockerfile_inline,
        _check_network(network),
        _check_cache_from(cache_from),
    )


def _check_name(value: object, argument: str, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise TypeError(f"{argument} must be the name of {what} as a str, got {value!r}")
    return value


def _check_labels(labels: object) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in labels.items()
    ):
        raise TypeError(f"labels must be a dict of str to str such as {{'team': 'api'}}, got {labels!r}")
    own = sorted(k for k in labels if k == PREFIX or k.startswith(PREFIX + "."))
    if own:
        raise ValueError(f"labels: {own} are pytest-dockernet's own labels (prefix {PREFIX!r}): choose other keys")
    return dict(labels)


def _check_network(network: object) -> str | None:
    if network is None or network == "default":
        return None
    if network not in BUILD_NETWORKS:
        raise ValueError(
            f"network={network!r}: a build's RUN steps use 'default', 'host' or 'none'; a network of the "
            "test's cannot be used (the image is built before, and apart from, the topology's networks)"
        )
    return str(network)


def _check_cache_from(cache_from: object) -> tuple[str, ...]:
    if cache_from is None:
        return ()
    if isinstance(cache_from, str) or not isinstance(cache_from, (list, tuple)):
        raise TypeError(f"cache_from must be a list of image references such as ['myapp:cache'], got {cache_from!r}")
    for ref in cache_from:
        if not isinstance(ref, str) or not ref:
            raise TypeError(f"cache_from: {ref!r} is not an image reference as a str")
    return tuple(cache_from)


def _check_dockerfile(root: str, dockerfile: object) -> str:
    if dockerfile is None:
        if not os.path.isfile(os.path.join(root, "Dockerfile")):
            raise ValueError(
                f"path={root!r} has no Dockerfile: add one, or name yours with dockerfile= (its path in the context)"
            )
        return "Dockerfile"
    if isinstance(dockerfile, os.PathLike):
        dockerfile = os.fspath(dockerfile)
    if not isinstance(dockerfile, str) or not dockerfile:
        raise TypeError(f"dockerfile must be a file's path in the context as a str, got {dockerfile!r}")
    full = os.path.realpath(os.path.join(root, dockerfile))
    inside = os.path.commonpath([full, os.path.realpath(root)]) == os.path.realpath(root)
    if not inside or not os.path.isfile(full):
        where = "is outside the context" if not inside else "is not a file in the context"
        raise ValueError(
            f"dockerfile={dockerfile!r} {where} {root!r}: give the path of a file inside path=, "
            "relative to it (such as 'docker/Dockerfile.test'), or move the file into the context"
        )
    return os.path.relpath(full, os.path.realpath(root))


def _check_buildargs(buildargs: object) -> dict[str, str]:
    if buildargs is None:
        return {}
    if not isinstance(buildargs, Mapping):
        raise TypeError(f"buildargs must be a dict of str to str such as {{'VERSION': '1.2'}}, got {buildargs!r}")
    for key, value in buildargs.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"buildargs: the name {key!r} is not a non-empty str (names are the Dockerfile's ARGs)")
        if not isinstance(value, str):
            raise TypeError(
                f"buildargs: {key!r} is {value!r} ({type(value).__name__}); values are str: pass {str(value)!r}"
            )
    return dict(buildargs)


def _check_tag(tag: object) -> str | None:
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise TypeError(f"tag must be an image reference as a str such as 'myapp:test', got {tag!r}")
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    if not _REFERENCE.fullmatch(tag) or len(name) > 255 or re.fullmatch(r"[a-f0-9]{64}", name):
        raise ValueError(
            f"tag={tag!r} is not a valid image reference: a name of lowercase letters, digits and "
            "separators ('.', '_', '-', '/'; a registry host may lead), then optionally ':' and a tag "
            "of letters, digits, '_', '.' and '-', such as 'myapp:test' or 'registry.local:5000/team/app:1.2'"
        )
    return tag


def content_key(engine: Engine, request: BuildRequest) -> str:
    """The build's key: a sha256 over the context's files as ``engine`` sends them (paths,
    kinds, modes, contents or link targets; not times or owners), the Dockerfile's path (or
    an inline one's text), the build arguments, the target, the labels, the network and the
    tag (not ``cache_from``: a cache changes how fast, not what)."""
    digest = hashlib.sha256()
    header: dict[str, object] = {
        "v": 2,
        "dockerfile": request.dockerfile,
        "buildargs": sorted(request.buildargs.items()),
    }
    header.update(target=request.target, labels=sorted(request.labels.items()), network=request.network)
    if request.inline is not None:
        header["inline"] = hashlib.sha256(request.inline.encode()).hexdigest()
    digest.update(json.dumps({**header, "tag": request.tag}).encode() + b"\n")
    for rel in engine.build_context(request.root, request.dockerfile):
        full = os.path.join(request.root, rel)
        try:
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                kind, body = "l", os.readlink(full).encode()
            elif stat.S_ISDIR(info.st_mode):
                kind, body = "d", b""
            elif stat.S_ISREG(info.st_mode):
                kind, body = "f", None
            else:
                continue  # a socket or fifo: a build sends no content for it
            entry = json.dumps([kind, stat.S_IMODE(info.st_mode), rel, info.st_size if body is None else len(body)])
            digest.update(entry.encode() + b"\n")
            if body is None:
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
            else:
                digest.update(body)
        except OSError as exc:
            raise ValueError(
                f"path={request.root!r}: cannot read {rel!r} of the build context ({exc.strerror}): "
                "make it readable, or leave it out with .dockerignore"
            ) from None
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(engine: Engine, key: str) -> Iterator[None]:
    """Held while one process of this machine looks for, or builds, ``key`` on ``engine``:
    another that asks for the same key waits, then finds the image.

    The lock file goes when it is released, so that /tmp does not keep one per content ever
    built: a waiter that then holds a file no longer at its path opens the path anew.
    """
    if fcntl is None:
        yield
        return
    digest = hashlib.sha1(f"{engine.base_url}\0{key}".encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"pytest-dockernet-build-{digest}.lock")
    while True:
        fd = open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(path)
                same = (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while held: a waiter finds its file gone and opens anew
        os.close(fd)


def _labels_of(engine: Engine, ref: str) -> dict[str, str] | None:
    """The labels of image ``ref`` (None when there is no such image)."""
    try:
        labels: dict[str, str] = engine.inspect_image(ref)["Config"].get("Labels") or {}
    except ImageNotFound:
        return None
    return labels


def _drop_superseded(engine: Engine, image_id: str | None, now: str) -> None:
    """An earlier build of a tag whose tag moved to ``now``: gone unless something still
    holds it (another tag, a container, a child image)."""
    if image_id is None or image_id == now:
        return
    try:
        image = engine.inspect_image(image_id)
        if image.get("RepoTags") or (image["Config"].get("Labels") or {}).get(ROLE) != TAGGED_ROLE:
            return
        engine.remove_image(image_id)
    except APIError:
        pass  # in use, or gone: left as docker leaves any image whose tag moved on


def is_run_build(ref: str) -> bool:
    """Whether ``ref`` names an image the plugin named (built without a tag)."""
    return ref.startswith(REPOSITORY + ":")


def built_images(engine: Engine, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The engine's summaries of the images the plugin named (built without a tag) that
    also carry ``labels``."""
    wanted = [f"{ROLE}={BUILD_ROLE}", *(f"{k}={v}" for k, v in (labels or {}).items())]
    return engine.images(filters={"label": wanted})


def remove_built_image(engine: Engine, image: Mapping[str, Any]) -> list[str]:
    """Remove an image of :func:`built_images`; the references removed.

    Only tags of the plugin's own repository go: an image someone also tagged otherwise
    keeps that tag. One a container uses stays (a later prune takes it).
    """
    removed = []
    # Untagged, it is a run's build whose tag a later build of the same content took (or one
    # cut short): labelled as the plugin's, so removed by id, else every prune would claim it.
    tags = [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]  # (20.10 lists that one)
    refs = [ref for ref in tags if is_run_build(ref)] or ([] if tags else [image["Id"]])
    for ref in refs:
        try:
            engine.remove_image(ref)
        except NotFound:
            continue
        except APIError as exc:
            if exc.status_code == 409:  # conflict: a container uses it
                continue
            raise
        removed.append(ref)
    return removed


def remove_builds(engine: Engine, run_id: str) -> list[str]:
    """At the end of run ``run_id``: remove the images it named; the references removed."""
    return [ref for image in built_images(engine, {SESSION: run_id}) for ref in remove_built_image(engine, image)]


class Builds:
    """What ``Topology.build()`` does: the checks, the key, the lock, the builder, the build."""

    def __init__(self, context: Context):
        self.context = context

    def build(self, path: object, *, tag: str | None, **options: Any) -> str:
        """See :meth:`.Topology.build`."""
        request = check_build(path, tag, options.pop("dockerfile", None), options.pop("buildargs", None), **options)
        context = self.context
        engine = context.engine  # engine 0
        # Labels of the process that ends the run: the xdist controller, else this one.
        owner = dict(context.facts.owner or context.identity.labels())
        run_id = owner[SESSION]
        with context.timings.measure("image"):
            key = content_key(engine, request)
            ref = request.tag or f"{REPOSITORY}:{key[:16]}-{run_id}"
            with build_lock(engine, key):
                found = _labels_of(engine, ref)
                if found is None or found.get(BUILD) != key or found.get(BUILD_RUN) != run_id:
                    if request.tag is None:
                        labels = {**owner, ROLE: BUILD_ROLE}
                    else:
                        labels = {ROLE: TAGGED_ROLE}  # a role of its own, not its base image's
                    previous = None if request.tag is None else image_id_of(engine, ref)
                    image_id = self._run(request, ref, {**labels, BUILD: key, BUILD_RUN: run_id})
                    context.timings.count("image builds")
                    _drop_superseded(engine, previous, image_id)
        context.facts.builds[key] = ref
        return ref

    def _run(self, request: BuildRequest, ref: str, labels: dict[str, str]) -> str:
        """Build with BuildKit where the run has it (see :func:`builder`), else with the
        legacy builder; a Dockerfile that needs BuildKit then fails naming what needs it."""
        context = self.context
        client, why = builder(context)
        progress = Progress(os.path.basename(request.root) or request.root, context.facts.build_progress)
        if client is None:
            needs = needs_of(request)
            if needs:
                raise refuse_without_buildkit(request, needs, why)
            image_id = run_legacy(context.engine, request, ref, {**labels, BUILDER: "legacy"}, progress)
            context.timings.count("legacy builds")
            return image_id
        check_frontend(context.engine, request)
        image_id = run_buildkit(client, request, ref, {**labels, BUILDER: "buildkit"}, progress)
        context.timings.count("BuildKit builds")
        return image_id


def builder(context: Context) -> tuple[Client | None, str]:
    """The run's BuildKit client for engine 0 (found once per run), or None and why not;
    ``--dockernet-builder buildkit`` without one is an error."""
    facts = context.facts
    if facts.builder == "legacy":
        return None, "--dockernet-builder is 'legacy'"
    url = context.engine.base_url
    with context.lock:
        if url not in facts.buildkit:
            facts.buildkit[url] = find_client(url)
    found = facts.buildkit[url]
    if found.client is None and facts.builder == "buildkit":
        raise DockernetError(f"--dockernet-builder is 'buildkit', but {found.why_not()}: {HOW_TO_GET_BUILDKIT}")
    return found.client, found.why_not()
