"""The handles a test holds: a Network, a Container, and a container's Endpoint on a network.

They carry what the engine said when they were made or last refreshed, and ask their run
context (``.context``: its engines, registries and what the parts registered there) for
anything else; they import no part, and make and remove nothing themselves.
Stopping, pausing or signalling a container is one engine call; starting it again is its
maker's (``Container.lifecycle``, a :class:`Starter` that containers.py sets): a
new network namespace, which probes, readiness and faults must follow.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from .engine import as_engine, exec_in, where
from .engine.errors import APIError, NotFound
from .errors import DockernetError

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine


def state_text(state: dict[str, Any]) -> str:
    """A container's ``State`` (from inspect) as one word, with the exit code if it exited."""
    if state.get("Restarting"):
        return "restarting"
    if state.get("Paused"):
        return "paused"
    if state.get("Running"):
        health: str | None = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            return "unhealthy"
        words: dict[str | None, str] = {"healthy": "running (healthy)", "starting": "running (health: starting)"}
        return words.get(health, "running")
    status = state.get("Status") or "exited"
    return f"exited ({state.get('ExitCode')})" if status in ("exited", "dead") else status


# Linux's signal names as the engine takes them (with or without "SIG", any case). Checked
# against this list, not the client's signal module: the engine's numbering is Linux's.
SIGNALS = frozenset(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT "
    "STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ".split()
)
_REALTIME = re.compile(r"RTMIN(\+([1-9]|1[0-5]))?|RTMAX(-([1-9]|1[0-4]))?")


def check_signal(signal: object) -> str | int:
    """``kill(signal=...)``: a signal's name (``"SIGTERM"``, ``"TERM"``) or number (1-64)."""
    if isinstance(signal, int) and not isinstance(signal, bool) and 1 <= signal <= 64:
        return signal
    if isinstance(signal, str):
        name = signal.upper()
        name = name[3:] if name.startswith("SIG") else name
        if name in SIGNALS or _REALTIME.fullmatch(name):
            return "SIG" + name
    raise ValueError(f"signal={signal!r} is not a signal: give a name such as 'SIGTERM' or 'TERM', or a number 1-64")


def check_grace(timeout: object, argument: str = "timeout") -> int:
    """``stop(timeout=...)``: seconds before SIGKILL, 0 or more; the engine counts whole
    seconds, so a fraction is rounded up."""
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout) or timeout < 0:
        raise ValueError(f"{argument}={timeout!r} must be a number of seconds, 0 or more (the wait before SIGKILL)")
    return math.ceil(timeout)


def engine_call(container: Container, doing: str, call: Callable[[Engine], Any]) -> Any:
    """``call(engine)`` on the container's engine; a refusal is a DockernetError naming the
    container (``doing`` it) and saying what the engine said."""
    if container.context.closed:
        raise DockernetError(f"{doing} container {container.name!r} failed: its topology is closed")
    try:
        return call(container.engine)
    except APIError as exc:
        raise DockernetError(
            f"{doing} container {container.name!r} ({container.docker_name}) failed: "
            f"the engine said: {exc.explanation or exc}"
        ) from None


class Starter(Protocol):
    """Starts a stopped container again (:class:`~pytest_dockernet.containers.Lifecycle`)."""

    def start(self, container: Container, ready: object, ready_timeout: object, restart: object = None) -> None: ...


def check_owned(handle: Container | Network, context: Context, argument: str) -> None:
    """``handle`` must be one of ``context``'s topology; else a ValueError naming ``argument``."""
    if handle.context is context:
        return
    if isinstance(handle, Network):
        raise ValueError(
            f"{argument}: network {handle.name!r} belongs to another dockernet factory "
            f"({handle.context.label}); create it with this one, "
            "or use that factory for the container too"
        )
    raise ValueError(f"{argument}: container {handle.name!r} belongs to another dockernet factory")


# Handles compare and hash by identity (eq=False): tests use them as dict keys.
@dataclass(eq=False, repr=False)
class Network:
    """A network of a topology. ``name`` is the test's logical name, ``docker_name`` the engine's."""

    context: Context
    name: str
    docker_name: str
    id: str
    driver: str
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    owned: bool = True  # created by the topology, so removed by it
    subnet6: str | None = field(default=None, init=False)  # its IPv6 subnet (ipv6=True); the gateway is its first host
    allocated: bool = field(default=False, init=False)  # its subnet came from the subnet allocator, and goes back
    warm: bool = field(default=False, init=False)  # the warm pool's: it waits there for a later test (warm_pool.py)

    def ref(self, engine: int) -> str:
        """How engine ``engine`` names the network (another engine of the swarm knows an
        overlay by name until one of its containers joins it)."""
        return self.id if engine == 0 else self.docker_name

    @property
    def topology(self) -> Any:
        """The factory that made it (for hooks and tests; the package asks :attr:`context`)."""
        return self.context.factory

    @property
    def containers(self) -> list[Container]:
        """The topology's containers attached to this network now."""
        return [c for c in self.context.containers if self.docker_name in c.endpoints]

    def __repr__(self) -> str:
        return f"<Network {self.name} ({self.docker_name}, {self.driver}, {self.subnet or 'no subnet'})>"


class PublishedPort(NamedTuple):
    """Where the test process reaches a published port: ``socket.create_connection(ep)``
    takes it as it is, and ``f"http://{ep}/"`` writes ``host:port`` (an IPv6 address in
    brackets)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# An engine reached over the network publishes ports on its own host: the URL's host is
# where the test process finds them (dind's tcp://docker:2375, ssh://user@machine).
REMOTE_SCHEMES = ("tcp", "http", "https", "ssh")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_host_address(text: str) -> str:
    """``text`` as a host name or IP address the test process can connect to ('' for none);
    else ValueError saying why."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address as a URL writes it
        host = host[1:-1]
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(
                f"{text!r} is not a host name or IP address (give one such as docker, 192.168.1.5 or ::1, "
                "without a scheme or port)"
            ) from None
        return host
    if address.is_unspecified:
        raise ValueError(f"{text!r} is the any-address, which nothing connects to: give the engine host's address")
    return str(address)


def published_host(url: str, override: str, host_ip: str) -> str:
    """Where the test process reaches a port published on ``host_ip`` (the binding's
    HostIp) by the engine at ``url``: ``override`` when given, else the URL's host for an
    engine reached over the network, else the binding's own address, or loopback for a
    binding on every address. ValueError for a port bound to the loopback of an engine
    reached over the network: only that engine's host reaches it."""
    if override:
        return override
    parts = urlsplit(url)
    if parts.scheme in REMOTE_SCHEMES and parts.hostname:
        if _loopback(host_ip) and not _loopback(parts.hostname) and parts.hostname != "localhost":
            raise ValueError(
                f"it is published on {host_ip} of the engine's host ({parts.hostname}), which this "
                "process cannot reach: publish it on every address (ports={PORT: None}), or give "
                "--dockernet-host-address if a forward brings it here"
            )
        return parts.hostname
    try:
        address = ipaddress.ip_address(host_ip)
    except ValueError:  # "" (older engines): every IPv4 address
        return "127.0.0.1"
    if not address.is_unspecified:
        return host_ip
    # A binding on "::" alone answers on IPv6 only (Docker 20.10: 127.0.0.1 is refused).
    return "::1" if address.version == 6 else "127.0.0.1"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ipv4_first(binding: dict[str, str]) -> int:
    """Sort key: a port's IPv4 binding before its IPv6 one (loopback's 127.0.0.1 is the
    address every client resolves)."""
    return 1 if ":" in (binding.get("HostIp") or "") else 0


@dataclass(eq=False)
class Endpoint:
    """A container's attachment to one network."""

    network: Network | None
    ip: str | None
    aliases: list[str]


@dataclass(eq=False, repr=False)
class Container:
    """A running container of a topology."""

    context: Context
    name: str
    docker_name: str
    id: str
    image: str
    network_mode: str | None  # "host", "bridge", "none", "container:NAME" or None (user-defined networks)
    # The engine it runs on: 0 is the environment's, i the i-th of --dockernet-hosts (as in
    # container(host=i)).
    host: int = 0
    endpoints: dict[str, Endpoint] = field(default_factory=dict, init=False)  # by Docker network name
    sidecar_id: str | None = field(default=None, init=False)  # probe sidecar sharing its network namespace
    resident: bool = field(default=False, init=False)  # runs the resident shell, which probes are written to
    # Starts it again: set by containers.py for what container() made (a service's tasks
    # have none: their swarm starts them).
    lifecycle: Starter | None = field(default=None, init=False)
    # From the warm pool (see warm_pool.py): it goes back there when its topology ends if it is
    # still ``reusable`` (nothing but the plugin's probes ran in it); its output before
    # ``logs_after`` (an engine timestamp) is earlier tests'.
    pooled: bool = field(default=False, init=False)
    reusable: bool = field(default=True, init=False)
    logs_after: str = field(default="", init=False)
    # Seconds stop() and restart() wait before SIGKILL when not told (container(stop_timeout=)).
    stop_timeout: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.engine: Engine = self.context.engines[self.host]

    @property
    def topology(self) -> Any:
        """The factory that made it (for hooks and tests; the package asks :attr:`context`)."""
        return self.context.factory

    @property
    def client(self) -> Any:
        """docker-py's client of the engine it runs on, for a test that needs the raw SDK."""
        return getattr(self.engine, "client", None)

    @client.setter
    def client(self, client: Any) -> None:
        # A test's stand-in (a client of an engine that is not there): what the handle asks now.
        self.engine = as_engine(client)

    @property
    def networks(self) -> list[Network]:
        return [e.network for e in self.endpoints.values() if e.network is not None]

    @property
    def can_probe(self) -> bool:
        """Whether probes run in the container itself (it is the probe image) or need a sidecar."""
        return self.image == self.context.probe_image

    def _endpoint(self, network: Network | str | None) -> Endpoint:
        if network is None:
            if len(self.endpoints) != 1:
                raise ValueError(
                    f"container {self.name!r} is on {len(self.endpoints)} networks "
                    f"({', '.join(sorted(self._network_names())) or 'none'}): pass network= to ip()"
                )
            return next(iter(self.endpoints.values()))
        for docker_name, endpoint in self.endpoints.items():
            if network in (docker_name, endpoint.network) or (
                isinstance(network, str) and endpoint.network is not None and endpoint.network.name == network
            ):
                return endpoint
        label = network.name if isinstance(network, Network) else network
        raise ValueError(
            f"container {self.name!r} is not on network {label!r}; "
            f"it is on: {', '.join(self._network_names()) or 'none'}"
        )

    def _network_names(self) -> list[str]:
        return [e.network.name if e.network else d for d, e in self.endpoints.items()]

    def ip(self, network: Network | str | None = None) -> str | None:
        """The container's IPv4 address on ``network`` (a handle or logical name); on its only
        network when omitted. None for a container in the host's network namespace."""
        if self.network_mode == "host":
            return None
        if self.network_mode and self.network_mode.startswith("container:"):  # the namespace's owner's
            owner = self.context.containers.get(self.network_mode.partition(":")[2])
            return owner.ip(network) if owner is not None else None
        return self._endpoint(network).ip

    def interface(self, network: Network | str | None = None) -> str:
        """The name of the container's interface on ``network`` (as :meth:`ip` takes it),
        found by its address. The first network is not always ``eth0``: the engine numbers
        a container's interfaces in the order it joined networks, and a container of the
        warm pool (see :mod:`pytest_dockernet.warm_pool`) joined others before."""
        address = self.ip(network)
        if address is None:
            raise ValueError(f"container {self.name!r} is in the host's network namespace: no interface of its own")
        result = self.context.probe(self, "ip -o -4 addr show")
        for found in result.ip_addresses():
            if found.address == address:
                return str(found.interface)
        raise DockernetError(f"container {self.name!r} has no interface with address {address}:\n{result.describe()}")

    def _bindings(self, port: int | str, proto: str) -> list[dict[str, str]]:
        info = self.engine.inspect_container(self.id)
        key = str(port) if "/" in str(port) else f"{port}/{proto}"
        bindings = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get(key)
        if not bindings:
            raise ValueError(f"container {self.name!r} publishes no host port for {key}")
        return list(bindings)

    def host_port(self, port: int | str, proto: str = "tcp") -> int:
        """The host port the engine published container port ``port`` on (``ports=``, or a
        Compose file's ``ports:``); the first binding when there are several."""
        return int(self._bindings(port, proto)[0]["HostPort"])

    def endpoint(self, port: int | str, proto: str = "tcp") -> PublishedPort:
        """Where the test process reaches container port ``port`` published on the host:
        ``(host, port)``. The host is ``--dockernet-host-address`` when given; else the
        engine's host for an engine reached over the network (``DOCKER_HOST=tcp://docker:2375``
        gives ``docker``); else, for a local socket, the binding's own address, or loopback."""
        binding = sorted(self._bindings(port, proto), key=ipv4_first)[0]
        try:
            host = published_host(where(self.engine), self.context.settings.host_address, binding.get("HostIp") or "")
        except ValueError as exc:
            raise ValueError(f"container {self.name!r} port {port}: {exc}") from None
        return PublishedPort(host, int(binding["HostPort"]))

    def exec(self, cmd: str | list[str]) -> tuple[int, str]:
        """Run ``cmd`` in the container (its image must have it).

        Returns ``(exit_code, output)``: ``output`` is a ``str``, stdout and stderr
        together in the order written, decoded as UTF-8 (undecodable bytes replaced).
        """
        self.reusable = False  # what ran may have changed it: not for another test
        return exec_in(self.engine, self.id, cmd)

    def logs(self, tail: int | None = None) -> str:
        """The container's output so far (stdout and stderr together), as a ``str``; only
        the last ``tail`` lines when given."""
        api = self.engine
        if not self.logs_after:
            return api.logs(self.id, tail="all" if tail is None else tail).decode(errors="replace")
        # A pooled container's: the engine's timestamps have a fixed width (UTC): they compare as text.
        stamped = api.logs(self.id, timestamps=True).decode(errors="replace").splitlines(keepends=True)
        lines = [text for stamp, _, text in (line.partition(" ") for line in stamped) if stamp > self.logs_after]
        return "".join(lines if tail is None else lines[len(lines) - tail :] if tail > 0 else [])

    def status(self) -> str:
        """The container's state now, as ``describe()`` shows it: ``running``
        (``running (healthy)``, ``running (health: starting)`` with a healthcheck),
        ``unhealthy``, ``exited (code)``, ``restarting``, ``paused``, ``created``,
        ``removed``."""
        try:
            state = self.engine.inspect_container(self.id)["State"]
        except NotFound:
            return "removed"
        return state_text(state)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the container: SIGTERM (or the image's stop signal), then SIGKILL after
        ``timeout`` seconds (0 or more; the engine counts whole seconds; None: the
        container's ``stop_timeout``, 10 unless ``container()`` was given one). Returns once it
        has stopped; stopping a stopped container does nothing. Its DNS names stop resolving;
        :meth:`ip` keeps the address it last had (the engine reports none) until
        :meth:`start`."""
        grace = self._grace(timeout)
        self.reusable = False
        engine_call(self, "stopping", lambda engine: engine.stop(self.id, timeout=grace))
        self.context.timeline.add(f"container {self.name} stopped")

    def _grace(self, timeout: object) -> int:
        if timeout is None:
            return 10 if self.stop_timeout is None else self.stop_timeout
        return check_grace(timeout)

    def start(self, *, ready: Any = "running", ready_timeout: float = 60.0) -> None:
        """Start the stopped container again; returns once it runs and ``ready`` holds (the
        forms of ``container(ready=...)``), within ``ready_timeout`` seconds. One that exits
        meanwhile raises :class:`~pytest_dockernet.DockernetError` with its exit code and
        last output lines. A running container is only waited for.

        It keeps its logical name and aliases on each network; its address is the one the
        engine gives it now (:meth:`ip` follows; Docker 20.10 gives the lowest free address,
        so it may change; an ``ipv4_address`` given to ``container()`` stays, and taken by
        another container meanwhile, the start fails). Probes from it run in its new network
        namespace (its resident shell and its probe sidecar are made afresh), and faults the
        topology applies are applied again."""
        self.reusable = False
        self._lifecycle().start(self, ready, ready_timeout)

    def restart(self, timeout: float | None = None, *, ready: Any = "running", ready_timeout: float = 60.0) -> None:
        """:meth:`stop` (``timeout`` as there), then :meth:`start` (``ready``,
        ``ready_timeout`` and all that follows a start, as there); a stopped container is
        started. ``ready=LogLine(...)`` is looked for in the new run's output only."""
        self.reusable = False
        self._lifecycle().start(self, ready, ready_timeout, restart=self._grace(timeout))

    def pause(self) -> None:
        """Freeze the container's processes (the cgroup freezer). Its address and DNS names
        stay, and its kernel still answers ping and completes TCP handshakes: what stops is
        every answer from its processes. Probes from it fail until :meth:`unpause` (from a
        sidecar, for an image without tools, they go on)."""
        self.context.need("pause", self.host)  # rootless Docker on cgroup v1 cannot: a skip naming it
        self.reusable = False
        engine_call(self, "pausing", lambda engine: engine.pause(self.id))
        self.context.timeline.add(f"container {self.name} paused")
        self.context.shells.discard(self.id)  # a probe would wait on the frozen shell

    def unpause(self) -> None:
        """Let a paused container run on. Its network namespace is the one it had, and so
        are the faults in it (they are not applied again)."""
        engine_call(self, "unpausing", lambda engine: engine.unpause(self.id))
        self.context.timeline.add(f"container {self.name} unpaused")
        self.context.shells.discard(self.id)  # one a probe gave up on while it was paused

    def kill(self, signal: str | int = "SIGKILL") -> None:
        """Send ``signal`` (a name, ``"SIGTERM"`` or ``"TERM"``, or a number) to the
        container's main process. SIGKILL returns once the container has stopped; another
        signal returns once sent (a process without a handler for it, as PID 1 of a
        container, ignores it). Anything but a signal is a ``ValueError`` naming
        ``signal``; a container that is not running, a :class:`DockernetError`."""
        sent = check_signal(signal)
        self.reusable = False
        engine_call(self, f"sending {sent} to", lambda engine: engine.kill(self.id, signal=sent))
        self.context.timeline.add(f"container {self.name} sent {sent}")

    def _lifecycle(self) -> Starter:
        if self.lifecycle is None:
            raise DockernetError(
                f"container {self.name!r} is a task of a swarm service: its swarm starts its tasks "
                "(Service.scale() changes how many run)"
            )
        return self.lifecycle

    def wait_until(self, ready: Any, timeout: float = 60.0) -> None:
        """Wait until ``ready`` holds (as ``container(ready=...)`` takes it: ``"running"``,
        ``"healthy"``, :class:`~pytest_dockernet.LogLine`, :class:`~pytest_dockernet.Listening`
        or a callable ``(Container) -> bool``), up to ``timeout`` seconds.

        A container that stops (exits, or is restarting) meanwhile ends the wait at once:
        :class:`~pytest_dockernet.DockernetError` with its exit code and last output lines.
        One that is unhealthy, or turns so, is waited through: a healthcheck that fails can
        pass again, so ``wait_until("healthy", timeout=30)`` after a fault is lifted returns
        once the container is healthy again. Not ready in time is a ``DockernetError`` with
        its state (and, when unhealthy, its last healthcheck's output). Either way the
        container is left as it is, not removed."""
        self.context.wait_ready(self, ready, timeout)

    def last_output_stamp(self) -> str:
        """The engine's timestamp of the container's last output line ("" without output)."""
        tail: bytes = self.engine.logs(self.id, tail=1, timestamps=True)
        return tail.decode(errors="replace").partition(" ")[0]

    def refresh(self) -> dict[str, Any]:
        """Re-read the container's networks from the engine; returns its state as the engine
        reports it (``Running``, ``ExitCode``, ...)."""
        info = self.engine.inspect_container(self.id)
        old, self.endpoints = self.endpoints, {}
        if self.network_mode != "host":
            for docker_name, ep in (info["NetworkSettings"].get("Networks") or {}).items():
                if docker_name in old:
                    aliases = old[docker_name].aliases  # ours; the engine adds the short id
                else:
                    aliases = [a for a in ep.get("Aliases") or [] if not self.id.startswith(a)]
                network = self.context.find_network(docker_name, ep.get("NetworkID"))
                self.endpoints[docker_name] = Endpoint(network, ep.get("IPAddress") or None, aliases)
        state: dict[str, Any] = info["State"]
        return state

    def __repr__(self) -> str:
        where = ", ".join(f"{n}={e.ip}" for n, e in zip(self._network_names(), self.endpoints.values()))
        return f"<Container {self.name} ({self.docker_name}{'; ' + where if where else ''})>"
