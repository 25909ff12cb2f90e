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

Settings = dict[str, Any]  # degrade()'s loss, rate, delay and jitter
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


def partition_script(chain: str, peers4: list[str], peers6: list[str], one_way: bool) -> str:
    """Put a partition's chains in place towards ``peers4``/``peers6``; what may be there
    already goes first (re-applied after a restart or a new network: idempotent). It ends
    by printing, per family it covers, how many DROP rules the chain lists: the kernel's
    word that the rules are in place."""
    lines = [lift_script(chain)]
    for tool, peers in (("iptables", peers4), ("ip6tables", peers6)):
        if tool == "ip6tables" and not peers:
            continue
        lines += [f"{tool} -w -N {chain}-o", f"{tool} -w -N {chain}-i"]
        if tool == "ip6tables":
            lines += _neighbour_discovery(f"{chain}-o") + _neighbour_discovery(f"{chain}-i")
        for address in peers:
            if one_way:
                lines.append(
                    f"{tool} -w -A {chain}-o -d {address} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
                )
                lines.append(f"{tool} -w -A {chain}-o -d {address} -j DROP")
            else:
                lines.append(f"{tool} -w -A {chain}-o -d {address} -j DROP")
                lines.append(f"{tool} -w -A {chain}-i -s {address} -j DROP")
        lines += [f"{tool} -w -I OUTPUT -j {chain}-o", f"{tool} -w -I INPUT -j {chain}-i"]
        lines.append(f"{tool} -w -S {chain}-o | {{ grep -c -- '-j DROP' || true; }}")  # 0 peers: a stopped b
    return " && ".join(lines)


def partition_counts(peers4: list[str], peers6: list[str]) -> list[str]:
    """What :func:`partition_script` prints last when every rule is in place."""
    return [str(len(peers4))] + ([str(len(peers6))] if peers6 else [])


def lift_script(chain: str) -> str:
    """Remove a partition's chains and their jumps; nothing left if they were never made."""
    return "; ".join(
        [
            *(
                line
                for tool in FAMILIES
                for line in (
                    f"{tool} -w -D OUTPUT -j {chain}-o 2>/dev/null",
                    f"{tool} -w -D INPUT -j {chain}-i 2>/dev/null",
                    f"{tool} -w -F {chain}-o 2>/dev/null",
                    f"{tool} -w -F {chain}-i 2>/dev/null",
                    f"{tool} -w -X {chain}-o 2>/dev/null",
                    f"{tool} -w -X {chain}-i 2>/dev/null",
                )
            ),
            "true",
        ]
    )


def degrade_script(
    settings: Settings,
    every: list[str],
    interfaces: list[str],
    peers: tuple[list[str], list[str]] | None,
    ipv6: bool,
) -> str:
    """Put a degradation on ``interfaces`` (what was on ``every`` interface goes first):
    towards ``peers`` (IPv4, IPv6) only, or towards everyone when None. ``ipv6``: the loss
    rules go in ip6tables too."""
    loss, rate, delay, jitter = settings["loss"], settings["rate"], settings["delay"], settings["jitter"]
    families = FAMILIES if ipv6 else FAMILIES[:1]
    lines = [restore_script(every)]
    for tool in families:
        lines += [f"{tool} -w -N DN-D-o", f"{tool} -w -I OUTPUT -j DN-D-o"]
    if ipv6:
        lines += _neighbour_discovery("DN-D-o")
    if loss:
        chance = f"-m statistic --mode random --probability {float(loss):.6f}"
        for tool, towards in zip(families, [None, None] if peers is None else peers):
            for interface in interfaces:
                for peer in [None] if towards is None else towards:
                    match = f"-o {interface}" + (f" -d {peer}" if peer else "")
                    lines.append(f"{tool} -w -A DN-D-o {match} {chance} -j DROP")
    for interface in interfaces:
        if delay:
            netem = f"netem delay {delay}" + (f" {jitter}" if jitter else "")
            lines.append(f"{TC} qdisc replace dev {interface} root {netem}" + (f" rate {rate}" if rate else ""))
        elif rate and peers is None:
            lines.append(f"{TC} qdisc replace dev {interface} root tbf rate {rate} burst 32kbit latency 400ms")
        elif rate and peers is not None:
            lines += [
                f"{TC} qdisc replace dev {interface} root handle 1: htb default 1",
                f"{TC} class add dev {interface} parent 1: classid 1:1 htb rate 10gbit",
                f"{TC} class add dev {interface} parent 1: classid 1:10 htb rate {rate}",
            ]
            lines += [
                f"{TC} filter add dev {interface} parent 1: protocol ip prio 1 u32 match ip dst {peer}/32 flowid 1:10"
                for peer in peers[0]
            ]
            lines += [
                f"{TC} filter add dev {interface} parent 1: protocol ipv6 prio 2 u32 "
                f"match ip6 dst {peer}/128 flowid 1:10"
                for peer in peers[1]
            ]
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


def restore_script(interfaces: Iterable[str]) -> str:
    """Remove a degradation: its chains and jumps, and the root qdisc of each interface."""
    return "; ".join(
        [
            *(
                line
                for tool in FAMILIES
                for line in (
                    f"{tool} -w -D OUTPUT -j DN-D-o 2>/dev/null",
                    f"{tool} -w -F DN-D-o 2>/dev/null",
                    f"{tool} -w -X DN-D-o 2>/dev/null",
                )
            ),
            *(f"{TC} qdisc del dev {interface} root 2>/dev/null" for interface in interfaces),
            "true",
        ]
    )
