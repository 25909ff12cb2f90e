"""HTTP from inside a topology: ``http_get`` and ``assert_http``, run from the source
container's network namespace (through its probe sidecar when its image has no tools).

A request is the probe image's ``nc`` fed a raw ``GET PATH HTTP/1.0`` with ``Connection:
close``: the server ends the connection after its answer, so what nc prints is the whole
response, and busybox ``timeout`` bounds a server that accepts but never answers (busybox
nc's ``-w`` limits the connect only). No TLS: nc cannot speak it, so HTTP only.
"""

from __future__ import annotations

import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TypeVar, overload
from urllib.parse import quote, urlsplit

from . import probes
from .assertions import check_source, fail, not_running, timed
from .checks import check_timeout
from .errors import DockernetError, ProbeFailed
from .probes import ProbeResult
from .retry import poll
from .timings import counted

if TYPE_CHECKING:
    from .handles import Container

__all__ = ["HttpResponse", "http_get", "assert_http"]

TOOLS = ["nc", "timeout"]
EXCERPT = 200  # characters of a body a failure's first line quotes
SHOWN = 2000  # characters of a response a failure's probe output shows
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
    ``body`` is the body decoded as UTF-8 (undecodable bytes replaced), de-chunked if the
    server chunked it.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


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
    """``command`` with its response between markers, then its exit code and stderr."""
    return (
        probes.tools_check(TOOLS) + "\n"
        f"echo {token}begin\n"
        # nc's stdout (the response) to the probe's output, its stderr into $err
        f"{{ err=$( {{ {command}; }} 2>&1 >&3 ); rc=$?; }} 3>&1\n"
        f'echo; echo "{token}end rc=$rc"; printf "%s\\n" "$err"'
    )


def _split(raw: str) -> tuple[list[str], str] | None:
    """The status and header lines, and the body; None without an end of the headers."""
    ends = [(raw.find(sep), sep) for sep in ("\r\n\r\n", "\n\n") if sep in raw]
    if not ends:
        return None
    at, sep = min(ends)
    return raw[:at].replace("\r\n", "\n").split("\n"), raw[at + len(sep) :]


def _dechunk(body: str) -> str | None:
    data, out = body.encode(), b""
    while True:
        line, sep, rest = data.partition(b"\n")
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            return None
        if not sep or size == 0:
            return out.decode(errors="replace") if sep else None
        if len(rest) < size:
            return None
        out, data = out + rest[:size], rest[size:].lstrip(b"\r\n")


def _parse_response(raw: str, complete: bool) -> HttpResponse | None:
    """The response in ``raw``; None if it is not one, or (not ``complete``: the server
    was cut off) its body falls short of its Content-Length."""
    split = _split(raw)
    if split is None:
        return None
    lines, body = split
    match = _STATUS_LINE.fullmatch(lines[0].strip())
    if match is None:
        return None
    headers = _Headers()
    name = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name is not None:  # an obsolete folded continuation
            headers[name] += " " + line.strip()
        elif ":" in line:
            name, value = (s.strip() for s in line.split(":", 1))
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        dechunked = _dechunk(body)
        if dechunked is None and not complete:
            return None
        body = body if dechunked is None else dechunked
    elif not complete:
        length = headers.get("content-length", "")
        if not length.isdigit() or len(body.encode()) < int(length):
            return None
    return HttpResponse(int(match.group(1)), headers, body)


def _failure(rc: int, err: str, raw: str, u: _Url, seconds: int) -> str:
    """What happened to a request that got no HTTP response, in words."""
    said = f" ({err})" if err else ""
    if rc in (124, 143):  # timeout's own code (GNU), or nc killed by its SIGTERM (busybox)
        if not raw:
            return f"timed out after {seconds} s (no connection, or the server did not answer)"
        return f"timed out after {seconds} s with an incomplete response ({len(raw.encode())} bytes)"
    if "refused" in err.lower():
        return f"connection refused{said}"
    if "bad address" in err or "resolve" in err.lower():
        return f"{u.host!r} does not resolve{said}"
    if "timed out" in err:
        return f"no connection within {seconds} s{said}"
    if raw:
        first = raw.splitlines()[0] if raw.strip() else raw
        return f"not an HTTP response: {first[:80]!r}{said}"
    if rc == 0:
        return "the server closed the connection without a response"
    return f"the connection failed{said or f' (nc exited with {rc})'}"


class _Attempt(NamedTuple):
    response: HttpResponse | None
    failure: str | None  # why there is no response
    shown: ProbeResult  # the request and what came back, for failure messages


def _request(src: Container, u: _Url, timeout: float) -> _Attempt:
    """One GET. Raises ProbeFailed where the probe cannot work, DockernetError where the
    source (or the URL's host, when it names a container of the topology) is not running."""
    __tracebackhide__ = True
    seconds = probes.seconds(timeout)
    command, token = _command(u, seconds), f"@@http-{uuid.uuid4().hex}-"
    try:
        result = probes.run(src, _script(command, token))
    except DockernetError:  # no exec, no sidecar: a source that stopped says so itself
        _fail_if_stopped(src, u)
        raise
    missing = probes.missing_tools(result)
    begin, end = result.output.find(f"{token}begin\n"), result.output.rfind(f"\n{token}end rc=")
    if missing or begin < 0 or end < begin:
        why: str | None = (
            f"{result.where} has no {', '.join(missing)} ({probes.TOOLS_ADVICE})"
            if missing
            else f"the probe did not run to its end in {result.where} (exit code {result.exit_code})"
        )
        raise ProbeFailed(f"cannot GET {u.url} from {src.name!r}: {why}\n{result.describe()}")
    raw = result.output[begin + len(token) + len("begin\n") : end]
    code, _, err = result.output[end + len(token) + len("\nend rc=") :].partition("\n")
    rc, err = int(code.strip() or 127), " ".join(err.split())
    response = _parse_response(raw, complete=rc == 0)
    shown_output = raw[:SHOWN] + (f"\n... ({len(raw) - SHOWN} more characters)" if len(raw) > SHOWN else "")
    shown = ProbeResult(src.name, result.where, command, rc, "\n".join(filter(None, [shown_output, err])))
    if response is not None:
        return _Attempt(response, None, shown)
    # waiting cannot help a source, or a server the URL names by its logical name, that has exited
    _fail_if_stopped(src, u)
    dst = _named_container(src, u.host)
    why = None if dst is None else not_running(dst)
    if why is not None and dst is not None:
        raise DockernetError(f"{src.name} cannot reach {dst.name} for GET {u.url}: {why}")
    return _Attempt(None, _failure(rc, err, raw, u, seconds), shown)


def _fail_if_stopped(src: Container, u: _Url) -> None:
    __tracebackhide__ = True
    why = not_running(src)
    if why is not None:
        raise DockernetError(f"{src.name} cannot GET {u.url}: {why}") from None


def _named_container(src: Container, host: str) -> Container | None:
    """The other container of ``src``'s topology whose logical name is ``host``, if any."""
    try:
        found = src.topology.get_container(host)
    except KeyError:
        return None
    return None if found is src else found


@timed
def http_get(src: Container, url: str, *, timeout: float = 5.0) -> HttpResponse:
    """GET ``url`` from ``src``'s network namespace, once, and return the response.

    ``url`` is ``http://HOST[:PORT][/PATH][?QUERY]``; ``HOST`` is resolved as the source
    resolves it, so names that exist only inside the topology work
    (``http://api:8080/health``). The request is HTTP/1.0 with ``Connection: close``;
    ``timeout`` (whole seconds, at least 1) bounds the connect and the whole response.
    Works from any image: the request runs in the source when it runs the probe image, else
    in its probe sidecar. Any status is returned, 5xx too.

    Raises ``ValueError`` for a URL that is not plain ``http://`` (``https://`` included);
    :class:`~pytest_dockernet.DockernetError` naming ``src`` and ``url`` when no HTTP
    response came (connection refused, a name that does not resolve, a timeout, not HTTP),
    or ``src`` is not running; ``pytest_dockernet.errors.ProbeFailed`` (a
    ``DockernetError``) when the probe cannot run (its image lacks ``nc`` or ``timeout``,
    the probe sidecar is gone).
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

    Fails with an AssertionError showing the last status and a body excerpt (or why no
    response came), the request and the topology. Raises at once, without waiting, what
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

    def passed(attempt: _Attempt) -> bool:
        r = attempt.response
        return r is not None and r.status == status and (contains is None or contains in r.body)

    def once() -> _Attempt:
        __tracebackhide__ = True
        return _request(src, u, max(1.0, deadline - time.monotonic()))

    attempt, attempts = poll(once, passed, timeout=timeout)
    if passed(attempt):
        return
    wanted = f"status {status}" + (f" and a body containing {contains!r}" if contains is not None else "")
    r = attempt.response
    if r is None:
        got = f"no response: {attempt.failure}"
    elif r.status != status:
        got = f"the last response had status {r.status}, body {_excerpt(r.body)}"
    else:
        got = f"the last response had status {r.status} but its body does not contain it: {_excerpt(r.body)}"
    fail(
        f"GET {url} from {src.name}: expected {wanted} within {timeout:g} s ({counted(attempts, 'attempts')}); {got}",
        [attempt.shown],
        src.topology,
    )
