"""The engine gate (pytest_dockernet.engine.gate): network removal kept apart from creation
on one engine, across processes; one gate per engine, however the engine is held."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from relay import Relay

from pytest_dockernet.engine import gate
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.engine.gate import EngineGate, gate_for

GATE_CHILD = """
import sys
from pytest_dockernet.engine.gate import EngineGate
print("trying", flush=True)
with EngineGate(sys.argv[1]).{mode}():
    print("held", flush=True)
"""


def _child(engine: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", GATE_CHILD.format(mode=mode), engine], stdout=subprocess.PIPE, text=True
    )


def _wait_until_blocked_on_flock(pid: int, timeout: float = 30.0) -> None:
    """Wait for the kernel's own word that ``pid`` waits for a flock (a ``->`` line in
    /proc/locks), instead of sleeping and hoping it got there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()
                if "->" in fields and "FLOCK" in fields and str(pid) in fields:
                    return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never waited for the gate's lock")


def test_the_gate_keeps_removal_apart_from_building_across_processes(tmp_path):
    engine = f"unix://{tmp_path}/engine.sock"  # a key of its own: no other test waits on it
    gate = EngineGate(engine)
    with gate.building():
        other_builder = _child(engine, "building")
        remover = _child(engine, "removing")
        assert other_builder.communicate(timeout=60)[0] == "trying\nheld\n"  # builders share
        assert remover.stdout.readline() == "trying\n"  # it has reached the lock ...
        _wait_until_blocked_on_flock(remover.pid)  # ... and the kernel lists it as waiting there
        assert remover.poll() is None
    assert remover.communicate(timeout=60)[0] == "held\n"


def test_one_gate_per_engine(dockernet_client):
    assert gate_for(dockernet_client) is gate_for(dockernet_client.api) is gate_for(DockerEngine(dockernet_client))
    assert gate_for(dockernet_client).path != EngineGate("unix:///elsewhere.sock").path


def test_two_urls_of_one_engine_share_its_gate(dockernet_client):
    # The engine's ID names the gate: a run reaching it over TCP and one through its socket
    # (a CI job and a shell on the same machine) keep to one lock.
    relay = Relay()
    try:
        over_tcp = docker.DockerClient(base_url=f"tcp://127.0.0.1:{relay.port}")
        try:
            assert over_tcp.api.base_url != dockernet_client.api.base_url
            assert gate_for(over_tcp) is gate_for(dockernet_client)
            assert gate_for(over_tcp).path == EngineGate(f"id:{dockernet_client.info()['ID']}").path
        finally:
            over_tcp.close()
    finally:
        relay.close()


ANOTHER_USERS_GATE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("gate", sys.argv[1])
gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gate)
shared = gate.EngineGate("id:shared")
shared.path = sys.argv[2]
with shared.removing(), shared.joining():
    print("held", flush=True)
"""


def test_a_lock_file_another_user_made_is_taken_all_the_same():
    # Root's run made the gate's files (0644 after its umask); another user sharing the
    # engine (one in the docker group) takes the same locks: flock needs no write access.
    # (pytest's tmp_path is root's alone: a directory like /tmp instead, sticky and open to all.)
    shared = Path(tempfile.mkdtemp(prefix="dockernet-gate-"))
    try:
        shared.chmod(0o1777)
        lock = shared / "pytest-dockernet-shared.lock"
        for made in (lock, Path(f"{lock}.join")):
            made.write_text("")
            made.chmod(0o644)
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", ANOTHER_USERS_GATE, gate.__file__, str(lock)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "held\n"), done.stderr
    finally:
        shutil.rmtree(shared)
