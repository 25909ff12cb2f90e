"""The user's own containers (issue 11): their options, readiness, crash reports.

Real servers, not busybox: PostgreSQL, redis and a small Python API, from the image of
examples/app (built FROM the local Debian base of scripts/app-base-image; no registry).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from pytest_dockernet import DockernetError, Listening, LogLine, assert_reachable, assert_resolves
from pytest_dockernet.labels import PREFIX
from pytest_dockernet.probes import run

ROOT = Path(__file__).resolve().parent.parent
BASE = "pytest-dockernet/app-base:bookworm"
NO_HEALTHCHECK = {"test": ["NONE"]}  # the image's is the API's; redis and postgres are not the API
PG_READY = {"test": "pg_isready -q -h 127.0.0.1 -U postgres", "interval": 0.5, "timeout": 2, "retries": 120}

pytestmark = pytest.mark.dockernet


@pytest.fixture(scope="session")
def app_image(dockernet_client: docker.DockerClient, dockernet_session) -> str:
    """examples/app, built once for the run (its Dockerfile takes the local base), and
    removed at its end (no tag)."""
    try:
        dockernet_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "scripts" / "app-base-image")], check=True)
    return dockernet_session.build(ROOT / "examples" / "app", buildargs={"BASE": BASE})


def one_shot(src, address: str, port: int) -> bool:
    """One TCP connect, no retry: whether it is answered right now."""
    return run(src, f"nc -w 2 {address} {port} </dev/null").ok


def test_a_healthcheck_and_ready_healthy_mean_the_first_probe_succeeds(dockernet, app_image):
    net = dockernet.network("back")
    client = dockernet.container("client", networks=[net])
    db = dockernet.container(
        "db",
        image=app_image,
        command=["/app/start-postgres"],
        user="postgres",
        networks={net: ["database"]},
        healthcheck=PG_READY,
        ready="healthy",
    )
    assert one_shot(client, "database", 5432)
    assert db.status() == "running (healthy)"


def test_the_images_own_healthcheck_is_waited_for(dockernet, app_image):
    """The API's image declares a HEALTHCHECK; it passes only once the API listens and
    reaches its database and cache, which start in the same batch."""
    net = dockernet.network("app")
    started = dockernet.containers(
        {
            "database": {
                "image": app_image,
                "command": ["/app/start-postgres"],
                "user": "postgres",
                "networks": [net],
                "healthcheck": PG_READY,
            },
            "cache": {
                "image": app_image,
                "command": ["redis-server", "--protected-mode", "no"],
                "networks": [net],
                "healthcheck": NO_HEALTHCHECK,
            },
            "api": {"image": app_image, "networks": [net], "environment": {"START_DELAY": "1"}, "ready": "healthy"},
        }
    )
    client = dockernet.container("client", networks=[net])
    assert one_shot(client, "api", 8080)
    assert started["api"].status() == "running (healthy)"


def test_a_log_line_wait_returns_soon_after_the_line(dockernet, app_image):
    began = time.monotonic()
    api = dockernet.container(
        "api",
        image=app_image,
        environment={"START_DELAY": "2"},
        ready=LogLine(r"^listening on 8080$"),
        ready_timeout=60,
    )
    waited = time.monotonic() - began
    assert "listening on 8080" in api.logs()
    client = dockernet.container("client")
    assert one_shot(client, "api", 8080)
    assert 2 <= waited < 30  # after the server's delay, long before the timeout


def test_a_listening_wait_needs_no_tools_in_the_image(dockernet, app_image):
    began = time.monotonic()
    # START_DELAY keeps the port closed for 2 s; the wait reads the socket table of the
    # container's network namespace through the probe sidecar (the image has no busybox).
    api = dockernet.container("api", image=app_image, environment={"START_DELAY": "2"}, ready=Listening(8080))
    waited = time.monotonic() - began
    client = dockernet.container("client")
    assert one_shot(client, "api", 8080)
    assert 2 <= waited < 30
    assert api.sidecar_id is not None


def test_wait_until_later(dockernet, app_image):
    cache = dockernet.container(
        "cache", image=app_image, command=["redis-server", "--protected-mode", "no"], healthcheck=NO_HEALTHCHECK
    )
    cache.wait_until(LogLine("Ready to accept connections"), timeout=30)
    cache.wait_until(Listening(6379))
    cache.wait_until(lambda c: "Server initialized" in c.logs())
    with pytest.raises(DockernetError, match=r"was not ready \(Listening\(9/tcp\)\) within 0.5 s; it is running"):
        cache.wait_until(Listening(9), timeout=0.5)


def test_a_server_that_exits_50_ms_after_start_fails_at_once(dockernet, app_image, dockernet_client):
    began = time.monotonic()
    with pytest.raises(DockernetError) as raised:
        dockernet.container(
            "db",
            image=app_image,
            command=["sh", "-c", "sleep 0.05; echo starting; echo 'boom: no data directory' >&2; exit 3"],
            ready=Listening(5432),
            ready_timeout=60,
        )
    assert time.monotonic() - began < 30  # not the ready_timeout
    message = str(raised.value)
    # Caught by the wait, or (on a busy machine) already by the look right after the start.
    assert "container 'db'" in message
    assert "stopped before it was ready (Listening(5432/tcp))" in message or "exited at once" in message
    assert "exit code 3" in message and "boom: no data directory" in message and "starting" in message
    # Removed, and its name free again.
    assert dockernet_client.api.containers(all=True, filters=dockernet.context.filters()) == []
    assert dockernet.container("db").name == "db"


def test_a_real_postgres_that_cannot_start_is_reported_with_its_own_words(dockernet, app_image):
    with pytest.raises(
        DockernetError, match=r"(?s)exited \(2\), exit code 2.*could not access directory \"/nonexistent\""
    ):
        dockernet.container(
            "db",
            image=app_image,
            command=["sh", "-c", "exec /usr/lib/postgresql/*/bin/postgres -D /nonexistent"],
            user="postgres",
            ready=Listening(5432),
        )


def test_options_land_on_the_container(dockernet, app_image, tmp_path, dockernet_client):
    (tmp_path / "hello.txt").write_text("hello from the host\n")
    tmp_path.chmod(0o755)  # readable by the container's user
    api = dockernet.container(
        "api",
        image=app_image,
        entrypoint=["sh", "-c"],
        command=["pwd > /tmp/where; id -un >> /tmp/where; exec sleep 600"],
        user="nobody",
        working_dir="/app",
        hostname="api-host",
        volumes={str(tmp_path): {"bind": "/in", "mode": "ro"}},
        labels={"team": "payments"},
        docker_options={"mem_limit": "64m", "init": True},
    )
    assert api.exec(["cat", "/in/hello.txt"]) == (0, "hello from the host\n")
    assert api.exec(["cat", "/tmp/where"]) == (0, "/app\nnobody\n")
    assert api.exec(["touch", "/in/x"])[0] != 0  # mounted read-only
    info = dockernet_client.api.inspect_container(api.id)
    config, host = info["Config"], info["HostConfig"]
    assert config["Entrypoint"] == ["sh", "-c"]
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("nobody", "/app", "api-host")
    assert config["Labels"]["team"] == "payments" and config["Labels"][f"{PREFIX}.name"] == "api"
    assert host["Memory"] == 64 * 1024 * 1024 and host["Init"] is True
    assert [(m["Source"], m["Destination"], m["RW"]) for m in info["Mounts"]] == [(str(tmp_path), "/in", False)]
    assert_reachable(dockernet.container("client"), "api")  # the logical name still resolves


def test_describe_and_helpers_name_a_dead_container(dockernet, dockernet_client):
    net = dockernet.network("n")
    server = dockernet.container(
        "server", command=["sh", "-c", "echo serving; exec sleep 600"], networks={net: ["backend"]}
    )
    client = dockernet.container("client", networks=[net])
    assert "(running)" in dockernet.describe()
    dockernet_client.api.kill(server.id)
    dockernet_client.api.wait(server.id, timeout=30)
    assert server.status() == "exited (137)"
    assert "server  [" in dockernet.describe() and "(exited (137))" in dockernet.describe()
    with pytest.raises(DockernetError, match=r"(?s)client cannot reach server: it is not running.*serving"):
        assert_reachable(client, server, timeout=1)
    for name in ("server", "backend"):  # by name or alias: not a DNS or timeout message either
        with pytest.raises(DockernetError, match=r"(?s)client cannot reach server: it is not running.*exit code 137"):
            assert_reachable(client, name, port=80, timeout=1)
        with pytest.raises(DockernetError, match=r"(?s)client cannot resolve server: it is not running.*serving"):
            assert_resolves(client, name, timeout=1)
    with pytest.raises(DockernetError, match=r"cannot probe from 'server'.*not running"):
        assert_reachable(server, client, timeout=1)
