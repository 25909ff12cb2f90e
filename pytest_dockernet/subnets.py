"""The subnet allocator: small, explicit subnets handed out from one private range, so the
engine's default address pools never run dry (``--dockernet-subnet-pool`` names the range)."""

from __future__ import annotations

import ipaddress
import random
import threading
from collections.abc import Iterable, Iterator

from .checks import unusable_range

DEFAULT_RANGE = "10.213.0.0/16"
DEFAULT_PREFIX = 24
# IPv6 subnets mirror the IPv4 ones: the n-th /24 of the range pairs with the n-th /64 here.
IPV6_RANGE = ipaddress.IPv6Network("fd0d:e7e7:213::/48")

Subnet = ipaddress.IPv4Network


def parse_subnet_range(text: str) -> tuple[ipaddress.IPv4Network, int]:
    """Parse ``CIDR`` or ``CIDR:PREFIXLEN`` (e.g. ``10.213.0.0/16:24``).

    Raises ValueError with the bad value in the message.
    """
    cidr, _, size = text.strip().partition(":")
    try:
        supernet = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"subnet pool {text!r} is not an IPv4 network such as 10.213.0.0/16: {exc}") from None
    try:
        prefix = int(size) if size else max(DEFAULT_PREFIX, supernet.prefixlen)
    except ValueError:
        raise ValueError(f"subnet pool {text!r}: the size after ':' must be a prefix length such as 24") from None
    if not supernet.prefixlen <= prefix <= 29:
        raise ValueError(
            f"subnet pool {text!r}: subnets of /{prefix} do not fit; the size must be between "
            f"/{supernet.prefixlen} (the pool itself) and /29"
        )
    why = unusable_range(supernet) or (None if supernet.is_private else "it is not a private address range")
    if why:
        raise ValueError(f"subnet pool {text!r} cannot be used for containers: {why} (use e.g. 10.213.0.0/16)")
    return supernet, prefix


class SubnetAllocator:
    """Hands out subnets of its range that no known network uses.

    The engine's networks are read once (``taken``), after that the allocator only learns
    from its own grants and from the engine refusing a subnet (``reject``): asking the
    engine again for every new network would cost more the more networks there are.
    Each process starts at a random place in the range, so concurrent runs rarely race for
    the same subnet, and when they do the loser moves on.
    """

    def __init__(self, range: str = DEFAULT_RANGE, prefix: int | None = None, taken: Iterable[str] = ()):
        if prefix is None:
            self.range, self.prefix = parse_subnet_range(range)
        else:
            self.range, self.prefix = ipaddress.IPv4Network(range), prefix
        self._count = 2 ** (self.prefix - self.range.prefixlen)
        self._start = random.randrange(self._count)
        self._next = 0
        self._lock = threading.Lock()
        self._in_use: set[Subnet] = set()
        self._held: list[Subnet] = []  # explicit subnets of live networks (any size)
        self._foreign: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cidr in taken:
            self.mark_taken(cidr)

    def _nth(self, index: int) -> Subnet:
        size = 2 ** (32 - self.prefix)
        return ipaddress.IPv4Network((int(self.range.network_address) + index * size, self.prefix))

    def mark_taken(self, cidr: str) -> None:
        """Remember a subnet that something else uses (any overlapping one is skipped)."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return
        with self._lock:
            self._foreign.append(net)

    def _free(self, subnet: Subnet) -> bool:
        return (
            subnet not in self._in_use
            and not any(h.overlaps(subnet) for h in self._held)
            and not any(f.version == 4 and f.overlaps(subnet) for f in self._foreign)
        )

    def hold(self, subnet: Subnet) -> None:
        """A network with an explicit subnet exists: offer nothing overlapping it until
        :meth:`unhold` (an explicit subnet never takes from the range for good)."""
        with self._lock:
            self._held.append(subnet)

    def overlaps_held(self, subnet: Subnet) -> bool:
        """Whether an explicit subnet of a live network overlaps ``subnet``."""
        with self._lock:
            return any(h.overlaps(subnet) for h in self._held)

    def unhold(self, subnet: Subnet) -> None:
        with self._lock:
            if subnet in self._held:
                self._held.remove(subnet)

    def candidates(self) -> Iterator[Subnet]:
        """Free subnets, each granted (marked in use) as it is yielded."""
        tried = 0
        while tried < self._count:
            with self._lock:
                index = (self._start + self._next) % self._count
                self._next += 1
                tried += 1
                subnet = self._nth(index)
                if not self._free(subnet):
                    continue
                self._in_use.add(subnet)
            yield subnet

    def reject(self, subnet: Subnet) -> None:
        """The engine refused ``subnet`` (another process has it): never offer it again."""
        self.mark_taken(str(subnet))
        self.release(subnet)

    def release(self, subnet: Subnet) -> None:
        with self._lock:
            self._in_use.discard(subnet)

    def ipv6_for(self, subnet: Subnet) -> ipaddress.IPv6Network:
        """The /64 paired with an IPv4 subnet of this range, for ``ipv6=True`` networks."""
        index = (int(subnet.network_address) - int(self.range.network_address)) >> (32 - self.prefix)
        return ipaddress.IPv6Network((int(IPV6_RANGE.network_address) + (index << 64), 64))

    def exhausted_message(self) -> str:
        return (
            f"no free /{self.prefix} left in the subnet pool {self.range}; "
            "remove networks or widen --dockernet-subnet-pool"
        )
