"""The shell scripts a fault helper (:mod:`.helpers`) runs in a container's network
namespace: a partition's chains, a degradation's chain and queueing disciplines, the
scripts that remove them, and those that check they are in force.

Both address families: ``iptables`` for IPv4 peers, ``ip6tables`` for IPv6 ones (global
addresses and the link-local ones, which the kernel forms from the interface's MAC
address). The removal scripts name both and ignore what is not there, so they also clean
up after a fault that never had IPv6 rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from .image import TC

Settings = dict[str, Any]  # degrade()'s loss, rate, delay, jitter, duplicate, corrupt, reorder, direction
FAMILIES = ("iptables", "ip6tables")
# IPv6's neighbour discovery passes every fault, as IPv4's ARP (which iptables never sees)
# does: dropped, it would outlive the fault (a neighbour marked failed drops the first
# packets after heal() or restore()), and in a one-way partition the cut side could not
# answer b's solicitations (they are never ESTABLISHED), so b could not reach it either.
_NEIGHBOUR_DISCOVERY = ("neighbour-solicitation", "neighbour-advertisement")


def _neighbour_discovery(chain: str) -> list[str]:
    return [f"ip6tables -w -A {chain} -p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in _NEIGHBOUR_DISCOVERY]


def link_local(mac: str) -> str | None:
    """The link-local IPv6 address the kernel forms from ``mac`` (modified EUI-64), or None."""
    try:
        octets = [int(part, 16) for part in mac.split(":")]
    except ValueError:
        return None
    if len(octets) != 6:
        return None
    eui = [octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:]]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80, *[0] * 6, *eui])))


# What "reject" answers with, per family: TCP gets a reset, everything else an ICMP error.
_UNREACHABLE = {"iptables": "icmp-port-unreachable", "ip6tables": "icmp6-port-unreachable"}
# The answers REJECT itself sends go through the namespace's OUTPUT chain (the reset it sends
# to b) and INPUT chain (the reset it hands to a's own socket, as if from b): a partition's
# chains let them pass, or the rejecting side's answer would be rejected in turn (a drop).
_ANSWERS = {
    "iptables": ("-p tcp --tcp-flags RST RST", "-p icmp --icmp-type port-unreachable"),
    "ip6tables": ("-p tcp --tcp-flags RST RST", "-p ipv6-icmp --icmpv6-type port-unreachable"),
}


def _cuts(tool: str, mode: str, towards: str, ports: list[int] | None, one_way: bool) -> list[tuple[str, str]]:
    """A partition's rules for one peer in one chain, as ``(match, target)``; ``towards`` is
    ``-d PEER`` (what the member sends) or ``-s PEER`` (what it gets). With ``ports``, the
    packets of connections to those ports, TCP and UDP: those of the member's connections to
    the peer's ports (its packets go to ``--dport``, the peer's replies come from ``--sport``)
    and of the peer's connections to the member's ports (the other way round); one way, only
    what the member sends to the peer's ports."""
    reject = {"tcp": "REJECT --reject-with tcp-reset", "udp": f"REJECT --reject-with {_UNREACHABLE[tool]}"}
    other = f"REJECT --reject-with {_UNREACHABLE[tool]}" if mode == "reject" else "DROP"
    if ports is None:
        return [(f"{towards} -p tcp", reject["tcp"]), (towards, other)] if mode == "reject" else [(towards, "DROP")]
    listed = ",".join(str(port) for port in ports)
    sides = ("--dports",) if one_way else ("--dports", "--sports")
    return [
        (f"{towards} -p {protocol} -m multiport {side} {listed}", reject[protocol] if mode == "reject" else "DROP")
        for protocol in ("tcp", "udp")
        for side in sides
    ]


def partition_script(
    chain: str, peers4: list[str], peers6: list[str], one_way: bool, mode: str = "drop", ports: list[int] | None = None
) -> str:
    """Put a partition's chains in place towards ``peers4``/``peers6``; what may be there
    already goes first (re-applied after a restart or a new network: idempotent). ``mode``
    is ``"drop"`` or ``"reject"`` (a TCP reset, else ICMP port unreachable: the sender fails
    at once); ``ports`` narrows it to connections to those ports. It ends by printing, per
    family it covers, how many rules of the cut (DROP or REJECT) the outgoing chain lists:
    the kernel's word that the rules are in place (:func:`partition_counts`)."""
    lines = [lift_script(chain)]
    target = "REJECT" if mode == "reject" else "DROP"
    for tool, peers in (("iptables", peers4), ("ip6tables", peers6)):
        if tool == "ip6tables" and not peers:
            continue
        lines += [f"{tool} -w -N {chain}-o", f"{tool} -w -N {chain}-i"]
        if tool == "ip6tables":
            lines += _neighbour_discovery(f"{chain}-o") + _neighbour_discovery(f"{chain}-i")
        if mode == "reject":
            lines += [f"{tool} -w -A {chain}-{d} {match} -j RETURN" for d in "oi" for match in _ANSWERS[tool]]
        for address in peers:
            if one_way:
                lines.append(
                    f"{tool} -w -A {chain}-o -d {address} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
                )
            lines += [
                f"{tool} -w -A {chain}-o {m} -j {t}" for m, t in _cuts(tool, mode, f"-d {address}", ports, one_way)
            ]
            if not one_way:
                lines += [
                    f"{tool} -w -A {chain}-i {m} -j {t}" for m, t in _cuts(tool, mode, f"-s {address}", ports, False)
                ]
        lines += [f"{tool} -w -I OUTPUT -j {chain}-o", f"{tool} -w -I INPUT -j {chain}-i"]
        lines.append(f"{tool} -w -S {chain}-o | {{ grep -c -- '-j {target}' || true; }}")  # 0 peers: a stopped b
    return " && ".join(lines)


def partition_counts(
    peers4: list[str], peers6: list[str], one_way: bool = False, mode: str = "drop", ports: list[int] | None = None
) -> list[str]:
    """What :func:`partition_script` prints last when every rule is in place."""
    each = len(_cuts("iptables", mode, "", ports, one_way))
    return [str(each * len(peers4))] + ([str(each * len(peers6))] if peers6 else [])


# ``dn_restore PATH TOOL``: TOOL's restore command (``iptables-restore``) into the filter
# table without flushing it, found from the tool's path: a multi-call binary (xtables-nft-multi,
# xtables-legacy-multi) takes it as its first argument, else it lies beside the tool.
_RESTORE = (
    'dn_restore() { [ -n "$1" ] && m=$(readlink -f "$1" 2>/dev/null) || return 1; case "$m" in '
    '*-multi) "$m" "$2-restore" -w --noflush ;; *) "${1%/*}/$2-restore" -w --noflush ;; esac; }'
)


def _chains_removed(tool: str, chains: list[tuple[str, str]]) -> str:
    """Remove ``chains`` (``(chain, hook)``: the hook jumps to it) of ``tool``'s filter table,
    those that are there, in one transaction: nf_tables waits for the kernel after each
    deletion (about 10 ms a command, six of them per partition), a restore does it once.
    Where that fails (no restore command, a jump already gone), one command at a time."""
    listed = "".join(
        f'{tool} -w -S {chain} >/dev/null 2>&1 && p="$p-D {hook} -j {chain}\\n-F {chain}\\n-X {chain}\\n"; '
        for chain, hook in chains
    )
    one_by_one = "; ".join(
        [f"{tool} -w -D {hook} -j {chain} 2>/dev/null" for chain, hook in chains]
        + [f"{tool} -w -F {chain} 2>/dev/null; {tool} -w -X {chain} 2>/dev/null" for chain, _ in chains]
    )
    restore = f'printf "*filter\\n${{p}}COMMIT\\n" | dn_restore "$DN_PATH_{tool.upper()}" {tool} >/dev/null 2>&1'
    return f'p=""; {listed}[ -z "$p" ] || {restore} || {{ {one_by_one}; }}'


def lift_script(chain: str) -> str:
    """Remove a partition's chains and their jumps; nothing left if they were never made."""
    chains = [(f"{chain}-o", "OUTPUT"), (f"{chain}-i", "INPUT")]
    return "; ".join([_RESTORE, *(_chains_removed(tool, chains) for tool in FAMILIES), "true"])


def ifb_of(interface: str) -> str:
    """The IFB device that carries what ``interface`` receives to an ingress degradation's
    queueing discipline (a name of at most 15 characters)."""
    return f"dn-ifb-{interface}"[:15]


def netem_of(settings: Settings) -> str:
    """netem's arguments for ``settings`` (``delay`` ± ``jitter``, ``duplicate``, ``corrupt``,
    ``reorder`` as percentages), or "" when it has none of them."""
    words = [f"delay {settings['delay']}" + (f" {settings['jitter']}" if settings.get("jitter") else "")]
    words = words if settings["delay"] else []
    words += [
        f"{key} {float(settings[key]) * 100:g}%"
        for key in ("duplicate", "corrupt", "reorder")
        if settings.get(key) is not None
    ]
    return " ".join(words)


def _shaping(device: str, settings: Settings, peers: tuple[list[str], list[str]] | None, egress: bool) -> list[str]:
    """The root queueing discipline of ``device``: netem, a token bucket, or (towards some
    ``peers`` on egress) an HTB class for them."""
    rate, netem = settings["rate"], netem_of(settings)
    if netem:
        return [f"{TC} qdisc replace dev {device} root netem {netem}" + (f" rate {rate}" if rate else "")]
    if not rate:
        return []
    if peers is None or not egress:
        return [f"{TC} qdisc replace dev {device} root tbf rate {rate} burst 32kbit latency 400ms"]
    return [
        f"{TC} qdisc replace dev {device} root handle 1: htb default 1",
        f"{TC} class add dev {device} parent 1: classid 1:1 htb rate 10gbit",
        f"{TC} class add dev {device} parent 1: classid 1:10 htb rate {rate}",
        *(
            f"{TC} filter add dev {device} parent 1: protocol ip prio 1 u32 match ip dst {peer}/32 flowid 1:10"
            for peer in peers[0]
        ),
        *(
            f"{TC} filter add dev {device} parent 1: protocol ipv6 prio 2 u32 match ip6 dst {peer}/128 flowid 1:10"
            for peer in peers[1]
        ),
    ]


def _ingress(interface: str, peers: tuple[list[str], list[str]] | None) -> list[str]:
    """What ``interface`` receives (from ``peers`` only, when given) redirected to its IFB
    device, whose root queueing discipline then shapes it as an egress one would."""
    ifb = ifb_of(interface)
    redirect = f"action mirred egress redirect dev {ifb}"
    lines = [
        f"ip link add {ifb} type ifb",
        f"ip link set {ifb} up",
        f"{TC} qdisc add dev {interface} handle ffff: ingress",
    ]
    if peers is None:
        return [
            *lines,
            f"{TC} filter add dev {interface} parent ffff: protocol all prio 1 u32 match u32 0 0 {redirect}",
        ]
    return [
        *lines,
        *(
            f"{TC} filter add dev {interface} parent ffff: protocol ip prio 1 u32 match ip src {peer}/32 {redirect}"
            for peer in peers[0]
        ),
        *(
            f"{TC} filter add dev {interface} parent ffff: protocol ipv6 prio 2 u32 match ip6 src {peer}/128 {redirect}"
            for peer in peers[1]
        ),
    ]


def directions(settings: Settings) -> list[str]:
    """``"o"`` (egress) and/or ``"i"`` (ingress): the chains and hooks ``settings`` use."""
    direction = settings.get("direction") or "egress"
    return {"egress": ["o"], "ingress": ["i"], "both": ["o", "i"]}[direction]


def degrade_script(
    settings: Settings,
    every: list[str],
    interfaces: list[str],
    peers: tuple[list[str], list[str]] | None,
    ipv6: bool,
) -> str:
    """Put a degradation on ``interfaces`` (what was on ``every`` interface goes first), on
    what they send (egress: chain DN-D-o from OUTPUT, their root queueing discipline), what
    they receive (ingress: chain DN-D-i from INPUT, an IFB device per interface) or both:
    from/towards ``peers`` (IPv4, IPv6) only, or everyone when None. ``ipv6``: the loss
    rules go in ip6tables too."""
    families = FAMILIES if ipv6 else FAMILIES[:1]
    ways = directions(settings)
    lines = [restore_script(every)]
    for way in ways:
        hook = {"o": "OUTPUT", "i": "INPUT"}[way]
        lines += [
            line for tool in families for line in (f"{tool} -w -N DN-D-{way}", f"{tool} -w -I {hook} -j DN-D-{way}")
        ]
        if ipv6:
            lines += _neighbour_discovery(f"DN-D-{way}")
    if settings["loss"]:
        chance = f"-m statistic --mode random --probability {float(settings['loss']):.6f}"
        for way in ways:
            on, peer_flag = ("-o", "-d") if way == "o" else ("-i", "-s")
            for tool, towards in zip(families, [None, None] if peers is None else peers):
                for interface in interfaces:
                    for peer in [None] if towards is None else towards:
                        match = f"{on} {interface}" + (f" {peer_flag} {peer}" if peer else "")
                        lines.append(f"{tool} -w -A DN-D-{way} {match} {chance} -j DROP")
    for interface in interfaces:
        if "o" in ways:
            lines += _shaping(interface, settings, peers, egress=True)
        shaping = _shaping(ifb_of(interface), settings, peers, egress=False)
        if "i" in ways and shaping:
            lines += _ingress(interface, peers) + shaping
    return " && ".join(lines)


def jumps_script(chains: list[tuple[str, str]], families: tuple[str, ...]) -> str:
    """Exit 0 when each ``(chain, hook)`` is in force for each of ``families`` (the chain is
    there and ``hook`` jumps to it); else exit 1, naming the first that is not."""
    return " && ".join(
        f"{{ {tool} -w -C {hook} -j {chain} 2>/dev/null || {{ echo '{tool}: no {chain} from {hook}'; exit 1; }}; }}"
        for tool in families
        for chain, hook in chains
    )


def qdisc_script(interfaces: list[str], qdisc: str) -> str:
    """Exit 0 when the root queueing discipline of each of ``interfaces`` is a ``qdisc``;
    else exit 1, naming the first that is not."""
    checks = [
        f"{{ {TC} qdisc show dev {i} root | grep -q '^qdisc {qdisc} ' || {{ echo 'no {qdisc} on {i}'; exit 1; }}; }}"
        for i in interfaces
    ]
    return " && ".join(checks or ["true"])


def ingress_script(interfaces: list[str]) -> str:
    """Exit 0 when each of ``interfaces`` has an ingress queueing discipline (what redirects
    its traffic to its IFB device); else exit 1, naming the first that has none."""
    checks = [
        f"{{ {TC} qdisc show dev {i} ingress | grep -q '^qdisc ingress ' || "
        f"{{ echo 'no ingress qdisc on {i}'; exit 1; }}; }}"
        for i in interfaces
    ]
    return " && ".join(checks or ["true"])


# Every IFB device of ours, also one whose interface went with its network (it would be in
# the way when the container joins that network again).
_IFBS_REMOVED = (
    f"for d in $(ip -o link show | sed -n 's/^[0-9]*: *\\({ifb_of('')}[^:@]*\\).*/\\1/p'); do ip link del $d; done"
)


def restore_script(interfaces: Iterable[str]) -> str:
    """Remove a degradation: its chains and jumps, and of each interface the root and ingress
    queueing disciplines and the IFB device."""
    chains = [("DN-D-o", "OUTPUT"), ("DN-D-i", "INPUT")]
    return "; ".join(
        [
            _RESTORE,
            *(_chains_removed(tool, chains) for tool in FAMILIES),
            *(
                line
                for interface in interfaces
                for line in (
                    f"{TC} qdisc del dev {interface} root 2>/dev/null",
                    f"{TC} qdisc del dev {interface} ingress 2>/dev/null",
                )
            ),
            _IFBS_REMOVED,
            "true",
        ]
    )
