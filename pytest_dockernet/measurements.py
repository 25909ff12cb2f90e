"""Measuring what a fault did: packet loss and round-trip times (``measure``), and TCP
throughput (``throughput``), from a container's network namespace.

Like the other helpers they run through the probe sidecar when an image has no tools, so
a test can assert on the effect of ``degrade()`` or ``partition()``, not just on the call.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

from . import probes
from .assertions import check_source, timed
from .checks import check_timeout
from .errors import DockernetError, ProbeFailed
from .handles import Container

_SENT = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
# How long a transfer may go on after the sender stopped: its kernel sends what the socket
# still holds (at 1 Mbit/s, a few seconds' worth).
_DRAIN = 60
_RTT = re.compile(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")


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


@timed
def measure(src: Container, dst: object, *, count: int = 100, interval: float = 0.01) -> Measurement:
    """Send ``count`` ICMP echo requests from ``src`` to ``dst`` (a container or an
    address), ``interval`` seconds apart, and report the loss and round-trip times."""
    src = check_source(src)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10_000:
        raise ValueError(f"count={count!r} must be a whole number from 1 to 10000")
    interval = check_timeout(interval, "interval")
    address = _address(src, dst)
    script = (
        f"{probes.tools_check(['ping'])}; "
        f"ping -q -c {count} -i {interval:g} -W 1 {shlex.quote(address)} 2>&1; echo @@rc=$?"
    )
    result = probes.run(src, script)
    if probes.missing_tools(result):
        raise ProbeFailed(f"cannot measure from {src.name!r}: {result.where} has no ping ({probes.TOOLS_ADVICE})")
    sent = _SENT.search(result.output)
    if sent is None:
        raise ProbeFailed(f"measure from {src.name!r} to {address}: ping gave no statistics\n{result.describe()}")
    rtt = _RTT.search(result.output)
    times: list[float | None] = [float(v) / 1000 for v in rtt.groups()] if rtt else [None, None, None]
    return Measurement(int(sent.group(1)), int(sent.group(2)), *times)


@timed
def throughput(src: Container, dst: object, *, seconds: float = 2.0, port: int = 45871) -> float:
    """Bits per second over a TCP transfer from ``src`` to ``dst``: ``src`` sends for
    ``seconds``, and a receiver in ``dst``'s network namespace counts what arrives and how
    long it took (until what ``src``'s socket still held has come too). ``dst`` is a
    container (an address is not enough: something must receive there)."""
    src = check_source(src)
    if not isinstance(dst, Container):
        raise TypeError(f"dst must be a Container (a receiver runs in its network namespace), got {dst!r}")
    seconds = check_timeout(seconds, "seconds")
    address = _address(src, dst)
    token = secrets.token_hex(4)
    count_file = f"/tmp/dn-throughput-{token}"
    # nc -e hands the connection to a script that counts with wc until the sender's stream
    # ends (a plain `nc -l | wc -c` would end the connection when its own input ends), and
    # notes the uptime at both ends: the sender's kernel goes on sending what its socket
    # holds after the sender is stopped, so the receiver's clock is the one to divide by.
    count = shlex.quote(
        f"read t0 _ < /proc/uptime; n=$(wc -c); read t1 _ < /proc/uptime; "
        f"echo $n $t0 $t1 > {count_file}.part; mv {count_file}.part {count_file}"
    )
    receiver = (
        f"{probes.tools_check(['nc', 'wc', 'timeout'])}; "
        f"timeout {int(seconds) + _DRAIN} nc -l -p {port} -e sh -c {count} </dev/null >/dev/null 2>&1 &"
    )
    started = probes.run(dst, receiver)
    if probes.missing_tools(started):
        raise ProbeFailed(f"cannot receive in {dst.name!r}: {started.where} lacks {probes.missing_tools(started)}")
    # The receiver listens a moment after its background job starts: the sender retries
    # while the connection is refused. Ended by ``timeout`` (124, or 143 for SIGTERM), it
    # sent for the whole time.
    wait = max(1, round(seconds))
    sender = (
        f"{probes.tools_check(['nc', 'timeout'])}; i=0; while :; do "
        f"timeout {wait} nc {address} {port} </dev/zero 2>/dev/null; r=$?; "
        "[ $r = 124 ] || [ $r = 143 ] || [ $r = 0 ] && break; "
        "i=$((i+1)); [ $i -ge 40 ] && break; sleep 0.05; done; true"
    )
    probes.run(src, sender)
    rounds = (int(seconds) + _DRAIN) * 10
    collect = f"for i in $(seq 1 {rounds}); do [ -f {count_file} ] && break; sleep 0.1; done; cat {count_file}"
    got = probes.run(dst, f"{collect}; rm -f {count_file}")
    try:
        received, began, ended = got.output.strip().splitlines()[-1].split()
        elapsed = float(ended) - float(began)
    except (ValueError, IndexError):
        why = f"throughput from {src.name!r} to {dst.name!r}: the receiver counted nothing"
        raise DockernetError(f"{why}\n{got.describe()}") from None
    return int(received) * 8 / max(elapsed, 0.01)  # /proc/uptime counts hundredths
