"""The DNS fault responder: data shipped in the package, run by a Python of its own in a
container that shares the target's network namespace (:mod:`.dns`); stdlib only, imported
by nothing (its source is passed to ``python -S -I -c``).

``serve``: binds UDP and TCP on one port (IPv4 and IPv6) and a control port on 127.0.0.1,
prints both and the nameservers as one JSON line (read through an attach made before the
container starts: no polling), and forks. The child drops to uid/gid :data:`UID` (the
target's nat rules redirect the DNS queries of every other uid to it, so its own upstream
queries pass) and answers each query: a name of the rules file (``/dn/rules.json``,
re-read when it is replaced) with NXDOMAIN, SERVFAIL or an address (TTL 0; the other
family's type: no answers), optionally after a delay; every other query forwarded
unchanged to the nameservers of ``/etc/resolv.conf``. The parent stays root and serves the
control port, one JSON line per connection: ``{"rules": {...}}`` replaces the rules file
(atomically); ``{"query": [NAME, TYPE, TIMEOUT]}`` makes one lookup through the resolv.conf
nameserver from a socket of its own (root's: redirected, as the application's are).
By a control port rather than an exec of Python per change: the fault helper's shell
reaches it with ``nc`` in one exec that also puts the nat rules.
``control PORT MESSAGE``: one control message (where the helper has no ``nc``).
``modules``: the files of what it imports.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
from typing import Any

UID = 65153
HOME = "/dn"
RULES = HOME + "/rules.json"
TYPES = {"A": 1, "AAAA": 28}
UPSTREAM_TIMEOUT = 4.0


def resolv_conf() -> tuple[list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    try:
        with open("/etc/resolv.conf") as conf:
            for line in conf:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    servers.append(words[1].split("%")[0])
                elif words and words[0] in ("search", "domain"):
                    search = [w.strip(".").lower() for w in words[1:] if w.strip(".")]
    except OSError:
        pass
    return servers, search


def question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end of the question) of a query; ValueError when malformed."""
    if len(packet) < 12 or struct.unpack("!H", packet[4:6])[0] != 1:
        raise ValueError("not one question")
    labels, at = [], 12
    while True:
        length = packet[at]
        if length == 0:
            at += 1
            break
        if length & 0xC0:
            raise ValueError("a pointer in a question")
        labels.append(packet[at + 1 : at + 1 + length].decode("ascii", "replace").lower())
        at += 1 + length
    qtype = struct.unpack("!H", packet[at : at + 2])[0]
    return ".".join(labels), qtype, at + 4


def reply(query: bytes, end: int, rcode: int, answers: list[tuple[int, bytes]] | tuple[()] = ()) -> bytes:
    """A reply to ``query``: its question, ``rcode``, ``answers`` ((type, rdata) with TTL 0)."""
    flags = struct.unpack("!H", query[2:4])[0]
    flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode  # QR, opcode and RD kept, RA
    header = query[:2] + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, rtype, 1, 0, len(rdata)) + rdata for rtype, rdata in answers)
    return header + query[12:end] + body


class Responder:
    def __init__(self) -> None:
        self.servers, self.search = resolv_conf()
        self.rules: dict[str, Any] = {}
        self.seen: tuple[int, int, int] | None = None

    def rule(self, name: str) -> Any:
        try:
            info = os.stat(RULES)
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            if stamp != self.seen:
                with open(RULES) as f:
                    self.rules = json.load(f)
                self.seen = stamp
        except (OSError, ValueError):
            self.rules, self.seen = {}, None
        name = name.rstrip(".")
        for faulted, rule in self.rules.items():
            if name == faulted or any(name == f"{faulted}.{domain}" for domain in self.search):
                return rule
        return None

    def answer(self, query: bytes, tcp: bool) -> bytes | None:
        try:
            name, qtype, end = question(query)
        except (ValueError, IndexError):
            return self.forward(query, tcp)
        rule = self.rule(name)
        if rule is None:
            return self.forward(query, tcp)
        if rule.get("delay"):
            time.sleep(float(rule["delay"]))
        if rule.get("nxdomain"):
            return reply(query, end, 3)
        if rule.get("servfail"):
            return reply(query, end, 2)
        address = rule.get("answer")
        if address:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            rtype = 28 if family == socket.AF_INET6 else 1
            found = [(rtype, socket.inet_pton(family, address))] if qtype == rtype else []
            return reply(query, end, 0, found)
        return self.forward(query, tcp)

    def forward(self, query: bytes, tcp: bool) -> bytes | None:
        refused = False
        for server in self.servers:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as upstream:
                    upstream.settimeout(UPSTREAM_TIMEOUT)
                    if tcp:
                        upstream.connect((server, 53))
                        upstream.sendall(struct.pack("!H", len(query)) + query)
                        return read_message(upstream)
                    # Connected: a server that refuses (nothing listens, as on a hermetic
                    # default bridge) says so at once, as it did to the client before.
                    upstream.connect((server, 53))
                    upstream.send(query)
                    return upstream.recv(65535)
            except ConnectionRefusedError:
                refused = True
                continue
            except OSError:
                continue
        if refused:
            try:
                return reply(query, question(query)[2], 5)  # REFUSED: fails as fast as before
            except (ValueError, IndexError):
                return None
        return None  # no answer upstream: the client's own timeout says so


def read_message(conn: socket.socket) -> bytes | None:
    head = read_exactly(conn, 2)
    return read_exactly(conn, struct.unpack("!H", head)[0]) if head else None


def read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def listeners() -> tuple[int, list[socket.socket]]:
    """UDP and TCP sockets on one port, IPv4 and (where there is IPv6) IPv6: on the loopback
    addresses, where REDIRECT sends a namespace's own queries. Bound there, a UDP answer
    leaves from the address the redirected query went to, so conntrack undoes the redirect
    (bound to any address, an answer to a query for a nameserver off the loopback, as
    Podman's, would leave from the container's own address and be dropped by the client);
    and the port is not open to other containers."""
    udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp4.bind(("127.0.0.1", 0))
    port = udp4.getsockname()[1]
    tcp4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp4.bind(("127.0.0.1", port))
    found = [udp4, tcp4]
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            sock = socket.socket(socket.AF_INET6, kind)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::1", port))
            found.append(sock)
        except OSError:
            pass  # no IPv6 in this namespace
    for sock in found:
        if sock.type == socket.SOCK_STREAM:
            sock.listen(64)
    return port, found


def serve() -> None:
    port, sockets = listeners()
    control = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    control.bind(("127.0.0.1", 0))
    control.listen(16)
    said = {"port": port, "control": control.getsockname()[1], "servers": resolv_conf()[0]}
    print(json.dumps(said), flush=True)
    child = os.fork()
    if child == 0:
        control.close()
        os.setgroups([])
        os.setgid(UID)
        os.setuid(UID)
        answer_queries(sockets)
        os._exit(0)
    for sock in sockets:
        sock.close()
    # Without its answering child, the responder is of no use: the container ends.
    threading.Thread(target=lambda: (os.waitpid(child, 0), os._exit(1)), daemon=True).start()
    while True:
        conn, _ = control.accept()
        threading.Thread(target=controlled, args=(conn,), daemon=True).start()


def controlled(conn: socket.socket) -> None:
    with conn:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        try:
            message = json.loads(data)
            if "rules" in message:
                write(json.dumps(message["rules"]))
                said: Any = {"ok": True}
            else:
                said = query(*message["query"])
        except Exception as exc:  # noqa: BLE001 - said to the caller, who names it
            said = {"error": f"{type(exc).__name__}: {exc}"}
        conn.sendall((json.dumps(said) + "\n").encode())


def answer_queries(sockets: list[socket.socket]) -> None:
    responder = Responder()

    def udp(sock: socket.socket, data: bytes, peer: Any) -> None:
        answer = responder.answer(data, False)
        if answer:
            sock.sendto(answer, peer)

    def tcp(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    query = read_message(conn)
                    if query is None:
                        return
                    answer = responder.answer(query, True)
                    if answer is None:
                        return
                    conn.sendall(struct.pack("!H", len(answer)) + answer)
            except OSError:
                return

    while True:
        for sock in select.select(sockets, [], [])[0]:
            try:
                if sock.type == socket.SOCK_DGRAM:
                    data, peer = sock.recvfrom(65535)
                    threading.Thread(target=udp, args=(sock, data, peer), daemon=True).start()
                else:
                    conn, _ = sock.accept()
                    threading.Thread(target=tcp, args=(conn,), daemon=True).start()
            except OSError:
                continue


def write(rules: str) -> None:
    os.makedirs(HOME, mode=0o755, exist_ok=True)
    with open(RULES + ".new", "w") as f:
        f.write(rules)
    os.chmod(RULES + ".new", 0o644)
    os.replace(RULES + ".new", RULES)


def send(control: str, message: str) -> int:
    with socket.create_connection(("127.0.0.1", int(control))) as conn:
        conn.sendall(message.encode() + b"\n")
        print(conn.makefile().readline().strip())
    return 0


def query(name: str, qtype: str, timeout: float) -> dict[str, Any]:
    """One lookup of ``name`` through the first resolv.conf nameserver, as a stub resolver
    sends it: rcode, addresses, milliseconds; or timeout."""
    servers, _ = resolv_conf()
    if not servers:
        return {"error": "no nameserver in /etc/resolv.conf"}
    ident = int.from_bytes(os.urandom(2), "big")
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p)
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", TYPES[qtype], 1)
    family = socket.AF_INET6 if ":" in servers[0] else socket.AF_INET
    started = time.monotonic()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(float(timeout))
        # Connected, as stub resolvers are: only an answer from the nameserver's own address
        # and port counts (one from elsewhere, as a redirect not undone would give, is dropped).
        sock.connect((servers[0], 53))
        sock.send(packet)
        try:
            while True:
                data = sock.recv(65535)
                if data[:2] == packet[:2]:
                    break
        except socket.timeout:
            return {"timeout": True, "server": servers[0]}
    ms = (time.monotonic() - started) * 1000
    return {"rcode": data[3] & 0x0F, "addresses": addresses(data), "ms": round(ms, 1)}


def addresses(data: bytes) -> list[str]:
    count = struct.unpack("!H", data[6:8])[0]
    _, _, at = question(data)
    found = []
    for _ in range(count):
        while data[at] != 0 and not data[at] & 0xC0:
            at += 1 + data[at]
        at += 2 if data[at] & 0xC0 else 1
        rtype, _, _, length = struct.unpack("!HHIH", data[at : at + 10])
        rdata = data[at + 10 : at + 10 + length]
        if rtype in (1, 28):
            found.append(socket.inet_ntop(socket.AF_INET if rtype == 1 else socket.AF_INET6, rdata))
        at += 10 + length
    return found


def modules() -> int:
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            print(path)
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "serve":
        serve()
        return 0
    if command == "control":
        return send(argv[1], argv[2])
    if command == "modules":
        return modules()
    print(f"usage: serve | control PORT MESSAGE | modules, not {argv}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
