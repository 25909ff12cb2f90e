"""Assertion helpers: reachability, name resolution and isolation, seen from a container.

Each failure message starts with a diagnosis line (:mod:`.diagnosis`), then says what was
probed, from where, with which command and output; the whole topology follows where no
report shows it (a topology the plugin's fixtures did not make).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import time
from collections.abc import Callable, Collection, ItemsView, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Optional, TypeVar, Union, cast

from . import diagnosis, probes
from .checks import check_list, check_port, check_timeout, is_ip
from .description import unreported
from .diagnosis import fail_if_stopped, named_container
from .errors import ProbeFailed
from .handles import Container, Network
from .probes import ProbeResult
from .retry import poll
from .timings import counted

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    from .context import Context

    P = ParamSpec("P")
R = TypeVar("R")

Target = Union[Container, str]
MatrixTarget = Union[Target, "tuple[Target, int]"]  # (target, port): TCP on that port
Cells = dict[tuple[str, str], bool]  # (source name, target label) -> reached
Plan = dict[Container, list[tuple[str, list[str], Optional[int], bool]]]  # see _probe_matrix

__all__ = [
    "assert_reachable",
    "assert_unreachable",
    "assert_resolves",
    "assert_not_resolves",
    "assert_isolated",
    "reachability",
    "ReachabilityMatrix",
]


def _context_in(args: tuple[object, ...]) -> Context | None:
    for arg in args:
        if isinstance(arg, (Container, Network)):
            return arg.context
        if isinstance(arg, Collection) and not isinstance(arg, str) and arg:
            first = next(iter(arg))  # a collection, unlike an iterator, can be iterated again
            if isinstance(first, (Container, Network)):
                return first.context
    return None


def timed(helper: Callable[P, R]) -> Callable[P, R]:
    """Count a helper's wall time towards the "probes" phase of its topology's timings."""

    @functools.wraps(helper)
    def measured(*args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True
        context = _context_in(args)
        if context is None:
            return helper(*args, **kwargs)
        with context.timings.measure("probes"):
            return helper(*args, **kwargs)

    return measured


def check_source(src: object, argument: str = "src") -> Container:
    if not isinstance(src, Container):
        raise TypeError(
            f"{argument} must be a Container from dockernet.container() (probes run in its "
            f"network namespace), got {src!r}"
        )
    return src


def _host_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name={name!r} must be a non-empty host name")
    return name


def _addresses(src: Container, dst: object, argument: str = "dst") -> tuple[str, list[str]]:
    """How ``dst`` is named in messages, and the addresses ``src`` would use for it.

    A container is reached at its addresses on the networks it shares with ``src`` (all of
    its addresses when it shares none, so that isolation is checked against real ones); a
    container in the host's namespace at the gateways of ``src``'s networks.
    """
    if isinstance(dst, str):
        if not dst:
            raise ValueError(f"{argument} is an empty string: give a container, a name or an IP address")
        return dst, [dst]
    if not isinstance(dst, Container):
        raise TypeError(f"{argument} must be a Container, a DNS name or an IP address, got {dst!r}")
    if dst.network_mode == "host":
        if src.network_mode == "host":
            return dst.name, ["127.0.0.1"]
        gateways = [e.network.gateway for e in src.endpoints.values() if e.network and e.network.gateway]
        return dst.name, gateways
    shared = [e.ip for name, e in dst.endpoints.items() if name in src.endpoints and e.ip]
    every = [e.ip for e in dst.endpoints.values() if e.ip]
    return dst.name, shared or every


def _kind(port: int | None) -> str:
    return "icmp" if port is None else "tcp"


def _how(port: int | None) -> str:
    return "by ICMP echo" if port is None else f"on TCP port {port}"


def fail(why: str, summary: str, results: Sequence[ProbeResult], context: Context) -> None:
    """Raise the AssertionError a helper fails with: the diagnosis line ``why``, ``summary``,
    each probe as :meth:`ProbeResult.describe` shows it, then the topology unless a report
    shows it (see :func:`.description.unreported`)."""
    __tracebackhide__ = True
    details = "\n".join(r.describe() for r in results)
    raise AssertionError(f"{why}\n{summary}\n{details}{unreported(context)}")


@timed
def assert_reachable(src: Container, dst: Target, *, port: int | None = None, timeout: float = 5.0) -> None:
    """``dst`` answers ICMP echo (``port=None``) or accepts TCP on ``port``, from ``src``'s
    network namespace, within ``timeout`` seconds (retried: DNS and servers come up late)."""
    __tracebackhide__ = True
    src = check_source(src)
    port, timeout = check_port(port), check_timeout(timeout)
    label, addresses = _addresses(src, dst)
    if not addresses:
        raise ValueError(f"dst {label!r} has no address that {src.name!r} could use")
    script = " || ".join(probes.connect_command(a, port, 1) for a in addresses)
    # An answer across networks the two do not share may be a packet let through while
    # Docker rewrote its isolation rules (see CONFIRM_ROUNDS): it counts once it holds.
    crossing = diagnosis.target_of(src, dst)
    suspicious = crossing is not None and not _shares_network(src, crossing)

    taken_back = []

    def attempt() -> ProbeResult:
        result = probes.run(src, script)
        if result.ok and suspicious and not _confirmed(src, [script])[0]:
            taken_back.append(result)
            return dataclasses.replace(result, exit_code=1)
        if not result.ok:
            target = dst if isinstance(dst, Container) else named_container(src, dst)
            fail_if_stopped(target, f"{src.name} cannot reach {target.name if target else dst}")
        return result

    result, attempts = poll(attempt, lambda r: r.ok, timeout=timeout)
    if not result.ok:
        why = diagnosis.unreached(src, dst, port, addresses)
        diagnosis.record(src, label, _kind(port), addresses[0], f"no answer within {timeout:g} s", why, port)
        fail(
            why,
            f"{src.name} did not reach {label} ({', '.join(addresses)}) {_how(port)} "
            f"within {timeout:g} s ({counted(attempts, 'attempts')}){TAKEN_BACK if taken_back else ''}",
            [result],
            src.context,
        )


@timed
def assert_unreachable(
    src: Container, dst: Target | Sequence[Target], *, port: int | None = None, timeout: float = 2.0
) -> None:
    """``dst`` (a target, or a list of them) neither answers ICMP echo nor accepts TCP on
    ``port`` from ``src``: one attempt per address of every target, all at once, each waiting
    ``timeout`` seconds for an answer; so several targets cost one timeout, not one each."""
    __tracebackhide__ = True
    src = check_source(src)
    port, timeout = check_port(port), check_timeout(timeout)
    targets = _several(dst)
    probed: list[tuple[str, list[str]]] = []  # per target: its label, its addresses
    for i, target in enumerate(targets):
        label, addresses = _addresses(src, target, "dst" if target is dst else f"dst[{i}]")
        if not addresses:
            raise ValueError(
                f"dst {label!r} has no address that {src.name!r} could use, so there is nothing to probe "
                "(a container with network_mode='none' is unreachable by construction)"
            )
        probed.append((label, addresses))
    commands = [(label, probes.connect_command(a, port, timeout)) for label, addresses in probed for a in addresses]
    names = any(isinstance(t, str) and not is_ip(t) for t in targets)
    control = _dns_control(src) if names else None
    oks = probes.run_many(src, [cmd for _, cmd in commands], dns_control=control)
    answered = [(label, cmd) for (label, cmd), ok in zip(commands, oks) if ok]
    answered = [item for item, ok in zip(answered, _confirmed(src, [cmd for _, cmd in answered])) if ok]
    if answered:
        result = probes.run(src, answered[0][1])  # again, for its output
        hit = {label for label, _ in answered}
        reached = [f"{label} ({', '.join(addresses)})" for label, addresses in probed if label in hit]
        why = diagnosis.reached(src, next(t for t, (label, _) in zip(targets, probed) if label in hit), port)
        diagnosis.record(src, answered[0][0], _kind(port), None, "answered, expected not to", why, port)
        fail(
            why,
            f"{src.name} reached {' and '.join(reached)} {_how(port)}, expected it not to",
            [result],
            src.context,
        )


def _several(dst: object) -> list[Target]:
    """``dst`` as a list of targets: one target, or a list or tuple of them."""
    if isinstance(dst, (list, tuple)):
        if not dst:
            raise ValueError("dst is empty: give a container, a name or an IP address, or a list of them")
        return list(dst)
    return [cast(Target, dst)]


def _dns_control(src: Container) -> str | None:
    """A name the source's DNS must answer (its own, on a user-defined network), for a
    negative answer about names to rest on; None where it has no embedded DNS."""
    if src.network_mode is not None:  # host, bridge, none
        return None
    for endpoint in src.endpoints.values():
        if endpoint.network is not None and endpoint.network.driver != "host" and endpoint.aliases:
            return endpoint.aliases[0]
    return None


def _expected_addresses(src: Container, to: Target | Iterable[Target]) -> set[str]:
    items = [to] if isinstance(to, (Container, str)) else check_list("to", to, "[db, '10.0.0.5']")
    if not items:
        raise ValueError("to=[] expects no address at all: use assert_not_resolves for a name that must not resolve")
    expected: set[str] = set()
    for item in items:
        if isinstance(item, str):
            try:
                expected.add(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"to={item!r} is neither a Container nor an IP address") from None
        elif isinstance(item, Container):
            expected.update(_addresses(src, item)[1])
        else:
            raise TypeError(f"to: {item!r} is neither a Container nor an IP address")
    return expected


def _resolve(src: Container, name: str, control: str | None = None) -> tuple[ProbeResult, list[str]]:
    """The probe's result and the addresses found; ProbeFailed where its tools are missing,
    or the ``control`` name (see :func:`_dns_control`) did not resolve."""
    result = probes.run(src, probes.resolve_command(name, control), note=f"resolve {name}")
    missing = probes.missing_tools(result)
    if missing or "@@dns=failed" in result.output:
        if missing:
            why = f"{result.where} has no {', '.join(missing)} ({probes.TOOLS_ADVICE})"
        else:
            why = f"DNS does not answer in {result.where}: its own name {control!r} did not resolve"
        raise ProbeFailed(f"cannot resolve from {src.name!r}: {why}, so no answer can be trusted\n{result.describe()}")
    return result, probes.parse_addresses(result.output)


@timed
def assert_resolves(
    src: Container, name: str, *, to: Target | Iterable[Target] | None = None, timeout: float = 5.0
) -> None:
    """``name`` resolves from ``src`` (hosts file, then DNS, as getaddrinfo does); with ``to``
    (a Container, an IP, or a list of them) to exactly those addresses."""
    __tracebackhide__ = True
    src = check_source(src)
    timeout = check_timeout(timeout)
    name = _host_name(name)
    expected = None if to is None else _expected_addresses(src, to)
    v6 = expected is not None and any(":" in a for a in expected)

    def matches(outcome: tuple[ProbeResult, list[str]]) -> bool:
        got = {a for a in outcome[1] if v6 or ":" not in a}
        return bool(got) if expected is None else got == expected

    (result, got), attempts = poll(lambda: _resolve(src, name), matches, timeout=timeout)
    if not matches((result, got)):
        target = named_container(src, name)  # a stopped one has no record
        fail_if_stopped(target, f"{src.name} cannot resolve {target.name if target else name}")
        wanted = "to resolve" if expected is None else f"to resolve to {', '.join(sorted(expected))}"
        why = diagnosis.unresolved(src, name, expected)
        diagnosis.record(src, name, "dns", got[0] if got else None, f"resolved to {', '.join(got) or 'nothing'}", why)
        fail(
            why,
            f"expected {name!r} {wanted} from {src.name} within {timeout:g} s; "
            f"it resolved to {', '.join(got) or 'nothing'} ({counted(attempts, 'attempts')})",
            [result],
            src.context,
        )


@timed
def assert_not_resolves(src: Container, name: str, *, timeout: float = 2.0) -> None:
    """``name`` does not resolve from ``src`` (allowing ``timeout`` seconds for a record
    that was just removed, e.g. after a disconnect, to disappear)."""
    __tracebackhide__ = True
    src = check_source(src)
    timeout = check_timeout(timeout)
    name = _host_name(name)
    control = _dns_control(src)
    (result, got), attempts = poll(lambda: _resolve(src, name, control), lambda r: not r[1], timeout=timeout)
    if got:
        fail(
            diagnosis.resolves_anyway(src, name, got),
            f"expected {name!r} not to resolve from {src.name}; it resolved to {', '.join(got)}",
            [result],
            src.context,
        )


class ReachabilityMatrix:
    """Who reaches whom: ``matrix[src, dst]`` is a bool; ``str(matrix)`` draws the grid.

    ``dst`` is a target as given to :func:`reachability` (a ``(target, port)`` tuple too)
    or its label (a logical name, ``"db:5432"`` for a tuple).
    """

    def __init__(self, sources: list[Container], targets: list[tuple[str, object]], cells: Cells, port: int | None):
        self.sources = sources
        self.targets = targets  # (label, key) pairs
        self.port = port
        self._cells = cells  # (source name, target label) -> bool

    @staticmethod
    def _label(item: object) -> str:
        if isinstance(item, tuple) and len(item) == 2:
            host = ReachabilityMatrix._label(item[0])
            return f"[{host}]:{item[1]}" if ":" in host else f"{host}:{item[1]}"  # an IPv6 address in brackets
        return item.name if isinstance(item, (Container, Network)) else str(item)

    def __getitem__(self, pair: tuple[object, object]) -> bool:
        src, dst = pair
        return self._cells[self._label(src), self._label(dst)]

    def items(self) -> ItemsView[tuple[str, str], bool]:
        return self._cells.items()

    def reachable(self) -> list[tuple[str, str]]:
        return [pair for pair, ok in self._cells.items() if ok]

    def unreachable(self) -> list[tuple[str, str]]:
        return [pair for pair, ok in self._cells.items() if not ok]

    def why(self, src: object, dst: object) -> str:
        """The diagnosis line of cell ``[src, dst]``: why it was reached, or why not (taking
        the few looks on the engine a failing helper takes)."""
        cell = self._label(src), self._label(dst)
        if cell not in self._cells:
            raise KeyError(f"no cell {cell[0]} -> {cell[1]} in {self!r}")
        source = next(s for s in self.sources if s.name == cell[0])
        target, port = _matrix_target(next(key for label, key in self.targets if label == cell[1]), self.port)
        if self._cells[cell]:
            return diagnosis.reached(source, cast(Target, target), port)
        return diagnosis.unreached(source, cast(Target, target), port, _addresses(source, target)[1])

    def compared(self, expected: object) -> list[str] | None:
        """What ``matrix == expected`` (a ``{(src, dst): bool}`` dict) shows when it fails:
        each cell that differs with its diagnosis line, then the grid (for
        pytest_assertrepr_compare; None for anything else, which pytest then shows itself)."""
        if not isinstance(expected, dict) or not all(isinstance(k, tuple) and len(k) == 2 for k in expected):
            return None
        wanted = {(self._label(s), self._label(d)): (s, d, want) for (s, d), want in expected.items()}
        differ = [cell for cell, (_, _, want) in wanted.items() if self._cells.get(cell, want) != want]
        lines = [f"{self!r} == {{...}}: differing cells: {len(differ)} of {len(wanted)}"]
        for cell in differ:
            src, dst, want = wanted[cell]
            got = "yes" if self._cells[cell] else "no"
            lines.append(f"{cell[0]} -> {cell[1]}: {got}, expected {'yes' if want else 'no'}; {self.why(src, dst)}")
        if set(wanted) != set(self._cells):
            lines.append(f"cells not in both: {', '.join(f'{s} -> {d}' for s, d in set(wanted) ^ set(self._cells))}")
        return [*lines, *str(self).splitlines()]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReachabilityMatrix):
            return self._cells == other._cells
        if isinstance(other, dict):  # keyed by names, or by what reachability() was given
            if not all(isinstance(k, tuple) and len(k) == 2 for k in other):
                return False
            return self._cells == {(self._label(s), self._label(d)): want for (s, d), want in other.items()}
        return NotImplemented

    def __str__(self) -> str:
        columns = [label for label, _ in self.targets]
        first = max([len("from \\ to"), *(len(s.name) for s in self.sources)])
        widths = [max(len(c), 3) for c in columns]
        how = "ICMP" if self.port is None else f"TCP {self.port}"
        with_port = sum(isinstance(key, tuple) for _, key in self.targets)
        if with_port == len(self.targets):
            how = "TCP to each column's port"
        elif with_port:
            how += ", or TCP to the port a column names"
        lines = [
            f"reachability ({how}):",
            "  " + "from \\ to".ljust(first) + "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)),
        ]
        for s in self.sources:
            cells = []
            for c, w in zip(columns, widths):
                value = self._cells.get((s.name, c))
                cells.append(("-" if value is None else "yes" if value else "no").ljust(w))
            lines.append("  " + s.name.ljust(first) + "  " + "  ".join(cells))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ReachabilityMatrix {len(self.sources)}x{len(self.targets)}>"


# Docker rewrites its isolation rules whenever any network on the engine is created or
# removed, and a packet between two networks sent in that moment can get through. An answer
# where none is expected is therefore asked again before it counts.
CONFIRM_ROUNDS = 2
CONFIRM_INTERVAL = 0.5
TAKEN_BACK = "; an answer across networks the two do not share did not hold when asked again: not counted"
MAX_SOURCES_AT_ONCE = 32


def _confirmed(src: Container, commands: list[str]) -> list[bool]:
    """Which of ``commands`` (each of which succeeded once) succeed in every further round."""
    ok = [True] * len(commands)
    # Not a wait for something to hold (retry.poll): every round must answer again, so the
    # rounds run in full unless every answer has already been taken back.
    for _ in range(CONFIRM_ROUNDS):
        pending = [i for i, still in enumerate(ok) if still]
        if not pending:
            break
        time.sleep(CONFIRM_INTERVAL)
        for i, again in zip(pending, probes.run_many(src, [commands[i] for i in pending])):
            ok[i] = again
    return ok


def _probe_matrix(plan: Plan, timeout: float) -> Cells:
    """For each source, one exec probing all its targets at once; sources in parallel.

    ``plan[src]`` lists (label, addresses, port, suspicious): a target is reached when any
    of its addresses answers (ICMP echo for port None, else TCP on port); an answer from a
    suspicious target (one ``src`` shares no network with) is confirmed before it counts.
    """

    def probe_source(src: Container) -> Cells:
        commands, owners, commands_addresses = [], [], []
        for label, addresses, port, suspicious in plan[src]:
            for a in addresses:
                commands.append(probes.connect_command(a, port, timeout))
                owners.append((label, suspicious))
                commands_addresses.append(a)
        names = any(not is_ip(a) for a in commands_addresses)
        answered = probes.run_many(src, commands, dns_control=_dns_control(src) if names else None)
        recheck = [i for i, ok in enumerate(answered) if ok and owners[i][1]]
        for i, ok in zip(recheck, _confirmed(src, [commands[i] for i in recheck])):
            answered[i] = ok
        cells = {(src.name, label): False for label, _, _, _ in plan[src]}
        for (label, _), ok in zip(owners, answered):
            if ok:
                cells[src.name, label] = True
        return cells

    cells: Cells = {}
    sources = [s for s in plan if plan[s]]
    if sources:
        # Every source at once (each is one exec or one write to its shell, then a wait):
        # waves of sources would cost one timeout each where answers are not expected.
        with ThreadPoolExecutor(max_workers=min(MAX_SOURCES_AT_ONCE, len(sources))) as pool:
            for part in pool.map(probe_source, sources):
                cells.update(part)
    return cells


def _shares_network(src: Container, dst: object) -> bool:
    return not isinstance(dst, Container) or dst.network_mode == "host" or bool(set(src.endpoints) & set(dst.endpoints))


def _matrix_target(item: object, port: int | None) -> tuple[object, int | None]:
    """A target of :func:`reachability` and the port it is probed on: a ``(target, port)``
    tuple's own, else ``port``."""
    if not isinstance(item, tuple):
        return item, port
    if len(item) != 2 or not isinstance(item[0], (Container, str)):
        raise TypeError(f"targets: {item!r} is not a (target, port) pair such as (db, 5432)")
    dst, own = item
    if not isinstance(own, int) or isinstance(own, bool) or not 0 < own < 65536:
        raise ValueError(f"targets: the port of {item!r} is not a TCP port number (1-65535)")
    return dst, own


@timed
def reachability(
    sources: Iterable[Container], targets: Iterable[MatrixTarget], *, port: int | None = None, timeout: float = 1.0
) -> ReachabilityMatrix:
    """Probe every source against every target (one exec per source, all its targets at
    once, sources in parallel): ICMP echo, or a TCP connect on ``port``.

    A target is a Container, a name or an IP address, or a ``(target, port)`` tuple probed
    by TCP on its own port, whatever ``port`` says: one matrix can check ``(db, 5432)``,
    ``(cache, 6379)`` and plain ICMP targets together. Such a column is labelled
    ``db:5432``, and ``matrix[src, (db, 5432)]`` (or ``matrix[src, "db:5432"]``) reads it.
    A container is never probed against itself (its cell is absent). Each probe waits
    ``timeout`` seconds for an answer, all at the same time.
    """
    sources = [check_source(s, "sources") for s in check_list("sources", sources, "[api, web]")]
    targets = check_list("targets", targets, "[db, (cache, 6379), 'web', '10.0.0.5']")
    port, timeout = check_port(port), check_timeout(timeout)
    labels = [ReachabilityMatrix._label(t) for t in targets]
    split = [_matrix_target(t, port) for t in targets]
    plan = {
        src: [
            (label, _addresses(src, dst)[1], dst_port, not _shares_network(src, dst))
            for label, (dst, dst_port) in zip(labels, split)
            if dst is not src
        ]
        for src in sources
    }
    cells = _probe_matrix(plan, timeout)
    return ReachabilityMatrix(sources, list(zip(labels, targets)), cells, port)


def _members(side: object, argument: str) -> tuple[list[Container], Network | None]:
    if isinstance(side, Network):
        return side.containers, side
    if isinstance(side, Container):
        return [side], None
    members = check_list(argument, side, "[web, api], or a Network")
    for m in members:
        check_source(m, argument)
    return members, None


@timed
def assert_isolated(
    a: Network | Iterable[Container], b: Network | Iterable[Container], *, timeout: float = 1.0
) -> None:
    """No container of ``a`` reaches (ICMP) any container of ``b``, nor the other way round.

    ``a`` and ``b`` are networks (their containers, probed at their addresses on that
    network) or lists of containers.
    """
    __tracebackhide__ = True
    timeout = check_timeout(timeout)
    side_a, net_a = _members(a, "a")
    side_b, net_b = _members(b, "b")
    if not side_a or not side_b:
        empty = "a" if not side_a else "b"
        raise ValueError(f"{empty} has no containers: nothing to check isolation between")

    def address_on(target: Container, net: Network) -> str:
        ip = target.endpoints[net.docker_name].ip
        if ip is None:  # probed as '' it would never answer, and pass as isolated
            raise ProbeFailed(
                f"{target.name!r} has no address on network {net.name!r} to probe (it is {target.status()})"
            )
        return ip

    def plan(sources: list[Container], targets: list[Container], net: Network | None) -> Plan:
        return {
            src: [
                (t.name, [address_on(t, net)] if net else _addresses(src, t)[1], None, True)
                for t in targets
                if t is not src
            ]
            for src in sources
        }

    # Both directions in one round, every pair at once: proving the negative costs one
    # timeout, not one per direction.
    ahead, back = plan(side_a, side_b, net_b), plan(side_b, side_a, net_a)
    order = [*ahead, *(src for src in back if src not in ahead)]
    cells = _probe_matrix({src: [*ahead.get(src, []), *back.get(src, [])] for src in order}, timeout)
    forward = {(src.name, item[0]): cells[src.name, item[0]] for src, items in ahead.items() for item in items}
    backward = {(src.name, item[0]): cells[src.name, item[0]] for src, items in back.items() for item in items}
    leaks = [f"{s} -> {d}" for (s, d), ok in {**forward, **backward}.items() if ok]
    if leaks:
        name: Callable[[list[Container], Network | None], str] = (  # noqa: E731
            lambda side, net: net.name if net else "[" + ", ".join(c.name for c in side) + "]"
        )
        matrix_ab = ReachabilityMatrix(side_a, [(t.name, t) for t in side_b], forward, None)
        matrix_ba = ReachabilityMatrix(side_b, [(t.name, t) for t in side_a], backward, None)
        context = (side_a + side_b)[0].context
        leak = next((s, d) for (s, d), ok in {**forward, **backward}.items() if ok)
        source = next(c for c in side_a + side_b if c.name == leak[0])
        why = diagnosis.reached(source, next(c for c in side_a + side_b if c.name == leak[1]), None)
        diagnosis.record(source, leak[1], "icmp", None, "answered, expected not to", why)
        raise AssertionError(
            f"{why}\nexpected {name(side_a, net_a)} and {name(side_b, net_b)} to be isolated, "
            f"but {', '.join(leaks)} answered ICMP echo\n{matrix_ab}\n{matrix_ba}{unreported(context)}"
        )
