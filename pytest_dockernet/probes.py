"""Running probes from a source container's network namespace.

A probe is a busybox shell snippet (ping, nc, nslookup, /etc/hosts). It runs in the
source container itself when that is the probe image, else in a sidecar of the probe
image that shares the source's network namespace (and so its /etc/hosts and
/etc/resolv.conf): a source without a shell or tools (distroless, ``FROM scratch``)
is probed exactly as its application sees the network. Many probes of one source go
into one run, concurrently inside it.

Containers the plugin starts with its own command (probe-image containers without a
command, sidecars) run a resident shell that reads scripts from stdin: a probe is then a
write to the container's attach socket (about 1 ms) rather than an exec (about 70 ms,
most of it the runtime starting a process). Anything else, or a shell that is busy or
broken, falls back to an exec; a script the shell was given is never run again that way.

Each script runs in a process group of its own, marked in its environment: what it leaves
running (background jobs, the watchdog of busybox ``timeout``, which makes a session of its
own) ends with it, and a script abandoned at its deadline is ended by its mark.
"""

from __future__ import annotations

import math
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .engine.errors import APIError, NotFound
from .errors import ProbeFailed
from .shells import NotSent, contained, stop_command

if TYPE_CHECKING:
    from .engine.port import Engine
    from .handles import Container

# The command of probe-image containers started without one, and of sidecars: a shell
# that reads probe scripts from stdin (see Shell), then keeps the container alive if stdin
# ever closes. Probing through it costs a write, not an exec.
RESIDENT = ["sh", "-c", "sh -s; exec tail -f /dev/null"]
# What a container running RESIDENT runs between probes, as the engine's `top` lists them.
RESIDENT_PROCESSES = (" ".join(RESIDENT), "sh -s")
# How long a probe that gives its own duration may take beyond it before it is abandoned
# (a busy machine starts processes slowly); a probe that gives none gets the engine's timeout.
DEADLINE_MARGIN = 30.0

SHOWN_OUTPUT = 4000  # characters of a probe's output a failure message shows, at most
NOTED_SCRIPT = 160  # characters of a probe's script its line of the timeline shows, at most

_RC = re.compile(r"@@rc=(\d+)\s*$")


@dataclass
class ProbeResult:
    source: str  # the source's logical name
    where: str  # the container the command ran in
    command: str
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def ip_addresses(self) -> list[IpAddress]:
        """The addresses listed, when the probe was ``ip -o addr show`` (see :func:`parse_ip_addresses`)."""
        return parse_ip_addresses(self.output)

    def describe(self) -> str:
        output = self.output.strip() or "(no output)"
        if len(output) > SHOWN_OUTPUT:  # a flood (an endless HTTP body) would drown the report
            output = f"{output[:SHOWN_OUTPUT]}\n... ({len(output) - SHOWN_OUTPUT} more characters)"
        body = "\n".join("      " + line for line in output.splitlines())
        return (
            f"    probe from {self.source} (in {self.where}):\n"
            f"      $ {self.command}\n"
            f"      exit code {self.exit_code}, output:\n{body}"
        )


class IpAddress(NamedTuple):
    interface: str  # its name, without the "@peer" of a veth
    family: str  # "inet" or "inet6"
    address: str  # without its prefix length


def parse_ip_addresses(output: str) -> list[IpAddress]:
    """The addresses in the output of ``ip -o addr show`` (``-4`` or ``-6`` too): one line
    per address, ``INDEX: INTERFACE FAMILY ADDRESS/PREFIX ...``."""
    found = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) > 3:
            found.append(IpAddress(fields[1].split("@")[0], fields[2], fields[3].split("/")[0]))
    return found


def seconds(timeout: float) -> int:
    """busybox ping -W and nc -w take whole seconds."""
    return max(1, math.ceil(timeout))


def connect_command(address: str, port: int | None, timeout: float) -> str:
    """ICMP echo (``port=None``) or a TCP connect, giving up after ``timeout``; exits 0
    when answered.

    busybox ``nc -w`` bounds the connect only: against a server that keeps a connection
    open after the client's end of input, nc would wait for good. So ``timeout`` ends it
    a second after the connect bound, and being ended that way (124, or 143 for SIGTERM)
    means it was connected: a failed connect ends within ``-w``.
    """
    address = shlex.quote(address)
    wait = seconds(timeout)
    if port is None:
        return f"ping -c1 -W{wait} {address}"
    return (
        f"{{ timeout {wait + 1} nc -w{wait} {address} {int(port)} </dev/null; r=$?; "
        f"[ $r = 0 ] || [ $r = 124 ] || [ $r = 143 ]; }}"
    )


def command_tools(command: str) -> list[str]:
    """The probe tools a command of :func:`connect_command` runs."""
    return [tool for tool in ("ping", "timeout", "nc") if f" {tool} " in f" {command} "]


# A negative answer counts only from a probe shown to work: its tools are there, and a
# control in the same run (ping of loopback, a lookup of a name that must resolve) answers.
PING_CONTROL = "ping -c1 -W1 127.0.0.1"
_MISSING = re.compile(r"@@missing=(\S+)")
TOOLS_ADVICE = "probes need ping, nc, timeout, nslookup, awk, grep and od, as busybox has them: see --dockernet-image"


def tools_check(tools: list[str]) -> str:
    """A line that names each of ``tools`` the runner lacks (``@@missing=TOOL``)."""
    return f"for t in {' '.join(tools)}; do command -v $t >/dev/null 2>&1 || echo @@missing=$t; done"


def lookup(name: str) -> str:
    """nslookup of ``name`` as getaddrinfo asks DNS for it: a name without a dot with the
    resolv.conf search list's domains first, then as given. busybox's nslookup asks only the
    former; on Podman (``search dns.podman``, one nameserver per network in random order) a
    network's aardvark-dns answers a name of another network the container is on, but says
    NXDOMAIN for its NAME.dns.podman, so nslookup alone found nothing half the time where
    the application resolves it. Without a search domain, one query as before."""
    n = shlex.quote(name)
    if "." in name:
        return f"nslookup {n}"
    searched = "grep -Eq '^search[[:space:]]+[^.[:space:]]' /etc/resolv.conf"
    return f"{{ nslookup {n} || {{ {searched} && nslookup {shlex.quote(name + '.')}; }}; }}"


def resolve_command(name: str, control: str | None = None) -> str:
    """Resolve ``name`` as getaddrinfo does with ``hosts: files dns``: /etc/hosts first
    (link aliases, extra hosts, the container's own name), DNS only when it has no entry.

    Prints ``hosts ADDRESS`` lines, or nslookup's own output; with ``control`` (a name the
    source's DNS must answer), first ``@@dns=ok`` or ``@@dns=failed`` for that name.
    """
    n = shlex.quote(name)
    check = tools_check(["awk", "nslookup", "grep"]) + "; "
    if control is not None:
        check += f"if {lookup(control)} 2>&1 | grep -q '^Name:'; then echo @@dns=ok; else echo @@dns=failed; fi; "
    return check + (
        f"a=$(awk -v n={n} 'BEGIN {{n = tolower(n)}} /^[ \\t]*[^# \\t]/ "
        f"{{for (i = 2; i <= NF; i++) if (tolower($i) == n) {{print $1; next}}}}' /etc/hosts); "
        f'if [ -n "$a" ]; then for x in $a; do echo "hosts $x"; done; else {lookup(name)}; fi'
    )


def missing_tools(result: ProbeResult) -> list[str]:
    return _MISSING.findall(result.output)


def parse_addresses(output: str) -> list[str]:
    """The addresses in the output of :func:`resolve_command`."""
    found: list[str] = []
    answering = False
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("hosts "):
            found.append(line.split()[1])
        elif line.startswith("Name:"):
            answering = True  # nslookup's "Server:/Address:" header lies before the answers
        elif answering and line.startswith("Address"):
            address = line.split(":", 1)[1].strip().split()[0]
            found.append(address)
    return list(dict.fromkeys(found))


def _runner(source: Container) -> tuple[str, str, bool]:
    """The container id a probe of ``source`` runs in, its name for messages, and whether
    it runs the resident shell."""
    if source.can_probe:
        return source.id, source.docker_name, source.resident
    return source.context.sidecar_of(source), f"probe sidecar {source.docker_name}-probe", True


def run(
    source: Container, script: str, *, counted: bool = True, seconds: float | None = None, note: str | None = None
) -> ProbeResult:
    """Run a shell snippet in ``source``'s network namespace: through the resident shell
    where there is one, else one exec (two API calls).

    ``seconds`` is how long the snippet itself may take (a measurement's duration): the
    resident shell is read for that long plus ``DEADLINE_MARGIN``, without it for the
    engine's timeout. A snippet that outlives its deadline is killed, with whatever it
    started, and the probe fails (ProbeFailed): it is not run a second time.

    A probe run in a sidecar is trusted only while the source itself runs: a stopped
    source leaves its sidecar in a namespace without its networks, where every probe
    would answer "no". The probe notes when the namespace has no interface but loopback,
    and only then is the source's state asked (no API call on the usual path).

    A counted probe is a line of the topology's timeline: ``note`` (what it asks, in a few
    words), else the script itself, shortened; "" for none.
    """
    if source.can_probe:
        result = _run(source, script, counted, seconds)
    else:
        result = _run(source, f"{_NO_NETWORK_CHECK}\n{script}", counted, seconds)
        if _NO_NETWORK in result.output:
            result.output = result.output.replace(_NO_NETWORK + "\n", "")
            _check_source_runs(source)
    if counted and note != "":
        code = result.exit_code
        verdict = "answered" if code == 0 else "no answer" if code == 1 else f"no answer (exit {code})"
        source.context.timeline.add(f"probe from {source.name}: {note or noted(script)}: {verdict}")
    return result


_PING = re.compile(r"\bping -c1 -W\d+ (\S+)")
_NC = re.compile(r"\bnc -w\d+ (\S+) (\d+)")


def noted(script: str) -> str:
    """A probe's script as the timeline shows it: what :func:`connect_command` asks
    ("TCP 10.0.0.3:5432", "ICMP echo 10.0.0.3"), else the script, shortened."""
    asked = [f"ICMP echo {a}" for a in _PING.findall(script)] + [f"TCP {a}:{p}" for a, p in _NC.findall(script)]
    if asked:
        return " or ".join(asked)
    return script if len(script) <= NOTED_SCRIPT else script[: NOTED_SCRIPT - 3] + "..."


_NO_NETWORK = "@@no-network"
_NO_NETWORK_CHECK = f"ls /sys/class/net 2>/dev/null | grep -qvx lo || echo {_NO_NETWORK}"


def _check_source_runs(source: Container) -> None:
    try:
        state = source.engine.inspect_container(source.id)["State"]
    except NotFound:
        raise ProbeFailed(f"cannot probe from {source.name!r}: its container no longer exists") from None
    if not state.get("Running"):
        logs = source.logs(tail=10).rstrip().splitlines()
        raise ProbeFailed(
            f"cannot probe from {source.name!r}: it is not running ({state.get('Status')}, exit code "
            f"{state.get('ExitCode')}), so its network namespace has none of its networks; the end of its "
            "output:\n" + ("\n".join("  " + line for line in logs) or "  (none)")
        )


def _run(source: Container, script: str, counted: bool, seconds: float | None) -> ProbeResult:
    runner, where, resident = _runner(source)
    engine = source.engine
    if counted:  # the plugin's own checks (the warm pool's) are not the test's probes
        source.context.timings.count("probes")
    mark = secrets.token_hex(6)
    shell = source.context.shells.acquire(source.engine, runner) if resident else None
    if shell is not None:
        deadline = _deadline(engine, seconds)
        try:
            code, output = shell.run(script, mark, deadline)
        except OSError as exc:
            shell.close()  # later probes of this source exec
            source.reusable = False  # its resident shell may hold part of a script
            if not isinstance(exc, NotSent):  # it may run: ended, and not run again
                raise _abandoned(source, runner, where, script, mark, exc) from None
        else:
            return ProbeResult(source.name, where, script, code, output)
        finally:
            shell.lock.release()
    if counted:
        source.context.timings.count("probe execs")
    wrapped = f"{contained(script, mark)}echo @@rc=$r"
    try:
        exec_id = engine.exec_create(runner, ["sh", "-c", wrapped])["Id"]
    except APIError as exc:
        raise ProbeFailed(f"cannot probe from {source.name!r}: {_why_not(source, runner, exc)}") from None
    output = engine.exec_start(exec_id).decode(errors="replace")
    match = _RC.search(output)
    if match is None:  # the exec itself failed (e.g. no sh in a custom probe image)
        return ProbeResult(source.name, where, script, engine.exec_inspect(exec_id)["ExitCode"] or 127, output)
    return ProbeResult(source.name, where, script, int(match.group(1)), output[: match.start()])


def _deadline(engine: Engine, seconds: float | None) -> float:
    if seconds is not None:
        return seconds + DEADLINE_MARGIN
    return 60.0 if engine.timeout is None else float(engine.timeout)


def _abandoned(source: Container, runner: str, where: str, script: str, mark: str, exc: OSError) -> ProbeFailed:
    """Kill what the probe marked ``mark`` runs in ``runner``, which gave no end; the failure."""
    try:
        exec_id = source.engine.exec_create(runner, ["sh", "-c", stop_command(mark)])["Id"]
        source.engine.exec_start(exec_id)
    except APIError as refused:  # e.g. stopped meanwhile: say so, as an exec would
        return ProbeFailed(f"cannot probe from {source.name!r}: {_why_not(source, runner, refused)}")
    return ProbeFailed(
        f"cannot probe from {source.name!r}: the probe in {where} gave no answer ({exc}), so it "
        f"was stopped; it is not run again\n    $ {script}"
    )


def _why_not(source: Container, runner: str, exc: APIError) -> str:
    """Why an exec in ``runner`` was refused, in the words of the container's state."""
    if isinstance(exc, NotFound):
        return f"its container {source.docker_name} no longer exists (removed, or its topology's scope has ended)"
    try:
        state = source.engine.inspect_container(runner)["State"]
    except APIError:
        return f"the engine refused to run the probe: {exc.explanation or exc}"
    if not state.get("Running"):
        what = "the container" if runner == source.id else "its probe sidecar"
        return (
            f"{what} is not running ({state.get('Status', 'stopped')}, exit code {state.get('ExitCode')}"
            f"{', ' + state['Error'] if state.get('Error') else ''}); see its logs()"
        )
    return f"the engine refused to run the probe: {exc.explanation or exc}"


def run_many(source: Container, commands: list[str], *, dns_control: str | None = None) -> list[bool]:
    """Run ``commands`` (ping or nc) concurrently in one probe; whether each exited 0.

    Raises ProbeFailed instead of answering "no" from a probe that cannot be trusted: a
    tool is missing, a command gave no exit code (the probe did not run to its end), ping
    cannot reach even loopback, or (``dns_control``, a name the source's DNS must answer)
    DNS does not answer.
    """
    if not commands:
        return []
    tools = sorted(
        {t for cmd in commands for t in command_tools(cmd)} | ({"nslookup", "grep"} if dns_control else set())
    )
    parts = [tools_check(tools)]
    if "ping" in tools:
        parts.append(f"{PING_CONTROL} >/dev/null 2>&1 || echo @@failed=ping")
    if dns_control is not None:
        parts.append(f"{lookup(dns_control)} 2>&1 | grep -q '^Name:' || echo @@failed=dns")
    # each command and the echo of its code together in the background: all run at once
    parts += [f"{{ ( {cmd} ) >/dev/null 2>&1; echo @@rc{i}=$?; }} &" for i, cmd in enumerate(commands)]
    result = run(source, "\n".join(parts) + "\nwait", note="")
    codes = {int(i): int(rc) for i, rc in re.findall(r"@@rc(\d+)=(\d+)", result.output)}
    for i, command in enumerate(commands):
        answer = "answered" if codes.get(i) == 0 else "no answer" if i in codes else "no exit code"
        source.context.timeline.add(f"probe from {source.name}: {noted(command)}: {answer}")
    failed = re.findall(r"@@failed=(\S+)", result.output)
    why = None
    if missing_tools(result):
        why = f"{result.where} has no {', '.join(missing_tools(result))} ({TOOLS_ADVICE})"
    elif len(codes) != len(commands):
        why = f"the probe did not run to its end in {result.where} (exit code {result.exit_code})"
    elif "ping" in failed:
        why = f"ping does not work in {result.where}: `{PING_CONTROL}` got no answer"
    elif "dns" in failed:
        why = f"DNS does not answer in {result.where}: its own name {dns_control!r} did not resolve"
    elif any(code in (126, 127) for code in codes.values()):
        why = f"a probe command could not run in {result.where}"
    if why is not None:
        raise ProbeFailed(f"cannot probe from {source.name!r}: {why}, so no answer can be trusted\n{result.describe()}")
    return [codes[i] == 0 for i in range(len(commands))]
