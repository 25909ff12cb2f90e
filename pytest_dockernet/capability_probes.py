"""How each capability is found out: one probe per group of capabilities, each run at most
once per engine and run (see :mod:`.capabilities`).

What the engine's version and info answers and this machine tell (:mod:`.engine.info`) is
read without a container; the rest is asked of the engine with real resources, made and
removed here: the topology probe (a network, an internal network, two probe-image
containers) answers ten capabilities at once. Each probe says, per capability, present
or missing and why: ``{name: (present, reason)}``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .engine import exec_in, remove_container, remove_network
from .engine.errors import APIError, NotFound
from .engine.gate import gate_for
from .errors import one_line
from .labels import ROLE
from .retry import poll

if TYPE_CHECKING:
    from .engine.info import EngineInfo
    from .engine.port import Engine

Found = dict[str, tuple[bool, str]]
ROLE_NAME = "capability probe"
# Settings of containers in hermetic DNS mode (container_options.HERMETIC_DNS, a part above this layer).
HERMETIC = {"dns": ["127.0.0.1"], "dns_opt": ["ndots:1"], "dns_search": ["."]}
PORT = 8080  # where the probe containers' httpd listens
WAIT = 2  # seconds a lookup or a connection may take in a probe
# The topology probe's healthcheck: an engine that runs healthchecks reports it healthy soon.
HEALTHCHECK = {"test": ["CMD", "true"], "interval": 500_000_000, "timeout": 2_000_000_000, "retries": 1}
HEALTHY_WITHIN = 3.0
JOINS = ("internal-dns", "network-isolation", "connect-disconnect", "warm-pool-joins", "warm-pool-parking")


class Probe:
    """What a probe needs: the engine, what it is, the probe image, the labels of what it
    makes, and a prefix for the names of what it makes."""

    def __init__(self, engine: Engine, info: EngineInfo, image: Callable[[], str], labels: dict[str, str], name: str):
        self.engine, self.info, self.image, self.labels, self.name = engine, info, image, labels, name
        self.made: list[tuple[str, str]] = []  # ("container" | "network", id), in making order

    def network(self, suffix: str, **options: Any) -> str:
        with gate_for(self.engine).building():
            made = self.engine.create_network(f"{self.name}-{suffix}", labels=self._labels(), **options)
        self.made.append(("network", made["Id"]))
        return f"{self.name}-{suffix}"

    def container(self, suffix: str, network: str, aliases: list[str], **host: Any) -> str:
        """A probe-image container (not started) serving TCP on PORT, on ``network``."""
        engine = self.engine
        links, healthcheck = host.pop("endpoint_links", None), host.pop("healthcheck", None)
        ports = list(host["port_bindings"]) if "port_bindings" in host else None
        with gate_for(engine).building():
            made = engine.create_container(
                self.image(),
                # It serves its own name at /id: an answer from its address is known to be its.
                command=["sh", "-c", f"echo {self.name}-{suffix} >/tmp/id && exec httpd -f -p {PORT} -h /tmp"],
                name=f"{self.name}-{suffix}",
                hostname=suffix,
                labels=self._labels(),
                host_config=engine.create_host_config(network_mode=network, **host),
                networking_config=engine.create_networking_config(
                    {network: engine.create_endpoint_config(aliases=aliases, links=links)}
                ),
                healthcheck=healthcheck,
                ports=ports,
                detach=True,
            )
        self.made.append(("container", made["Id"]))
        return str(made["Id"])

    def run(self, suffix: str, command: list[str], **host: Any) -> str:
        """A started probe-image container running ``command``, off every network but
        ``host``'s ``network_mode`` (default none); its id."""
        engine = self.engine
        host.setdefault("network_mode", "none")
        with gate_for(engine).building():
            made = engine.create_container(
                self.image(),
                command=command,
                name=f"{self.name}-{suffix}",
                labels=self._labels(),
                host_config=engine.create_host_config(**host),
                detach=True,
            )
            self.made.append(("container", made["Id"]))
            engine.start(made["Id"])
        return str(made["Id"])

    def start(self, *containers: str) -> None:
        """Start ``containers`` at once (a start is most of a probe's time)."""
        with gate_for(self.engine).building(), ThreadPoolExecutor(max_workers=len(containers)) as pool:
            list(pool.map(self.engine.start, containers))

    def checks(self, container: str, checks: dict[str, str]) -> dict[str, bool]:
        """Shell ``checks`` (name -> command) run at once in ``container``: which passed."""
        script = " ".join(
            f"( {command} ) >/dev/null 2>&1 && echo {key}=1 || echo {key}=0 &" for key, command in checks.items()
        )
        _, output = exec_in(self.engine, container, ["sh", "-c", f"{script} wait"])
        passed = {line.partition("=")[0] for line in output.split() if line.endswith("=1")}
        return {key: key in passed for key in checks}

    def said(self, present: bool, yes: str, no: str) -> tuple[bool, str]:
        """A verdict: ``yes`` or ``no``, the latter naming the network backend when the engine says it
        ("hermetic DNS unavailable (netavark): ...")."""
        backend = self.info.network_backend
        if present or not backend:
            return _said(present, yes, no)
        what, _, why = no.partition(": ")
        return False, f"{what} ({backend}): {why}" if why else f"{what} ({backend})"

    def remove(self) -> None:
        """What the probe made, containers first; gone already is fine."""
        for kind, made_id in reversed(self.made):
            (remove_container if kind == "container" else remove_network)(self.engine, made_id)
        self.made.clear()

    def _labels(self) -> dict[str, str]:
        return {**self.labels, ROLE: ROLE_NAME}


def _not(value: object) -> bool:
    return not value


def resolves(name: str, as_given_too: bool = False) -> str:
    """``name`` resolves; with ``as_given_too``, also when only the name as given (not its
    search-list form) does, as the plugin's own lookups ask (probes.lookup): on Podman a
    container on two networks asks their resolvers in random order, and the other network's
    says NXDOMAIN for NAME.dns.podman. Not for connect-disconnect: a resolver left behind
    by a disconnect fails the plugin's lookups there whatever the fallback finds."""
    once = f"timeout {WAIT} nslookup {shlex.quote(name)} 2>&1 | grep -q '^Name:'"
    if not as_given_too:
        return once
    return f"{{ {once} || {resolves(name + '.')}; }}"


def reaches(name: str) -> str:
    return f"timeout {WAIT + 1} nc -w {WAIT} {shlex.quote(name)} {PORT} </dev/null"


def reaches_soon(address: str, token: str, port: int = PORT) -> str:
    """Gets ``token`` (the container's /id) from ``address`` within 0.3 s, in one of three
    tries (a bridge answers in milliseconds, but the first packet to a new neighbour may be
    lost): the check that expects no answer waits 0.9 s, not whole seconds per try."""
    got = shlex.quote(f"/tmp/got-{token}")
    ask = f"printf 'GET /id HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {shlex.quote(address)} {port} >{got}"
    one = f"{ask} & p=$!; sleep 0.3; kill $p 2>/dev/null && false || wait $p"
    return f"for _ in 1 2 3; do ( {one} ) && grep -qx {shlex.quote(token)} {got} && exit 0; done; exit 1"


def on_host(probe: Probe) -> Found:
    """host-network, bind-mounts, lab: from what the engine is (no container)."""
    info = probe.info
    where = f"the engine at {info.url}"
    root = sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0
    lab_missing = (
        f"{where} is not on this machine ({info.host_reason})"
        if not info.shares_host
        else f"{where} is not in this process's network namespace ({info.host_reason})"
        if not info.shares_network
        else "the lab needs root on Linux (this process is not root)"
        if not root
        else ""
    )
    return {
        "host-network": (
            info.shares_network,
            info.host_reason if info.shares_network else f"{where}: {info.host_reason}",
        ),
        "bind-mounts": (info.shares_host, info.host_reason if info.shares_host else f"{where}: {info.host_reason}"),
        "lab": (not lab_missing, lab_missing or f"root, and {info.host_reason}"),
    }


def swarm(probe: Probe) -> Found:
    """Whether the engine has swarm mode at all (not whether it is in a swarm now): an
    engine with it answers GET /swarm, or says it is no manager; one without has no such
    endpoint."""
    state = (probe.engine.info().get("Swarm") or {}).get("LocalNodeState") or "inactive"
    if state == "active":
        return {"swarm": (True, "the engine is in a swarm")}
    try:
        probe.engine.inspect_swarm()
    except NotFound as exc:
        return {"swarm": (False, f"no swarm mode: the engine does not serve GET /swarm ({one_line(exc)})")}
    except APIError as exc:
        return {"swarm": (True, f"swarm mode, not in a swarm now ({one_line(exc)[:80]})")}
    return {"swarm": (True, f"swarm mode (node state {state})")}


def topology(probe: Probe) -> Found:
    """hermetic-dns, aliases, links, icmp, healthchecks, network-isolation, internal-dns,
    connect-disconnect, warm-pool-joins, warm-pool-parking: container ``a`` on a network, ``b`` on another,
    which then joins ``a``'s (with an alias and a link) and the internal network, leaves its
    first network, and is renamed and joins it again, as a warm pool's container does."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        made = pool.map(lambda n: probe.network(n, driver="bridge", internal=n == "inner"), ("net", "inner", "other"))
        net, inner, other = list(made)
    a = probe.container("a", net, ["dn-cap-a"], port_bindings={PORT: None}, **HERMETIC)
    b = probe.container("b", other, ["dn-cap-b-first"], healthcheck=HEALTHCHECK)
    probe.start(a, b)
    started = time.monotonic()
    result: Found = {}
    try:
        result.update(_on_one_network(probe, a, b, net, other))
        result.update(_joins(probe, a, b, net, inner, other))
    except APIError as exc:
        why = f"the engine refused a network change: {one_line(exc)}"
        result.update({n: (False, f"{n} unavailable: {why}") for n in PROBES["topology"][1] if n not in result})
    result["healthchecks"] = _healthy(probe, b, started)
    return result


def _on_one_network(probe: Probe, a: str, b: str, net: str, other: str) -> Found:
    """network-isolation from ``a`` to ``b`` on its own network, once ``b`` serves; then ``b``
    joins ``a``'s network (with an alias and a link)."""
    engine = probe.engine
    address, gateway = (
        engine.inspect_container(b)["NetworkSettings"]["Networks"][other][k] for k in ("IPAddress", "Gateway")
    )
    published = engine.inspect_container(a)["NetworkSettings"]["Ports"][f"{PORT}/tcp"][0]["HostPort"]
    up = f"for _ in 1 2 3 4 5 6 7 8 9 10; do {reaches('127.0.0.1')} && exit 0; sleep 0.2; done"
    with ThreadPoolExecutor(max_workers=2) as pool:
        served = pool.submit(probe.checks, a, {"up": up})
        probe.checks(b, {"up": up})
        served.result()
    with ThreadPoolExecutor(max_workers=2) as pool:
        asked_across = pool.submit(probe.checks, a, {"across": reaches_soon(address, f"{probe.name}-b")})
        gateway_ports = probe.checks(b, {"gateway": reaches_soon(gateway, f"{probe.name}-a", int(published))})
        across = asked_across.result()
    with gate_for(probe.engine).building():
        probe.engine.connect_container_to_network(
            b, net, aliases=["dn-cap-b"], links=[(f"{probe.name}-a", "dn-cap-link")]
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        asked = pool.submit(
            probe.checks, a, {"hermetic": resolves(f"{probe.name}-b"), "icmp": "ping -c1 -W1 127.0.0.1"}
        )
        found = probe.checks(
            b,
            {"alias": resolves("dn-cap-a", True), "link": resolves("dn-cap-link", True), "reach": reaches("dn-cap-a")},
        )
        first = asked.result()
    return {
        "gateway-ports": probe.said(
            gateway_ports["gateway"],
            "a container's published port is reachable from another network's container at that network's gateway",
            f"published ports unreachable at a network's gateway: a container of another network is refused at "
            f"its gateway {gateway}, port {published} (the engine's port forwarding listens elsewhere)",
        ),
        "network-isolation": probe.said(
            not across["across"],
            "a container does not reach another network's containers",
            "networks not isolated by default: a container reaches another network's container by its "
            "address (the plugin makes its networks with the driver option isolate=true)",
        ),
        "hermetic-dns": probe.said(
            first["hermetic"],
            "names resolve with the plugin's hermetic DNS settings (nameserver 127.0.0.1)",
            "hermetic DNS unavailable: with the plugin's settings (dns 127.0.0.1) a container's name does not "
            "resolve; use --dockernet-dns=host",
        ),
        "aliases": probe.said(
            found["alias"] and found["reach"],
            "a network alias resolves and is reachable",
            "network aliases unavailable: an alias "
            + ("does not resolve" if not found["alias"] else "resolves, but its container is not reachable"),
        ),
        "links": probe.said(
            found["link"], "a link's alias resolves", "links unavailable: a link's alias does not resolve"
        ),
        "icmp": _said(
            first["icmp"],
            "a container pings (its default capabilities include NET_RAW)",
            "ICMP unavailable: the engine's default capabilities leave out NET_RAW (ping: permission denied)",
        ),
    }


def _joins(probe: Probe, a: str, b: str, net: str, inner: str, other: str) -> Found:
    """internal-dns, connect-disconnect, warm-pool-joins, warm-pool-parking: both join the internal network;
    ``b`` leaves its first network, then is renamed and joins it again."""
    engine, result = probe.engine, {}
    with gate_for(engine).building():
        engine.connect_container_to_network(a, inner, aliases=["dn-cap-a-in"])
        engine.connect_container_to_network(a, other, aliases=["dn-cap-a-other"])
        engine.connect_container_to_network(b, inner, aliases=["dn-cap-b-in"])
    internal = probe.checks(b, {"name": resolves("dn-cap-a-in", True), "reach": reaches("dn-cap-a-in")})
    result["internal-dns"] = probe.said(
        internal["name"] and internal["reach"],
        "containers on an internal network resolve and reach each other",
        "internal networks unavailable: containers on an internal network "
        + ("do not resolve each other's names" if not internal["name"] else "do not reach each other"),
    )
    with gate_for(engine).building():
        engine.disconnect_container_from_network(b, other)
    left = probe.checks(b, {"name": resolves("dn-cap-a"), "reach": reaches("dn-cap-a")})
    result["connect-disconnect"] = probe.said(
        left["name"] and left["reach"],
        "a container that left its first network resolves and reaches the others on the rest",
        "connect/disconnect unavailable: a container that left its first network "
        + ("resolves no name (its resolver was that network's)" if not left["name"] else "does not reach the others"),
    )
    with gate_for(engine).building():
        engine.rename(b, f"{probe.name}-b-again")
        engine.connect_container_to_network(b, other, aliases=["dn-cap-b-again"])
    after = probe.checks(
        b, {"name": resolves("dn-cap-a-other"), "reach": reaches("dn-cap-a-other"), "own": resolves("dn-cap-b-again")}
    )
    result["warm-pool-joins"] = probe.said(
        all(after.values()) and left["name"],
        "a renamed running container leaves networks and joins others under a new alias",
        "warm pool joins unavailable: a renamed container that left its first network and joined another "
        + ("is not found by its new alias" if all(left.values()) and after["name"] else "does not resolve the others"),
    )
    # b was renamed while on a's networks: their resolvers answer to its new name, not its old.
    renamed = probe.checks(a, {"new": resolves(f"{probe.name}-b-again"), "old": resolves(f"{probe.name}-b")})
    result["warm-pool-parking"] = probe.said(
        renamed["new"] and not renamed["old"],
        "a container renamed while on its networks answers to its new name there, not its old",
        "warm pool parking unavailable: a container renamed while on its networks "
        + ("still answers to its old name" if renamed["old"] else "does not answer to its new name"),
    )
    return result


def _healthy(probe: Probe, container: str, started: float) -> tuple[bool, str]:
    """Whether the engine ran ``container``'s healthcheck by itself within HEALTHY_WITHIN s."""
    status, _ = poll(
        lambda: (probe.engine.inspect_container(container)["State"].get("Health") or {}).get("Status") or "none",
        lambda found: found == "healthy",
        timeout=max(0.0, HEALTHY_WITHIN - (time.monotonic() - started)),
        interval=0.1,
    )
    return _said(
        status == "healthy",
        "the engine runs a container's healthcheck by itself",
        f"healthchecks unavailable: the engine did not run a container's healthcheck (every 0.5 s) within "
        f"{HEALTHY_WITHIN:.0f} s (status {status!r}; the plugin runs it itself)",
    )


def overlay(probe: Probe) -> Found:
    """A container starts on an attachable overlay network (asked by a feature once the engine
    is a swarm manager). Rootless Docker is answered from its info: Docker documents overlay
    networks as unsupported in rootless mode, and there a container on one fails only after
    20 s ("attaching to network failed ... context deadline exceeded")."""
    if probe.info.rootless:
        return {
            "overlay": (
                False,
                "overlay networks unavailable: rootless mode has none (Docker documents them unsupported; a "
                "container on one fails after 20 s, 'attaching to network failed', and a service's tasks with "
                "'mkdir /var/lib/docker/network: permission denied')",
            )
        }
    has_swarm, why = swarm(probe)["swarm"]
    if not has_swarm:
        return {"overlay": (False, f"overlay networks unavailable: {why}")}
    state = probe.engine.info().get("Swarm") or {}
    if state.get("LocalNodeState") != "active" or not state.get("ControlAvailable"):
        # Nothing to try it on; a feature asks only once a swarm is made (the run's first overlay network).
        return {"overlay": (True, "untried: the engine is not a swarm manager now (a run's first overlay tries it)")}
    net = probe.network("overlay", driver="overlay", attachable=True)
    try:
        probe.start(probe.container("overlay", net, []))
    except APIError as exc:
        return {
            "overlay": probe.said(
                False, "", f"overlay networks unavailable: a container on an attachable one fails: {one_line(exc)}"
            )
        }
    return {"overlay": (True, "a container starts on an attachable overlay network")}


def ipv6(probe: Probe) -> Found:
    """An IPv6 network (a random unique-local /64): made, and a container on it has an
    address in it."""
    subnet = ipaddress.IPv6Network(f"fd{random.randrange(256):02x}:{random.randrange(65536):04x}::/64")
    try:
        net = probe.network(
            "v6", driver="bridge", enable_ipv6=True, ipam={"Driver": "default", "Config": [{"Subnet": str(subnet)}]}
        )
    except APIError as exc:
        return {"ipv6": (False, f"IPv6 networks unavailable: {one_line(exc)}")}
    container = probe.container("v6", net, [])
    probe.start(container)
    address = probe.checks(container, {"v6": f"ip -6 addr | grep -q {shlex.quote(str(subnet.network_address)[:-1])}"})
    return {
        "ipv6": probe.said(
            address["v6"],
            f"an IPv6 network ({subnet}) gives its containers addresses",
            f"IPv6 unavailable: a container on an IPv6 network ({subnet}) has no address in it",
        )
    }


def net_admin(probe: Probe) -> Found:
    """A container given NET_ADMIN changes its own network namespace (what fault helpers do)."""
    engine = probe.engine
    command = ["sh", "-c", "ip link set lo mtu 65535 && ip link set lo mtu 65536 && echo admin=1"]
    made = probe.run("admin", command, cap_add=["NET_ADMIN"])
    state = engine.inspect_container
    running, _ = poll(lambda: state(made)["State"].get("Running"), _not, timeout=5, interval=0.1)
    output = "" if running else engine.logs(made, stdout=True, stderr=True).decode(errors="replace")
    ok = "admin=1" in output
    return {
        "net-admin": _said(
            ok,
            "a container with NET_ADMIN changes its network namespace",
            f"NET_ADMIN unavailable: a container given it cannot change its links ({output.strip()[:120]})",
        )
    }


def pause(probe: Probe) -> Found:
    """A container is paused and unpaused: the cgroup freezer, which rootless Docker on
    cgroup v1 (cgroup driver "none") has not."""
    engine = probe.engine
    made = probe.run("pause", ["sleep", "60"])
    try:
        engine.pause(made)
        engine.unpause(made)
        said = ""
    except APIError as exc:
        said = one_line(exc).replace(made, made[:12])[-200:]
    return {
        "pause": _said(
            not said,
            "a container pauses and unpauses",
            f"pause unavailable: the engine cannot pause a container ({said})",
        )
    }


def capture(probe: Probe) -> Found:
    """A host-mode container sees a network's bridge: where capture sidecars record it."""
    engine = probe.engine
    info = engine.inspect_network(probe.network("capture", driver="bridge"))
    bridge = (info.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{info['Id'][:12]}"
    command = ["sh", "-c", f"test -e /sys/class/net/{bridge} && echo bridge=1; ls /sys/class/net"]
    made = probe.run("capture", command, network_mode="host")
    state = engine.inspect_container
    poll(lambda: state(made)["State"].get("Running"), _not, timeout=5, interval=0.05)
    output = engine.logs(made, stdout=True, stderr=True).decode(errors="replace")
    return {
        "capture": probe.said(
            "bridge=1" in output,
            "a host-mode container sees a network's bridge (capture sidecars record it there)",
            f"capture unavailable: a host-mode container does not see the network's bridge {bridge} "
            f"(it sees: {' '.join(output.split())[:160] or 'nothing'})",
        )
    }


def _said(present: bool, yes: str, no: str) -> tuple[bool, str]:
    return present, yes if present else no


@contextlib.contextmanager
def cleaned(probe: Probe) -> Iterator[Probe]:
    try:
        yield probe
    finally:
        probe.remove()


# Each probe, and the capabilities it answers.
PROBES: dict[str, tuple[Callable[[Probe], Found], tuple[str, ...]]] = {
    "host": (on_host, ("host-network", "bind-mounts", "lab")),
    "swarm": (swarm, ("swarm",)),
    "topology": (
        topology,
        ("hermetic-dns", "aliases", "links", "icmp", "healthchecks", "gateway-ports", *JOINS),
    ),
    "overlay": (overlay, ("overlay",)),
    "ipv6": (ipv6, ("ipv6",)),
    "net-admin": (net_admin, ("net-admin",)),
    "pause": (pause, ("pause",)),
    "capture": (capture, ("capture",)),
}
# The probes whose verdicts are kept between runs (capabilities.Store): those that make
# containers. The others cost a call or none, and depend on this process (its host, its user).
KEPT = ("topology", "ipv6", "net-admin", "pause", "capture")
