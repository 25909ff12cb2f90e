"""A degradation of what one container sends (egress), receives (ingress) or both: loss
(iptables' random drop, IPv4 and IPv6), a rate cap and netem's delay, duplication,
corruption and reordering (``tc``: a token bucket, an HTB class per peer with ``to=``,
netem; on ingress, on an IFB device the interface's ingress traffic is redirected to), on
all its interfaces or those of one network, towards or from everyone or some peers only."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DockernetError
from ..probes import parse_ip_addresses
from .fault import FaultBase, Keeper
from .helpers import FaultHelpers, addresses, put_again
from .image import TC
from .rules import (
    Settings,
    degrade_script,
    directions,
    ifb_of,
    ingress_script,
    jumps_script,
    qdisc_script,
    restore_script,
)

if TYPE_CHECKING:
    from ..handles import Container, Network

_RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
_TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")


DIRECTIONS = ("egress", "ingress", "both")
NETEM = ("delay", "duplicate", "corrupt", "reorder")  # what needs the kernel's netem
# What ingress shaping needs of the kernel, each checked in a member's namespace.
_INGRESS_NEEDS = (
    ("the ifb link type (CONFIG_IFB)", "ip link add dn-ifb-check type ifb"),
    ("the ingress queueing discipline (sch_ingress)", f"{TC} qdisc add dev lo handle ffff: ingress"),
    (
        "the mirred action (act_mirred)",
        f"{TC} filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 "
        "action mirred egress redirect dev dn-ifb-check",
    ),
)


def _fraction(argument: str, value: object, example: str) -> None:
    if value is not None and (
        not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{argument}={value!r} must be a fraction from 0.0 to 1.0 ({example})")


def check_settings(
    loss: object,
    rate: object,
    delay: object,
    jitter: object,
    duplicate: object = None,
    corrupt: object = None,
    reorder: object = None,
    direction: object = None,
) -> None:
    _fraction("loss", loss, "0.1 drops one packet in ten")
    _fraction("duplicate", duplicate, "0.01 sends one packet in a hundred twice")
    _fraction("corrupt", corrupt, "0.01 flips a bit in one packet in a hundred")
    _fraction("reorder", reorder, "0.25 sends one packet in four at once, ahead of the delayed ones")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(
            f"direction={direction!r} must be 'egress' (what the container sends, the default), "
            "'ingress' (what it receives) or 'both'"
        )
    if rate is not None and (not isinstance(rate, str) or not _RATE.match(rate)):
        raise ValueError(f"rate={rate!r} must be a bandwidth as tc writes it, e.g. '1mbit', '500kbit'")
    for argument, value in (("delay", delay), ("jitter", jitter)):
        if value is not None and (not isinstance(value, str) or not _TIME.match(value)):
            raise ValueError(f"{argument}={value!r} must be a duration as tc writes it, e.g. '100ms'")
    if jitter is not None and delay is None:
        raise ValueError("jitter= needs delay= (it varies the delay)")
    if reorder is not None and delay is None:
        raise ValueError("reorder= needs delay= (netem reorders by sending some packets without the delay)")
    if all(value is None for value in (loss, rate, delay, duplicate, corrupt)):
        raise ValueError("degrade() needs at least one of loss=, rate=, delay=, duplicate=, corrupt=")


def check_degrade(
    helpers: FaultHelpers,
    member: Container,
    settings: Settings,
    to: object,
    network: Network | None,
    missing: Callable[..., None],
) -> None:
    """What ``degrade()`` refuses, beyond its settings (:func:`check_settings`), before
    anything is applied; ``missing(reason, explicit=)`` for a kernel without netem, or
    without what ingress shaping needs (an IFB device, the ingress qdisc, mirred)."""
    if network is not None and (not hasattr(network, "docker_name") or network.docker_name not in member.endpoints):
        raise ValueError(f"network={network!r}: {member.name!r} is not on that network")
    netem = [key for key in NETEM if settings.get(key) is not None]
    if to is not None and netem:
        # Before netem is looked for: the answer does not depend on the kernel.
        raise ValueError(
            f"{netem[0]}= with to= is not supported: netem would {netem[0]} everything the container sends, "
            f"not only what goes to those peers; drop to= ({netem[0]}= on all its traffic, or on one network "
            "with network=), or use loss= or rate= with to="
        )
    if netem:
        probe = f"{TC} qdisc add dev lo root netem delay 1ms && {TC} qdisc del dev lo root"
        why = _kernel_lacks(helpers, member, "netem", probe)
        if why:
            # A kernel feature this machine lacks: a skip even under --dockernet-require
            # (netem is on its list of allowed skips), as for swarm's IPVS.
            missing(
                f"{netem[0]}= needs the kernel's netem queueing discipline (sch_netem), which this machine "
                f"lacks: {why}",
                explicit=False,
            )
    if "i" in directions(settings) and (settings["rate"] is not None or netem):
        # Each piece in turn (each needs those before it), in one exec; the first missing is named.
        steps = " && ".join(
            f'{{ o=$({p} 2>&1) || {{ echo "@@{i} $o"; false; }}; }}' for i, (_, p) in enumerate(_INGRESS_NEEDS)
        )
        why = _kernel_lacks(
            helpers, member, "ingress", steps, f"{TC} qdisc del dev lo ingress; ip link del dn-ifb-check"
        )
        found = re.search(r"@@(\d) (.*)", why, re.S)
        if why:
            piece, why = (_INGRESS_NEEDS[int(found[1])][0], found[2].strip()) if found else ("an IFB device", why)
            missing(
                f"direction={settings['direction']!r} with rate= or netem needs {piece}, which this machine's "
                f"kernel lacks: {why}",
                explicit=False,
            )


def _kernel_lacks(helpers: FaultHelpers, member: Container, feature: str, probe: str, cleanup: str = "") -> str:
    """Why the kernel of ``member``'s engine lacks ``feature`` ("" if it has it): ``probe`` run
    once per run and engine in a member's namespace (what it made removed by ``cleanup``)."""
    known = helpers.context.facts.kernel_features
    key = (member.host, feature)
    if key not in known:
        code, output = helpers.run(
            member,
            f'out=$({probe} 2>&1); code=$?; {{ {cleanup or "true"}; }} 2>/dev/null; echo "$out"; exit $code',
        )
        known[key] = "" if code == 0 else output.strip()[-200:] or f"exit {code}"
    return known[key]


def interfaces(helpers: FaultHelpers, member: Container, network: Network | None) -> tuple[list[str], list[str], bool]:
    """The interfaces of ``member``'s namespace; those of ``network`` (by its IPv4 address;
    all when None); whether those have IPv6 (an IPv6 network's)."""
    code, output = helpers.run(member, "ip -o addr show")
    wanted: str | None = ""
    if network is not None:
        endpoint = member.endpoints.get(network.docker_name)
        wanted = endpoint.ip if endpoint is not None else None  # left: none of them
    every: list[str] = []
    chosen: list[str] = []
    ipv6: set[str] = set()
    for interface, family, address in parse_ip_addresses(output):
        if interface != "lo" and not interface.startswith(ifb_of("")):  # an ingress degradation's own
            every += [] if interface in every else [interface]
            if family == "inet" and (wanted == "" or address == wanted) and interface not in chosen:
                chosen.append(interface)
            if family == "inet6":
                ipv6.add(interface)
    return every, chosen, any(i in ipv6 for i in chosen)


class Degradation(FaultBase):
    """What ``degrade()`` put on one container: loss, a rate cap, netem's delay, duplication,
    corruption, reordering, on what it sends, receives or both (``direction``); ``restore()``
    lifts it. Also a context manager that restores on exit."""

    lifted_as = "restored"

    def __init__(
        self,
        keeper: Keeper,
        number: int,
        container: Container,
        settings: Settings,
        to: list[Container],
        network: Network | None,
    ):
        super().__init__(keeper, number)
        self.container = container
        self.loss, self.rate = settings["loss"], settings["rate"]
        self.delay, self.jitter = settings["delay"], settings["jitter"]
        self.duplicate, self.corrupt = settings.get("duplicate"), settings.get("corrupt")
        self.reorder = settings.get("reorder")
        self.direction: str = settings.get("direction") or "egress"
        self.to, self.network = to, network

    @property
    def settings(self) -> Settings:
        """Its settings, as :mod:`.rules` takes them."""
        return {
            "loss": self.loss,
            "rate": self.rate,
            "delay": self.delay,
            "jitter": self.jitter,
            "duplicate": self.duplicate,
            "corrupt": self.corrupt,
            "reorder": self.reorder,
            "direction": self.direction,
        }

    @property
    def restored(self) -> bool:
        return self.lifted

    def restore(self) -> None:
        """Lift this degradation; a no-op once restored."""
        self.lift()

    def title(self) -> str:
        parts = [f"loss {self.loss:g}" if self.loss is not None else "", f"rate {self.rate}" if self.rate else ""]
        if self.delay:
            parts.append(f"delay {self.delay}" + (f" ± {self.jitter}" if self.jitter else ""))
        parts += [f"{key} {value:g}" for key in ("duplicate", "corrupt", "reorder") if (value := getattr(self, key))]
        parts.append(self.direction if self.direction != "egress" else "")
        parts.append(f"on {self.network.name}" if self.network is not None else "")
        parts.append(f"to [{', '.join(c.name for c in self.to)}]" if self.to else "")
        return f"degrade #{self.number} {self.container.name}: {', '.join(p for p in parts if p)}"

    def _measure(self) -> tuple[Any, str]:
        """From the container to a peer (the first of ``to``, else one it shares a network
        with): the loss (and round-trip time) with ``measure()`` (a ping's request or its
        answer is lost, whichever direction is degraded), the rate with ``throughput()`` from
        the container (egress, both) or to it (ingress)."""
        peer = self.to[0] if self.to else self._peer()
        found: list[Any] = []
        said: list[str] = []
        if self.loss is not None or self.delay or not self.rate:  # netem's extras: what ping sees of them
            measured = self._keeper.measure(self.container, peer)
            found.append(measured)
            said.append(f"loss {round(measured.loss, 2)}" if self.loss is not None or not self.delay else "")
            if self.delay and measured.rtt_avg is not None:
                said.append(f"round trip {measured.rtt_avg * 1000:.0f} ms")
        if self.rate:
            src, dst = (peer, self.container) if self.direction == "ingress" else (self.container, peer)
            bits = self._keeper.throughput(src, dst)
            found.append(bits)
            said.append(f"rate {bits / 1e6:.2f} mbit/s")
        return found[0] if len(found) == 1 else tuple(found), ", ".join(s for s in said if s)

    def _peer(self) -> Container:
        mine = set(self.container.endpoints)
        for other in self.container.context.containers:
            if other is not self.container and mine & set(other.endpoints) and other.status().startswith("running"):
                return other
        raise DockernetError(
            f"{self.title()}: verify() needs a running container that shares a network with "
            f"{self.container.name!r} to measure towards; make one, or degrade(..., to=...)"
        )

    def apply(self) -> None:
        """Put it on the container; if that fails, nothing of it stays."""
        try:
            self._put(new=True)
        except BaseException:
            helpers = self._keeper.helpers
            helpers.run(self.container, restore_script(interfaces(helpers, self.container, None)[0]))
            raise

    def reapply(self, container: Container) -> None:
        """Put it again after ``container`` (it, or a peer of ``to``) restarted or joined or
        left a network."""
        if self.container is container or container in self.to:
            put_again(self.container, self._put)

    def check(self) -> None:
        """DockernetError unless its loss chains, and the queueing disciplines of its rate cap
        or netem, are on the container's interfaces, or (ingress) their IFB devices with the
        interfaces' ingress qdisc (none while it is off its network)."""
        helpers = self._keeper.helpers
        chosen = interfaces(helpers, self.container, self.network)[1]
        if not chosen:
            return  # off its network: nothing of it is in force now
        ways = directions(self.settings)
        hooks = {"o": "OUTPUT", "i": "INPUT"}
        script = jumps_script([(f"DN-D-{way}", hooks[way]) for way in ways], ("iptables",))
        netem = any(getattr(self, key) is not None for key in NETEM)
        if netem or self.rate:
            if "o" in ways:
                script += " && " + qdisc_script(chosen, "netem" if netem else "htb" if self.to else "tbf")
            if "i" in ways:
                script += " && " + qdisc_script([ifb_of(i) for i in chosen], "netem" if netem else "tbf")
                script += " && " + ingress_script(chosen)
        code, output = helpers.run(self.container, script)
        if code != 0:
            raise DockernetError(
                f"{self.title()}: its rules are not in force in {self.container.name!r}'s network "
                f"namespace: {output.strip()[-300:]}"
            )

    def _take_off(self) -> None:
        helpers = self._keeper.helpers
        try:
            helpers.run(self.container, restore_script(interfaces(helpers, self.container, None)[0]))
        except DockernetError:
            if self.container.status().startswith("running"):
                raise

    def _put(self, new: bool = False) -> None:
        """Put it on its container's interfaces now (those of its network, while on it)."""
        helpers = self._keeper.helpers
        member = self.container
        every, chosen, has_ipv6 = interfaces(helpers, member, self.network)
        if not chosen:
            if new:
                raise DockernetError(f"degrade: {member.name!r} has no network interface to degrade")
            helpers.run(member, restore_script(every))  # off its network: nothing to cover there now
            return
        peers = addresses(self.to) if self.to else None
        ipv6 = bool(self.loss) and (bool(peers[1]) if peers is not None else has_ipv6)
        if ipv6:
            towards = f"to {', '.join(peers[1])}" if peers is not None else f"on {', '.join(chosen)}"
            helpers.require_ipv6(member, f"degrade {member.name!r}", f"loss= applies to IPv6 traffic {towards}")
        code, output = helpers.run(member, degrade_script(self.settings, every, chosen, peers, ipv6))
        if code != 0:
            raise DockernetError(
                f"degrade {member.name!r}: the rules could not be applied (exit {code}): {output.strip()[-800:]}"
            )
