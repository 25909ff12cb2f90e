"""What the plugin does against a remote engine, from a test process on another machine.

The engine is scripts/ensure-remote-engine's (a dockerd in a network namespace of this
machine, reached over tcp://, with busybox:stable, the application base and a fault image
loaded as a registry would provide them); the test process is an inner pytest in a container
of scripts/remote-client-image (its own host name and network; no iptables, tc or busybox),
with this checkout installed there. Collected only by .ci/run's remote-engine part
(DOCKERNET_TEST_ENGINE=remote, see conftest.py), which starts both first.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADDRESS = os.environ.get("REMOTE_ENGINE_ADDRESS", "192.168.213.2")
DOCKER_HOST = f"tcp://{ADDRESS}:2375"
CLIENT_IMAGE = os.environ.get("REMOTE_CLIENT_IMAGE", "dockernet-ci/remote-client:bookworm")
FAULT_IMAGE = "dockernet-ci/nettools:1"
SESSION = "pytest-dockernet.session"
TOOLS = "iptables ip6tables tc ip busybox"


def remote(*args: str) -> str:
    return subprocess.run(
        ["docker", "-H", DOCKER_HOST, *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def left_on_engine() -> list[str]:
    return [
        f"{kind} {line}"
        for kind in ("container", "network", "volume")
        for line in remote(kind, "ls", "-q", "--filter", f"label={SESSION}").split()
    ]


@pytest.fixture(scope="module", autouse=True)
def engine_and_client() -> None:
    try:
        remote("version")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"no remote engine at {DOCKER_HOST} (scripts/ensure-remote-engine starts it): {exc.stderr}")
    images = subprocess.run(["docker", "image", "inspect", CLIENT_IMAGE], capture_output=True, check=False)
    if images.returncode != 0:
        pytest.fail(f"no {CLIENT_IMAGE} (scripts/remote-client-image makes it)")


def inner_run(tmp_path: Path, test: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``test`` (a test module's text) with pytest in a client container against the remote
    engine, this checkout installed there; nothing labelled by the plugin may be left after it."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test))
    command = [
        "docker", "run", "--rm", "--init", "--hostname", "ci-client",
        "-e", f"DOCKER_HOST={DOCKER_HOST}", "-e", "PIP_NO_INDEX=1", "-e", "PYTHONDONTWRITEBYTECODE=1",
        "-v", f"{ROOT}:/src", "-v", f"{tmp_path}:/inner", "-w", "/inner", CLIENT_IMAGE,
        "sh", "-c",
        "pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e /src"
        ' && exec python -m pytest -p no:cacheprovider -rs "$@"', "inner", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert left_on_engine() == [], done.stdout
    return done


def test_the_client_has_none_of_the_engine_hosts_tools() -> None:
    found = subprocess.run(
        ["docker", "run", "--rm", CLIENT_IMAGE, "sh", "-c", f"for t in {TOOLS}; do command -v $t; done; hostname"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert found.stdout.split() != [] and "/" not in found.stdout, found.stdout  # the host name alone


def test_a_published_port_is_reached_at_the_engines_address(tmp_path: Path) -> None:
    done = inner_run(
        tmp_path,
        f"""
        import socket

        from pytest_dockernet import Listening

        def test_endpoint(dockernet):
            web = dockernet.container(
                "web", command=["httpd", "-f", "-p", "80"], ports={{"80/tcp": None}}, ready=Listening(80)
            )
            host, port = web.endpoint(80)
            assert host == "{ADDRESS}"
            assert port == web.host_port(80)
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                assert s.recv(64).startswith(b"HTTP/1.")
        """,
        "--dockernet-require",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The summary names the engine where it is.
    assert re.search(rf"^engine: Docker \S+ at \w+://{re.escape(ADDRESS)}:2375 ", done.stdout, re.M), done.stdout


FAULT_TEST = """
from pytest_dockernet import assert_reachable, assert_unreachable

def test_partition(dockernet):
    net = dockernet.network("n")
    a, b = dockernet.containers({"a": {"networks": [net]}, "b": {"networks": [net]}}).values()
    assert_reachable(a, b)
    with dockernet.partition(a, b):
        assert_unreachable(a, b)
    assert_reachable(a, b)
"""


def test_faults_run_the_named_fault_image(tmp_path: Path) -> None:
    done = inner_run(tmp_path, FAULT_TEST, "--dockernet-require", "--dockernet-fault-image", FAULT_IMAGE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_a_fault_image_a_fault_names_the_option(tmp_path: Path) -> None:
    # No iptables or tc here and no registry for a build: the error says how to satisfy it.
    done = inner_run(tmp_path, FAULT_TEST, "--dockernet-require")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "--dockernet-fault-image" in done.stdout, done.stdout


def test_without_a_probe_image_the_error_names_both_fixes(tmp_path: Path) -> None:
    done = inner_run(
        tmp_path,
        "def test_one(dockernet):\n    dockernet.container('a')\n",
        "--dockernet-require",
        "--dockernet-image",
        "dockernet-ci/no-such-image:1",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "--dockernet-image" in done.stdout and "busybox-static" in done.stdout, done.stdout


def test_host_only_features_skip_naming_the_engine(tmp_path: Path) -> None:
    done = inner_run(
        tmp_path,
        """
        import pytest

        @pytest.mark.dockernet(needs=["host-network"])
        def test_host_mode(dockernet):
            dockernet.container("web", network_mode="host")

        @pytest.mark.dockernet(needs=["lab"])
        def test_lab(dockernet, dockernet_lab):
            pass
        """,
        "--dockernet-require",
        "--dockernet-lab",
        "2",
    )
    # Marked needs pass under --dockernet-require as skips; the lab is not started on the
    # client's machine for an engine elsewhere.
    assert done.returncode == 0 and "2 skipped" in done.stdout, done.stdout
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    for capability in ("host-network", "lab"):
        assert any(f"'{capability}'" in line and ADDRESS in line for line in skips), skips
    assert f"{ADDRESS}:2375 (missing: bind-mounts, host-network, lab)" in done.stdout, done.stdout
