"""Runs on different machines sharing one engine (CI jobs against one remote engine) do not
collide: neither removes, reuses or breaks what the other made.

Each "machine" is an inner run in namespaces of its own: a host name (the same for all of
them, as two CI machines may both be called ``runner``), a pid namespace, and a boot id of
its own (bind-mounted over /proc/sys/kernel/random/boot_id), which is what sets another
machine apart in the labels the reaper reads. Needs root for the namespaces and the mount.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from pytest_dockernet import Topology

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare (util-linux) and root"
)

MACHINE = """
import os
import time

from inner_run_spy import record

from pytest_dockernet import assert_reachable, assert_resolves


def test_machine(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front, back])
    db = dockernet.container("db", networks=[back])
    cache = dockernet.container("cache", networks=[back], ports={80: None}, command=["httpd", "-f", "-p", "80"])
    assert_reachable(web, "db")
    record(front, back, web, db, cache)
    open(f"ready-{os.environ['MACHINE']}", "w").close()
    for _ in range(1200):
        if os.path.exists("go"):
            break
        time.sleep(0.1)
    for c in (web, db, cache):
        assert c.status().startswith("running"), (c.name, c.status())
    assert_reachable(web, "db")
    assert_resolves(web, "cache", to=cache.ip(back))
    late = dockernet.container("late", networks=[back])
    assert_reachable(late, "web")
"""


def on_machine(inner_runs, machine: str, host: str, *args: str) -> list[str]:
    """The inner pytest command, run as on another machine called ``host``."""
    boot = inner_runs.pytester.path / f"boot-{machine}"
    boot.write_text(f"{uuid.uuid4()}\n")
    script = 'hostname "$HN" && mount --bind "$BOOT" /proc/sys/kernel/random/boot_id && exec env MACHINE="$M" "$@"'
    command = [sys.executable, "-m", "pytest", "-p", "inner_run_spy", "-p", "no:cacheprovider", "-s", *args]
    return [
        "env", f"HN={host}", f"BOOT={boot}", f"M={machine}",
        "unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
        "sh", "-c", script, "sh", *command,
    ]  # fmt: skip


def test_runs_on_two_machines_sharing_the_engine_do_not_collide(inner_runs, pytester):
    pytester.makepyfile(test_machine=MACHINE, test_start="def test_start(dockernet):\n    pass\n")
    host = f"runner-{uuid.uuid4().hex[:6]}"  # of these machines only: other runs here are left alone
    machines = {}
    for machine in ("a", "b"):
        with open(pytester.path / f"{machine}.log", "w") as log:
            machines[machine] = pytester.popen(
                on_machine(inner_runs, machine, host, "test_machine.py"), stdout=log, stderr=subprocess.STDOUT
            )
            inner_runs.processes.append(machines[machine])
    deadline = time.monotonic() + 120
    while not all((pytester.path / f"ready-{m}").exists() for m in machines):
        for m, proc in machines.items():
            assert proc.poll() is None, (pytester.path / f"{m}.log").read_text()
        assert time.monotonic() < deadline, "the machines' runs did not get ready"
        time.sleep(0.1)
    made = inner_runs.made()
    assert len(made) == 10 and len(set(made)) == 10  # the same logical names, each run's own Docker names

    # A third machine prunes; a fourth starts a run (which prunes at its start).
    pruned = pytester.run(*on_machine(inner_runs, "c", host, "--dockernet-prune"), timeout=120)
    assert pruned.ret == 0, pruned.stdout.str()
    assert not [name for name in made if name in pruned.stdout.str()], pruned.stdout.str()
    started = pytester.run(*on_machine(inner_runs, "d", host, "test_start.py"), timeout=120)
    assert started.ret == 0, started.stdout.str()
    assert inner_runs.existing(made) == made

    (pytester.path / "go").touch()
    for m, proc in machines.items():
        assert proc.wait(timeout=120) == 0, (pytester.path / f"{m}.log").read_text()


def test_a_named_volume_another_run_still_mounts_stays_at_teardown(dockernet_client):
    # Two runs (here two topologies) name the same volume; the first made it, so its
    # teardown removes it, which the engine refuses while the other's container mounts it.
    name = f"dn-test-shared-{uuid.uuid4().hex[:8]}"
    first, second = Topology(dockernet_client), Topology(dockernet_client)
    try:
        first.container("writer", volumes=[f"{name}:/data"])
        reader = second.container("reader", volumes=[f"{name}:/data"])
        first.close()  # no error: the volume is the other's to use
        assert dockernet_client.api.inspect_volume(name)["Name"] == name
        assert reader.status() == "running"
    finally:
        second.close()
        dockernet_client.api.remove_volume(name)  # the first run's prune would, once it is over
