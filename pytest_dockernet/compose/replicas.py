"""``scale`` and ``deploy``: how many containers a service runs, what they are named, and
what of the file cannot hold for more than one of them.

One replica keeps the service's name; several are ``api-1``, ``api-2``, ... (Compose's
``<project>-api-1`` without the project: here the topology keeps runs apart), each
resolving by its own name and all of them by the service name and its aliases. Everything
that would make two replicas claim one thing (a ``container_name``, a fixed address, a
fixed host port) is refused here, before anything is made, as Compose or the engine would
refuse it half-way through ``docker compose up``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ComposeError
from .spec_keys import check_keys
from .values import items, mapping, name, port_range

# Each replica is a container the engine keeps; a typo such as 1000 is refused rather than made.
MAX_REPLICAS = 100
MODES = ("replicated", "global")
ENDPOINT_MODES = ("vip", "dnsrr")


def replica_count(spec: Mapping[str, Any], where: str, ignored: list[str], service_name: str) -> int:
    """How many containers service ``service_name`` runs, from ``scale`` and ``deploy``
    (1 when neither says); ``ignored`` collects the deploy keys that change nothing here
    (spec_keys' table says which: those that change nothing under ``docker compose up`` either)."""
    scale = None if spec.get("scale") is None else _count(spec["scale"], f"{where}.scale")
    deploy = mapping(spec.get("deploy"), f"{where}.deploy")
    check_keys("deploy", deploy, f"{where}.deploy", "deploy", ignored, f"services.{service_name}.deploy")
    replicas = None if deploy.get("replicas") is None else _count(deploy["replicas"], f"{where}.deploy.replicas")
    mode = deploy.get("mode", "replicated")
    if mode not in MODES:
        raise ComposeError(f"{where}.deploy.mode: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "global":
        if replicas is not None or scale is not None:
            given = "deploy.replicas" if replicas is not None else "scale"
            raise ComposeError(
                f"{where}: deploy.mode: global runs one container per node and takes no {given} (swarm refuses "
                "it too): drop one of them"
            )
        replicas = 1  # one engine is one node
    endpoint = deploy.get("endpoint_mode", "vip")
    if endpoint not in ENDPOINT_MODES:
        raise ComposeError(f"{where}.deploy.endpoint_mode: {endpoint!r} is not one of {', '.join(ENDPOINT_MODES)}")
    if "endpoint_mode" in deploy and endpoint == "vip":
        ignored.append(
            f"services.{service_name}.deploy.endpoint_mode (the service name resolves to every replica's "
            "address, as under docker compose up; a virtual IP is swarm's)"
        )
    if scale is not None and replicas is not None and scale != replicas:
        raise ComposeError(
            f"{where}: scale: {scale} and deploy.replicas: {replicas} differ (Compose refuses them too): keep one"
        )
    count = scale if scale is not None else 1 if replicas is None else replicas
    if count > 1:
        _check_one_of_each(spec, where, count)
        name(f"{service_name}-{count}", f"{where}: replica {count}'s name", "name for a container")
    return count


def replica_names(service: str, count: int) -> list[str]:
    """The names of a service's containers in the topology (its own name for one)."""
    return [service] if count == 1 else [f"{service}-{i}" for i in range(1, count + 1)]


def check_replica_names(where: str, counts: Mapping[str, int], wanted: Iterable[str]) -> None:
    """No replica is named as another service (``api`` scaled to 2 beside a service ``api-1``);
    ``counts`` is every service's number of replicas."""
    owners = {s: s for s in counts}
    for service in wanted:
        for replica in replica_names(service, counts[service]):
            other = owners.setdefault(replica, service)
            if other != service:
                raise ComposeError(
                    f"{where}: services.{service}: its replica {replica!r} would have the name of service "
                    f"{other!r} (replicas are named {service}-1, {service}-2, ...): rename one of the two services"
                )


def _count(value: object, where: str) -> int:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise ComposeError(f"{where}: {value!r} is not a number of containers (0 or more)")
    if int(text) > MAX_REPLICAS:
        raise ComposeError(
            f"{where}: {int(text)} containers; compose() starts at most {MAX_REPLICAS} per service (each a "
            "container the engine keeps): give the few the test needs"
        )
    return int(text)


def _check_one_of_each(spec: Mapping[str, Any], where: str, count: int) -> None:
    """What a service has only one of cannot go to each of ``count`` replicas."""
    if spec.get("container_name") is not None:
        raise ComposeError(
            f"{where}.container_name: {spec['container_name']!r} with {count} replicas: a container name is one "
            "container's (Compose refuses it too); drop it (every replica resolves by the service name and by "
            "its own) or run one replica"
        )
    for key in ("mac_address",):
        if spec.get(key) is not None:
            raise ComposeError(f"{where}.{key}: with {count} replicas every one would get {spec[key]!r}: drop it")
    networks = spec.get("networks")
    for net, attached in networks.items() if isinstance(networks, Mapping) else ():
        for key in ("ipv4_address", "ipv6_address", "mac_address"):
            if isinstance(attached, Mapping) and attached.get(key) is not None:
                raise ComposeError(
                    f"{where}.networks.{net}.{key}: with {count} replicas every one would get {attached[key]!r}; "
                    "a fixed address is one container's: drop it (the service name resolves to every replica)"
                )
    for i, entry in enumerate(items(spec.get("ports"), f"{where}.ports")):
        _check_port(entry, f"{where}.ports[{i}]", count)


def _check_port(entry: object, where: str, count: int) -> None:
    """A fixed host port of a replicated service: under Compose the second replica's start
    fails ("port is already allocated"); a host range gives each replica one of its ports
    when the container port is one port and the range has one for every replica."""
    if isinstance(entry, Mapping):
        host, target = entry.get("published"), entry.get("target")
    else:
        parts = str(entry).partition("/")[0].rsplit(":", 2)  # an IPv6 host address keeps its colons
        host, target = (parts[-2], parts[-1]) if len(parts) > 1 else (None, parts[0])
    if host in (None, ""):
        return
    hosts, targets = port_range(host, where), port_range(target, where)
    if len(targets) == 1 and len(hosts) >= count:
        return
    fixed = f"host port {hosts[0]}" if len(hosts) == 1 else f"host ports {host}"
    why = "every replica would publish " + (
        f"{fixed} (a range mapped onto as many container ports is fixed)" if len(hosts) > 1 else fixed
    )
    raise ComposeError(
        f"{where}: {entry!r} with {count} replicas: {why}, and under Compose the second replica fails with "
        f"'port is already allocated'. compose() publishes on free host ports anyway (replica.host_port(port)): "
        f"leave the host port out, or give a range with a port for each replica (such as "
        f"'{hosts[0]}-{hosts[0] + count - 1}:{targets[0]}')"
    )
