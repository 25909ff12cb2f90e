"""The readers of the service keys that shape one container's kernel view, resolver and
limits (``services.read_keys`` puts them into a :class:`~.services.ServiceDef`):
``sysctls``, ``extra_hosts``, ``dns``, ``dns_search``,
``dns_opt``, ``mac_address``, ``tmpfs``, ``shm_size``, ``ulimits``, ``stop_grace_period``,
``platform`` and ``runtime`` (``init`` is :mod:`.services`'). Reading never talks to an
engine; :func:`.on_engine.check_on_engine` checks what only the engine can tell (its
platform, its runtimes, its API) and what the DNS mode decides, before ``compose()``
makes anything.

Hermetic DNS (see docs/explanation/hermetic-dns.md): ``dns_search`` and ``dns_opt`` apply
on top of the plugin's settings (they cannot make a lookup leave the machine); a ``dns``
server is used when it is an address on one of the stack's networks (a subnet the file
fixes: only the test's containers answer there), and listed in the ignored keys' warning
otherwise. With ``--dockernet-dns=host`` all three apply as written.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ComposeError
from .values import items, mapping, scalar

KEYS = (
    "sysctls extra_hosts dns dns_search dns_opt mac_address tmpfs shm_size ulimits stop_grace_period platform runtime"
).split()
# Sysctls of the IPC namespace: namespaced, but not the network's.
IPC_SYSCTLS = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")
ULIMITS = "as core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime sigpending stack".split()
HOST_GATEWAY = "host-gateway"  # the engine puts its host's address on the default bridge there
_HOST = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")
PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9_]+)?$")


def sysctls(value: object, where: str, network_mode: str | None) -> dict[str, str]:
    """``{"net.ipv4.ip_forward": "1"}`` from the mapping or the list (``- name=value``)."""
    found: dict[str, str] = {}
    if isinstance(value, list):
        for i, entry in enumerate(value):
            if not isinstance(entry, str) or "=" not in entry:
                raise ComposeError(f"{where}[{i}]: {entry!r} is not 'name=value', such as net.ipv4.ip_forward=1")
            key, _, setting = entry.partition("=")
            found[key.strip()] = setting.strip()
    else:
        for key, setting in mapping(value, where).items():
            found[str(key)] = "" if setting is None else scalar(setting, f"{where}.{key}")
    for key, setting in found.items():
        at = f"{where}.{key}"
        if not key.startswith("net."):
            why = (
                "an IPC namespace sysctl"
                if key.startswith(IPC_SYSCTLS)
                else "not namespaced: it would change the engine's kernel for every container (the engine refuses it)"
            )
            raise ComposeError(
                f"{at}: {why}; compose() sets the network namespace's sysctls (net.*) only: drop it (e.g. in an "
                "override file with !reset) or set it in the image"
            )
        if network_mode == "host" or (network_mode or "").startswith(("service:", "container:")):
            whose = "the host's" if network_mode == "host" else "another service's"
            raise ComposeError(
                f"{at}: the service runs in {whose} network namespace (network_mode: {network_mode}): a net.* sysctl "
                "there would change that namespace; set it on the service that owns it"
            )
        if not setting:
            raise ComposeError(f"{at}: give a value, such as {key}=1")
    return found


def extra_hosts(value: object, where: str) -> list[str]:
    """``["name:address", ...]`` as the engine takes them, from ``- name:address``,
    ``- name=address`` or ``{name: address or [addresses]}``; an address is an IP address
    or ``host-gateway``."""
    pairs: list[tuple[str, Any, str]] = []
    if isinstance(value, list):
        for i, entry in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(entry, str):
                raise ComposeError(f"{at}: {entry!r} is not 'host:address' or 'host=address'")
            separator = "=" if "=" in entry else ":"
            host, _, address = entry.partition(separator)
            pairs.append((host, address, at))
    else:
        for host, addresses in mapping(value, where).items():
            at = f"{where}.{host}"
            for i, address in enumerate(addresses if isinstance(addresses, list) else [addresses]):
                pairs.append((str(host), address, f"{at}[{i}]" if isinstance(addresses, list) else at))
    entries = []
    for host, address, at in pairs:
        if not _HOST.match(host):
            raise ComposeError(f"{at}: {host!r} is not a host name (letters, digits, '.', '-', '_')")
        entries.append(f"{host}:{_host_address(address, at)}")
    return entries


def _host_address(value: object, where: str) -> str:
    if value == HOST_GATEWAY:
        return HOST_GATEWAY
    try:
        return str(ipaddress.ip_address(str(value).strip().removeprefix("[").removesuffix("]")))
    except ValueError:
        raise ComposeError(
            f"{where}: {value!r} is not an IP address (such as 10.9.0.5 or ::1) or {HOST_GATEWAY!r}"
        ) from None


def dns_values(key: str, value: object, where: str) -> list[str]:
    given = [value] if isinstance(value, str) and key != "dns_opt" else items(value, where)
    found = []
    for i, entry in enumerate(given):
        at = where if isinstance(value, str) else f"{where}[{i}]"
        if not isinstance(entry, str) or not entry.strip() or any(c.isspace() for c in entry):
            raise ComposeError(f"{at}: {entry!r} is not a {_DNS_WHAT[key]}")
        if key == "dns":
            try:
                entry = str(ipaddress.ip_address(entry))
            except ValueError:
                raise ComposeError(f"{at}: {entry!r} is not a DNS server's IP address, such as 10.9.0.53") from None
        found.append(entry)
    return found


_DNS_WHAT = {
    "dns": "DNS server's IP address",
    "dns_search": "search domain such as example.test",
    "dns_opt": "resolver option such as ndots:2 or timeout:1",
}


def tmpfs_entry(entry: object, where: str) -> tuple[str, str]:
    if not isinstance(entry, str) or not entry.startswith("/"):
        raise ComposeError(f"{where}: {entry!r} is not '/path/inside' or '/path/inside:options' (such as size=64m)")
    target, _, options = entry.partition(":")
    return target, options


def ulimits(value: object, where: str) -> list[dict[str, Any]]:
    """``[{"Name": "nofile", "Soft": 1024, "Hard": 2048}]`` from ``{nofile: 1024}`` or
    ``{nofile: {soft: 1024, hard: 2048}}``."""
    limits = []
    for limit, setting in mapping(value, where).items():
        at = f"{where}.{limit}"
        if limit not in ULIMITS:
            raise ComposeError(f"{at}: not a ulimit; the ulimits are {', '.join(ULIMITS)}")
        if isinstance(setting, Mapping):
            keys = sorted(str(k) for k in setting)
            if keys != ["hard", "soft"]:
                raise ComposeError(f"{at}: give 'soft' and 'hard' (and nothing else), got {keys}")
            soft, hard = _limit(setting["soft"], f"{at}.soft"), _limit(setting["hard"], f"{at}.hard")
            if hard != -1 and (soft == -1 or soft > hard):
                raise ComposeError(f"{at}: soft {soft} is above hard {hard}: the soft limit must not exceed the hard")
        else:
            soft = hard = _limit(setting, at)
        limits.append({"Name": str(limit), "Soft": soft, "Hard": hard})
    return limits


def _limit(value: object, where: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < -1:
        raise ComposeError(f"{where}: {value!r} is not a limit: a whole number, 0 or more (-1 for unlimited)")
    return value


def mac_address(value: object, where: str) -> str:
    if not isinstance(value, str) or not _MAC.match(value):
        raise ComposeError(f"{where}: {value!r} is not a MAC address such as 02:42:0a:09:00:05")
    mac = value.replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        raise ComposeError(f"{where}: {value} is a multicast address (its first byte is odd); give a unicast one")
    return mac


def ip_address(value: object, where: str, version: int) -> str:
    """An ``ipv4_address`` or ``ipv6_address`` of a service's network."""
    kind = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    try:
        return str(kind(value if isinstance(value, str) else ""))
    except ValueError:
        example = "10.9.0.5" if version == 4 else "fd00:9::5"
        raise ComposeError(f"{where}: {value!r} is not an IPv{version} address such as {example}") from None


def ipv6_config(configs: object, where: str, ipv6: bool) -> tuple[object, str | None]:
    """A network's ``ipam.config`` without its IPv6 entry, and that entry's subnet."""
    if not isinstance(configs, list):
        return configs, None
    rest, subnet6 = [], None
    for i, config in enumerate(configs):
        subnet = config.get("subnet") if isinstance(config, Mapping) else None
        if not isinstance(subnet, str) or ":" not in subnet:
            rest.append(config)
            continue
        at = f"{where}[{i}]"
        if set(config) - {"subnet"}:
            raise ComposeError(
                f"{at}: an IPv6 entry takes 'subnet' only (the gateway is the subnet's first address), got {config}"
            )
        if not ipv6:
            raise ComposeError(f"{at}.subnet: an IPv6 subnet needs the network's enable_ipv6: true")
        if subnet6 is not None:
            raise ComposeError(f"{at}.subnet: give one IPv6 subnet per network, got {subnet6} and {subnet}")
        try:
            network = ipaddress.IPv6Network(subnet, strict=True)
        except ValueError as exc:
            raise ComposeError(f"{at}.subnet: {subnet!r} is not an IPv6 network such as fd00:9::/64: {exc}") from None
        if network.prefixlen > 124:
            raise ComposeError(f"{at}.subnet: {subnet!r} is too small: /124 at the least")
        subnet6 = str(network)
    return rest, subnet6


def check_ipv6_address(
    at: str, service: str, net: str, extra: Mapping[str, str], network: Any, claimed: dict[tuple[str, str], str]
) -> None:
    """A service's ``ipv6_address`` on ``net``: a host address of the IPv6 subnet the file
    gives the network, other than the gateway (its first), and no other service's."""
    address = extra.get("ipv6_address")
    if address is None:
        return
    where = f"{at}.networks.{net}.ipv6_address"
    subnet6 = getattr(network, "subnet6", None)
    if subnet6 is None:
        raise ComposeError(
            f"{where}: {address!r}: a fixed IPv6 address needs the network's own IPv6 subnet: give the network "
            "enable_ipv6: true and ipam: {config: [{subnet: fd00:9::/64}]}"
        )
    subnet, ip = ipaddress.IPv6Network(subnet6), ipaddress.IPv6Address(address)
    if ip not in subnet:
        raise ComposeError(f"{where}: {address!r} is not in the network's IPv6 subnet {subnet6}")
    if ip in (subnet.network_address, subnet.network_address + 1):
        raise ComposeError(f"{where}: {address!r} is the subnet's own or its gateway's address: pick another")
    other = claimed.setdefault((net, str(ip)), service)
    if other != service:
        raise ComposeError(f"{where}: {address!r} is services.{other}'s already: give each service its own")
