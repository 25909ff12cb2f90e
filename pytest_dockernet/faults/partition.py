"""A partition between groups ``a`` and ``b``: in the namespace of each member of ``a``, a
chain pair that drops what goes to and comes from every address of ``b``'s members, IPv4
and IPv6, on every network. ``one_way=True`` drops only what ``a`` starts towards ``b``:
the rule lets packets of connections that are already established (in either direction)
pass, so ``b`` can still open connections to ``a`` and get the replies.

``mode="reject"`` answers instead of dropping (a TCP reset, else ICMP port unreachable),
so both sides' clients fail at once instead of waiting out their timeouts. ``ports``
narrows the cut to TCP and UDP connections to those ports (``a`` to ``b``'s and ``b`` to
``a``'s; one way, ``a`` to ``b``'s only): ping and other ports pass.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import probes
from ..errors import DockernetError, ProbeFailed
from ..shells import stop_command
from .fault import FaultBase, Keeper
from .helpers import addresses, put_again
from .rules import FAMILIES, jumps_script, lift_script, partition_counts, partition_script

if TYPE_CHECKING:
    from ..handles import Container


MODES = ("drop", "reject")
MAX_PORTS = 15  # what one iptables multiport match takes


def _names(group: list[Container]) -> str:
    return "[" + ", ".join(c.name for c in group) + "]"


def check_partition(mode: object, ports: object) -> list[int] | None:
    """``mode`` and ``ports`` checked: the ports sorted, or None for every port."""
    if mode not in MODES:
        raise ValueError(
            f"mode={mode!r} must be 'drop' (packets vanish: clients wait for their timeouts, the default) "
            "or 'reject' (a TCP reset, else ICMP port unreachable: clients fail at once)"
        )
    if ports is None:
        return None
    listed = [ports] if isinstance(ports, int) and not isinstance(ports, bool) else ports
    if (
        not isinstance(listed, (list, tuple, set, frozenset))
        or not listed
        or any(not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 65536 for p in listed)
    ):
        raise ValueError(f"ports={ports!r} must be a non-empty list of port numbers (1-65535), e.g. [5432]")
    if len(set(listed)) > MAX_PORTS:
        raise ValueError(f"ports={ports!r}: at most {MAX_PORTS} ports per partition (iptables' multiport match)")
    return sorted(set(listed))


@dataclass(frozen=True)
class Connections:
    """What ``verify()`` of a partition with ``ports`` saw: ``sent`` TCP connects from a
    member of ``a`` to ``port`` of a member of ``b``, ``received`` of them answered there."""

    port: int
    sent: int
    received: int

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


class Partition(FaultBase):
    """Traffic between groups ``a`` and ``b`` dropped or rejected (``mode``), all of it or
    connections to ``ports`` (only ``a`` -> ``b`` with ``one_way``); ``heal()`` lifts it.
    Also a context manager that heals on exit."""

    lifted_as = "healed"

    def __init__(
        self,
        keeper: Keeper,
        number: int,
        a: list[Container],
        b: list[Container],
        one_way: bool,
        mode: str = "drop",
        ports: list[int] | None = None,
    ):
        super().__init__(keeper, number)
        self.a, self.b, self.one_way = a, b, one_way
        self.mode, self.ports = mode, ports

    @property
    def chain(self) -> str:
        return f"DN-P{self.number}"

    @property
    def healed(self) -> bool:
        return self.lifted

    def heal(self) -> None:
        """Lift this partition (others stay in force); a no-op once healed."""
        self.lift()

    def title(self) -> str:
        between = f"{_names(self.a)} -> {_names(self.b)}" if self.one_way else f"{_names(self.a)} | {_names(self.b)}"
        ports = f", ports {', '.join(str(p) for p in self.ports)}" if self.ports else ""
        return f"partition #{self.number} {between}, {self.mode}{ports}"

    def apply(self) -> None:
        """Put the rules in each member of ``a``; if one fails, those put are lifted."""
        applied: list[Container] = []
        try:
            for member in self.a:
                self._put(member)
                applied.append(member)
        except BaseException:
            for member in applied:
                self._lift_from(member)
            raise

    def reapply(self, container: Container) -> None:
        """Put it again after ``container`` restarted or joined or left a network: in every
        member of ``a`` when it is in ``b`` (their rules name its addresses), else in it."""
        if container in self.b:
            for member in self.a:
                put_again(member, partial(self._put, member))  # the rules name b's addresses
        elif container in self.a:
            put_again(container, partial(self._put, container))

    def check(self) -> None:
        """DockernetError naming the first member of ``a`` whose namespace lacks its chains
        (or their jumps), IPv6 ones too where ``b`` has IPv6 addresses."""
        families = FAMILIES if addresses(self.b)[1] else FAMILIES[:1]
        chains = [(f"{self.chain}-o", "OUTPUT"), (f"{self.chain}-i", "INPUT")]
        for member in self.a:
            code, output = self._keeper.helpers.run(member, jumps_script(chains, families))
            if code != 0:
                raise DockernetError(
                    f"{self.title()}: its rules are not in force in {member.name!r}'s network "
                    f"namespace: {output.strip()[-300:]}"
                )

    def _measure(self) -> tuple[Any, str]:
        """Loss of ICMP echoes from the first member of ``a`` to the first of ``b``: 1.0 while
        cut. With ``ports``, of TCP connects to the first port instead (:class:`Connections`)."""
        if self.ports:
            connections = self._connections(self.ports[0])
            return connections, f"loss {round(connections.loss, 2)} on port {connections.port}"
        measured = self._keeper.measure(self.a[0], self.b[0], count=20)
        return measured, f"loss {round(measured.loss, 2)}"

    def _connections(self, port: int, count: int = 5) -> Connections:
        """``count`` TCP connects at once from the first member of ``a`` to ``port`` of the
        first of ``b``, where a listener of its own waits while nothing of ``b`` listens
        there (else a port without a listener would look rejected)."""
        src, dst = self.a[0], self.b[0]
        shared = [e.ip for name, e in dst.endpoints.items() if name in src.endpoints and e.ip]
        if not shared:
            raise DockernetError(f"{self.title()}: {dst.name!r} has no address on a network {src.name!r} is on")
        mark = f"dn-listen-{secrets.token_hex(4)}"
        listening = f'$2 ~ /:{port:04X}$/ && $4 == "0A" {{f = 1}} END {{exit !f}}'
        listener = (
            f"{probes.tools_check(['nc', 'setsid', 'timeout', 'awk'])}; "
            f"l() {{ cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{listening}'; }}; "
            f"l || {{ DN_PROBE={mark} setsid timeout 60 nc -ll -p {port} -e true </dev/null >/dev/null 2>&1 & "
            "i=0; until l; do i=$((i + 1)); [ $i -ge 100 ] && echo @@silent && break; sleep 0.05; done; }"
        )
        tries = (
            f"{probes.tools_check(['nc'])}; i=0; while [ $i -lt {count} ]; do "
            f"{{ nc -w 2 {shared[0]} {port} </dev/null >/dev/null 2>&1 && echo @@connected; }} & "
            "i=$((i + 1)); done; wait"
        )
        try:
            started = probes.run(dst, listener)
            if probes.missing_tools(started) or "@@silent" in started.output:
                raise ProbeFailed(f"{self.title()}: no listener on port {port} in {dst.name!r}\n{started.describe()}")
            result = probes.run(src, tries, seconds=4)
            if probes.missing_tools(result):
                raise ProbeFailed(f"{self.title()}: cannot connect from {src.name!r}\n{result.describe()}")
        finally:
            try:
                probes.run(dst, stop_command(mark), counted=False)
            except DockernetError:
                pass  # dst no longer runs: nor does the listener
        return Connections(port, count, result.output.count("@@connected"))

    def _take_off(self) -> None:
        for member in self.a:
            self._lift_from(member)

    def _put(self, member: Container) -> None:
        helpers = self._keeper.helpers
        peers4, peers6 = addresses(self.b)
        if peers6:
            helpers.require_ipv6(member, f"partition #{self.number}", f"{_names(self.b)} have IPv6 addresses")
        script = partition_script(self.chain, peers4, peers6, self.one_way, self.mode, self.ports)
        code, output = helpers.run(member, script)
        expected = partition_counts(peers4, peers6, self.one_way, self.mode, self.ports)
        if code != 0 or output.strip().splitlines()[-len(expected) :] != expected:
            helpers.run(member, lift_script(self.chain))
            raise DockernetError(
                f"partition #{self.number}: the rules could not be put in {member.name!r}'s network namespace "
                f"(exit {code}): {output.strip()[-800:]}"
            )

    def _lift_from(self, member: Container) -> None:
        try:
            self._keeper.helpers.run(member, lift_script(self.chain))
        except DockernetError:
            if member.status() != "removed" and member.status().startswith("running"):
                raise  # a stopped member's rules went with its namespace
