"""Why a probe failed, in one line: what a failing helper's message says first.

Read from what the topology knows (its networks, addresses, aliases, the faults in force)
and a few looks taken only on failure, each one call: the target's state, the sockets
listening in its network namespace (its /proc/net tables, as ``Listening`` reads them, so
nothing is needed in its image), one lookup from the source. The causes are tried from the
one that explains most to the one that explains least; where none does, the line says what
was ruled out. A diagnosis never raises: a look that fails is left out, and a diagnosis
that fails says so in its line, since it comes before the failure it would otherwise hide.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Union

from . import probes
from .checks import is_ip
from .engine.errors import NotFound
from .errors import DockernetError, one_line
from .faults.degradation import Degradation
from .faults.dns import DnsFault
from .faults.partition import Partition
from .handles import Container, state_text
from .snapshot import FailingProbe

if TYPE_CHECKING:
    from .handles import Network

Target = Union[Container, str]
T = TypeVar("T")
PREFIX = "why: "
# The ports a line lists at most (a server with many listeners would fill the line).
SHOWN_PORTS = 8
# The engine's embedded DNS listens in every container's namespace there, on ports of its own.
EMBEDDED_DNS = "127.0.0.11"
NO_PROBLEM: tuple[str | None, str] = (None, "")  # what a look at the sockets that failed leaves
UNREAD: str | None = ""  # what a look at a container's state that failed leaves


def look(taken: Callable[[], T], otherwise: T) -> T:
    """What one look on the engine found, or ``otherwise`` when it could not be taken (the
    engine refused, the probe could not run): the line then says less, not nothing."""
    try:
        return taken()
    except Exception:  # noqa: BLE001 - a diagnosis never raises
        return otherwise


def line(diagnose: Callable[[], str]) -> str:
    """``why: `` and what ``diagnose()`` says, or why there is no diagnosis."""
    try:
        return PREFIX + diagnose()
    except Exception as exc:  # noqa: BLE001 - the failure it explains must still be raised
        return f"{PREFIX}no diagnosis ({type(exc).__name__}: {one_line(exc)})"


# -- what the topology knows ---------------------------------------------------------------


def network_names(container: Container) -> list[str]:
    """The logical names of ``container``'s networks (the engine's for one not the topology's)."""
    return [e.network.name if e.network else docker_name for docker_name, e in container.endpoints.items()]


def whereabouts(container: Container) -> str:
    """``api is on front and back``, or where it is when it has no network of its own."""
    mode = container.network_mode or ""
    if mode == "host":
        return f"{container.name} runs in the host's network namespace"
    if mode == "none":
        return f"{container.name} has no network (network_mode='none')"
    if mode.startswith("container:"):
        return f"{container.name} shares the network namespace of {mode.partition(':')[2]}"
    names = network_names(container)
    return f"{container.name} is on {_and(names)}" if names else f"{container.name} is on no network"


def _and(items: list[str]) -> str:
    if len(items) < 2:
        return items[0] if items else "none"
    return ", ".join(items[:-1]) + " and " + items[-1]


def owner_of(context_of: Container, address: str) -> Container | None:
    """The container of ``context_of``'s topology with ``address`` on one of its networks."""
    for container in context_of.context.containers:
        if any(e.ip == address for e in container.endpoints.values()):
            return container
    return None


def named_container(src: Container, name: str) -> Container | None:
    """The other container of ``src``'s topology that ``name`` means (its logical name, or
    an alias on a network it shares with ``src``), if any."""
    for container in src.context.containers:
        if container is src:
            continue
        if container.name == name or any(
            name in e.aliases for docker_name, e in container.endpoints.items() if docker_name in src.endpoints
        ):
            return container
    return None


def target_of(src: Container, dst: Target) -> Container | None:
    """The container ``dst`` means to ``src``: itself, the owner of an address, or
    :func:`named_container`."""
    if isinstance(dst, Container):
        return dst
    return owner_of(src, dst) if is_ip(dst) else named_container(src, dst)


def _named_elsewhere(src: Container, name: str) -> str | None:
    """Where ``name`` is a container's name or alias only on networks ``src`` is not on."""
    for container in src.context.containers:
        if container is src:
            continue
        where = [
            e.network.name if e.network else docker_name
            for docker_name, e in container.endpoints.items()
            if docker_name not in src.endpoints and (name in e.aliases or name == container.name)
        ]
        if where:
            what = f"{name} is on" if name == container.name else f"{name!r} is an alias of {container.name} on"
            return f"{what} {_and(where)}, not on a network of {src.name} ({whereabouts(src)})"
    return None


def shared_networks(a: Container, b: Container) -> list[str]:
    return [e.network.name if e.network else n for n, e in a.endpoints.items() if n in b.endpoints]


def _since(fault: Any) -> str:
    since = getattr(fault, "since", None)
    if since is None:
        return ""
    age = max(0.0, time.monotonic() - since)
    return f" (in force since {time.strftime('%H:%M:%S', time.localtime(time.time() - age))}, {age:.1f} s)"


def faults_between(src: Container, dst: Container, shared: list[str], port: int | None = None) -> list[str]:
    """The faults in force that drop or degrade what goes from ``src`` to ``dst`` or back (a
    partition of some ports only when the probe is a connect to one of them)."""
    found = []
    for fault in src.context.faults_in_force():
        if isinstance(fault, Partition):
            if fault.ports and port not in fault.ports:
                continue  # ping and other ports pass it
            if (src in fault.a and dst in fault.b) or (not fault.one_way and src in fault.b and dst in fault.a):
                found.append(fault.title() + _since(fault))
        elif isinstance(fault, Degradation):
            # a degradation is of what its container sends: the probe's packets, or the replies
            other = dst if fault.container is src else src if fault.container is dst else None
            if other is None or (fault.to and other not in fault.to):
                continue
            if fault.network is None or fault.network.name in shared:
                found.append(fault.title() + _since(fault))
    return found


def dns_faults(src: Container, name: str) -> list[str]:
    """The DNS faults in force that answer ``name`` when ``src`` looks it up."""
    wanted = name.rstrip(".").lower()
    return [
        fault.title() + _since(fault)
        for fault in src.context.faults_in_force()
        if isinstance(fault, DnsFault) and fault.container is src and fault.name == wanted
    ]


def faults_on(container: Container) -> list[str]:
    """The faults in force that ``container`` takes part in."""
    found = []
    for fault in container.context.faults_in_force():
        if isinstance(fault, Partition):
            members = [*fault.a, *fault.b]
        elif isinstance(fault, DnsFault):
            members = [fault.container]  # its lookups of that name fail
        else:
            members = [fault.container, *fault.to] if isinstance(fault, Degradation) else []
        if container in members:
            found.append(fault.title() + _since(fault))
    return found


# -- the looks taken on failure ------------------------------------------------------------


def _ended(container: Container) -> str | None:
    """Why ``container`` can take no part in a probe (its container is gone, or it is not
    running: its state, exit code and last output lines), or None while it runs."""
    try:
        state = container.engine.inspect_container(container.id)["State"]
    except NotFound:
        return "its container no longer exists"
    if state.get("Running"):
        return None
    logs = "\n".join("  " + line for line in container.logs().strip().splitlines()[-10:]) or "  (none)"
    status = f"{state.get('Status')}, exit code {state.get('ExitCode')}"
    return f"it is not running ({status}); the end of its output:\n{logs}"


def fail_if_stopped(container: Container | None, failing: str) -> None:
    """Raise ``FAILING: why`` (a DockernetError) when ``container`` (a source, or the target
    a name means) is not running: waiting cannot help one that has exited."""
    __tracebackhide__ = True
    why = None if container is None else _ended(container)
    if why is not None:
        raise DockernetError(f"{failing}: {why}") from None


def not_running(container: Container) -> str | None:
    """``db is not running (exited (1))`` (paused too: its kernel still answers ping and
    TCP handshakes, its processes nothing), or None while it runs."""
    try:
        state = container.engine.inspect_container(container.id)["State"]
    except NotFound:
        return f"{container.name} no longer exists (its container was removed)"
    if state.get("Running") and not state.get("Paused") and not state.get("Restarting"):
        return None
    return f"{container.name} is not running ({state_text(state)})"


def sockets(table: str, proto: str = "tcp") -> list[tuple[str, int]]:
    """``(address, port)`` of each listening socket in /proc/net/tcp(6) (bound, for udp(6))."""
    found = []
    for row in table.splitlines():
        fields = row.split()
        if len(fields) < 4 or ":" not in fields[1] or fields[0] == "sl":
            continue
        if fields[3] != ("0A" if proto == "tcp" else "07"):
            continue
        hexed, _, port = fields[1].rpartition(":")
        try:
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(bytes.fromhex(hexed[i : i + 8])[::-1] for i in range(0, len(hexed), 8))
            found.append((str(ipaddress.ip_address(raw)), int(port, 16)))
        except ValueError:
            continue  # not a socket's row (a table cut short): a readiness wait reads it again
    return found


def listening(container: Container, proto: str = "tcp") -> list[tuple[str, int]]:
    """What listens in ``container``'s network namespace (one probe, through its sidecar
    when its image has no shell)."""
    tables = f"/proc/net/{proto} /proc/net/{proto}6"
    # Not counted: the diagnosis's looks are the plugin's, not the test's probes.
    found = sockets(probes.run(container, f"cat {tables} 2>/dev/null; true", counted=False).output, proto)
    return [(address, port) for address, port in found if address != EMBEDDED_DNS]


def _ports(found: list[tuple[str, int]]) -> str:
    ports = sorted({port for _, port in found})
    shown = ", ".join(map(str, ports[:SHOWN_PORTS]))
    return shown + (f" and {len(ports) - SHOWN_PORTS} more" if len(ports) > SHOWN_PORTS else "")


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def port_problem(target: Container, port: int, proto: str = "tcp") -> tuple[str | None, str]:
    """Why ``target`` cannot take a connection on ``port`` (None when something listens
    there for others), and what listens there, for a line that finds nothing else."""
    found = listening(target, proto)
    on_port = [address for address, p in found if p == port]
    kind = proto.upper()
    # A TCP server listens; UDP has no listening state, only a bound socket.
    listens, on = ("listens on", "listening on") if proto == "tcp" else ("has bound", "bound to")
    if not on_port:
        others = f"it {listens} {_ports(found)}" if found else f"it {listens} no {kind} port"
        return f"{target.name} is not {on} {kind} port {port}: {others}", ""
    if all(_loopback(a) for a in on_port):
        return (
            f"{target.name} {listens} {kind} port {port} only at {_and(sorted(set(on_port)))}"
            " (loopback): nothing outside its own namespace reaches that",
            "",
        )
    return None, f"{on} {port}"


def resolved(src: Container, name: str) -> tuple[list[str], bool | None]:
    """What ``src`` resolves ``name`` to (hosts file, then DNS), and whether its resolver
    answers its own name (None where it has no embedded DNS to ask)."""
    control = own_name(src)
    result = probes.run(src, probes.resolve_command(name, control), counted=False)
    answers = None if control is None else "@@dns=ok" in result.output
    return probes.parse_addresses(result.output), answers


def own_name(src: Container) -> str | None:
    """A name ``src``'s embedded DNS must answer (its own alias), if it has one."""
    if src.network_mode is not None:
        return None
    for endpoint in src.endpoints.values():
        if endpoint.network is not None and endpoint.network.driver != "host" and endpoint.aliases:
            return endpoint.aliases[0]
    return None


def _internal_only(src: Container) -> list[Network]:
    nets = src.networks
    return nets if nets and all(n.internal for n in nets) else []


def _addresses_of(found: list[str], src: Container) -> str:
    shown = []
    for address in found:
        owner = owner_of(src, address)
        shown.append(f"{address} ({owner.name}'s)" if owner is not None else address)
    return ", ".join(shown)


# -- the diagnoses -------------------------------------------------------------------------


def unreached(src: Container, dst: Target, port: int | None, addresses: Sequence[str] = ()) -> str:
    """Why ``src`` got no answer from ``dst`` (ICMP echo for ``port`` None, else TCP)."""
    return line(lambda: _unreached(src, dst, port, list(addresses)))


def _unreached(src: Container, dst: Target, port: int | None, addresses: list[str]) -> str:
    target = target_of(src, dst)
    if src.network_mode == "none":
        return whereabouts(src)
    faulted = dns_faults(src, dst) if isinstance(dst, str) and not is_ip(dst) else []
    if faulted:  # the probe went where the faulted answer sent it, or nowhere
        return f"{'; '.join(faulted)}: in force on {src.name}"
    if isinstance(dst, str) and not is_ip(dst) and (target is None or src.network_mode == "host"):
        why = _name_problem(src, dst, None)
        if why is not None:
            return why
    stopped: str | None = None
    if target is not None:
        stopped = look(lambda: not_running(target), UNREAD)
        if stopped:
            return stopped
    host = "host" in (src.network_mode, getattr(target, "network_mode", None))
    shared: list[str] = []
    if target is not None and not host and target.endpoints and src.endpoints:
        shared = shared_networks(src, target)
        if not shared:
            others = _and(network_names(target))
            return f"{src.name} and {target.name} share no network: {whereabouts(src)}, {target.name} on {others}"
    if target is not None:
        faults = faults_between(src, target, shared, port)
        if faults:
            return f"{'; '.join(faults)}: in force between {src.name} and {target.name}"
    listens = ""
    if target is not None and port is not None:
        problem, listens = look(lambda: port_problem(target, port), NO_PROBLEM)
        if problem is not None:
            return problem
    internal = _internal_only(src)
    if target is None and internal and addresses:
        nets = f"internal network{'s' if len(internal) > 1 else ''} {_and([n.name for n in internal])}"
        if all(_outside(a, src) for a in addresses):
            return f"{src.name} is only on {nets}: nothing is routed from there to {dst}"
        gateways = {n.gateway for n in internal}
        if port is not None and all(a in gateways for a in addresses):
            return (
                f"{src.name} is only on {nets}: its gateway reaches the host's own sockets, "
                f"not a port the host forwards (one a container of another network publishes)"
            )
    where = f"both on {_and(shared)}" if shared else whereabouts(src)
    if target is None:
        return (
            f"{where}, no fault in force on {src.name}, and {dst} is not a container of the topology: "
            "nothing the plugin knows explains it"
        )
    at = f"{target.name} ({', '.join(addresses)})" if addresses else target.name
    state = "running" if stopped is None else "in a state the engine did not say"
    return f"{where}, no fault in force, {at} {listens or state}: the probe itself got no answer"


def _outside(address: str, src: Container) -> bool:
    """Whether ``address`` is on none of ``src``'s networks' subnets nor a gateway."""
    if not is_ip(address):
        return False
    ip = ipaddress.ip_address(address)
    for network in src.networks:
        if address == network.gateway:
            return False
        if network.subnet and ip in ipaddress.ip_network(network.subnet, strict=False):
            return False
    return True


def _name_problem(src: Container, name: str, expected: set[str] | None) -> str | None:
    """Why ``name`` does not resolve from ``src`` (to ``expected``), where that is known:
    it names something only on other networks, the source has no embedded DNS, the resolver
    answers nothing, or other addresses; a DNS fault in force first."""
    faulted = dns_faults(src, name)
    if faulted:
        return f"{'; '.join(faulted)}: in force on {src.name}"
    elsewhere, target = _named_elsewhere(src, name), target_of(src, name)
    if elsewhere is not None and (target is None or not shared_networks(src, target)):
        return elsewhere
    if src.network_mode == "host":
        return (
            f"{src.name} runs in the host's network namespace: it asks the host's resolvers, "
            f"which know none of the topology's names"
        )
    outcome = look(lambda: resolved(src, name), None)
    if outcome is None:  # the lookup could not be made: nothing to say about it
        return None
    found, answers = outcome
    if answers is False:
        return f"{src.name}'s resolver does not answer: not even its own name {own_name(src)!r} resolved"
    v6 = expected is not None and any(":" in a for a in expected)
    found = [a for a in found if v6 or ":" not in a]
    if not found:
        unknown = "" if target is not None else f"; the topology has no container or alias {name!r}"
        return f"{src.name}'s resolver has no address for {name!r}{unknown}"
    if expected is not None and set(found) != expected:
        wanted = _addresses_of(sorted(expected), src)
        return f"{src.name} resolves {name!r} to {_addresses_of(found, src)}, not to {wanted}"
    return None


def unresolved(src: Container, name: str, expected: set[str] | None) -> str:
    """Why ``name`` did not resolve from ``src`` (to ``expected``, when given)."""

    def diagnose() -> str:
        if src.network_mode == "none":
            return whereabouts(src)
        target = target_of(src, name)
        if target is not None:
            stopped = look(lambda: not_running(target), None)
            if stopped is not None:
                return f"{stopped}: the embedded DNS has no record of a container that does not run"
        why = _name_problem(src, name, expected)
        if why is not None:
            return why
        return f"{src.name} now resolves {name!r} as expected: the answer came late, or changed"

    return line(diagnose)


def reached(src: Container, dst: Target, port: int | None) -> str:
    """Why ``src`` got an answer from ``dst`` where none was expected."""

    def diagnose() -> str:
        target = target_of(src, dst)
        for c in (src, target):
            if c is not None and c.network_mode == "host":
                return f"{c.name} runs in the host's network namespace, which has a route to every bridge network"
        if target is None:
            return f"{dst} is not a container of the topology: {whereabouts(src)}, and it is routed from there"
        shared = shared_networks(src, target)
        for fault in src.context.faults_in_force():
            if isinstance(fault, Partition) and fault.one_way and src in fault.b and target in fault.a:
                starters = _and([c.name for c in fault.a]) + (" starts" if len(fault.a) == 1 else " start")
                return f"{fault.title()}{_since(fault)} is one-way: it drops what {starters}, not {src.name}"
        lossy = [f for f in faults_between(src, target, shared) if not f.startswith("partition")]
        if lossy:
            return f"{'; '.join(lossy)}: in force between them, but it lets some packets through"
        if shared:
            return f"{src.name} and {target.name} are both on {_and(shared)}, and no fault in force cuts them apart"
        return (
            f"{src.name} and {target.name} share no network ({whereabouts(src)}, {target.name} on "
            f"{_and(network_names(target))}): the engine let the answer through"
        )

    return line(diagnose)


def not_ready(container: Container, strategy: object) -> str:
    """Why ``strategy`` (a Readiness) did not hold for ``container`` in time."""

    def diagnose() -> str:
        stopped = look(lambda: not_running(container), None)
        if stopped is not None:
            return stopped
        port, proto = getattr(strategy, "port", None), getattr(strategy, "proto", "tcp")
        if isinstance(port, int):
            problem, _ = look(lambda: port_problem(container, port, proto), NO_PROBLEM)
            if problem is not None:
                return problem
        faults = faults_on(container)
        if faults:
            return f"{'; '.join(faults)}: in force on {container.name}"
        if isinstance(port, int):
            return f"{container.name} runs and listens on {port}: the check itself did not pass"
        # The strategies are told apart by what they have: readiness imports this module.
        if getattr(strategy, "word", None) == "healthy":
            health = look(lambda: container.engine.inspect_container(container.id)["State"].get("Health"), None)
            if health:
                streak = health.get("FailingStreak") or 0
                failing = f", {streak} failing checks in a row" if streak else ""
                return f"{container.name} runs, and its healthcheck says {health.get('Status')}{failing}"
        pattern = getattr(strategy, "pattern", None)
        if isinstance(pattern, str):
            printed = look(lambda: bool(container.logs(tail=1).strip()), True)
            said = "no line of its output" if printed else "it has printed nothing, so no line"
            return f"{container.name} runs, and {said} matches {pattern!r}"
        return f"{container.name} runs, and no fault is in force on it: {strategy} did not hold"

    return line(diagnose)


def http_failed(src: Container, host: str, port: int, status: int | None) -> str:
    """Why ``GET http://host:port/...`` from ``src`` got no response (``status`` None) or
    not the one expected."""
    if status is not None:
        return PREFIX + f"{host}:{port} answered with status {status}: the network is not the cause"
    return unreached(src, host, port, [host] if is_ip(host) else [])


def resolves_anyway(src: Container, name: str, got: list[str]) -> str:
    """Why ``name`` resolved from ``src`` to ``got`` where it was expected not to."""

    def diagnose() -> str:
        faulted = dns_faults(src, name)
        if faulted:
            return f"{'; '.join(faulted)}: in force on {src.name}"
        target = named_container(src, name)
        shared = shared_networks(src, target) if target is not None else []
        if target is not None and shared:
            what = "its name" if name == target.name else "an alias of it"
            return f"{name!r} is {what} on {_and(shared)}, which {src.name} is on too, so {target.name} answers"
        return (
            f"{src.name} resolves {name!r} to {_addresses_of(got, src)}: no container shares the name with it, "
            "so its hosts file or the host's resolvers know it"
        )

    return line(diagnose)


def record(
    src: Container, target: str, kind: str, address: str | None, verdict: str, why: str, port: int | None = None
) -> None:
    """Leave the probe a helper failed on on ``src``'s context, for a failing test's
    artifacts (the last one wins)."""
    src.context.failed_probe = FailingProbe(src.name, target, kind, port, address, verdict, why.removeprefix(PREFIX))
