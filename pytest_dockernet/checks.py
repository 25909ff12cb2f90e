"""Checking the arguments of public calls: each check names the argument and how to fix it.

No Docker calls here: what can be told from the value alone is refused before anything is made.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
# A logical name is also a host name and a DNS label: at most 63 characters.
MAX_NAME = 63
PROTOCOLS = ("tcp", "udp", "sctp")


def is_ip(text: str) -> bool:
    """``text`` is an IPv4 or IPv6 address (not a name to resolve)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_name(what: str, name: object) -> str:
    """A Docker-safe name (network, container, service, alias)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if len(name) > MAX_NAME:
        raise ValueError(
            f"{what} {name[:20]!r}... is {len(name)} characters long: names are host names and DNS labels, "
            f"at most {MAX_NAME} characters"
        )
    return name


def _is_list(value: object) -> TypeGuard[Iterable[Any]]:
    """A list, tuple or other collection of items, but not a lone string or a mapping."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))


def check_names(what: str, value: object, each: str | None = None) -> list[str]:
    """A list of names, each checked as ``each``; None is an empty list."""
    if value is None:
        return []
    if not _is_list(value):
        raise TypeError(f"{what} must be a list of names such as ['db'], got {value!r}")
    return [check_name(each or what, v) for v in value]


def check_list(what: str, value: object, example: str) -> list[Any]:
    if not _is_list(value):
        raise TypeError(f"{what} must be a list such as {example}, got {value!r}")
    return list(value)


def check_str_map(what: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{what} must be a dict of str to str, got {value!r}")
    return dict(value)


def check_str_list(what: str, value: object, example: str) -> list[str] | None:
    """None, or a list of strings."""
    if value is None:
        return None
    items = list(value) if _is_list(value) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise TypeError(f"{what} must be a list of {example}, got {value!r}")
    return items


def check_image(value: object) -> str | None:
    """None (the probe image) or a non-empty image reference without white space."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"image={value!r} is not an image reference such as 'redis:7' or 'registry/app:1.2'")
    return value


def check_command(value: object, argument: str = "command") -> str | list[str] | None:
    """None, a shell command line, or a list of arguments (strings)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{argument}={value!r} must be a string or a non-empty list of strings, e.g. ['httpd', '-f']")


def check_environment(value: object) -> dict[str, str] | list[str] | None:
    """None, ``{"NAME": "value"}`` or ``["NAME=value", ...]``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()):
            raise TypeError(f"environment must map names to strings, e.g. {{'MODE': 'test'}}, got {value!r}")
        return dict(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and "=" in v[1:] for v in value):
        return list(value)
    raise TypeError(f"environment must be a dict {{'NAME': 'value'}} or a list ['NAME=value'], got {value!r}")


def check_bool(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_timeout(timeout: object, argument: str = "timeout") -> float:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"{argument}={timeout!r} must be a positive number of seconds")
    return float(timeout)


def check_port(port: object) -> int | None:
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise ValueError(f"port={port!r} is not a TCP port number (1-65535), or None for ICMP")
    return port


def check_count(what: str, value: object) -> int:
    """A whole number, 0 or more (replicas)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what}={value!r} must be a whole number, 0 or more")
    return value


def unusable_range(net: ipaddress.IPv4Network) -> str | None:
    """Why containers cannot use addresses of ``net`` (None when they can)."""
    if net.subnet_of(ipaddress.IPv4Network("0.0.0.0/8")):
        return "it is in 0.0.0.0/8 ('this network')"
    for kind in ("loopback", "link_local", "multicast", "reserved"):
        if getattr(net, f"is_{kind}"):
            return f"it is a {kind.replace('_', '-')} range"
    return None


def check_subnet(subnet: object, gateway: object) -> ipaddress.IPv4Network | None:
    """``subnet`` as a network (None when not given); ``gateway`` must be one of its hosts."""
    if subnet is None:
        if gateway is not None:
            raise ValueError(f"gateway={gateway!r} needs subnet= as well (the gateway must lie in it)")
        return None
    if not isinstance(subnet, str):
        raise TypeError(f"subnet={subnet!r} must be a string such as '10.99.0.0/24'")
    try:
        net = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise ValueError(f"subnet={subnet!r} is not a valid IPv4 network such as 10.99.0.0/24: {exc}") from None
    if net.prefixlen > 30:
        raise ValueError(f"subnet={subnet!r} is too small: a network needs a gateway and hosts, /30 at the least")
    why = unusable_range(net)
    if why:
        raise ValueError(f"subnet={subnet!r} cannot be used for containers: {why}")
    if gateway is not None:
        if not isinstance(gateway, str):
            raise TypeError(f"gateway={gateway!r} must be a string such as '10.99.0.1'")
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise ValueError(f"gateway={gateway!r} is not an IPv4 address") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ValueError(f"gateway={gateway!r} is not a host address of subnet={subnet!r}")
    return net


def exposed_ports(ports: object) -> list[int | tuple[int, str]] | None:
    """``{"8080/tcp": ..., 53: ...}`` keys as the SDK's create_container wants them."""
    if not ports:
        return None
    if not isinstance(ports, Mapping):
        example = "{container port: host port or None} such as {8080: None}"
        raise TypeError(f"ports must be a dict {example}, got {ports!r}")
    exposed: list[int | tuple[int, str]] = []
    for key, published in ports.items():
        port, _, proto = str(key).partition("/")
        try:
            number = int(port)
        except ValueError:
            number = 0
        if not 0 < number < 65536 or (proto and proto not in PROTOCOLS) or isinstance(key, bool):
            raise ValueError(
                f"ports: {key!r} is not a container port such as 8080 or '8080/tcp' ({', '.join(PROTOCOLS)})"
            )
        if published is not None and not (
            (isinstance(published, int) and not isinstance(published, bool) and 0 < published < 65536)
            or isinstance(published, (str, tuple, list))
        ):
            raise ValueError(f"ports[{key!r}]={published!r} is not a host port (1-65535), or None for a free one")
        exposed.append((number, proto) if proto else number)
    return exposed


def check_engine(host: object, engines: int) -> int:
    """``host`` must be the index of one of the run's ``engines`` engines."""
    if not isinstance(host, int) or isinstance(host, bool) or not 0 <= host < engines:
        where = (
            f"engines 0 to {engines - 1} (0 is the environment's engine)"
            if engines > 1
            else "only engine 0: name further engines with --dockernet-hosts or start a lab with --dockernet-lab N"
        )
        raise ValueError(f"host={host!r} is not an engine of this run: there are {where}")
    return host
