"""What only the engine and the run can decide about a Compose file's services, checked
before ``compose()`` makes anything: their ``platform`` and ``runtime`` against the
engine's, a MAC address on a second network against its API, and under hermetic DNS which
``dns`` servers are the stack's own (:mod:`.service_keys` reads the keys)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..container_options import Hosts
from ..engine.info import go_arch
from ..errors import ComposeError

if TYPE_CHECKING:
    from ..context import Context
    from .file import ComposeModel


def check_on_engine(model: ComposeModel, wanted: Iterable[str], context: Context) -> None:
    """What the engine and the run decide for the ``wanted`` services of ``model``: their
    ``platform`` and ``runtime`` against the engine's, a MAC address on a second network
    against its API, and (hermetic DNS) which ``dns`` servers are the stack's own: the
    others are dropped and listed in ``model.ignored``."""
    info = context.capabilities.of(context.engine).info
    engine_platform = f"{info.os}/{go_arch(info.arch)}"
    file = model.files[0]
    wanted = list(wanted)
    subnets = _fixed_subnets(model, wanted)
    for name in wanted:
        service, where = model.services[name], f"{file}: services.{name}"
        if service.platform is not None:
            os_name, _, arch = service.platform.lower().partition("/")
            arch = arch.split("/")[0]
            if f"{os_name}/{go_arch(arch)}" != engine_platform:
                raise ComposeError(
                    f"{where}.platform: {service.platform!r} cannot run on this engine, whose platform is "
                    f"{engine_platform} ({info.describe()}); drop the key, or run the test on a {service.platform} "
                    "engine"
                )
        runtime = service.docker_options.get("runtime")
        if runtime is not None and runtime not in info.runtimes:
            raise ComposeError(
                f"{where}.runtime: this engine ({info.describe()}) has no runtime {runtime!r}; it has "
                f"{', '.join(info.runtimes) or 'none listed'}"
            )
        for net, extra in service.endpoints.items():
            if "mac_address" in extra and not info.api_at_least(1, 44):
                raise ComposeError(
                    f"{where}.networks.{net}.mac_address: a MAC address on a service's second network needs engine "
                    f"API 1.44; this engine speaks {info.api_version}: give it on the service's first network, or as "
                    "the service's mac_address"
                )
        if service.dns and context.settings.dns == "hermetic":
            outside = [s for s in service.dns if not _own(ipaddress.ip_address(s), subnets)]
            if outside:
                service.dns = [s for s in service.dns if s not in outside]
                model.ignored.append(
                    f"services.{name}.dns {', '.join(outside)} (hermetic DNS: a server outside the stack's networks "
                    "is not asked; --dockernet-dns=host uses it)"
                )


def _own(address: ipaddress.IPv4Address | ipaddress.IPv6Address, subnets: list[Hosts]) -> bool:
    """Whether a DNS server at ``address`` is the test's own: the container itself
    (loopback) or a container of the stack."""
    return address.is_loopback or any(address in hosts for hosts in subnets)


def _fixed_subnets(model: ComposeModel, wanted: list[str]) -> list[Hosts]:
    """The subnets the file fixes for the networks the ``wanted`` services join, without
    their network, gateway and broadcast addresses (the host has the gateway's)."""
    used = {net for name in wanted for net in model.services[name].networks or ["default"]}
    found = []
    for net in (model.networks[n] for n in sorted(used) if n in model.networks):
        for subnet, gateway in ((net.subnet, net.gateway), (net.subnet6, None)):
            if subnet:
                found.append(Hosts(subnet, gateway))
    return found
