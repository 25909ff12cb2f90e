"""Checking the arguments of public calls: each check names the argument and how to fix it.

No Docker calls here: what can be told from the value alone is refused before anything is made.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def check_name(what: str, name: object) -> str:
    """A Docker-safe name (network, container, service, alias)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


def check_str_map(what: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{what} must be a dict of str to str, got {value!r}")
    return dict(value)


def check_str_list(what: str, value: object, example: str) -> list[str] | None:
    """None, or a list (not a lone string) of strings."""
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):  # type: ignore[attr-defined]
        raise TypeError(f"{what} must be a list of {example}, got {value!r}")
    return list(value)  # type: ignore[call-overload]


def check_bool(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_timeout(timeout: object) -> float:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
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


def check_subnet(subnet: str | None, gateway: str | None) -> ipaddress.IPv4Network | None:
    """``subnet`` as a network (None when not given); ``gateway`` must be one of its hosts."""
    if subnet is None:
        if gateway is not None:
            raise ValueError(f"gateway={gateway!r} needs subnet= as well (the gateway must lie in it)")
        return None
    try:
        net = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise ValueError(f"subnet={subnet!r} is not a valid IPv4 network such as 10.99.0.0/24: {exc}") from None
    if gateway is not None:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise ValueError(f"gateway={gateway!r} is not an IPv4 address") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ValueError(f"gateway={gateway!r} is not a host address of subnet={subnet!r}")
    return net


def exposed_ports(ports: Mapping[object, object] | None) -> list | None:
    """``{"8080/tcp": ..., 53: ...}`` keys as the SDK's create_container wants them."""
    if not ports:
        return None
    exposed: list = []
    for key in ports:
        port, _, proto = str(key).partition("/")
        try:
            exposed.append((int(port), proto) if proto else int(port))
        except ValueError:
            raise ValueError(f"ports: {key!r} is not a container port such as 8080 or '8080/tcp'") from None
    return exposed
