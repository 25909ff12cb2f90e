"""HTTP from inside a topology: ``http_get`` and ``assert_http``, run from the source
container's network namespace (through its probe sidecar when its image has no tools).

A request is the probe image's ``nc`` fed a raw ``GET PATH HTTP/1.0`` with ``Connection:
close``: the server ends the connection after its answer, and busybox ``timeout`` bounds a
server that accepts but never answers (busybox nc's ``-w`` limits the connect only). What
nc prints comes back as ``od`` hex, so the response is parsed as the bytes that arrived;
it counts only when its own framing (Content-Length, chunks, else the server's close) says
it is whole: a connection that ends early is no response. No TLS: nc cannot speak it, so
HTTP only.
"""

from __future__ import annotations

import re
import shlex
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast, overload
from urllib.parse import quote, urlsplit

from . import diagnosis, probes
from .assertions import check_source, fail, timed
from .checks import check_timeout
from .diagnosis import fail_if_stopped, named_container
from .errors import DockernetError, ProbeFailed
from .probes import ProbeResult
from .retry import poll
from .timings import counted

if TYPE_CHECKING:
    from .handles import Container

__all__ = ["HttpResponse", "http_get", "assert_http"]

TOOLS = ["nc", "timeout", "od"]
EXCERPT = 200  # characters of a body a failure's first line quotes
SHOWN = 2000  # characters of a response a failure's probe output shows
MAX_RESPONSE = 16 * 2**20  # bytes of a response read, at most: more is an error, not a flood of memory
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)? +(\d{3})(?: .*)?")
T = TypeVar("T")


class _Headers(dict[str, str]):
    """Header names lower-cased, looked up in any case (``headers["Content-Type"]``)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower() if isinstance(name, str) else name)

    @overload
    def get(self, name: str, default: None = None) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: T) -> str | T: ...
    def get(self, name: str, default: object = None) -> object:
        return super().get(name.lower() if isinstance(name, str) else name, default)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)


@dataclass
class HttpResponse:
    """What a server answered to :func:`http_get`.

    ``status`` is the status code; ``headers`` maps each header name, lower-cased, to its
    value (a repeated header's values joined with ``", "``), and is looked up in any case;
    ``content`` is the body as bytes, de-chunked if the server chunked it (and cut at its
    Content-Length, as clients do); ``body`` is ``content`` decoded as UTF-8 (undecodable
    bytes replaced).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    content: bytes = b""


class _Url(NamedTuple):
    url: str  # as given, for messages
    host: str  # what nc connects to: a name as the source resolves it, or an IP address
    port: int
    target: str  # the request target: path and query
    host_header: str


def _parse_url(url: object) -> _Url:
    supported = "give http://HOST[:PORT][/PATH][?QUERY], HOST a name the source resolves or an IP address"
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'http://api:8080/health', got {url!r}")
    if re.search(r"[\x00-\x20\x7f]", url):
        raise ValueError(f"url={url!r} contains whitespace or control characters: percent-encode them ({supported})")
    if url[:8].lower() == "https://":
        raise ValueError(f"url={url!r}: HTTPS is not supported, only plain http:// (the probe's nc speaks no TLS)")
    if url[:7].lower() != "http://":
        raise ValueError(f"url={url!r} is not an http:// URL: {supported}")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(f"url={url!r}: credentials in the URL are not supported ({supported})")
    host = parts.hostname or ""
    ipv6 = ":" in host
    if host and not ipv6:
        host = parts.netloc.rsplit(":", 1)[0] if ":" in parts.netloc else parts.netloc  # in its own case
    if not host or not (ipv6 or _HOST.fullmatch(host)):
        raise ValueError(f"url={url!r} has no usable host: {supported}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"url={url!r} has no valid port (1-65535): {supported}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = quote(target, safe="".join(chr(c) for c in range(0x21, 0x7F)))  # only non-ASCII is encoded
    named = f"[{host}]" if ipv6 else host
    return _Url(url, host, port or 80, target, named if port in (None, 80) else f"{named}:{port}")


def _command(u: _Url, seconds: int) -> str:
    """The request as the probe shows it in failure messages."""
    request = r"GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: pytest-dockernet\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    return (
        f"printf '{request}' {shlex.quote(u.target)} {shlex.quote(u.host_header)} "
        f"| timeout {seconds} nc -w{seconds} {shlex.quote(u.host)} {u.port}"
    )


def _script(command: str, token: str) -> str:
    """``command`` with its response as ``od`` hex between markers (bytes, not text: a
    chunked body's sizes count bytes), then its stderr and exit code."""
    return (
        probes.tools_check(TOOLS) + "\n"
        f"echo {token}begin\n"
        # The response through od to the probe's output; nc's stderr and exit code into $err.
        # Each command closes the descriptors it does not use: busybox timeout's watcher
        # lives up to a second after nc, and $err would wait for it.
        f"{{ err=$( {{ {{ {{ {command}; }} 2>&4 3>&- 4>&-; echo {token}rc=$? >&4; }} "
        f"| od -An -v -tx1 -N {MAX_RESPONSE + 1} >&3 4>&-; }} 4>&1 ); }} 3>&1\n"
        f'echo; echo "{token}end"; printf "%s\\n" "$err"'
    )


class _Unfinished(NamedTuple):
    """Why bytes that began as an HTTP response are not a whole one."""

    incomplete: bool  # the bytes stop short (the connection ended early), else malformed
    detail: str


def _split(raw: bytes) -> tuple[list[str], bytes] | None:
    """The status and header lines, and the body; None without an end of the headers."""
    ends = [(at, sep) for sep in (b"\r\n\r\n", b"\n\n") if (at := raw.find(sep)) >= 0]
    if not ends:
        return None
    at, sep = min(ends)
    return raw[:at].decode(errors="replace").replace("\r\n", "\n").split("\n"), raw[at + len(sep) :]


def _headers(lines: list[str]) -> _Headers:
    # values gathered, then joined once: joining as they come is quadratic in repeats
    values: dict[str, list[str]] = {}
    folded: dict[tuple[str, int], list[str]] = {}  # obsolete continuation lines, by field
    current: tuple[str, int] | None = None  # the field a continuation line belongs to
    for line in lines:
        if line[:1] in (" ", "\t"):
            if current is not None:
                folded.setdefault(current, []).append(line.strip())
            continue
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip().lower()
            found = values.setdefault(name, [])
            current = (name, len(found))
            found.append(value.strip())
    for (name, i), parts in folded.items():
        values[name][i] = " ".join(filter(None, [values[name][i], *parts]))
    return _Headers({name: ", ".join(v) for name, v in values.items()})


_HEX = re.compile(rb"[0-9A-Fa-f]+")


def _dechunk(body: bytes) -> bytes | _Unfinished:
    """A chunked body's data, on bytes; trailers are dropped."""
    parts: list[bytes] = []
    at = total = 0

    def got() -> str:
        return f"{counted(len(parts), 'chunks')} ({counted(total, 'bytes')}) of a chunked body"

    while True:
        eol = body.find(b"\n", at)
        if eol < 0:
            return _Unfinished(True, f"{got()}, then no end chunk")
        line = body[at:eol].rstrip(b"\r")
        size_text = line.split(b";")[0].strip()
        if not _HEX.fullmatch(size_text):
            return _Unfinished(False, f"chunk size {line[:40]!r} at byte {at} of the chunked body is not hexadecimal")
        size, start = int(size_text, 16), eol + 1
        if size == 0:
            return b"".join(parts)
        if len(body) - start < size:
            return _Unfinished(True, f"{got()}, then {len(body) - start} of a chunk of {size} bytes")
        parts.append(body[start : start + size])
        at, total = start + size, total + size
        for end in (b"\r\n", b"\n"):
            if body.startswith(end, at):
                at += len(end)
                break
        else:
            if body[at:] in (b"", b"\r"):
                continue  # the next line is missing: reported as such above
            return _Unfinished(
                False, f"the chunk of {size} bytes at byte {start} of the chunked body is not followed by a line end"
            )


def _sized(body: bytes, length: str) -> bytes | _Unfinished:
    """The body as its Content-Length (``length``) says: cut there, as clients do."""
    values = {v.strip() for v in length.split(",")}  # repeated, the same value is allowed
    if len(values) != 1 or not (value := values.pop()).isdigit():
        return _Unfinished(False, f"Content-Length {length[:40]!r} is not one number of bytes")
    if len(body) < int(value):
        return _Unfinished(True, f"{len(body)} of {value} bytes of the body (Content-Length)")
    return body[: int(value)]


def _parse_response(raw: bytes, closed: bool) -> HttpResponse | _Unfinished | None:
    """The response in ``raw``, why it is not a whole one, or None when ``raw`` does not
    begin as one. ``closed``: the server closed the connection (else it was cut off), so a
    body without a length ends there."""
    split = _split(raw)
    if split is None:
        if _STATUS_LINE.fullmatch(raw.split(b"\n", 1)[0].decode(errors="replace").strip()):
            return _Unfinished(True, f"{counted(len(raw), 'bytes')} of status and headers, before their end")
        return None
    lines, body = split
    match = _STATUS_LINE.fullmatch(lines[0].strip())
    if match is None:
        return None
    status, headers = int(match.group(1)), _headers(lines[1:])
    content: bytes | _Unfinished = body
    if status in (204, 304) or status < 200:
        content = b""  # these have no body, whatever their headers say
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        content = _dechunk(body)
    elif "content-length" in headers:
        content = _sized(body, headers["content-length"])
    elif not closed:
        content = _Unfinished(True, f"{counted(len(body), 'bytes')} of a body that ends only when the server closes")
    if isinstance(content, _Unfinished):
        return content
    return HttpResponse(status, headers, content.decode(errors="replace"), content)


def _failure(rc: int, err: str, raw: bytes, unfinished: _Unfinished | None, u: _Url, seconds: int) -> tuple[str, str]:
    """What happened to a request that got no whole HTTP response: in a few words (how
    ``assert_http`` counts its attempts), and in a sentence."""
    said = f" ({err})" if err else ""
    if len(raw) > MAX_RESPONSE:  # od stopped reading there, and nc died of a broken pipe
        return "got too large a response", f"the response is larger than {MAX_RESPONSE / 2**20:g} MiB, the most read"
    if unfinished is not None and not unfinished.incomplete:
        return "got a malformed response", f"malformed response: {unfinished.detail}"
    cut = f" with an incomplete response: {unfinished.detail}" if unfinished is not None else ""
    if rc in (124, 143):  # timeout's own code (GNU), or nc killed by its SIGTERM (busybox)
        if not raw:
            return "timed out", f"timed out after {seconds} s (no connection, or the server did not answer)"
        if unfinished is None:
            return "timed out", f"timed out after {seconds} s with {counted(len(raw), 'bytes')} that are not HTTP"
        return "timed out", f"timed out after {seconds} s{cut}"
    if unfinished is not None:
        end = "the server closed the connection" if rc == 0 else f"the connection failed{said}"
        return "got an incomplete response", f"{end}{cut}"
    if "refused" in err.lower():
        return "got connection refused", f"connection refused{said}"
    if "bad address" in err or "resolve" in err.lower():
        return "did not resolve the host", f"{u.host!r} does not resolve{said}"
    if "timed out" in err:
        return "got no connection", f"no connection within {seconds} s{said}"
    if raw:
        text = raw.decode(errors="replace")
        first = text.splitlines()[0] if text.strip() else text
        return "got no HTTP response", f"not an HTTP response: {first[:80]!r}{said}"
    if rc == 0:
        return "got no HTTP response", "the server closed the connection without a response"
    return "failed", f"the connection failed{said or f' (nc exited with {rc})'}"


class _Attempt(NamedTuple):
    response: HttpResponse | None
    outcome: str  # in a few words: "got 503", "timed out"
    failure: str | None  # why there is no response
    shown: ProbeResult  # the request and what came back, for failure messages


def _request(src: Container, u: _Url, timeout: float) -> _Attempt:
    """One GET. Raises ProbeFailed where the probe cannot work, DockernetError where the
    source (or the URL's host, when it names a container of the topology) is not running."""
    __tracebackhide__ = True
    seconds = probes.seconds(timeout)
    command, token = _command(u, seconds), f"@@http-{uuid.uuid4().hex}-"
    try:
        result = probes.run(src, _script(command, token), seconds=seconds, note=f"GET {u.url}")  # nc's own bound
    except DockernetError:  # no exec, no sidecar: a source that stopped says so itself
        fail_if_stopped(src, f"{src.name} cannot GET {u.url}")
        raise
    missing = probes.missing_tools(result)
    begin, end = result.output.find(f"{token}begin\n"), result.output.rfind(f"\n{token}end\n")
    code = result.output.rfind(f"{token}rc=")
    why: str | None = None
    if missing:
        why = f"{result.where} has no {', '.join(missing)} ({probes.TOOLS_ADVICE})"
    elif begin < 0 or end < begin or code < end:
        why = f"the probe did not run to its end in {result.where} (exit code {result.exit_code})"
    else:
        try:
            raw = bytes.fromhex(result.output[begin + len(token) + len("begin\n") : end])
        except ValueError:
            why = f"od in {result.where} did not print the response as hex bytes"
    if why is not None:
        raise ProbeFailed(f"cannot GET {u.url} from {src.name!r}: {why}\n{result.describe()}")
    rc_text = result.output[code + len(token) + len("rc=") :].partition("\n")[0]
    err = " ".join(result.output[end + len(f"\n{token}end\n") : code].split())
    rc = int(rc_text.strip() or 127)
    parsed = _parse_response(raw, closed=rc == 0)
    text = raw.decode(errors="replace")
    shown_output = text[:SHOWN] + (f"\n... ({len(text) - SHOWN} more characters)" if len(text) > SHOWN else "")
    shown = ProbeResult(src.name, result.where, command, rc, "\n".join(filter(None, [shown_output, err])))
    if isinstance(parsed, HttpResponse):
        return _Attempt(parsed, f"got {parsed.status}", None, shown)
    # waiting cannot help a source, or a server the URL names (by its name or an alias), that has exited
    fail_if_stopped(src, f"{src.name} cannot GET {u.url}")
    dst = named_container(src, u.host)
    fail_if_stopped(dst, f"{src.name} cannot reach {dst.name if dst else u.host} for GET {u.url}")
    return _Attempt(None, *_failure(rc, err, raw, parsed, u, seconds), shown)


@timed
def http_get(src: Container, url: str, *, timeout: float = 5.0) -> HttpResponse:
    """GET ``url`` from ``src``'s network namespace, once, and return the response.

    ``url`` is ``http://HOST[:PORT][/PATH][?QUERY]``; ``HOST`` is resolved as the source
    resolves it, so names that exist only inside the topology work
    (``http://api:8080/health``). The request is HTTP/1.0 with ``Connection: close``;
    ``timeout`` (whole seconds, at least 1) bounds the connect and the whole response.
    Works from any image: the request runs in the source when it runs the probe image, else
    in its probe sidecar. Any status is returned, 5xx too. A response counts only when it
    is whole: its body as long as its ``Content-Length``, a chunked body up to its last
    chunk, else up to the server's close. At most 16 MiB of a response is read.

    Raises ``ValueError`` for a URL that is not plain ``http://`` (``https://`` included);
    :class:`~pytest_dockernet.DockernetError` naming ``src`` and ``url`` when no whole HTTP
    response came (connection refused, a name that does not resolve, a timeout, not HTTP, a
    body cut short, saying what arrived: ``14 of 1000 bytes of the body``, malformed
    chunks, more than 16 MiB), or ``src`` is not running; ``pytest_dockernet.errors.ProbeFailed`` (a
    ``DockernetError``) when the probe cannot run (its image lacks ``nc``, ``timeout`` or
    ``od``, the probe sidecar is gone).
    """
    __tracebackhide__ = True
    src = check_source(src)
    u, timeout = _parse_url(url), check_timeout(timeout)
    attempt = _request(src, u, timeout)
    if attempt.response is None:
        raise DockernetError(f"GET {url} from {src.name}: {attempt.failure}\n{attempt.shown.describe()}")
    return attempt.response


def _excerpt(body: str) -> str:
    if len(body) <= EXCERPT:
        return repr(body)
    return f"{body[:EXCERPT]!r}... ({len(body)} characters)"


@timed
def assert_http(
    src: Container, url: str, *, status: int = 200, contains: str | None = None, timeout: float = 5.0
) -> None:
    """GET ``url`` from ``src`` (as :func:`http_get` does) until the response has ``status``
    and, with ``contains``, a body containing that text; retried until ``timeout`` seconds
    have passed, through refused connections and other statuses alike, since servers come
    up (and dependencies go away) late.

    Fails with an AssertionError counting what the attempts got (``5 attempts: 4 got 503,
    1 timed out``) and showing the last response seen, its status and a body excerpt, even
    when a later attempt got none (else why no response came), the request and the
    topology. Raises at once, without waiting, what
    waiting cannot mend: ``ValueError`` for a bad URL, ``DockernetError`` when ``src`` (or
    the container the URL's host names) is not running, ``ProbeFailed`` when the probe
    cannot run.
    """
    __tracebackhide__ = True
    src = check_source(src)
    u, timeout = _parse_url(url), check_timeout(timeout)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"status={status!r} must be an HTTP status code (100-599)")
    if contains is not None and not isinstance(contains, str):
        raise TypeError(f"contains must be a str or None, got {contains!r}")
    deadline = time.monotonic() + timeout
    outcomes: Counter[str] = Counter()
    answered: list[tuple[int, _Attempt]] = []  # the last attempt that got a response, and its number

    def passed(attempt: _Attempt) -> bool:
        r = attempt.response
        return r is not None and r.status == status and (contains is None or contains in r.body)

    def once() -> _Attempt:
        __tracebackhide__ = True
        attempt = _request(src, u, max(1.0, deadline - time.monotonic()))
        outcomes[attempt.outcome] += 1
        if attempt.response is not None:
            answered[:] = [(sum(outcomes.values()), attempt)]
        return attempt

    attempt, _ = poll(once, passed, timeout=timeout)
    if passed(attempt):
        return
    wanted = f"status {status}" + (f" and a body containing {contains!r}" if contains is not None else "")
    tally = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.most_common())
    summary = f"GET {url} from {src.name}: expected {wanted} within {timeout:g} s "
    summary += f"({counted(sum(outcomes.values()), 'attempts')}: {tally})"
    seen = cast(HttpResponse, answered[0][1].response).status if answered else None
    why = diagnosis.http_failed(src, u.host, u.port, seen)
    verdict = _verdict(attempt, answered, status)
    diagnosis.record(src, u.host, "http", None, verdict, why, u.port)
    fail(why, f"{summary}; {verdict}", _shown(attempt, answered), src.context)


def _verdict(attempt: _Attempt, answered: list[tuple[int, _Attempt]], status: int) -> str:
    """What a failing ``assert_http`` got: the last response seen, which says more than a
    later attempt that got none (one cut short by the deadline), and that attempt's fate."""
    if not answered:
        return f"no response: {attempt.failure}"
    number, last = answered[0]
    r = cast(HttpResponse, last.response)
    which = "the last response" + ("" if last is attempt else f" (attempt {number})")
    if r.status != status:
        got = f"{which} had status {r.status}, body {_excerpt(r.body)}"
    else:
        got = f"{which} had status {r.status} but its body does not contain it: {_excerpt(r.body)}"
    return got if last is attempt else f"{got}; the last attempt: {attempt.failure}"


def _shown(attempt: _Attempt, answered: list[tuple[int, _Attempt]]) -> list[ProbeResult]:
    last = answered[0][1] if answered else attempt
    return [last.shown] if last is attempt else [last.shown, attempt.shown]
