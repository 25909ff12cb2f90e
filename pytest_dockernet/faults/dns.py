"""A DNS fault: from one container, one name fails (NXDOMAIN, SERVFAIL), answers late, or
resolves to another address; every other name, and every other container, as before.

Per target container one *responder* (:mod:`.dns_responder`, a small Python script in a
container of :mod:`.dns_image`'s image that shares the target's network namespace, and so
its ``/etc/resolv.conf``), started on the target's first DNS fault. Nat rules in the
target's namespace (put by its fault helper: :mod:`.helpers`) redirect the DNS queries of
every process to the resolv.conf nameservers to the responder's port, except those of the
responder's own uid (:data:`UID`), whose upstream queries go where the application's went.
Only resolv.conf's servers are redirected: with Docker's embedded DNS that is 127.0.0.11,
never the 127.0.0.1 the embedded resolver itself forwards to in hermetic mode. The
responder re-reads its rules when they are replaced; the rules of a target are those of
its DNS faults in force (:class:`Responders`), written on each apply and lift.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import shlex
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..engine import exec_in, remove_container, remove_containers_named, undone_on_failure
from ..engine.errors import APIError, NotFound
from ..engine.gate import gate_for
from ..errors import DockernetError
from ..handles import Container
from .dns_image import ResponderImage, responder_command, responder_image
from .fault import FaultBase, Keeper
from .helpers import FaultHelpers, put_again

if TYPE_CHECKING:
    from ..context import Context
    from ..engine.port import AttachStream

UID = 65153  # the responder's uid (below 65536: rootless Docker maps a 65536-wide range)
CHAIN = "DN-DNS"
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
HELD = 0.1  # seconds: a delayed name's proof is that no answer comes within this
RCODES = {0: "noerror", 2: "servfail", 3: "nxdomain"}


def seconds_of(delay: object) -> float:
    """``delay=`` in seconds: a duration such as ``"2s"``, ``"500ms"``, or a number of seconds."""
    if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
        return float(delay)
    found = _DURATION.match(delay) if isinstance(delay, str) else None
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"delay={delay!r} must be a duration such as '2s' or '500ms' (or a number of seconds)")
    return float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)


def check_dns_fault(name: object, nxdomain: object, servfail: object, delay: object, answer: object) -> None:
    """What ``dns_fault()`` refuses, before anything is made."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} must be a DNS name such as 'db' or 'api.example.com'")
    for argument, value in (("nxdomain", nxdomain), ("servfail", servfail)):
        if not isinstance(value, bool):
            raise TypeError(f"{argument} must be True or False, got {value!r}")
    if delay is not None:
        seconds_of(delay)
    if answer is not None and not isinstance(answer, Container):
        try:
            ipaddress.ip_address(answer if isinstance(answer, str) else "")
        except ValueError:
            raise ValueError(
                f"answer={answer!r} must be an IPv4 or IPv6 address ('10.0.0.9') or a container of the topology"
            ) from None
    outcomes = [a for a, v in (("nxdomain", nxdomain), ("servfail", servfail), ("answer", answer)) if v]
    if len(outcomes) > 1:
        raise ValueError(f"dns_fault: {' and '.join(outcomes)} exclude each other; give one (delay= may go with it)")
    if not outcomes and delay is None:
        raise ValueError("dns_fault() needs one of nxdomain=True, servfail=True, delay= or answer=")


@dataclass(frozen=True)
class Lookup:
    """One lookup of a name through the container's nameserver, as ``verify()`` returns it."""

    name: str
    rcode: str | None  # "noerror", "nxdomain", "servfail" (another's number as text); None: no answer
    addresses: tuple[str, ...] = ()
    seconds: float | None = None  # how long the answer took; None: none came within the timeout

    def __str__(self) -> str:
        if self.rcode is None:
            return "no answer"
        took = f" in {self.seconds * 1000:.0f} ms" if self.seconds is not None else ""
        if self.rcode == "noerror":
            return f"{self.name} -> {', '.join(self.addresses) or 'no address'}{took}"
        return f"{self.rcode}{took}"


@dataclass
class Responder:
    id: str
    image: ResponderImage
    port: int
    control: int  # the responder's control port on 127.0.0.1 (dns_responder.serve)
    servers: list[str]
    pid: int  # the target's process when it started: another one means a new namespace
    redirected: bool = False  # the nat rules are in place
    faults: list[DnsFault] = field(default_factory=list)


class Responders:
    """The DNS responders of one topology's containers, and the DNS faults of each."""

    def __init__(self, context: Context, helpers: FaultHelpers):
        self.context = context
        self.helpers = helpers
        self._numbers = itertools.count(1)
        self._of: dict[str, Responder] = {}  # container id -> its responder
        self._lock = threading.RLock()

    def put(self, member: Container, faults: list[DnsFault]) -> None:
        """``faults`` in force on ``member``: its responder's rules (one started for the
        first), and the redirection while there are any."""
        with self._lock:
            responder = self._of.get(member.id)
            if responder is None and not faults:
                return
            responder = responder or self._start(member)
            responder.faults = list(faults)
            rules = {"rules": {f.name: f.rule() for f in faults}}
            # One exec of the fault helper: the rules to the responder, and the nat rules
            # put (or removed with the last fault).
            if faults and not responder.redirected:
                then = redirect_script(responder.port, responder.servers)
            elif not faults and responder.redirected:
                then = unredirect_script()
            else:
                then = ""
            said, code, output = self._control(member, responder, rules, then)
            if "ok" not in said or code != 0:
                if then and faults:
                    self.helpers.run(member, unredirect_script())
                    responder.redirected = False
                raise DockernetError(
                    f"dns fault: the rules could not be put in {member.name!r}'s network namespace "
                    f"(exit {code}): {said.get('error') or output.strip()[-600:]}"
                )
            if then:
                responder.redirected = bool(faults)

    def faults_of(self, member: Container) -> list[DnsFault]:
        with self._lock:
            found = self._of.get(member.id)
            return list(found.faults) if found is not None else []

    def servers_of(self, member: Container) -> list[str]:
        with self._lock:
            found = self._of.get(member.id)
            return list(found.servers) if found is not None else []

    def drop_idle(self, member: Container) -> None:
        """Remove ``member``'s responder if no DNS fault of it is in force: after a first
        fault that did not take, nothing of it stays."""
        with self._lock:
            found = self._of.get(member.id)
            if found is None or found.faults:
                return
            del self._of[member.id]
        remove_container(member.engine, found.id)

    def renew(self, member: Container) -> None:
        """``member`` restarted: a responder of its old namespace goes (the next is made on use)."""
        with self._lock:
            found = self._of.get(member.id)
            if found is None or found.pid == _pid(member):
                return
            del self._of[member.id]
        remove_container(member.engine, found.id)

    def lookup(self, member: Container, name: str, qtype: str, timeout: float, first: str = "") -> Lookup:
        """One lookup of ``name`` from ``member``'s namespace through its resolv.conf
        nameserver, from a root socket of the responder (so through the redirection), after
        the helper's script ``first`` (a check) exited 0."""
        responder = self._of.get(member.id)
        if responder is None:
            raise DockernetError(f"dns fault: {member.name!r} has no DNS responder")
        found, code, output = self._control(member, responder, {"query": [name, qtype, timeout]}, "", first)
        if code != 0:
            raise DockernetError(output.strip()[-300:] or f"exit {code}")
        if found.get("error") or not found:
            raise DockernetError(
                f"dns fault: a lookup from {member.name!r} failed: {found.get('error') or output.strip()[-300:]}"
            )
        if found.get("timeout"):
            return Lookup(name, None)
        rcode = int(found["rcode"])
        return Lookup(name, RCODES.get(rcode, str(rcode)), tuple(found["addresses"]), float(found["ms"]) / 1000)

    def _control(
        self, member: Container, responder: Responder, message: dict[str, Any], then: str, first: str = ""
    ) -> tuple[dict[str, Any], int, str]:
        """``message`` to the responder's control port from the fault helper's shell (``nc``),
        then the script ``then``; after the script ``first``. (What it said, exit code, output.)
        Through a Python exec in the responder's container where the helper has no ``nc``."""
        line = shlex.quote(json.dumps(message))
        send = f"{{ printf '%s\\n' {line} | nc 127.0.0.1 {responder.control}; }}"
        script = " && ".join(p for p in (first, send, then) if p)
        code, output = self.helpers.run(member, "command -v nc >/dev/null || exit 127; " + script)
        if code == 127:
            if first:
                code, output = self.helpers.run(member, first)
                if code != 0:
                    return {}, code, output
            said = self._exec(member, responder, "control", str(responder.control), json.dumps(message))
            code, output = self.helpers.run(member, then) if then else (0, "")
            return said, code, output
        said = _said(output)
        return said, code, output

    def _exec(self, member: Container, responder: Responder, *arguments: str) -> Any:
        try:
            code, output = exec_in(member.engine, responder.id, responder_command(responder.image, *arguments))
        except APIError as exc:
            raise DockernetError(
                f"the DNS responder of {member.name!r} cannot run ({exc.explanation or exc}): is {member.name!r} "
                f"still running? it is {member.status()}"
            ) from None
        if code != 0:
            raise DockernetError(
                f"the DNS responder of {member.name!r}: {arguments[0]} failed: {output.strip()[-400:]}"
            )
        return json.loads(output.strip().splitlines()[-1])

    def _start(self, member: Container) -> Responder:
        context, engine = self.context, member.engine
        self.helpers.run(member, "true")  # its fault helper first: NET_ADMIN checked, the fault image made
        image = self._image(member)
        name = f"{member.docker_name}-dns{next(self._numbers)}"
        doing = f"starting the DNS responder of {member.name!r}"
        with undone_on_failure(doing, lambda: remove_containers_named(engine, name, context.filters())):
            with gate_for(engine).building():
                created = engine.create_container(
                    image.tag,
                    command=responder_command(image, "serve"),
                    name=name,
                    user="0",  # it binds as root, then drops to UID
                    labels=context.labels_for("dns-responder", member.name),
                    host_config=engine.create_host_config(network_mode=f"container:{member.id}"),
                    detach=True,
                )
                # Attached before it starts, so that its first line (ports, nameservers) is read.
                stream = engine.attach(created["Id"], stdout=True, stderr=True)
                try:
                    engine.start(created["Id"])
                except BaseException:
                    stream.close()
                    raise
        responder = Responder(created["Id"], image, 0, 0, [], _pid(member))
        try:
            started = _first_line(stream, member)
            responder.port, responder.control = int(started["port"]), int(started["control"])
            responder.servers = list(started["servers"])
            if not responder.servers:
                raise DockernetError(f"dns fault: {member.name!r}'s /etc/resolv.conf names no nameserver")
            if any(":" in s for s in responder.servers):
                self.helpers.require_ipv6(member, "dns fault", "its resolv.conf names an IPv6 nameserver")
        except BaseException:
            remove_container(engine, responder.id)
            raise
        context.timings.count("dns responders")
        self._of[member.id] = responder
        return responder

    def _image(self, member: Container) -> ResponderImage:
        """The responders' image: found (and checked) once per run and engine."""
        context, host = self.context, member.host
        known = context.facts.dns_images.get(host)
        if isinstance(known, DockernetError):
            raise type(known)(str(known))
        if isinstance(known, ResponderImage) and _image_on(member, known.tag):
            return known
        check = (
            context.docker_name_for(f"dns-check{next(self._numbers)}"),
            context.labels_for("dns-check", "python"),
        )
        try:
            native = context.capabilities.of(member.engine).info.runs_this_machines_programs
            built = responder_image(member.engine, context.probe_image, context.settings.fault_image, check, native)
        except DockernetError as exc:
            context.facts.dns_images[host] = exc
            raise
        context.facts.dns_images[host] = built
        return built


def _first_line(stream: AttachStream, member: Container) -> dict[str, Any]:
    """What the responder prints when it is ready; DockernetError with its output if it ends first."""
    output = b""
    try:
        stream.sock.settimeout(30)
        while not output.endswith(b"\n"):
            frame = stream.read_frame()
            if frame is None:
                break
            output += frame
    except OSError as exc:
        output += f"\n({exc})".encode()
    finally:
        stream.close()
    said = _said(output.decode(errors="replace"))
    if "port" not in said:
        raise DockernetError(
            f"the DNS responder of {member.name!r} did not start: {output.decode(errors='replace').strip()[-400:]}"
        )
    return said


def _said(output: str) -> dict[str, Any]:
    """The responder's answer: the last line of ``output`` that is a JSON object, or {}."""
    for line in reversed(output.strip().splitlines()):
        try:
            said = json.loads(line)
        except ValueError:
            continue
        if isinstance(said, dict):
            return said
    return {}


def _image_on(member: Container, tag: str) -> bool:
    try:
        member.engine.inspect_image(tag)
    except (NotFound, APIError):
        return False
    return True


def _pid(member: Container) -> int:
    try:
        return int(member.engine.inspect_container(member.id)["State"].get("Pid") or 0)
    except NotFound:
        return 0


def redirect_script(port: int, servers: list[str]) -> str:
    """The nat rules: every process's queries to ``servers`` (port 53, UDP and TCP) go to
    ``port``, except the responder's own; first in OUTPUT, before Docker's DOCKER_OUTPUT."""
    tools = sorted({"ip6tables" if ":" in s else "iptables" for s in servers})
    lines = [unredirect_script(), *(f"{tool} -w -t nat -N {CHAIN}" for tool in tools)]
    for server in servers:
        tool = "ip6tables" if ":" in server else "iptables"
        lines += [
            f"{tool} -w -t nat -A {CHAIN} -p {protocol} -d {server} --dport 53 "
            f"-m owner ! --uid-owner {UID} -j REDIRECT --to-ports {port}"
            for protocol in ("udp", "tcp")
        ]
    lines += [f"{tool} -w -t nat -I OUTPUT 1 -j {CHAIN}" for tool in tools]
    return " && ".join(lines)


def unredirect_script() -> str:
    """Remove the nat rules; nothing left if they were never put."""
    return "; ".join(
        [
            *(
                f"{tool} -w -t nat {step} 2>/dev/null"
                for tool in ("iptables", "ip6tables")
                for step in (f"-D OUTPUT -j {CHAIN}", f"-F {CHAIN}", f"-X {CHAIN}")
            ),
            "true",
        ]
    )


def redirected_script(servers: list[str]) -> str:
    """Exit 0 when OUTPUT jumps to the nat chain for each family of ``servers``."""
    tools = sorted({"ip6tables" if ":" in s else "iptables" for s in servers})
    return " && ".join(
        f"{{ {tool} -w -t nat -C OUTPUT -j {CHAIN} 2>/dev/null || "
        f"{{ echo '{tool}: no {CHAIN} from nat OUTPUT'; exit 1; }}; }}"
        for tool in tools
    )


class DnsFault(FaultBase):
    """What ``dns_fault()`` put on one container for one name; ``lift()`` takes it off.
    Also a context manager that lifts it on exit."""

    def __init__(
        self,
        keeper: Keeper,
        number: int,
        responders: Responders,
        container: Container,
        name: str,
        *,
        nxdomain: bool = False,
        servfail: bool = False,
        delay: object = None,
        answer: object = None,
    ):
        super().__init__(keeper, number)
        self._responders = responders
        self.container = container
        self.name = name.rstrip(".").lower()
        self.nxdomain, self.servfail = nxdomain, servfail
        self.seconds = None if delay is None else seconds_of(delay)
        self.delay = None if self.seconds is None else delay if isinstance(delay, str) else f"{self.seconds:g}s"
        self.answer_of = answer if isinstance(answer, Container) else None
        self.answer: str | None = None if answer is None else self._address() if self.answer_of else str(answer)

    def _address(self) -> str:
        """The address of ``answer_of`` on a network it shares with the container."""
        assert self.answer_of is not None
        for docker_name, endpoint in self.answer_of.endpoints.items():
            if docker_name in self.container.endpoints and endpoint.ip:
                return endpoint.ip
        raise ValueError(
            f"answer={self.answer_of.name!r} shares no network with {self.container.name!r}: "
            "give an address, or a container on one of its networks"
        )

    def rule(self) -> dict[str, Any]:
        """What the responder does with the name."""
        return {"nxdomain": self.nxdomain, "servfail": self.servfail, "delay": self.seconds, "answer": self.answer}

    def title(self) -> str:
        what = (
            "nxdomain"
            if self.nxdomain
            else "servfail"
            if self.servfail
            else f"-> {self.answer_of.name if self.answer_of else self.answer}"
            if self.answer
            else ""
        )
        delayed = f"delayed {self.delay}" if self.delay else ""
        return f"dns fault #{self.number} {self.container.name}: {self.name} " + ", ".join(
            p for p in (what, delayed) if p
        ).replace(", -> ", " -> ", 1)

    def apply(self) -> None:
        """Its rule in the container's responder (started on the first); if that fails,
        the container's other DNS faults stay as they were."""
        others = [f for f in self._responders.faults_of(self.container) if f.name != self.name]
        try:
            self._responders.put(self.container, [*others, self])
        except BaseException:
            try:
                self._responders.put(self.container, others)
                self._responders.drop_idle(self.container)
            except DockernetError:
                pass  # the first error says what is wrong
            raise

    def reapply(self, container: Container) -> None:
        """Put it again after the container restarted (a new namespace: a new responder) or
        joined or left a network, or after ``answer``'s container did (its address)."""
        if container is self.answer_of:
            self.answer = self._address()
        if container is self.container or container is self.answer_of:
            put_again(self.container, self._put_again)  # after a restart, Faults.reapply renewed the responder

    def _put_again(self) -> None:
        faults = [f for f in self._responders.faults_of(self.container) if f is not self]
        self._responders.put(self.container, [*faults, self])

    def check(self) -> None:
        """DockernetError unless the nat rules are in the container's namespace and one
        lookup of the name shows the faulted answer (a delayed one: no answer within
        :data:`HELD` seconds)."""
        member, responders = self.container, self._responders
        held = self.seconds is not None and self.seconds > 2 * HELD
        timeout = HELD if held else 5.0 + (self.seconds or 0)
        try:
            # One exec: the nat rules checked, then the lookup.
            first = redirected_script(responders.servers_of(member))
            lookup = responders.lookup(member, self.name, self._qtype(), timeout, first)
        except DockernetError as exc:
            raise DockernetError(
                f"{self.title()}: its rules are not in force in {member.name!r}'s network namespace: {exc}"
            ) from None
        if not self._shows(lookup, held):
            raise DockernetError(
                f"{self.title()}: a lookup of {self.name!r} from {member.name!r} did not show the fault "
                f"(it got {lookup}): is {self.name!r} in its /etc/hosts, or is the resolver not its resolv.conf's?"
            )

    def _qtype(self) -> str:
        return "AAAA" if self.answer and ":" in self.answer else "A"

    def _shows(self, lookup: Lookup, held: bool) -> bool:
        if held:
            return lookup.rcode is None
        if self.nxdomain or self.servfail:
            return lookup.rcode == ("nxdomain" if self.nxdomain else "servfail")
        if self.answer:
            return lookup.rcode == "noerror" and list(lookup.addresses) == [self.answer]
        return lookup.rcode is not None  # a short delay: an answer, forwarded

    def verify(self) -> Lookup:
        """``check()``, then one whole lookup of the name from the container (waiting out a
        delay): the :class:`Lookup`, also kept as ``measured`` (``"nxdomain in 3 ms"``).
        ``lift()`` (or the end of its ``with`` block) takes the fault off."""
        return cast(Lookup, super().verify())

    def _measure(self) -> tuple[Lookup, str]:
        lookup = self._responders.lookup(self.container, self.name, self._qtype(), 10.0 + (self.seconds or 0))
        return lookup, str(lookup)

    def _take_off(self) -> None:
        faults = [f for f in self._responders.faults_of(self.container) if f is not self]
        try:
            self._responders.put(self.container, faults)
        except DockernetError:
            if self.container.status().startswith("running"):
                raise  # a stopped container's rules went with its namespace
        if self.since is None:
            # It never took (its proof failed): no responder kept for it. One kept after a
            # lift makes the next fault on the container quick.
            self._responders.drop_idle(self.container)
