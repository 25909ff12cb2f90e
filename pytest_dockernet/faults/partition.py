"""A partition between groups ``a`` and ``b``: in the namespace of each member of ``a``, a
chain pair that drops what goes to and comes from every address of ``b``'s members, IPv4
and IPv6, on every network. ``one_way=True`` drops only what ``a`` starts towards ``b``:
the rule lets packets of connections that are already established (in either direction)
pass, so ``b`` can still open connections to ``a`` and get the replies."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import DockernetError
from .fault import FaultBase, Keeper
from .helpers import addresses, put_again
from .rules import FAMILIES, jumps_script, lift_script, partition_counts, partition_script

if TYPE_CHECKING:
    from ..handles import Container


def _names(group: list[Container]) -> str:
    return "[" + ", ".join(c.name for c in group) + "]"


class Partition(FaultBase):
    """Traffic between groups ``a`` and ``b`` dropped (only ``a`` -> ``b`` with
    ``one_way``); ``heal()`` lifts it. Also a context manager that heals on exit."""

    lifted_as = "healed"

    def __init__(self, keeper: Keeper, number: int, a: list[Container], b: list[Container], one_way: bool):
        super().__init__(keeper, number)
        self.a, self.b, self.one_way = a, b, one_way

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
        return f"partition #{self.number} {between}, drop"

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
        """Loss of ICMP echoes from the first member of ``a`` to the first of ``b``: 1.0 while cut."""
        measured = self._keeper.measure(self.a[0], self.b[0], count=20)
        return measured, f"loss {round(measured.loss, 2)}"

    def _take_off(self) -> None:
        for member in self.a:
            self._lift_from(member)

    def _put(self, member: Container) -> None:
        helpers = self._keeper.helpers
        peers4, peers6 = addresses(self.b)
        if peers6:
            helpers.require_ipv6(member, f"partition #{self.number}", f"{_names(self.b)} have IPv6 addresses")
        code, output = helpers.run(member, partition_script(self.chain, peers4, peers6, self.one_way))
        expected = partition_counts(peers4, peers6)
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
