"""What a capture says in a few lines: its flows, read with dpkt (the ``capture`` extra),
named after the topology's containers.

    api 10.213.239.3 -> db 10.213.240.2 ICMP echo x5, no reply
    api 10.213.239.3 -> db 10.213.239.4:5432 TCP SYN x3, RST x3

A flow is one source, one destination (and port): ICMP echoes with their replies, a TCP
connection's attempts with what answered them (SYN-ACK: accepted; RST: refused; nothing:
dropped), UDP datagrams. Neighbour discovery and multicast are left out: the engine's own
chatter, not the test's.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .errors import DockernetError

if TYPE_CHECKING:
    from pathlib import Path

    from .context import Context

MAX_FLOWS = 12  # lines per network; the rest is counted
EXTRA = "capture"  # the package's extra that installs dpkt
ICMP_UNREACHABLE = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable", 13: "prohibited"}


def dpkt_module() -> Any:
    """dpkt, or DockernetError saying how to install it."""
    try:
        import dpkt  # type: ignore[import-untyped]  # no type hints of its own
    except ImportError:
        raise DockernetError(
            f"capture needs dpkt to read what it recorded: pip install 'pytest-dockernet[{EXTRA}]' (or dpkt)"
        ) from None
    return dpkt


def names_of(context: Context) -> dict[str, str]:
    """Address -> container name (and each network's gateway), for a summary's lines."""
    names = {n.gateway: f"gateway({n.name})" for n in context.networks if n.gateway}
    for container in context.containers:
        names.update({e.ip: container.name for e in container.endpoints.values() if e.ip})
    return names


def merge(ring: Iterable[bytes], out: IO[bytes]) -> int:
    """Write the ring's files as one pcap, oldest packet first; the number of packets.
    (tcpdump's ring names do not say which file is newest: their first packets do.)"""
    dpkt = dpkt_module()
    files = []
    linktype, snaplen = dpkt.pcap.DLT_EN10MB, 65535
    for data in ring:
        packets = list(_packets(data))
        if packets:
            files.append(packets)
            linktype, snaplen = _header(data)
    writer = dpkt.pcap.Writer(out, snaplen=snaplen, linktype=linktype)
    count = 0
    for packets in sorted(files, key=lambda p: p[0][0]):
        for ts, buf in packets:
            writer.writepkt(buf, ts=ts)
            count += 1
    if not files:
        out.flush()  # the header alone: an empty capture still opens in Wireshark
    return count


def _header(data: bytes) -> tuple[int, int]:
    reader = dpkt_module().pcap.Reader(io.BytesIO(data))
    return int(reader.datalink()), int(reader.snaplen)


class _Whole(io.BytesIO):
    """A file whose reads give all that was asked or nothing: a last packet tcpdump was
    still writing when the file was copied ends the file instead of coming out short."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and 0 < len(data) < size:
            raise EOFError
        return data


def _packets(data: bytes) -> Iterable[tuple[float, bytes]]:
    """A ring file's packets; a file tcpdump has just opened (no header yet) has none."""
    dpkt = dpkt_module()
    try:
        yield from dpkt.pcap.Reader(_Whole(data))
    except (EOFError, ValueError, dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError):
        return


@dataclass
class Flow:
    source: str
    target: str
    port: int | None  # the target's, for TCP and UDP
    protocol: str  # ICMP | TCP | UDP
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def verdict(self) -> str:
        c = self.counts
        if self.protocol == "ICMP":
            said = f"ICMP echo x{c.get('echo', 0)}" if c.get("echo") else "ICMP"
            answers = [f"reply x{c['reply']}"] if c.get("reply") else []
            answers += [f"{k} x{v}" for k, v in c.items() if k not in ("echo", "reply")]
            return f"{said}, {', '.join(answers) or 'no reply'}"
        if self.protocol == "TCP":
            if not c.get("SYN"):
                return f"TCP x{sum(c.values())} (no SYN recorded)"
            answers = [f"{k} x{v}" for k, v in c.items() if k in ("SYN-ACK", "RST") or k.startswith("ICMP")]
            data = c.get("data", 0)
            return f"TCP SYN x{c['SYN']}, {', '.join(answers) or 'no answer'}" + (f", {data} data" if data else "")
        said = f"UDP x{c.get('sent', 0)}"
        answers = [f"{k} x{v}" for k, v in c.items() if k != "sent"]
        return f"{said}, {', '.join(answers) or 'no answer'}"


class Flows:
    """The flows of one capture, in the order they were first seen."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.flows: dict[tuple[str, str, int | None, str], Flow] = {}

    def flow(self, source: str, target: str, port: int | None, protocol: str) -> Flow:
        key = (source, target, port, protocol)
        if key not in self.flows:
            self.flows[key] = Flow(source, target, port, protocol)
        return self.flows[key]

    def answer(self, source: str, target: str, port: int | None, protocol: str) -> Flow | None:
        """The flow a packet from ``source`` answers (its reverse), if that flow was seen."""
        return self.flows.get((target, source, port, protocol))

    def read(self, ts: float, buf: bytes, linktype: int) -> None:
        dpkt = dpkt_module()
        if linktype == dpkt.pcap.DLT_EN10MB:
            frame = dpkt.ethernet.Ethernet(buf).data
        elif linktype == dpkt.pcap.DLT_LINUX_SLL:
            frame = dpkt.sll.SLL(buf).data
        else:
            return
        if isinstance(frame, dpkt.ip.IP):
            source, target = (str(ipaddress.ip_address(a)) for a in (frame.src, frame.dst))
            packet, echo, reply, unreachable = frame.data, 8, 0, 3
        elif isinstance(frame, dpkt.ip6.IP6):
            source, target = (str(ipaddress.ip_address(a)) for a in (frame.src, frame.dst))
            packet, echo, reply, unreachable = frame.data, 128, 129, 1
        else:
            return  # ARP, and the like
        if ipaddress.ip_address(target).is_multicast:
            return
        if isinstance(packet, (dpkt.icmp.ICMP, dpkt.icmp6.ICMP6)):
            self._icmp(packet, source, target, echo, reply, unreachable)
        elif isinstance(packet, dpkt.tcp.TCP):
            self._tcp(packet, source, target)
        elif isinstance(packet, dpkt.udp.UDP):
            flow = self.answer(source, target, packet.sport, "UDP")
            if flow is not None:
                flow.add("answer")
            else:
                self.flow(source, target, packet.dport, "UDP").add("sent")

    def _icmp(self, packet: Any, source: str, target: str, echo: int, reply: int, unreachable: int) -> None:
        if packet.type == echo:
            self.flow(source, target, None, "ICMP").add("echo")
        elif packet.type == reply:
            self.flow(target, source, None, "ICMP").add("reply")
        elif packet.type == unreachable:
            # The packet it answers is inside: count it on that packet's flow.
            inner = getattr(getattr(packet, "data", None), "data", None)
            word = "unreachable (" + ICMP_UNREACHABLE.get(packet.code, f"code {packet.code}") + ")"
            original = getattr(inner, "data", None)
            port = getattr(original, "dport", None)
            protocol = {6: "TCP", 17: "UDP", 1: "ICMP"}.get(getattr(inner, "p", 0), "ICMP")
            self.flow(target, str(_address(getattr(inner, "dst", b"")) or source), port, protocol).add(word)

    def _tcp(self, segment: Any, source: str, target: str) -> None:
        dpkt = dpkt_module()
        syn, ack, rst = (bool(segment.flags & f) for f in (dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_RST))
        answered = self.answer(source, target, segment.sport, "TCP")
        if syn and not ack:
            self.flow(source, target, segment.dport, "TCP").add("SYN")
        elif answered is not None:
            answered.add("SYN-ACK" if syn else "RST" if rst else "data" if segment.data else "ack")
        else:
            flow = self.flow(source, target, segment.dport, "TCP")
            flow.add("RST" if rst else "data" if segment.data else "ack")

    def lines(self) -> list[str]:
        shown = list(self.flows.values())[:MAX_FLOWS]
        lines = [f"{self._who(f.source)} -> {self._who(f.target, f.port)} {f.verdict()}" for f in shown]
        if len(self.flows) > MAX_FLOWS:
            lines.append(f"(+{len(self.flows) - MAX_FLOWS} more flows)")
        return lines

    def _who(self, address: str, port: int | None = None) -> str:
        at = f"{address}:{port}" if port is not None else address
        name = self.names.get(address)
        return f"{name} {at}" if name else at


def _address(raw: bytes) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return ""


def summarize(path: Path, names: dict[str, str]) -> list[str]:
    """The flows of the pcap at ``path``, one line each (an empty capture: none)."""
    dpkt = dpkt_module()
    flows = Flows(names)
    count = 0
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        for ts, buf in reader:
            count += 1
            try:
                flows.read(ts, buf, linktype)
            except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, ValueError):
                continue  # a frame cut short by the capture's snap length
    if count and not flows.flows:
        return [f"no flow of the test's ({count} packets of ARP, neighbour discovery, multicast)"]
    return flows.lines()
