"""The faults of ``@pytest.mark.dockernet(partition=..., degrade=..., dns_faults=...)``: each marker argument
of :data:`KINDS` read into faults to apply (names found among the containers of the test's
topologies), all of it checked before anything is applied. The plugin applies them right
before the test body (:func:`apply_marked`) and lifts them right after (:func:`lift_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ..context import Context
    from ..handles import Container, Network
    from .fault import Fault
    from .in_force import Faults

Apply = Callable[[], "Fault"]


class Names:
    """The containers and networks of a test's topologies (its own first), by logical name."""

    def __init__(self, contexts: Sequence[Context]):
        self.contexts = contexts

    def container(self, name: object, where: str) -> Container:
        for context in self.contexts:
            found = next((c for c in context.containers if c.name == name), None)
            if found is not None:
                return found
        made = sorted({c.name for context in self.contexts for c in context.containers})
        raise ValueError(
            f"{where}: no container named {name!r} among those the test's dockernet fixtures made "
            f"({', '.join(made) or 'none'})"
        )

    @staticmethod
    def network(container: Container, name: object, where: str) -> Network:
        try:
            return cast("Network", container.context.networks.get(cast(str, name)))
        except KeyError:
            raise ValueError(f"{where}: no network named {name!r}") from None


def faults_of(container: Container) -> Faults:
    context = container.context
    context.check_open()
    return cast("Faults", context.faults)


PARTITION_KEYS = ("groups", "mode", "ports")


def partitions(partition: object, names: Names) -> list[Apply]:
    """A list of groups (each a list of names, or one name): every group cut off from every
    other; or a dict of ``groups`` and ``partition()``'s ``mode`` and ``ports``."""
    options: dict[str, Any] = {}
    if isinstance(partition, dict):
        unknown = sorted(set(partition) - set(PARTITION_KEYS))
        if unknown or "groups" not in partition:
            raise ValueError(
                f"partition={partition!r}: a dict has the keys {', '.join(PARTITION_KEYS)} (groups required), "
                "e.g. {'groups': [['api'], ['db']], 'mode': 'reject', 'ports': [5432]}"
            )
        options = {key: partition[key] for key in ("mode", "ports") if key in partition}
        from .partition import check_partition  # here: every run imports this module, few mark faults

        check_partition(options.get("mode", "drop"), options.get("ports"))  # before anything is applied
        partition = partition["groups"]
    if not isinstance(partition, (list, tuple)) or len(partition) < 2:
        raise ValueError(f"partition={partition!r} must be a list of two or more groups, e.g. [['web'], ['db']]")
    groups: list[list[Container]] = []
    for group in partition:
        members = [group] if isinstance(group, str) else group
        if not isinstance(members, (list, tuple)) or not members:
            raise ValueError(f"partition: each group is a name or a non-empty list of names, got {group!r}")
        groups.append([names.container(name, "partition") for name in members])
    pairs = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1 :]]
    for a, b in pairs:
        if any(c.context is not a[0].context for c in a + b):
            raise ValueError("partition: the containers of one partition must come from one dockernet fixture")
    return [partial(faults_of(a[0]).partition, a, b, False, **options) for a, b in pairs]


DEGRADE_KEYS = ("loss", "rate", "delay", "jitter", "duplicate", "corrupt", "reorder", "direction", "to", "network")


def degradations(degrade: object, names: Names) -> list[Apply]:
    """A name mapped to ``degrade()``'s keyword arguments (``to`` a list of names, ``network``
    a network's logical name)."""
    if not isinstance(degrade, dict):
        raise ValueError(f"degrade={degrade!r} must be a dict {{name: {{'loss': 0.1, ...}}}}")
    found: list[tuple[Container, dict[str, Any]]] = []
    for name, settings in degrade.items():
        container = names.container(name, "degrade")
        if not isinstance(settings, dict):
            raise ValueError(f"degrade[{name!r}] must be a dict of degrade() arguments, got {settings!r}")
        unknown = sorted(set(settings) - set(DEGRADE_KEYS))
        if unknown:
            raise ValueError(f"degrade[{name!r}] has unknown keys {unknown}: use {', '.join(DEGRADE_KEYS)}")
        arguments = {key: settings.get(key) for key in DEGRADE_KEYS}
        to = arguments.pop("to")
        if to is not None:
            to = [names.container(n, f"degrade[{name!r}]['to']") for n in ([to] if isinstance(to, str) else to)]
        network = arguments.pop("network")
        if network is not None:
            network = names.network(container, network, f"degrade[{name!r}]")
        found.append((container, {"settings": arguments, "to": to, "network": network}))
    return [partial(faults_of(c).degrade, c, **arguments) for c, arguments in found]


DNS_KEYS = ("nxdomain", "servfail", "delay", "answer")


def dns_faults(faults: object, names: Names) -> list[Apply]:
    """A container's name mapped to ``{name to fault: "nxdomain" | "servfail" | dns_fault()'s
    keyword arguments}`` (``answer`` an address or a container's name)."""
    if not isinstance(faults, dict):
        raise ValueError(f"dns_faults={faults!r} must be a dict {{container: {{name: 'nxdomain'}}}}")
    from .dns import check_dns_fault  # here: every run imports this module, few mark faults

    found: list[tuple[Container, str, dict[str, Any]]] = []
    for container_name, names_faulted in faults.items():
        container = names.container(container_name, "dns_faults")
        where = f"dns_faults[{container_name!r}]"
        if not isinstance(names_faulted, dict) or not names_faulted:
            raise ValueError(f"{where} must be a non-empty dict {{name: 'nxdomain' | 'servfail' | {{...}}}}")
        for name, fault in names_faulted.items():
            if fault in ("nxdomain", "servfail"):
                arguments: dict[str, Any] = {str(fault): True}
            elif isinstance(fault, dict):
                unknown = sorted(set(fault) - set(DNS_KEYS))
                if unknown:
                    raise ValueError(f"{where}[{name!r}] has unknown keys {unknown}: use {', '.join(DNS_KEYS)}")
                arguments = dict(fault)
            else:
                raise ValueError(
                    f"{where}[{name!r}]={fault!r} must be 'nxdomain', 'servfail' or a dict of dns_fault() "
                    "arguments, e.g. {'delay': '2s'} or {'answer': 'other'}"
                )
            answer = arguments.get("answer")
            if isinstance(answer, str) and not any(c in answer for c in ".:"):
                arguments["answer"] = names.container(answer, f"{where}[{name!r}]['answer']")
            try:
                check_dns_fault(name, **_dns_defaults(arguments))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}[{name!r}]: {exc}") from None
            found.append((container, name, arguments))
    return [partial(faults_of(c).dns_fault, c, name, **_dns_defaults(a)) for c, name, a in found]


def _dns_defaults(arguments: dict[str, Any]) -> dict[str, Any]:
    return {"nxdomain": False, "servfail": False, "delay": None, "answer": None, **arguments}


# The marker's fault arguments, in the order their faults are applied.
KINDS: dict[str, Callable[[object, Names], list[Apply]]] = {
    "partition": partitions,
    "degrade": degradations,
    "dns_faults": dns_faults,
}
ARGUMENTS = tuple(KINDS)


def apply_marked(contexts: Sequence[Context], marked: Mapping[str, object]) -> list[Fault]:
    """The faults ``marked`` (the marker's arguments) names, applied to the containers of
    ``contexts`` (the test's own topology first). ValueError naming what is wrong, before
    anything is applied; if applying one fails, those applied before it are lifted."""
    names = Names(contexts)
    pending = [
        apply
        for argument, read in KINDS.items()
        if marked.get(argument) is not None
        for apply in read(marked[argument], names)
    ]
    applied: list[Fault] = []
    try:
        for apply in pending:
            applied.append(apply())
    except BaseException:
        lift_all(applied)
        raise
    return applied


def lift_all(applied: list[Fault]) -> None:
    """Lift ``applied``, the last first."""
    for fault in reversed(applied):
        fault.lift()
