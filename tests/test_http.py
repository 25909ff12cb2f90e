"""http_get and assert_http against real servers, from the source's network namespace (issue 11),
and against hostile ones that cut, garble or flood their answers (issue 20)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import docker.errors
import pytest
from test_negative import toolless_image  # noqa: F401 - the fixture: a shell and tail, no probe tools

from pytest_dockernet import (
    DockernetError,
    HttpResponse,
    Listening,
    Topology,
    assert_http,
    assert_reachable,
    http_get,
    web,
)
from pytest_dockernet.errors import ProbeFailed
from pytest_dockernet.retry import poll

ROOT = Path(__file__).resolve().parent.parent
APP_BASE = "pytest-dockernet/app-base:bookworm"  # Debian with python3, redis-server, postgresql

# A small HTTP service on port 8080. /health answers 200 while a redis PING to $CACHE
# (port 6379) gets PONG, else 503; the other paths show what the server saw.
SERVICE = r"""
import http.server, os, socket

def cache_answers():
    try:
        with socket.create_connection((os.environ["CACHE"], 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except (OSError, KeyError):
        return False

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body, **headers):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if cache_answers():
                self.answer(200, "ok: cache answers\n")
            else:
                self.answer(503, "cache unreachable\n")
        elif self.path.startswith("/hello"):
            self.send_response(200)
            self.send_header("X-Served-By", os.environ.get("NAME", "?"))
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()  # no Content-Length: the body ends where the connection does
            self.wfile.write(f"hello {self.path} host={self.headers['Host']} {self.request_version}\n".encode())
        elif self.path == "/chunked":
            self.protocol_version = "HTTP/1.1"  # against the request's 1.0, as some servers do
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for part in (b"first ", b"second\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.answer(404, "no such page: " + self.path + "\n" + "x" * 1000)

http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""
REDIS = ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]


def ensure_app_base(client) -> str:
    """The app-base image, made by scripts/app-base-image (debootstrap, about a minute) if missing."""
    try:
        client.images.get(APP_BASE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "scripts" / "app-base-image")], check=True)
    return APP_BASE


@pytest.fixture(scope="session")
def app_base(dockernet_client) -> str:
    return ensure_app_base(dockernet_client)


def service(topology, name: str, image: str, networks, cache: str = "cache"):
    return topology.container(
        name,
        image=image,
        command=["python3", "-c", SERVICE],
        environment={"CACHE": cache, "NAME": name},
        networks=networks,
    )


def test_http_get_returns_status_headers_and_body(dockernet, app_base):
    net = dockernet.network("app")
    api = service(dockernet, "api", app_base, [net])
    client = dockernet.container("client", networks=[net])
    assert_http(client, "http://api:8080/hello", timeout=15)  # waits for the server to listen

    r = http_get(client, "http://api:8080/hello?to=you")
    assert isinstance(r, HttpResponse)
    assert r.status == 200
    assert r.body == "hello /hello?to=you host=api:8080 HTTP/1.0\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Type"] == r.headers.get("CONTENT-TYPE") == "text/plain; charset=utf-8"
    assert "X-Served-By" in r.headers and r.headers["x-served-by"] == "api"
    assert r.headers["set-cookie"] == "a=1, b=2"  # a repeated header, its values joined
    assert all(name == name.lower() for name in r.headers)

    missing = dockernet.http_get(client, "http://api:8080/nowhere")  # the facade's, too
    assert missing.status == 404  # any status is an answer, not an error
    assert missing.body.startswith("no such page: /nowhere\n") and len(missing.body) == 1023
    assert missing.headers["content-length"] == "1023"

    assert http_get(client, "http://api:8080/chunked").body == "first second\n"

    by_ip = http_get(client, f"http://{api.ip(net)}:8080/hello")
    assert by_ip.body == f"hello /hello host={api.ip(net)}:8080 HTTP/1.0\n"


def test_assert_http_from_a_source_without_tools(dockernet, app_base, toolless_image):  # noqa: F811
    net = dockernet.network("app")
    service(dockernet, "api", app_base, [net])
    app = dockernet.container("app", image=toolless_image, command=["tail", "-f", "/dev/null"], networks=[net])
    code, _ = app.exec(["sh", "-c", "command -v nc || command -v timeout"])
    assert code != 0  # really no nc: the request runs in its probe sidecar

    assert_http(app, "http://api:8080/hello", contains="host=api:8080", timeout=15)
    assert http_get(app, "http://api:8080/hello").headers["x-served-by"] == "api"


def test_health_is_503_while_its_cache_is_disconnected_and_200_again_after_reconnect(dockernet, app_base):
    net = dockernet.network("app")
    cache = dockernet.container("cache", image=app_base, command=REDIS, networks=[net])
    service(dockernet, "api", app_base, [net])
    web = dockernet.container("web", networks=[net])
    health = "http://api:8080/health"
    assert_reachable(web, cache, port=6379, timeout=15)
    assert_http(web, health, status=200, contains="cache answers", timeout=15)

    dockernet.disconnect(cache, net)
    assert_http(web, health, status=503, contains="cache unreachable", timeout=10)

    dockernet.connect(cache, net)
    assert_http(web, health, status=200, contains="cache answers", timeout=10)


def test_a_failing_assert_http_shows_the_last_status_a_body_excerpt_and_the_topology(dockernet, app_base):
    net = dockernet.network("app")
    api = service(dockernet, "api", app_base, [net], cache="nobody")
    web = dockernet.container("web", networks=[net])
    assert_http(web, "http://api:8080/health", status=503, timeout=15)

    started = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        assert_http(web, "http://api:8080/health", timeout=2)
    assert 2 <= time.monotonic() - started < 6  # retried until the timeout, not much longer
    message = str(failed.value)
    assert message.splitlines()[0] == "why: api:8080 answered with status 503: the network is not the cause"
    assert message.splitlines()[1].startswith("GET http://api:8080/health from web: expected status 200 within 2 s (")
    assert "the last response had status 503, body 'cache unreachable\\n'" in message
    assert "HTTP/1.0 503 Service Unavailable" in message  # the response as the probe got it
    assert "$ printf 'GET %s HTTP/1.0" in message and "nc -w" in message
    assert "topology " not in message  # the report's section shows it

    with pytest.raises(AssertionError, match=r"expected status 200 and a body containing 'hello' within 1 s") as failed:
        assert_http(web, "http://api:8080/health", status=200, contains="hello", timeout=1)
    with pytest.raises(AssertionError, match=r"status 404, body 'no such page: /x\\nxxx.*\.\.\. \(1017 characters\)"):
        assert_http(web, "http://api:8080/x", timeout=1)
    with pytest.raises(AssertionError, match=r"status 503 but its body does not contain it: 'cache unreachable\\n'"):
        assert_http(web, "http://api:8080/health", status=503, contains="ok", timeout=1)
    refused = r"within 1 s \((\d+) attempts?: \1 got connection refused\); no response: connection refused \(nc: "
    with pytest.raises(AssertionError, match=refused):
        assert_http(web, f"http://{api.ip(net)}:9/", timeout=1)


def test_assert_http_keeps_its_traceback_short(inner_runs):
    inner_runs.pytester.makepyfile(
        """
        from pytest_dockernet import assert_http

        def test_x(dockernet):
            srv = dockernet.container("srv", command=["httpd", "-f", "-p", "8080"])
            client = dockernet.container("client")
            assert_http(client, "http://srv:8080/nothing-here", timeout=1)
        """
    )
    result = inner_runs.run("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: why: srv:8080 answered with status 404: the network is not the cause",
            "E       GET http://srv:8080/nothing-here from client: *status 404*",
        ]
    )
    assert "web.py" not in result.stdout.str() and "retry.py" not in result.stdout.str()


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://api:8443/", r"url='https://api:8443/': HTTPS is not supported, only plain http://"),
        ("ftp://api/", r"url='ftp://api/' is not an http:// URL: give http://HOST\[:PORT\]"),
        ("api:8080/health", r"url='api:8080/health' is not an http:// URL"),
        ("http:///health", r"url='http:///health' has no usable host"),
        ("http://api:99999/", r"url='http://api:99999/' has no valid port \(1-65535\)"),
        ("http://api:http/", r"has no valid port"),
        ("http://api/a b", r"contains whitespace or control characters"),
        ("http://user:pw@api/", r"credentials in the URL are not supported"),
    ],
)
def test_a_bad_url_is_a_value_error(dockernet, url, message):
    c = dockernet.container("c")
    with pytest.raises(ValueError, match=message):
        http_get(c, url)
    with pytest.raises(ValueError, match=message):
        assert_http(c, url)


def test_bad_arguments(dockernet):
    c = dockernet.container("c")
    with pytest.raises(TypeError, match=r"src must be a Container"):
        http_get("c", "http://c/")
    with pytest.raises(TypeError, match=r"url must be a str"):
        http_get(c, b"http://c/")
    with pytest.raises(ValueError, match=r"status=99 must be an HTTP status code"):
        assert_http(c, "http://c/", status=99)
    with pytest.raises(ValueError, match=r"timeout=0 must be a positive number"):
        http_get(c, "http://c/", timeout=0)


def test_no_response_is_a_dockernet_error_naming_source_url_and_what_happened(dockernet, app_base):
    net = dockernet.network("app")
    client = dockernet.container("client", networks=[net])
    # accepts connections, then says nothing and never closes them (which a TCP probe of
    # assert_reachable, waiting for the server to close, would wait on too: see its logs)
    mute = "import socket\ns = socket.create_server(('', 8080))\nprint('listening', flush=True)\nkept = []\n"
    mute += "while True: kept.append(s.accept())"
    silent = dockernet.container("mute", image=app_base, command=["python3", "-c", mute], networks=[net])
    assert poll(silent.logs, lambda out: "listening" in out, timeout=15)[0]
    with pytest.raises(DockernetError, match=r"^GET http://client:9/ from client: connection refused \(nc: "):
        http_get(client, "http://client:9/")
    with pytest.raises(DockernetError, match=r"^GET http://nobody-here/ from client: 'nobody-here' does not resolve"):
        http_get(client, "http://nobody-here/")
    started = time.monotonic()
    with pytest.raises(DockernetError, match=r"^GET http://mute:8080/ from client: timed out after 1 s"):
        http_get(client, "http://mute:8080/", timeout=1)
    assert time.monotonic() - started < 3


def test_a_probe_without_its_tools_raises_instead_of_answering(dockernet_client, toolless_image):  # noqa: F811
    with Topology(dockernet_client, image=toolless_image) as t:
        net = t.network("net")
        a = t.container("a", networks=[net])
        t.container("b", networks=[net])
        toolless = r"cannot GET http://b/ from 'a': \S+ has no nc, timeout, od \(probes need .*od"
        with pytest.raises(ProbeFailed, match=toolless):
            http_get(a, "http://b/")
        with pytest.raises(ProbeFailed, match=toolless):
            assert_http(a, "http://b/", status=404, timeout=1)  # neither an answer nor a timeout


def test_a_source_or_server_that_is_not_running_is_reported_at_once(dockernet, dockernet_client, app_base):
    net = dockernet.network("app")
    # It exits a moment after its start, not at once (a container that has exited by the
    # time container() looks is refused there, with the same report).
    crashing = ["python3", "-c", "import sys, time; time.sleep(1); print('cannot start: no config'); sys.exit(3)"]
    dockernet.container("api", image=app_base, command=crashing, networks=[net])
    web = dockernet.container("web", image=app_base, command=["sleep", "1000"], networks=[net])  # via a sidecar
    plain = dockernet.container("plain", networks=[net])  # the probe image: probes run in it
    dockernet_client.api.wait(dockernet.get_container("api").id, timeout=30)

    started = time.monotonic()
    with pytest.raises(DockernetError, match=r"web cannot reach api for GET http://api:8080/: it is not running "):
        assert_http(web, "http://api:8080/", timeout=10)
    with pytest.raises(DockernetError, match=r"\(exited, exit code 3\); the end of its output:\n  cannot start"):
        http_get(web, "http://api:8080/")

    for source in (web, plain):
        dockernet_client.api.kill(source.id)
        with pytest.raises(DockernetError, match=rf"^{source.name} cannot GET http://api:8080/: it is not running"):
            assert_http(source, "http://api:8080/", timeout=10)
    assert time.monotonic() - started < 5  # none of them waited for its timeout


def test_a_server_named_by_its_alias_that_is_not_running_is_reported_at_once(dockernet):
    net = dockernet.network("app")
    api = dockernet.container("api", networks={net: ["backend"]}, command=["sh", "-c", "sleep 0.5; exit 3"])
    web = dockernet.container("web", networks=[net])
    dockernet.client.api.wait(api.id, timeout=30)
    started = time.monotonic()
    with pytest.raises(DockernetError, match=r"web cannot reach api for GET http://backend:8080/: it is not running"):
        assert_http(web, "http://backend:8080/", timeout=20)
    assert time.monotonic() - started < 10  # not its timeout


# A hostile HTTP server in the probe image: busybox nc runs /serve for each connection,
# which reads the request and sends /r/PATH as it is, then closes. /endless never ends
# its body (a line every 0.1 s), /flood neither (as fast as it can); /flaky answers 503
# with a JSON body four times, then holds every connection without a word.
HOSTILE = r"""
mkdir /r
printf 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly 14 bytes\n' > /r/short
printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n20\r\nonly a few' > /r/cut-chunked
printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n' > /r/bad-chunk
printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na\377\376b\r\n3\r\nxyz\r\n0\r\n\r\n' > /r/binary
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokAND MORE' > /r/longer
awk 'BEGIN {printf "HTTP/1.1 200 OK\r\n"; for (i = 0; i < 80000; i++) printf "X-Rep: %040d\r\n", i;
            printf "Content-Length: 2\r\n\r\nok"}' > /r/many-headers
printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n' > /r/flaky
printf '{"status": "down", "reason": "database unreachable"}' >> /r/flaky
cat > /serve <<'EOF'
#!/bin/sh
read -r method path rest
while read -r line; do case "$line" in ''|"$(printf '\r')") break;; esac; done
case "$path" in
/endless) printf 'HTTP/1.0 200 OK\r\n\r\n'; while :; do echo y; sleep 0.1; done;;
/flood) printf 'HTTP/1.0 200 OK\r\n\r\n'; exec yes;;
/flaky) n=$(($(cat /n 2>/dev/null || echo 0) + 1)); echo $n > /n; [ $n -le 4 ] || exec sleep 1000;;
esac
cat "/r$path"
EOF
chmod +x /serve
exec nc -ll -p 8080 -e /serve
"""


@pytest.fixture
def hostile(dockernet):
    """A client and the hostile server on one network: (client, base URL)."""
    net = dockernet.network("web")
    dockernet.container("srv", command=["sh", "-c", HOSTILE], networks=[net], ready=Listening(8080))
    return dockernet.container("client", networks=[net]), "http://srv:8080"


def test_a_body_short_of_its_content_length_is_an_error_saying_what_arrived(hostile):
    client, base = hostile
    with pytest.raises(DockernetError) as cut:
        http_get(client, f"{base}/short")
    message = str(cut.value)
    assert message.startswith(
        f"GET {base}/short from client: the server closed the connection with an incomplete response: "
        "14 of 1000 bytes of the body (Content-Length)\n"
    )
    assert "only 14 bytes" in message  # what arrived, as the probe got it

    longer = http_get(client, f"{base}/longer")  # past its length: cut there, as clients do
    assert (longer.status, longer.body, longer.content) == (200, "ok", b"ok")


def test_a_cut_off_or_malformed_chunked_body_is_an_error(hostile):
    client, base = hostile
    cut = r"incomplete response: 1 chunk \(5 bytes\) of a chunked body, then 10 of a chunk of 32 bytes\n"
    with pytest.raises(DockernetError, match=cut):
        http_get(client, f"{base}/cut-chunked")
    with pytest.raises(DockernetError, match=r"malformed response: chunk size b'zz' at byte 10 of the chunked body"):
        http_get(client, f"{base}/bad-chunk")


def test_a_chunked_body_with_invalid_utf8_is_dechunked_as_bytes(hostile):
    client, base = hostile
    r = http_get(client, f"{base}/binary")
    assert r.status == 200
    assert r.body == "a\ufffd\ufffdbxyz"  # the sizes counted bytes, not replaced characters
    assert r.content == b"a\xff\xfebxyz"


def test_many_repeated_headers_are_joined_in_linear_time_within_the_timeout(hostile):
    client, base = hostile
    started = time.monotonic()
    r = http_get(client, f"{base}/many-headers", timeout=8)  # 3.4 MB of headers, about 1 s here
    assert time.monotonic() - started < 8 + 5  # before: 25 s, joining them one by one
    values = r.headers["x-rep"].split(", ")
    assert len(values) == 80000 and values[0] == "0" * 40 and values[-1] == f"{79999:040d}"
    assert (r.status, r.body) == (200, "ok")


def test_the_timeout_bounds_a_body_that_never_ends_and_a_flood_is_cut(hostile, monkeypatch):
    client, base = hostile
    started = time.monotonic()
    with pytest.raises(DockernetError, match=r"timed out after 2 s with an incomplete response: \d+ bytes of a body"):
        http_get(client, f"{base}/endless", timeout=2)
    assert time.monotonic() - started < 2 + 5

    monkeypatch.setattr(web, "MAX_RESPONSE", 100_000)  # 16 MiB would take a while to flood
    with pytest.raises(DockernetError, match=r"from client: the response is larger than 0.0953674 MiB, the most read"):
        http_get(client, f"{base}/flood", timeout=30)


def test_a_flood_of_output_is_shown_in_part(hostile):
    """16 MiB of a body in a failure message would drown the report (and the terminal)."""
    client, base = hostile
    with pytest.raises(DockernetError) as flooded:
        http_get(client, f"{base}/flood", timeout=30)
    message = str(flooded.value)
    assert "the response is larger than 16 MiB" in message
    assert len(message) < 10_000 and "more characters)" in message


def test_a_failing_assert_http_shows_the_last_response_seen_and_what_each_attempt_got(hostile):
    client, base = hostile
    # four 503s, then a server that holds the connection: the last attempt, cut to what is
    # left of the budget, times out
    with pytest.raises(AssertionError) as failed:
        assert_http(client, f"{base}/flaky", timeout=8)
    message = str(failed.value)
    first = message.splitlines()[1]  # after the diagnosis line
    assert first.startswith(
        f"GET {base}/flaky from client: expected status 200 within 8 s (5 attempts: 4 got 503, 1 timed out); "
        "the last response (attempt 4) had status 503, "
        """body '{"status": "down", "reason": "database unreachable"}'; """
        "the last attempt: timed out after "
    ), first
    assert "HTTP/1.0 503 Service Unavailable" in message  # the probe that got it, in full
    assert message.startswith("why: ")

    with pytest.raises(AssertionError, match=r"\(\d+ attempts?: \d+ got an incomplete response\); no response: the se"):
        assert_http(client, f"{base}/short", timeout=1)  # retried too, and counted
