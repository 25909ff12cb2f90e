"""Keep-warm (pytest_dockernet.keep_warm, ``--dockernet-keep-warm SECONDS``): the warm pool's idle
containers and networks outlive their run under a keeper, are adopted by the next matching run,
never by two runs nor by a run of another image or DNS mode, and are pruned once idle too long
or once a run killed while holding them has been dead that long."""

from __future__ import annotations

import io
import signal
import time
import uuid

import docker
import docker.errors
import pytest

import pytest_dockernet
from pytest_dockernet.engine import remove_container, remove_network
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.keep_warm import Keeper, held_name, match_key
from pytest_dockernet.labels import HELD_BY, IDLE_FOR, KEEP_WARM, ROLE, SESSION, RunIdentity
from pytest_dockernet.lease import LEASE_ROLE, lease_states
from pytest_dockernet.plugin import STATE
from pytest_dockernet.reaper import prune

pytestmark = pytest.mark.dockernet

ONE = """
import os

from inner_run_spy import ready


def test_one(dockernet):
    net = dockernet.network("net")
    cs = dockernet.containers({n: {"networks": [net]} for n in ("a", "b", "c")})
    dockernet.assert_resolves(cs["a"], "b", to=cs["b"])
    if os.environ.get("HOLD"):  # a run to kill while it holds its pool
        ready()
        import time
        time.sleep(300)
"""

ROLE_POOLED = "pooled"
REUSED = "warm pool: 3 of the containers and 1 of the networks were earlier tests', used again"


class Keepers:
    """The keepers of one test's runs: they share a subnet pool no other test gives, so the
    key their runs match on is this test's own."""

    def __init__(self, client: docker.DockerClient, image: str):
        self.client, self.api = client, client.api
        draw = uuid.uuid4().int
        self.pool = f"10.213.{draw % 16 * 16}.0/20:{24 + draw // 16 % 4}"  # part of the default range
        self.image = image
        self.image_id = self.api.inspect_image(image)["Id"]
        self.extra_keys: list[str] = []

    def key(self, dns: str = "hermetic", image_id: str | None = None) -> str:
        return match_key(pytest_dockernet.__version__, image_id or self.image_id, dns, self.pool)

    def args(self, seconds: int = 30) -> list[str]:
        return ["--dockernet-require", "--dockernet-keep-warm", str(seconds), "--dockernet-subnet-pool", self.pool]

    def containers(self, key: str | None = None) -> list[dict]:
        return self.api.containers(all=True, filters={"label": f"{KEEP_WARM}={key or self.key()}"})

    def networks(self, key: str | None = None) -> list[dict]:
        return self.api.networks(filters={"label": f"{KEEP_WARM}={key or self.key()}"})

    def of(self, key: str | None = None) -> dict[str, list[str]]:
        """role -> names of what keepers of ``key`` have on the engine now."""
        found: dict[str, list[str]] = {}
        for c in self.containers(key):
            labels = c["Labels"]
            role = "held" if labels.get(HELD_BY) else labels[ROLE]
            found.setdefault(role, []).append(c["Names"][0].lstrip("/"))
        found["network"] = [n["Name"] for n in self.networks(key)]
        return found

    def ids(self) -> set[str]:
        return {c["Labels"][SESSION] for c in self.containers()}

    def remove(self) -> None:
        """Remove what this test's keepers left (they are its own): containers, then networks."""
        for key in [self.key(), *self.extra_keys]:
            for c in self.containers(key):
                remove_container(self.client, c["Id"])  # gone, or going (a worker's end), is fine
            for n in self.networks(key):
                remove_network(self.client, n["Id"])


@pytest.fixture
def keepers(dockernet_client, pytestconfig, inner_runs, pytester):
    pytester.makepyfile(test_one=ONE)
    made = Keepers(dockernet_client, pytestconfig.stash[STATE].probe_image())
    yield made
    inner_runs.stop_processes()
    made.remove()


def until(condition, what: str, timeout: float = 60.0) -> None:
    """Wait for the engine to reach a state (not a timing assertion: the deadline only ends a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached in {timeout:.0f} s: {what}")
        time.sleep(0.2)


def test_a_kept_pool_outlives_its_run_and_the_next_run_adopts_it(inner_runs, keepers, pytester):
    first = inner_runs.run_subprocess(*keepers.args())
    first.assert_outcomes(passed=1)
    assert REUSED not in first.stdout.str()
    run_ids = inner_runs.run_ids()
    assert inner_runs.resources(*run_ids) == []  # nothing of its own left: the keeper's are not its own
    kept = keepers.of()
    assert len(kept[ROLE_POOLED]) == 3 and len(kept["network"]) == 1, kept
    assert len(kept[LEASE_ROLE]) == 1 and "held" not in kept, kept  # idle, held by no run
    (keeper,) = keepers.ids()
    assert keeper not in run_ids
    before = {c["Id"] for c in keepers.containers() if c["Labels"][ROLE] == ROLE_POOLED}

    second = inner_runs.run_subprocess(*keepers.args())
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines([REUSED])  # no container started, no network made for its test
    after = keepers.of()
    assert keepers.ids() == {keeper}  # the same keeper, handed back...
    assert {c["Id"] for c in keepers.containers() if c["Labels"][ROLE] == ROLE_POOLED} == before  # ...same containers
    (idle,) = after[LEASE_ROLE]
    assert idle.endswith(inner_runs.run_ids()[-1]) and "held" not in after  # under the second run's idle lease
    assert inner_runs.resources(*inner_runs.run_ids()) == []


def test_the_ini_key_turns_it_on_and_a_default_run_keeps_nothing(inner_runs, keepers, pytester):
    result = inner_runs.run_subprocess("--dockernet-require", "--dockernet-subnet-pool", keepers.pool)
    result.assert_outcomes(passed=1)
    assert keepers.containers() == [] and keepers.networks() == []  # off by default
    pytester.makeini(f"[pytest]\ndockernet_keep_warm = 30\ndockernet_subnet_pool = {keepers.pool}\n")
    result = inner_runs.run_subprocess("--dockernet-require")
    result.assert_outcomes(passed=1)
    assert len(keepers.of()[ROLE_POOLED]) == 3


def test_another_dns_mode_or_probe_image_does_not_adopt(inner_runs, keepers, dockernet_client, pytester):
    inner_runs.run_subprocess(*keepers.args()).assert_outcomes(passed=1)
    (keeper,) = keepers.ids()
    host = inner_runs.run_subprocess(*keepers.args(), "--dockernet-dns", "host")
    host.assert_outcomes(passed=1)
    assert REUSED not in host.stdout.str()
    keepers.extra_keys.append(keepers.key(dns="host"))
    assert keepers.ids() == {keeper}  # left to its time
    assert len(keepers.of(keepers.key(dns="host"))[ROLE_POOLED]) == 3  # the other mode's own keeper

    tag = f"dn-test-keep-warm:{uuid.uuid4().hex[:8]}"
    dockerfile = io.BytesIO(f"FROM {keepers.image}\nLABEL other=1\n".encode())
    image, _ = dockernet_client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    try:
        keepers.extra_keys.append(keepers.key(image_id=image.id))
        other = inner_runs.run_subprocess(*keepers.args(), "--dockernet-image", tag)
        other.assert_outcomes(passed=1)
        assert REUSED not in other.stdout.str()
        assert keepers.ids() == {keeper}
        assert len(keepers.of(keepers.key(image_id=image.id))[ROLE_POOLED]) == 3
    finally:
        keepers.remove()  # its containers use the image
        dockernet_client.images.remove(image.id, force=True)


def test_an_expired_keeper_is_pruned_by_the_next_run(inner_runs, keepers, dockernet_client):
    inner_runs.run_subprocess(*keepers.args(seconds=2)).assert_outcomes(passed=1)
    (keeper,) = keepers.ids()
    (idle,) = [c for c in keepers.containers() if c["Labels"][ROLE] == LEASE_ROLE]
    assert idle["Labels"][IDLE_FOR] == "2" and idle["State"] == "created"  # lives 2 s from its creation
    until(lambda: lease_states(dockernet_client).get(keeper) in (False, None), "the keeper read dead")
    second = inner_runs.run_subprocess(*keepers.args(seconds=2))
    second.assert_outcomes(passed=1)
    assert REUSED not in second.stdout.str()
    second.stdout.fnmatch_lines([f"*removed * containers and * network* left by *dead run*{keeper}*"])
    assert keeper not in keepers.ids()


def test_two_runs_never_hold_one_keeper(dockernet_client, pytestconfig):
    image = pytestconfig.stash[STATE].probe_image()
    engine = DockerEngine(dockernet_client)
    key, keeper_id = f"test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:10]
    one = Keeper(engine, RunIdentity(), image, key, 5, keeper_id)
    other = Keeper(engine, RunIdentity(), image, key, 5, keeper_id)
    try:
        assert one.claim() is True
        assert other.claim() is False  # the engine refuses the name: held already
        held = dockernet_client.api.inspect_container(held_name(keeper_id))
        assert held["Config"]["Labels"][HELD_BY] == one.run.run_id
    finally:
        for c in dockernet_client.api.containers(all=True, filters={"label": f"{KEEP_WARM}={key}"}):
            dockernet_client.api.remove_container(c["Id"], force=True)


def test_xdist_workers_each_hold_their_own_keeper(inner_runs, keepers, pytester):
    """Two workers start together and race for the one keeper a first run left: one adopts it,
    the other makes its own; then two keepers wait, one per worker."""
    pytester.makepyfile(test_two="from test_one import test_one as test_two\n")
    inner_runs.run_subprocess(*keepers.args(), "test_one.py").assert_outcomes(passed=1)
    (keeper,) = keepers.ids()
    both = inner_runs.run_subprocess(*keepers.args(), "-n", "2", "test_one.py", "test_two.py")
    both.assert_outcomes(passed=2)
    both.stdout.fnmatch_lines([REUSED])  # summed over the workers: one of them adopted the three
    ids = keepers.ids()
    assert keeper in ids and len(ids) == 2
    # Both handed back (a worker's end of the run may still go on when the run's process has exited).
    until(lambda: not [c for c in keepers.containers() if c["Labels"].get(HELD_BY)], "both keepers handed back")
    assert inner_runs.resources(*inner_runs.run_ids()) == []


def test_a_run_killed_while_holding_a_keeper_leaves_it_until_its_idle_lease_ends(
    inner_runs, keepers, dockernet_client, monkeypatch
):
    inner_runs.run_subprocess(*keepers.args(seconds=10)).assert_outcomes(passed=1)
    (keeper,) = keepers.ids()
    monkeypatch.setenv("HOLD", "1")
    proc = inner_runs.start(*keepers.args(seconds=10), "-p", "no:xdist")
    (held,) = [c for c in keepers.containers() if c["Labels"].get(HELD_BY)]
    assert held["Labels"][HELD_BY] == inner_runs.run_id_of(proc)  # adopted by the run we kill
    assert held["Labels"][SESSION] == keeper
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    api = dockernet_client.api
    (idle,) = [c for c in keepers.containers() if c["Labels"][ROLE] == LEASE_ROLE and not c["Labels"].get(HELD_BY)]
    states = lease_states(dockernet_client)
    if time.time() - idle["Created"] < 10:  # the idle lease it adopted had time left when the states were read
        assert states[keeper] is True  # so its holder is dead, but the keeper lives (bounded by that lease)
    assert api.inspect_container(held["Id"])["State"]["Running"]  # what earlier releases read as alive
    # Dead in time (other runs on the engine may have pruned it already: then it is not listed).
    until(lambda: not lease_states(dockernet_client).get(keeper, False), "the keeper read dead")
    prune(DockerEngine(dockernet_client), RunIdentity(), runs=[keeper, inner_runs.run_id_of(proc)])
    assert keepers.containers() == [] and keepers.networks() == []
    assert inner_runs.resources() == []  # the killed run's own lease too


@pytest.mark.parametrize(
    "args, ini",
    [(["--dockernet-keep-warm=-1"], ""), (["--dockernet-keep-warm=soon"], ""), (["--dockernet-keep-warm=3601"], "")]
    + [([], "dockernet_keep_warm = 1.5")],
    ids=["negative", "word", "too-long", "ini-fraction"],
)
def test_bad_keep_warm_values_are_usage_errors(pytester, args, ini):
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --dockernet-keep-warm (ini dockernet_keep_warm) is '*': give the seconds *0 to 3600 (0 turns it off)"]
    )


def test_a_keeper_lives_while_the_run_that_holds_it_lives(dockernet_client, pytestconfig):
    """Its held lease is never started: it is read by its holder's lease."""
    image = pytestconfig.stash[STATE].probe_image()
    api, holder = dockernet_client.api, RunIdentity()
    key = f"test-{uuid.uuid4().hex[:8]}"
    keeper = Keeper(DockerEngine(dockernet_client), holder, image, key, 5, uuid.uuid4().hex[:10])
    # The holder's lease, ending with code 0 when told to (as a run's does when its run ends).
    ends_on_term = ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]
    labels = {SESSION: holder.run_id, ROLE: LEASE_ROLE, KEEP_WARM: key}  # KEEP_WARM: removed below
    lease = api.create_container(image, ends_on_term, labels=labels)["Id"]
    try:
        api.start(lease)
        assert keeper.claim()
        assert lease_states(dockernet_client)[keeper.id] is True
        api.stop(lease, timeout=30)
        assert api.inspect_container(lease)["State"]["ExitCode"] == 0
        assert lease_states(dockernet_client).get(keeper.id) in (False, None)  # dead (or pruned by a run since)
    finally:
        for c in api.containers(all=True, filters={"label": f"{KEEP_WARM}={key}"}):
            api.remove_container(c["Id"], force=True)


def test_what_an_adopting_run_finds_changed_is_removed_not_used(inner_runs, keepers, dockernet_client):
    """A container running a process of its own, a paused one, and a network someone joined
    are not a fresh pool's: the adopting run removes them and uses the rest."""
    inner_runs.run_subprocess(*keepers.args()).assert_outcomes(passed=1)
    api = dockernet_client.api
    pooled = [c for c in keepers.containers() if c["Labels"][ROLE] == ROLE_POOLED]
    (network,) = keepers.networks()
    busy, paused, fresh = (c["Id"] for c in pooled)
    api.exec_start(api.exec_create(busy, ["sleep", "300"])["Id"], detach=True)
    until(lambda: len(api.top(busy)["Processes"]) > 1, "the stray process runs")
    api.pause(paused)
    stranger = api.create_container(
        keepers.image, ["sleep", "300"], host_config=api.create_host_config(network_mode=network["Name"])
    )
    try:
        api.start(stranger["Id"])
        second = inner_runs.run_subprocess(*keepers.args())
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(
            ["warm pool: 1 of the containers and 0 of the networks were earlier tests', used again"]
        )
        left = {c["Id"] for c in keepers.containers()}
        assert fresh in left and busy not in left and paused not in left
        assert network["Id"] not in {n["Id"] for n in keepers.networks()}
    finally:
        api.remove_container(stranger["Id"], force=True)


def test_the_key_changes_with_each_thing_a_keeper_must_share():
    base = ("0.1.0", "sha256:aa", "hermetic", "10.213.0.0/16:24")
    keys = {match_key(*base)} | {match_key(*base[:i], "other", *base[i + 1 :]) for i in range(len(base))}
    assert len(keys) == 1 + len(base)
    assert match_key(*base) == match_key(*base)
