"""The multi-host lab on real engines: namespaces, dockerds, one swarm, partitions; no mocks.

The tests run in file order: the ones that bring their own lab up (the CLI, a failed
bring-up, engine 0's own swarm) come before the module's lab, which the last test takes down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import docker.types
import pytest

from pytest_dockernet.engine.gate import gate_for
from pytest_dockernet.image import build_around_busybox, find_busybox
from pytest_dockernet.lab import LAB_DIR, RULE_COMMENT, STATE_FILE, Lab, LabError, copy_image
from pytest_dockernet.labels import SESSION
from pytest_dockernet.plugin import STATE
from pytest_dockernet.retry import poll
from pytest_dockernet.swarm import at_risk

pytestmark = pytest.mark.dockernet

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pytest_dockernet.lab"]
HOSTS = "unix:///run/pytest-dockernet-lab/engine1.sock,unix:///run/pytest-dockernet-lab/engine2.sock"
IMAGE = "pytest-dockernet-test/lab-busybox:1"
SUBNET = "10.213.250.0/24"
# A partition shorter than gossip's failure detection (about 6 s) heals at once; a longer one
# (a slow machine) takes until Docker's next table sync, about 30-40 s.
HEAL_WAIT = 60.0


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def _live_processes_in_lab_dir() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(LAB_DIR) in cmdline:  # zombies have an empty command line
            found.append(f"process {entry}: {cmdline.strip()[:120]}")
    return found


def leftovers() -> list[str]:
    """Whatever of a lab is on this host."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
    found = [f"netns {line.split()[0]}" for line in namespaces if line.startswith("dnlab")]
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout)
    found += [f"link {link['ifname']}" for link in links if link["ifname"].startswith("dnlab")]
    found += _live_processes_in_lab_dir()
    if LAB_DIR.exists():
        found.append(f"directory {LAB_DIR}")
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    found += [f"iptables {line}" for line in rules.splitlines() if RULE_COMMENT in line]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(str(LAB_DIR))]
    return found


def swarm_of(client: docker.DockerClient) -> str:
    return client.info()["Swarm"]["LocalNodeState"]


def has_gwbridge(client: docker.DockerClient) -> bool:
    return any(n["Name"] == "docker_gwbridge" for n in client.api.networks(names=["docker_gwbridge"]))


def netns_exec(name: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", *command], capture_output=True, text=True)


@pytest.fixture(scope="module")
def as_root(pytestconfig):
    if os.geteuid() != 0:
        why = "the lab needs root (network namespaces, iptables, dockerd)"
        if pytestconfig.stash[STATE].settings.require:
            pytest.fail(f"{why} (--dockernet-require is set)", pytrace=False)
        pytest.skip(why)


def quiet(client: docker.DockerClient) -> None:
    """Wait until engine 0 could leave a swarm without breaking anyone's names (see
    swarm.at_risk): a lab's swarm is left at its end only then, and a test's own likewise."""
    risk, _ = poll(lambda: at_risk(client), lambda found: not found, timeout=30)
    assert not risk, f"these tests need an engine where a swarm leave breaks nothing; it would break {risk}"


@pytest.fixture
def no_lab(as_root, dockernet_client):
    """No lab is up before the test; after it, none is, and engine 0 is in the swarm state it was."""
    assert Lab.load() is None and not leftovers(), f"a lab is up already: {leftovers()}"
    quiet(dockernet_client)
    before = swarm_of(dockernet_client), has_gwbridge(dockernet_client)
    yield before
    lab = Lab.load()
    if lab is not None:
        lab.down()
    assert leftovers() == []
    assert (swarm_of(dockernet_client), has_gwbridge(dockernet_client)) == before


# --- Bad input and the wrong user: nothing is made ---------------------------------------


@pytest.mark.parametrize(
    "engines, match",
    [
        (1, r"engines=1 is too few: the lab is engine 0 plus at least one more; pass engines=2 or more"),
        (0, r"engines=0 is too few"),
        (9, r"engines=9 is too many for one machine: pass engines=2 to 8"),
        ("3", r"engines='3' is not an int"),
        (True, r"engines=True is not an int"),
    ],
)
def test_bad_engine_counts_are_refused_before_anything_is_made(engines, match):
    with pytest.raises(ValueError, match=match):
        Lab.up(engines)


@pytest.mark.parametrize("engines", ["1", "9"])
def test_the_cli_refuses_a_bad_engine_count(engines):
    done = cli("up", "--engines", engines)
    assert done.returncode == 2, done
    assert f"engines={engines} is too" in done.stderr
    assert "pass engines=2" in done.stderr
    assert done.stdout == ""


def test_the_cli_says_the_lab_needs_root(as_root):
    # A real unprivileged run: user nobody, allowed only to read (to import the package).
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *caps]
    done = subprocess.run(
        [*nobody, *CLI, "up", "--engines", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done
    assert "the lab needs root on Linux" in done.stderr
    assert done.stdout == ""


# --- Labs of their own -------------------------------------------------------------------


def test_cli_up_status_down(no_lab):
    up = cli("up", "--engines", "3")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == HOSTS
    assert "lab of 3 engines up in" in up.stderr

    status = cli("status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("a lab of 3 engines is up (brought up in ")
    assert len([line for line in lines if line.startswith("engine ")]) == 3
    assert all(" running, node " in line and line.endswith(" ready") for line in lines[1:4]), status.stdout
    assert " manager ready" in lines[1] and " worker ready" in lines[2] and " worker ready" in lines[3]
    assert lines[-1] == f"--dockernet-hosts={HOSTS}"

    again = cli("up", "--engines", "3")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == HOSTS
    assert "was up already; reusing it" in again.stderr

    other = cli("up", "--engines", "2")
    assert other.returncode == 1
    assert "a lab with 3 engines" in other.stderr
    assert "run `python -m pytest_dockernet.lab down` before bringing up one with 2" in other.stderr

    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert leftovers() == []
    assert cli("down").stderr.strip() == "no lab is up"
    status = cli("status")
    assert (status.returncode, status.stdout.strip()) == (0, "no lab is up")


def test_an_up_that_fails_half_way_removes_what_it_made(no_lab):
    with pytest.raises(LabError, match=r"engine 1 did not answer on \S+engine1.sock within 0s") as failed:
        Lab.up(3, timeout=0)
    assert "the end of /run/pytest-dockernet-lab/engine1.log" in str(failed.value)
    assert Lab.load() is None
    assert leftovers() == []


def test_a_killed_runs_lab_is_taken_down_by_the_next_run_that_wants_another(no_lab, pytester):
    pytester.makepyfile(
        test_waits="""
        import time

        def test_waits(dockernet_lab):
            print("lab is up", flush=True)
            time.sleep(120)
        """
    )
    args = [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "--dockernet-lab", "2", "test_waits.py"]
    run = subprocess.Popen(args, cwd=pytester.path, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        for line in run.stdout:
            if "lab is up" in line:
                break
        run.kill()  # SIGKILL: the run's own teardown never runs
    finally:
        run.kill()
        run.wait(timeout=30)
    orphan = Lab.load()
    assert orphan is not None and orphan.engines == 2 and orphan.orphaned

    # (One brought up by hand, `lab up`, outlives its process by design: test_cli_up_status_down.)
    lab = Lab.up(3, for_run=True)
    try:
        assert (lab.engines, lab.reused) == (3, False)
        assert all(status.running for status in lab.status())
        assert not lab.orphaned
    finally:
        lab.down()
    assert leftovers() == []


def test_engine_0s_own_swarm_is_joined_and_left_as_it_was(no_lab, dockernet_client):
    if no_lab[0] != "inactive":
        pytest.skip("engine 0 is in a swarm already; this test makes one of its own")
    # A host address outside the lab's link for engine 0's swarm: the lab must route to it.
    address, link = "198.19.213.1", f"dntest{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", link], check=True)
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        with gate_for(dockernet_client).removing():  # see pytest_dockernet.engine.gate
            dockernet_client.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377")
        own = dockernet_client.info()["Swarm"]["NodeID"]

        lab = Lab.up(2)
        assert not lab.swarm_initialised
        engine0, engine1 = lab.status()
        assert (engine0.node_id, engine0.role, engine0.node_state) == (own, "manager", "ready")
        assert engine0.address == address
        assert (engine1.role, engine1.node_state) == ("worker", "ready")
        assert lab.client(1).info()["Swarm"]["RemoteManagers"][0]["Addr"] == f"{address}:2377"

        lab.down()
        assert leftovers() == []
        assert dockernet_client.info()["Swarm"]["ControlAvailable"]
        assert [node["ID"] for node in dockernet_client.api.nodes()] == [own]
    finally:
        left = Lab.load()
        if left is not None:
            left.down()
        quiet(dockernet_client)
        try:
            with gate_for(dockernet_client).removing():
                dockernet_client.swarm.leave(force=True)
        except docker.errors.APIError:
            pass
        if not no_lab[1] and has_gwbridge(dockernet_client):
            with gate_for(dockernet_client).removing():
                dockernet_client.api.remove_network("docker_gwbridge")
        subprocess.run(["ip", "link", "del", link], check=False)


def test_the_labs_swarm_stays_while_the_lab_is_up_or_a_leave_would_break_names(
    no_lab, inner_runs, dockernet_client, dockernet
):
    """The swarm the lab makes is the plugin's: no other run's prune leaves it while the lab
    is up, and down() leaves it only when no container on engine 0 would lose its names."""
    assert no_lab[0] == "inactive", "engine 0 is in a swarm already; this test needs the lab to make one"
    lab = Lab.up(2)
    assert lab.swarm_initialised
    result = inner_runs.run("--dockernet-prune")
    result.stdout.fnmatch_lines(["*engine 0 stays in the swarm the plugin made*the lab that is up*"])
    assert [e.node_state for e in lab.status()] == ["ready", "ready"]

    tag = uuid.uuid4().hex[:8]
    # A container on a bridge network of engine 0, made outside the plugin, as a user's own stack is.
    network = dockernet_client.networks.create(f"foreign-{tag}")
    run = dockernet_client.containers.run
    stack = run(dockernet.probe_image, ["sleep", "600"], name=f"foreign-{tag}", network=network.name, detach=True)
    try:
        down = cli("down")
        assert down.returncode == 0, down.stderr
        assert "engine 0 stays in the swarm the plugin made" in down.stderr and stack.name in down.stderr
        assert leftovers() == [] and swarm_of(dockernet_client) == "active"
    finally:
        stack.remove(force=True)
        network.remove()
    result = inner_runs.run("--dockernet-prune")
    result.stdout.fnmatch_lines(["dockernet: *left the swarm the plugin had made*"])
    assert swarm_of(dockernet_client) == "inactive"


# --- The module's lab --------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine0_before(as_root, dockernet_client):
    """Engine 0's swarm state and whether it has docker_gwbridge, before the module's lab
    (which leaves the swarm it made only if that breaks no one's names: nothing is at risk)."""
    quiet(dockernet_client)
    return swarm_of(dockernet_client), has_gwbridge(dockernet_client)


@pytest.fixture(scope="module")
def lab(engine0_before):
    assert Lab.load() is None and not leftovers(), f"a lab is up already: {leftovers()}"
    lab = Lab.up(3)
    yield lab
    lab.down()  # again, if test_down_removes_everything did: a no-op


@pytest.fixture(scope="module")
def lab_image(lab, dockernet_client):
    busybox, why = find_busybox(None)
    if busybox is None:
        pytest.fail(f"the lab's tests need a static busybox: {why}")
    build_around_busybox(lab.client(0), busybox, IMAGE)
    assert [copy_image(lab.client(0), lab.client(i), IMAGE) for i in (1, 2)] == [True, True]
    yield IMAGE
    dockernet_client.api.remove_image(IMAGE)  # from engine 0 (the other engines go with the lab)


@pytest.fixture(scope="module")
def pair(lab, lab_image):
    """``a`` on engine 1 and ``b`` on engine 2, on one attachable overlay made on engine 0."""
    session = f"lab-test-{uuid.uuid4().hex[:8]}"
    labels = {SESSION: session}
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET)])
    network = lab.client(0).networks.create(
        f"dnlab-test-{session}", driver="overlay", attachable=True, ipam=ipam, labels=labels
    )
    made = []
    try:
        for engine, name in ((1, "a"), (2, "b")):
            made.append(
                lab.client(engine).containers.run(
                    lab_image,
                    ["sleep", "3600"],
                    name=f"dnlab-test-{name}-{session}",
                    network=network.name,
                    labels=labels,
                    detach=True,
                )
            )
        a, b = made
        b.reload()
        yield a, b, b.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    finally:
        # The engines may be gone already (test_down_removes_everything).
        for container in made:
            try:
                container.remove(force=True)
            except (docker.errors.DockerException, OSError):
                pass
        try:
            network.remove()
        except (docker.errors.DockerException, OSError):
            pass


def pings(container, target: str) -> bool:
    code, _ = container.exec_run(["ping", "-c", "1", "-W", "1", target])
    return code == 0


def test_status_shows_three_engines_in_one_swarm(lab):
    assert lab.engines == 3
    assert lab.hosts == HOSTS.split(",")
    assert lab.hosts_option == HOSTS
    assert set(lab.timings) == {"network", "engines", "swarm", "total"}
    assert 0 < lab.timings["total"] < 60
    engines = lab.status()
    assert [e.index for e in engines] == [0, 1, 2]
    assert all(e.running and e.node_state == "ready" and not e.partitioned for e in engines), engines
    assert [e.role for e in engines] == ["manager", "worker", "worker"]
    assert [e.namespace for e in engines] == [None, "dnlab1", "dnlab2"]
    assert all(lab.client(i).ping() for i in range(3))
    # Every engine is its own: own data root, own containerd, own host name in the swarm.
    infos = [lab.client(i).info() for i in range(3)]
    assert len({info["DockerRootDir"] for info in infos}) == 3
    nodes = {node["ID"]: node["Description"]["Hostname"] for node in lab.client(0).api.nodes()}
    assert [nodes[e.node_id] for e in engines[1:]] == ["dnlab1", "dnlab2"]
    assert "a lab of 3 engines is up" in lab.describe()


def test_everything_the_lab_made_is_named_dnlab(lab):
    assert sorted(f for f in leftovers() if not f.startswith(("process", "mount"))) == [
        f"directory {LAB_DIR}",
        f"iptables -A FORWARD -i dnlab-br -o dnlab-br -m comment --comment {RULE_COMMENT} -j ACCEPT",
        "link dnlab-br",
        "link dnlab1-h",
        "link dnlab2-h",
        "netns dnlab1",
        "netns dnlab2",
    ]
    assert len([p for p in _live_processes_in_lab_dir() if " dockerd " in f" {p.split(': ', 1)[1]} "]) == 2


def test_up_again_reuses_the_lab_or_refuses_another_size(lab):
    again = Lab.up(3)
    assert again.reused and again.hosts == lab.hosts
    assert set(again.timings.values()) == {0.0}
    with pytest.raises(
        LabError, match=r"a lab with 3 engines .* is up already; run `python -m pytest_dockernet.lab down`"
    ):
        Lab.up(4)


def test_copy_image_skips_an_engine_that_has_the_image(lab, lab_image):
    assert copy_image(lab.client(0), lab.client(1), lab_image) is False
    with pytest.raises(ValueError, match=r"tag='pytest-dockernet-test/no-such:1' is not an image of the source"):
        copy_image(lab.client(0), lab.client(1), "pytest-dockernet-test/no-such:1")


def test_containers_on_two_engines_ping_by_name_across_an_overlay(pair):
    a, b, b_ip = pair
    assert b_ip.startswith("10.213.250.")
    deadline = time.monotonic() + 10
    while not pings(a, b.name):
        assert time.monotonic() < deadline, f"{a.name} on engine 1 never reached {b.name} on engine 2"
        time.sleep(0.2)
    assert pings(b, a.name)


def test_partition_cuts_an_engine_off_and_heal_restores_it(lab, pair):
    a, b, b_ip = pair
    manager = "198.18.213.1"
    busybox, _ = find_busybox(None)
    assert pings(a, b_ip)

    lab.partition(2)
    lab.partition(2)  # idempotent
    assert lab.partitioned == [2] and Lab.load().partitioned == [2]
    assert [e.partitioned for e in lab.status()] == [False, False, True]
    assert not pings(a, b_ip)  # data plane: VXLAN
    assert netns_exec("dnlab2", busybox, "nc", "-w", "1", manager, "2377").returncode != 0  # control plane
    assert netns_exec("dnlab1", busybox, "nc", "-w", "1", manager, "2377").returncode == 0

    lab.heal(2)
    lab.heal(2)  # idempotent
    assert lab.partitioned == [] and Lab.load().partitioned == []
    deadline = time.monotonic() + HEAL_WAIT
    while not pings(a, b_ip):
        assert time.monotonic() < deadline, f"engine 2 still cut off {HEAL_WAIT:.0f}s after heal(2)"
    assert netns_exec("dnlab2", busybox, "nc", "-w", "1", manager, "2377").returncode == 0
    assert pings(a, b.name)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda lab: lab.partition(0), r"engine=0 cannot be partitioned: it is the host's own engine"),
        (lambda lab: lab.partition(3), r"engine=3 is not an engine of this lab: pass 1 to 2"),
        (lambda lab: lab.heal(-1), r"engine=-1 is not an engine of this lab: pass 1 to 2"),
        (lambda lab: lab.client(3), r"engine=3 is not an engine of this lab: pass 0 to 2"),
        (lambda lab: lab.client("1"), r"engine='1' is not an engine of this lab: pass 0 to 2"),
    ],
)
def test_bad_engine_arguments_are_refused(lab, call, match):
    with pytest.raises(ValueError, match=match):
        call(lab)
    assert lab.partitioned == []


def test_down_removes_everything(lab, pair, dockernet_client, engine0_before):
    lab.partition(1)  # down heals too
    lab.down()
    assert leftovers() == []
    assert Lab.load() is None
    assert (swarm_of(dockernet_client), has_gwbridge(dockernet_client)) == engine0_before
    lab.down()  # idempotent
    assert not STATE_FILE.exists()
