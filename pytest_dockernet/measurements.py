"""Measuring what a fault did: packet loss and round-trip times (``measure``), and TCP
throughput (``throughput``), from a container's network namespace.

Like the other helpers they run through the probe sidecar when an image has no tools, so
a test can assert on the effect of ``degrade()`` or ``partition()``, not just on the call,
from either side of it: what the source's own rules drop is lost, not an error.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shlex
from dataclasses import dataclass

from . import probes
from .assertions import check_source, timed
from .checks import check_timeout
from .engine.errors import APIError
from .errors import DockernetError, ProbeFailed
from .handles import Container
from .shells import stop_command

_SENT = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
# busybox ping ends at the first packet its kernel refuses to send (a rule of the source's
# drops it: "Operation not permitted"; no route): that packet was lost.
_REFUSED = re.compile(r"^ping: sendto: ", re.M)
_USUAL = re.compile(r"^(PING |--- |round-trip |\d+ packets transmitted|ping: sendto: |$)")
# How long a transfer may go on after the sender stopped: its kernel sends what the socket
# still holds (at 1 Mbit/s, a few seconds' worth).
_DRAIN = 60
_RTT = re.compile(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")
# What starting one ping and a sleep may add to each packet's interval on a busy machine,
# for the probe's deadline only.
_PER_PACKET = 0.01


@dataclass
class Measurement:
    """What ``measure`` saw: ``loss`` (0.0-1.0), ``sent``, ``received``, and round-trip
    times in seconds (None when nothing came back)."""

    sent: int
    received: int
    rtt_min: float | None
    rtt_avg: float | None
    rtt_max: float | None

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


def _address(src: Container, dst: object, argument: str = "dst") -> str:
    if isinstance(dst, Container):
        shared = [e.ip for name, e in dst.endpoints.items() if name in src.endpoints and e.ip]
        every = [e.ip for e in dst.endpoints.values() if e.ip]
        if not (shared or every):
            raise ValueError(f"{argument}: {dst.name!r} has no address {src.name!r} could use")
        return (shared or every)[0]
    if isinstance(dst, str) and dst.strip():
        return dst
    raise TypeError(f"{argument} must be a Container or an address/name, got {dst!r}")


def _resolved(src: Container, address: str) -> str:
    """``address``, or the address ``src`` resolves the name to (once, not per packet)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return address
    result = probes.run(src, probes.resolve_command(address))
    if probes.missing_tools(result):
        raise ProbeFailed(f"cannot measure from {src.name!r}: {result.where} lacks {probes.missing_tools(result)}")
    found = probes.parse_addresses(result.output)
    if not found:
        raise ProbeFailed(f"measure from {src.name!r}: {address!r} does not resolve there\n{result.describe()}")
    return next((a for a in found if ":" not in a), found[0])  # IPv4 first, as ping's own lookup


@timed
def measure(src: Container, dst: object, *, count: int = 100, interval: float = 0.01) -> Measurement:
    """Send ``count`` ICMP echo requests from ``src`` to ``dst`` (a container or an
    address), ``interval`` seconds apart, and report the loss and round-trip times.

    A request is lost when no answer comes within 1 s, or when ``src``'s own kernel
    refuses to send it (a ``partition()`` or ``degrade(loss=)`` of ``src`` drops it there):
    the loss is the same measured from either side of a fault. Each request is a ping of
    its own, since busybox ping ends at the first request its kernel refuses.
    """
    src = check_source(src)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10_000:
        raise ValueError(f"count={count!r} must be a whole number from 1 to 10000")
    interval = check_timeout(interval, "interval")
    address = _resolved(src, _address(src, dst))
    script = (
        f"{probes.tools_check(['ping', 'sleep'])}; i=0; while [ $i -lt {count} ]; do "
        f"ping -q -c1 -W1 {shlex.quote(address)} 2>&1 & i=$((i + 1)); "
        f"[ $i -lt {count} ] && sleep {interval:.6f}; done; wait"
    )
    result = probes.run(src, script, seconds=count * (interval + _PER_PACKET) + 2)
    if probes.missing_tools(result):
        raise ProbeFailed(f"cannot measure from {src.name!r}: {result.where} lacks {probes.missing_tools(result)}")
    stats = [(int(sent), int(received)) for sent, received in _SENT.findall(result.output)]
    sent = sum(s for s, _ in stats) + len(_REFUSED.findall(result.output))
    if sent != count:
        unusual = [line for line in result.output.splitlines() if not _USUAL.match(line)]
        result.output = "\n".join(unusual[:20])
        why = f"measure from {src.name!r} to {address}: ping accounted for {sent} of {count} requests"
        raise ProbeFailed(f"{why}\n{result.describe()}")
    received = sum(r for _, r in stats)
    rtts = [[float(v) / 1000 for v in found] for found in _RTT.findall(result.output)]  # one per answer
    if not rtts:
        return Measurement(sent, received, None, None, None)
    average = sum(rtt[1] for rtt in rtts) / len(rtts)
    return Measurement(sent, received, min(rtt[0] for rtt in rtts), average, max(rtt[2] for rtt in rtts))


@timed
def throughput(src: Container, dst: object, *, seconds: float = 2.0, port: int = 45871) -> float:
    """Bits per second over a TCP transfer from ``src`` to ``dst``: ``src`` sends for
    ``seconds``, and a receiver in ``dst``'s network namespace counts what arrives and how
    long it took (until what ``src``'s socket still held has come too). ``dst`` is a
    container (an address is not enough: something must receive there), in which nothing
    else may listen on ``port``.

    What got through is what counts, whichever side a fault is on: 0.0 when ``src`` tried
    to connect for the whole time and nothing reached the receiver (a partition). The
    receiver ends with the call, whatever its outcome.
    """
    src = check_source(src)
    if not isinstance(dst, Container):
        raise TypeError(f"dst must be a Container (a receiver runs in its network namespace), got {dst!r}")
    seconds = check_timeout(seconds, "seconds")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"port={port!r} must be a TCP port number (1-65535) for the receiver in dst")
    address = _address(src, dst)
    token = secrets.token_hex(4)
    files, mark = f"/tmp/dn-throughput-{token}", f"throughput-{token}"
    try:
        _start_receiver(dst, port, int(seconds) + _DRAIN, files, mark)
        # The receiver listens a moment after its background job starts: the sender retries
        # while the connection is refused. Ended by ``timeout`` (124, or 143 for SIGTERM), it
        # tried for the whole time, connected or not.
        wait = max(1, round(seconds))
        sender = (
            f"{probes.tools_check(['nc', 'timeout'])}; i=0; while :; do "
            f"timeout {wait} nc {address} {port} </dev/zero 2>/dev/null; r=$?; "
            "[ $r = 124 ] || [ $r = 143 ] || [ $r = 0 ] && break; "
            "i=$((i+1)); [ $i -ge 40 ] && break; sleep 0.05; done; echo @@sender=$r"
        )
        sent = probes.run(src, sender, seconds=wait + 40 * 0.1)
        if probes.missing_tools(sent):
            raise ProbeFailed(f"cannot send from {src.name!r}: {sent.where} lacks {probes.missing_tools(sent)}")
        # A connection that reached the receiver is waited for until its count is written;
        # with none two seconds after the sender gave up, none is coming.
        collect = (
            f"i=0; while [ $i -lt {(int(seconds) + _DRAIN) * 10} ]; do [ -f {files} ] && break; "
            f"[ -f {files}.conn ] || [ $i -lt 20 ] || break; sleep 0.1; i=$((i + 1)); done; "
            f"[ -f {files}.conn ] && echo @@connected; cat {files} 2>/dev/null; true"
        )
        got = probes.run(dst, collect, seconds=int(seconds) + _DRAIN + 2)
    finally:
        _stop_receiver(dst, files, mark)
    counted = [line for line in got.output.splitlines() if line and not line.startswith("@@")]
    try:
        received, began, ended = counted[-1].split()
        elapsed = float(ended) - float(began)
    except (ValueError, IndexError):
        tried = re.search(r"@@sender=(\d+)", sent.output)
        if "@@connected" not in got.output and tried is not None and tried.group(1) in ("124", "143"):
            return 0.0  # it tried to connect all the time and nothing reached dst
        why = f"throughput from {src.name!r} to {dst.name!r}: the receiver counted nothing"
        raise DockernetError(f"{why}\n{sent.describe()}\n{got.describe()}") from None
    return int(received) * 8 / max(elapsed, 0.01)  # /proc/uptime counts hundredths


def _start_receiver(dst: Container, port: int, limit: int, files: str, mark: str) -> None:
    """A receiver on ``port`` in ``dst``'s namespace, marked ``mark`` and in a session of
    its own: the probe that starts it ends without it, :func:`_stop_receiver` ends it."""
    # nc -e hands the connection to a script that counts with wc until the sender's stream
    # ends (a plain `nc -l | wc -c` would end the connection when its own input ends), and
    # notes the uptime at both ends: the sender's kernel goes on sending what its socket
    # holds after the sender is stopped, so the receiver's clock is the one to divide by.
    count = shlex.quote(
        f": > {files}.conn; read t0 _ < /proc/uptime; n=$(wc -c); read t1 _ < /proc/uptime; "
        f"echo $n $t0 $t1 > {files}.part; mv {files}.part {files}"
    )
    # Listening before the probe ends: also out of the probe's process group by then (its
    # end kills the group), and the sender's first connect finds it.
    listening = f'$2 ~ /:{port:04X}$/ && $4 == "0A" {{f = 1}} END {{exit !f}}'
    receiver = (
        f"{probes.tools_check(['nc', 'wc', 'timeout', 'setsid', 'awk'])}; "
        f"l() {{ cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk {shlex.quote(listening)}; }}; "
        "if l; then echo @@busy; else "
        f"DN_PROBE={mark} setsid timeout {limit} nc -l -p {port} -e sh -c {count} </dev/null >/dev/null 2>&1 & "
        "i=0; until l; do i=$((i + 1)); [ $i -ge 100 ] && echo @@silent && break; sleep 0.05; done; fi"
    )
    started = probes.run(dst, receiver)
    if probes.missing_tools(started):
        raise ProbeFailed(f"cannot receive in {dst.name!r}: {started.where} lacks {probes.missing_tools(started)}")
    if "@@busy" in started.output:
        raise DockernetError(
            f"throughput: something in {dst.name!r} already listens on port {port}; pass another port= "
            "(one no process of that container uses)"
        )
    if "@@silent" in started.output:
        why = f"throughput: the receiver in {dst.name!r} did not listen on port {port}"
        raise ProbeFailed(f"{why}\n{started.describe()}")


def _stop_receiver(dst: Container, files: str, mark: str) -> None:
    try:
        probes.run(dst, f"{stop_command(mark)}; rm -f {files} {files}.part {files}.conn", counted=False)
    except (DockernetError, APIError, OSError):
        pass  # dst no longer runs: nor does anything in it
