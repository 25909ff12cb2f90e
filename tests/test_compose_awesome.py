"""compose() on docker's awesome-compose samples (tests/compose/awesome/: the Compose files as
they are upstream, stand-in images and build contexts around them; see its README.md).

Every file loads; compose() refuses the two WasmEdge ones naming what the engine lacks. Then
the samples that keep to the test's own topology (34 of 39; about 70 s on an idle machine)
are brought up, and what they do is checked against Compose's semantics read here from the
YAML, independently of the plugin: two services that share a network reach and resolve each
other by name (and by their container_name and hostname), two that share none do not; a
start gated on a dependency's health follows its first passing check; a build with a target
runs that stage.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import yaml
from test_compose import assert_nothing_made

from pytest_dockernet import ComposeError
from pytest_dockernet.compose.file import load

HERE = Path(__file__).parent / "compose" / "awesome"
STAND_IN = "dockernet-awesome/stand-in:latest"  # what the stand-in Dockerfiles' FROM names
STAND_IN_LABEL = "dockernet-awesome.stand-in"  # the stand-in image's: its content's digest
SAMPLES = sorted(p.parent.name for p in HERE.glob("*/*.y*ml") if p.stem in ("compose", "docker-compose"))
WASMEDGE = {"wasmedge-kafka-mysql": "etl", "wasmedge-mysql-nginx": "backend"}

# What each sample waits for, while another part of issue 23 is under way: its tests are
# expected to fail until then (strict: a pass says the wait is over, so the entry goes).
# Every wait is over: build.target (H5), secrets (H1), sysctls, platform and runtime (H2).
WAITS: dict[str, list[str]] = {}

# Samples not brought up, and why: each would reach outside the test's own topology.
NOT_BROUGHT_UP = {
    "minecraft": "binds ~/minecraft_data: a directory of the machine's user",
    "plex": "network_mode: host (its stand-in would listen on the machine's ports) and a media path of the machine",
    "wireguard": "binds /usr/share/appdata, /usr/src and /lib/modules of the machine, and loads kernel modules",
    **dict.fromkeys(WASMEDGE, "refused: the engine has no WasmEdge runtime"),
}
# Samples brought up in part: only these services (and what they depend on).
IN_PART = {"pihole-cloudflared-DoH": ["cloudflared"]}  # pihole binds /etc/pihole of the machine
BROUGHT_UP = [s for s in SAMPLES if s not in NOT_BROUGHT_UP]  # 34: about 70 s on an idle machine


def compose_file(sample: str) -> Path:
    return next(p for p in sorted((HERE / sample).glob("*.y*ml")) if p.stem in ("compose", "docker-compose"))


def params(samples: list[str]) -> list[Any]:
    """The samples as parameters, each expected to fail while what it waits for is being built."""
    return [
        pytest.param(s, marks=pytest.mark.xfail(strict=True, reason="waits for " + ", ".join(WAITS[s])))
        if s in WAITS
        else s
        for s in samples
    ]


# -- the files -----------------------------------------------------------------------


def test_the_corpus_is_upstreams_files_as_they_are():
    """39 Compose files (and the .env files beside them), byte for byte as upstream has them
    at the commit UPSTREAM.sha256 names: stand-ins go around them, never into them."""
    lines = [line.split() for line in (HERE / "UPSTREAM.sha256").read_text().splitlines() if not line.startswith("#")]
    assert len(SAMPLES) == 39
    assert {path for _, path in lines} >= {str(compose_file(s).relative_to(HERE)) for s in SAMPLES}
    for digest, path in lines:
        assert hashlib.sha256((HERE / path).read_bytes()).hexdigest() == digest, f"{path} differs from upstream's"


@pytest.mark.parametrize("sample", params([s for s in SAMPLES if s not in WASMEDGE]))
def test_every_file_loads(sample):
    model = load(compose_file(sample))

    intent = Intent.read(sample)
    assert list(model.services) == list(intent.services)
    for name, service in intent.services.items():
        if service.network_mode is None:
            assert sorted(model.services[name].networks or ["default"]) == sorted(service.networks), name
        else:
            assert model.services[name].network_mode == service.network_mode


@pytest.mark.parametrize("sample", params(list(WASMEDGE)))
def test_the_wasmedge_files_are_refused_naming_what_the_engine_lacks(dockernet, sample):
    service = WASMEDGE[sample]
    assert load(compose_file(sample)).services[service].platform == "wasi/wasm"  # the file is fine: the engine lacks it
    with pytest.raises(ComposeError) as refused:
        dockernet.compose(compose_file(sample))
    message = str(refused.value)
    assert f"services.{service}" in message
    assert "wasi/wasm" in message or "io.containerd.wasmedge.v1" in message, message
    assert "engine" in message, message
    assert "did you mean" not in message and "not supported by" not in message, message
    assert_nothing_made(dockernet)


# -- what the files say, read here -----------------------------------------------------


@dataclass
class Service:
    name: str
    networks: dict[str, list[str]]  # network: its aliases there
    network_mode: str | None
    names: list[str]  # what it resolves by besides its name: container_name, hostname
    image: str | None
    build: dict[str, Any] | None
    depends_on: dict[str, str]  # service: condition
    secrets: list[str]
    ports: list[int]  # its TCP ports inside the container (ports: and expose:)
    published: list[int]
    binds: list[str] = field(default_factory=list)  # relative bind sources

    def shares(self, other: Service) -> set[str]:
        return set(self.networks) & set(other.networks)


@dataclass
class Intent:
    """A file's services as Compose reads them: YAML with every scalar a string, so that
    ``8000:8000`` stays text (YAML 1.1 would read some such values as numbers)."""

    services: dict[str, Service]
    secrets: dict[str, str]  # name: file

    @classmethod
    def read(cls, sample: str) -> Intent:
        document = yaml.load(compose_file(sample).read_text(), Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader makes no objects
        services = {name: _service(name, spec) for name, spec in document["services"].items()}
        secrets = {name: spec["file"] for name, spec in (document.get("secrets") or {}).items()}
        return cls(services, secrets)

    def needed(self, wanted: list[str] | None) -> list[str]:
        if wanted is None:
            return list(self.services)
        todo, seen = list(wanted), set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.services[name].depends_on)
        return [s for s in self.services if s in seen]


def _service(name: str, spec: dict[str, Any]) -> Service:
    networks = spec.get("networks")
    mode = spec.get("network_mode")
    if isinstance(networks, list):
        networks = {n: [] for n in networks}
    elif isinstance(networks, dict):
        networks = {n: list((v or {}).get("aliases", [])) if isinstance(v, dict) else [] for n, v in networks.items()}
    elif mode is None:
        networks = {"default": []}
    depends = spec.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {d: "service_started" for d in depends}
    else:
        depends = {d: (v or {}).get("condition", "service_started") for d, v in depends.items()}
    build = spec.get("build")
    if isinstance(build, str):
        build = {"context": build}
    ports = [_container_port(p) for p in spec.get("ports", [])] + [_container_port(p) for p in spec.get("expose", [])]
    binds = []
    for volume in spec.get("volumes", []):
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
        if source.startswith("."):
            binds.append(source)
    return Service(
        name=name,
        networks=networks or {},
        network_mode=mode,
        names=[n for n in (spec.get("container_name"), spec.get("hostname")) if n and n != name],
        image=spec.get("image"),
        build=build,
        depends_on=depends,
        secrets=[s if isinstance(s, str) else s["source"] for s in spec.get("secrets", [])],
        ports=[p for p in ports if p is not None],
        published=[_container_port(p) for p in spec.get("ports", []) if _container_port(p) is not None],
        binds=binds,
    )


def _container_port(entry: Any) -> int | None:
    """The TCP port inside the container of a ``ports:`` or ``expose:`` entry (None for UDP)."""
    if isinstance(entry, dict):
        return None if entry.get("protocol") == "udp" else int(entry["target"])
    port, _, proto = entry.partition("/")
    return None if proto == "udp" else int(port.rsplit(":", 1)[-1].split("-")[0])


# -- the stand-in images ---------------------------------------------------------------


def _reference(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, "latest"
    return name, tag


class StandIns:
    """The image names the samples use, tagged onto the stand-in image while this module
    runs, in every process that runs it at once (xdist workers, other runs): the last one
    out removes every tag (and the image goes with the builds made from it, at the run's
    end). Each process holds a shared lock on one file; a process that can then lock it
    alone is the last. A name the engine has as a real image is left alone."""

    LOCKS = Path(tempfile.gettempdir()) / "pytest-dockernet-awesome"

    def __init__(self, client: docker.DockerClient, probe_image: str) -> None:
        self.client = client
        self.foreign: set[str] = set()
        self.LOCKS.mkdir(exist_ok=True)
        self.holders = os.open(self.LOCKS / "holders", os.O_RDWR | os.O_CREAT, 0o666)
        with self._alone():
            fcntl.flock(self.holders, fcntl.LOCK_SH)
            try:
                self.image, earlier = self._stand_in(probe_image)
                for name in stood_in_for():
                    self._tag(name, self.image)
            except BaseException:
                self.close(locked=True)
                raise
            if earlier is not None:  # another content's (a run with other stand-ins), now untagged
                with contextlib.suppress(docker.errors.APIError):  # a live run's containers still use it
                    self.client.images.remove(earlier)

    @contextlib.contextmanager
    def _alone(self) -> Iterator[None]:
        """Held while tags are made or removed (a process's start and end, not its run)."""
        mutex = os.open(self.LOCKS / "mutex", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            yield
        finally:
            os.close(mutex)

    def _stand_in(self, probe_image: str) -> tuple[str, str | None]:
        """The stand-in image for this content, built unless there; and the earlier one."""
        context = HERE / "stand-in"
        digest = hashlib.sha256(probe_image.encode())
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(context)}\0{path.stat().st_mode & 0o111}\0".encode())
            digest.update(path.read_bytes())
        key = digest.hexdigest()[:16]
        try:
            earlier = self.client.images.get(STAND_IN)
            if earlier.labels.get(STAND_IN_LABEL) == key:
                return str(earlier.id), None
        except docker.errors.ImageNotFound:
            earlier = None
        image, _ = self.client.images.build(
            path=str(context), tag=STAND_IN, buildargs={"BASE": probe_image}, labels={STAND_IN_LABEL: key}, rm=True
        )
        return str(image.id), None if earlier is None else str(earlier.id)

    def _tag(self, name: str, image: str) -> None:
        repository, tag = _reference(name)
        try:
            found = self.client.images.get(f"{repository}:{tag}")
            if STAND_IN_LABEL not in found.labels:
                self.foreign.add(name)
                return
            if found.id == image:
                return
        except docker.errors.ImageNotFound:
            pass
        self.client.api.tag(image, repository, tag)

    def close(self, locked: bool = False) -> None:
        """Give up this process's hold; the last one out removes the tags."""
        with contextlib.nullcontext() if locked else self._alone():
            fcntl.flock(self.holders, fcntl.LOCK_UN)
            try:
                fcntl.flock(self.holders, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process still uses them
            finally:
                os.close(self.holders)
            left = remove_stand_ins(self.client)
            assert left == [], f"stand-in tags left on the engine: {left}"


def stood_in_for() -> list[str]:
    """The names tagged: every image a sample's service runs without building it (in
    every sample, whichever a run brings up: another run at the same time, with -k, may
    bring up others)."""
    names = {STAND_IN}
    for sample in SAMPLES:
        names.update(s.image for s in Intent.read(sample).services.values() if s.image and s.build is None)
    return sorted(names)


def remove_stand_ins(client: docker.DockerClient) -> list[str]:
    """Untag the names the stand-in image has (it goes once no build from it remains;
    builds inherit its label, so only these names are looked at); the ones left."""
    left = []
    for name in stood_in_for():
        try:
            if STAND_IN_LABEL in client.images.get(name).labels:
                client.api.remove_image(name)
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError as exc:
            left.append(f"{name}: {exc}")
    return left


@pytest.fixture(scope="module")
def stand_ins(dockernet_client, dockernet_module) -> Iterator[StandIns]:
    made = StandIns(dockernet_client, dockernet_module.probe_image)
    try:
        yield made
    finally:
        made.close()


# -- bring-ups -------------------------------------------------------------------------


def started_at(container) -> str:
    return instant(container.client.api.inspect_container(container.id)["State"]["StartedAt"])


def instant(text: str) -> str:
    """An engine's RFC 3339 time (UTC, nanoseconds with trailing zeros cut) as text that
    compares as the times do."""
    match = re.fullmatch(r"(.*?)(?:\.(\d+))?Z", text)
    assert match, text
    return f"{match[1]}.{(match[2] or '').ljust(9, '0')}Z"


def assert_isolated_from(dockernet, source, targets) -> None:
    """None of ``targets`` answers ``source``. Docker 20.10 deletes and re-inserts FORWARD's
    jump to its isolation chains whenever it makes a network, so under xdist another worker's
    network may let one ping through that moment: a leak is one seen in each of 3 tries."""
    for attempt in range(3):
        try:
            dockernet.assert_unreachable(source, targets, timeout=1.0)
            return
        except AssertionError:
            if attempt == 2:
                raise


@pytest.mark.filterwarnings(r"ignore:.*ignored by compose\(\):UserWarning")  # restart: ..., each file's own
@pytest.mark.parametrize("sample", params(BROUGHT_UP))
def test_a_sample_comes_up_as_its_file_says(dockernet, stand_ins, sample):
    intent = Intent.read(sample)
    wanted = intent.needed(IN_PART.get(sample))
    foreign = {intent.services[s].image for s in wanted} & stand_ins.foreign
    if foreign:
        pytest.skip(f"the engine has real images under {sorted(foreign)}: not tagged over, so not stood in for")
    for name in wanted:
        for source in intent.services[name].binds:
            assert (HERE / sample / source).exists(), f"{sample}: services.{name} binds {source}: give it a stand-in"

    stack = dockernet.compose(compose_file(sample), services=IN_PART.get(sample))

    assert list(stack) == wanted
    services = {name: intent.services[name] for name in wanted}
    for name, service in services.items():
        container = stack[name]
        others = [o for o in services.values() if o is not service]
        for other in (o for o in others if service.shares(o)):
            dockernet.assert_reachable(container, other.name)
            for alias in [other.name, *other.names, *(a for n in service.shares(other) for a in other.networks[n])]:
                dockernet.assert_resolves(container, alias, to=stack[other.name])
            if other.ports:
                dockernet.assert_reachable(container, other.name, port=other.ports[0])
        apart = [o for o in others if not service.shares(o)]
        if apart:
            assert_isolated_from(dockernet, container, [stack[o.name] for o in apart])
            for other in apart:
                dockernet.assert_not_resolves(container, other.name)
        for port in service.published:
            assert container.host_port(port) > 0
        check_start_order(stack, name, service)
        check_build(stack[name], service)
        for secret in service.secrets:
            expected = (HERE / sample / intent.secrets[secret]).read_text()
            assert container.exec(["cat", f"/run/secrets/{secret}"]) == (0, expected)
    if sample == "pihole-cloudflared-DoH":  # a fixed address in the file's own subnet
        assert stack["cloudflared"].ip("dns-net") == "172.20.0.2"


def check_start_order(stack, name: str, service: Service) -> None:
    """A service starts after what it depends on started, and after the first passing health
    check of one it needs healthy."""
    started = started_at(stack[name])
    for other, condition in service.depends_on.items():
        state = stack[other].client.api.inspect_container(stack[other].id)["State"]
        assert started > instant(state["StartedAt"]), f"{name} started before {other}"
        if condition == "service_healthy":
            passed = [instant(c["End"]) for c in state["Health"]["Log"] if c["ExitCode"] == 0]
            assert passed and started > min(passed), f"{name} started before {other} was healthy"


def check_build(container, service: Service) -> None:
    """A built service runs its target stage (the stand-in Dockerfile's last without one)
    with the file's build arguments."""
    if service.build is None:
        return
    environment = dict(
        e.partition("=")[::2] for e in container.client.api.inspect_container(container.id)["Config"]["Env"]
    )
    assert environment["STANDIN_STAGE"] == service.build.get("target", "final")
    args = service.build.get("args") or {}
    if isinstance(args, list):
        args = dict(a.partition("=")[::2] for a in args)
    for key, value in args.items():
        if f"STANDIN_{key}" in environment:
            assert environment[f"STANDIN_{key}"] == value
