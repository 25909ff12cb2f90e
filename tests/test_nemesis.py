"""The seeded nemesis (issue 25): the same seed applies the same faults to the same targets,
every fault is lifted when the block ends (returns, raises, SIGTERM), a failing test's report
gives the seed, the history and the command that replays it, and bad input is refused."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
from test_reports import section

from pytest_dockernet import DockernetError, NemesisEvent, assert_reachable
from pytest_dockernet.nemesis import KINDS

FAST = (0.05, 0.2)  # seconds of each calm and each fault: many faults in a short block


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    """A wait, not a timed assertion: the deadline only ends a test that would hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def in_force(nemesis) -> bool:
    return any(event.lifted is None for event in nemesis.history)


def steps(events) -> list[tuple[str, tuple[str, ...], str]]:
    return [(e.fault, tuple(e.targets), e.detail) for e in events]


def assert_all_lifted(dockernet, members) -> None:
    assert dockernet.faults == []
    assert [m.status() for m in members] == ["running"] * len(members)
    for a in members:
        for b in members:
            if a is not b:
                assert_reachable(a, b)


def test_the_same_seed_applies_the_same_faults_to_the_same_targets(dockernet, three):
    runs = []
    for seed in (7, 7, 8):
        with dockernet.nemesis(three, seed=seed, every=FAST) as nemesis:
            wait_for(lambda n=nemesis: len(n.history) >= 5, "five faults")
        runs.append(nemesis)
        assert nemesis.seed == seed
        assert all(e.lifted is not None and e.applied <= e.lifted for e in nemesis.history)
        # What ran is what the seed draws, whatever the timing was
        assert steps(nemesis.history) == [(s.fault, s.targets, s.detail) for s in nemesis.plan(len(nemesis.history))]
        assert_all_lifted(dockernet, three)
    assert steps(runs[0].history)[:5] == steps(runs[1].history)[:5]
    assert runs[0].plan(20) == runs[1].plan(20)  # kinds, targets and durations
    assert runs[0].plan(20) != runs[2].plan(20)
    assert all(isinstance(e, NemesisEvent) for e in runs[0].history)


def test_every_kind_is_applied_and_lifted(dockernet, three):
    """The timeline says what each kind did to the containers, and undid."""
    for kind in KINDS:
        with dockernet.nemesis(three, seed=1, faults=[kind], every=FAST) as nemesis:
            wait_for(lambda n=nemesis: len(n.history) >= 2, f"two {kind} faults")
        assert {e.fault for e in nemesis.history} == {kind}
        assert_all_lifted(dockernet, three)
    events = [e.what for e in dockernet.context.timeline.events()]
    done = "\n".join(events)
    # Each fault's own lines (their wording is the faults' own), applied then lifted
    assert re.search(r"partition #\d+ \[\w\] \| \[\w, \w\][^\n]*: applied", done)  # halves of three: 1 and 2
    assert re.search(r"partition #\d+ \[\w\] \| \[\w, \w\][^\n]*: lifted", done)
    assert re.search(r"container \w sent SIGKILL\ncontainer \w started again", done)
    assert re.search(r"container \w paused\ncontainer \w unpaused", done)
    assert re.search(r"degrade #\d+ \w: loss 0\.\d+[^\n]*: applied\ndegrade #\d+ \w: loss 0\.\d+[^\n]*: lifted", done)


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_that_raises_lifts_the_fault_in_force(dockernet, three, kind):
    with pytest.raises(RuntimeError, match="the test failed"):
        with dockernet.nemesis(three, seed=2, faults=[kind], every=(0.2, 1.0)) as nemesis:
            wait_for(lambda: in_force(nemesis), f"a {kind} fault in force")
            raise RuntimeError("the test failed")
    assert not nemesis.running
    assert nemesis.history and all(e.lifted is not None for e in nemesis.history)
    assert_all_lifted(dockernet, three)


def test_ctrl_c_in_the_block_lifts_the_fault_in_force(dockernet, three):
    with pytest.raises(KeyboardInterrupt):
        with dockernet.nemesis(three, seed=5, faults=["kill-restart", "pause"], every=(0.2, 1.0)) as nemesis:
            wait_for(lambda: in_force(nemesis), "a fault in force")
            raise KeyboardInterrupt  # what Ctrl-C (and the plugin's SIGTERM handler) raise
    assert not nemesis.running
    assert nemesis.history and all(e.lifted is not None for e in nemesis.history)
    assert_all_lifted(dockernet, three)


def test_an_error_of_the_nemesis_is_raised_at_the_end_of_the_block(dockernet, three):
    a = three[0]
    a.stop(timeout=0)
    with pytest.raises(DockernetError, match=r"nemesis \(seed 4\) failed at pause a: .*'a'"):
        with dockernet.nemesis([a], seed=4, faults=["pause"], every=FAST) as nemesis:
            wait_for(lambda: not nemesis.running, "the nemesis to stop")  # pausing a stopped container failed
    assert nemesis.history == []
    report = dockernet.context.nemeses.report("t.py::t")
    assert "stopped by an error at pause a: " in report
    assert re.search(r"^nemesis 1, seed 4 \(given\): pause on a, every", report, re.M)
    assert report.endswith("replay: pytest 't.py::t' --dockernet-seed 4")  # only given seeds: the first's
    a.start()
    assert_all_lifted(dockernet, three)


def test_bad_input_is_refused_naming_the_argument(dockernet, three, dockernet_module):
    a, b, _ = three
    stranger = dockernet_module.container("stranger")
    cases = [
        (
            dict(members=three, faults=["flood"]),
            ValueError,
            r"faults: 'flood' is not a fault kind; use some of partition",
        ),
        (dict(members=three, faults="pause"), TypeError, r"faults must be a non-empty list of fault kinds"),
        (dict(members=three, faults=[]), TypeError, r"faults must be a non-empty list"),
        (dict(members=three, every=1.0), TypeError, r"every must be a pair \(low, high\) of seconds"),
        (dict(members=three, every=(1.0, 2.0, 3.0)), TypeError, r"every must be a pair"),
        (dict(members=three, every=(3.0, 1.0)), ValueError, r"every=\(3.0, 1.0\): .*0 <= low <= high"),
        (dict(members=three, every=("1s", "2s")), TypeError, r"every must be a pair"),
        (dict(members=["a", "b"]), TypeError, r"members: expected containers from dockernet.container\(\)"),
        (dict(members=[]), TypeError, r"members must be a non-empty list of containers"),
        (dict(members=[a], faults=["partition-halves"]), ValueError, r"'partition-halves' .*at least 2 members"),
        (dict(members=[a], faults=["isolate-one"]), ValueError, r"'isolate-one' .*at least 2 members"),
        (dict(members=[a, stranger]), ValueError, r"members: container 'stranger' belongs to another dockernet"),
        (dict(members=[a, b, a]), ValueError, r"members: a container is named twice"),
        (dict(members=three, seed=True), TypeError, r"seed must be an integer or None"),
        (dict(members=three, seed="7"), TypeError, r"seed must be an integer or None"),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            dockernet.nemesis(**arguments)
    # One member is enough for the kinds that hit one container
    with dockernet.nemesis([a], faults=["pause"], every=FAST) as nemesis:
        wait_for(lambda: len(nemesis.history) >= 1, "a pause")
    with pytest.raises(DockernetError, match="has run already"):
        with nemesis:
            pass


CHAOS = """
    import json
    import time
    from pathlib import Path

    def test_chaos(dockernet):
        net = dockernet.network("n")
        members = [dockernet.container(n, networks=[net], command=["httpd", "-f", "-p", "80"]) for n in "abc"]
        with dockernet.nemesis(members, every=(0.05, 0.2)) as nemesis:
            while len(nemesis.history) < 4:
                time.sleep(0.05)
        with dockernet.nemesis(members[:2], faults=["pause", "loss"], every=(0.05, 0.2)) as second:
            while len(second.history) < 2:
                time.sleep(0.05)
        seen = [[[e.fault, list(e.targets), e.detail] for e in n.history] for n in (nemesis, second)]
        with open(Path(__file__).parent / "histories", "a") as f:
            f.write(json.dumps([nemesis.seed, second.seed, *seen]) + "\\n")
        assert False, "the application lost a write"
"""


def test_a_failing_test_reports_seed_history_and_replay_command_which_replays_it(inner_runs, pytester):
    pytester.makepyfile(test_chaos=CHAOS)
    first = inner_runs.run()
    first.assert_outcomes(failed=1)
    text = section(first, "dockernet nemesis")
    replay = re.search(r"^replay: pytest 'test_chaos.py::test_chaos' --dockernet-seed (\d+)$", text, re.M)
    assert replay, text
    base = int(replay.group(1))
    kinds = "partition-halves, isolate-one, kill-restart, pause, loss"
    assert re.search(rf"^nemesis 1, seed {base}: {kinds} on a, b, c, every 0.05-0.2 s$", text, re.M)
    assert re.search(rf"^nemesis 2, seed {base + 1}: pause, loss on a, b, every 0.05-0.2 s$", text, re.M)
    history = re.findall(r"^ +\d+\.\d\d - +\d+\.\d\d s  ([a-z-]+) (.*)$", text, re.M)
    assert len(history) >= 6, text

    again = inner_runs.run("--dockernet-seed", str(base))
    again.assert_outcomes(failed=1)
    assert f"replay: pytest 'test_chaos.py::test_chaos' --dockernet-seed {base}" in section(again, "dockernet nemesis")
    lines = (pytester.path / "histories").read_text().splitlines()
    (*seeds1, first1, second1), (*seeds2, first2, second2) = map(json.loads, lines)
    assert seeds1 == seeds2 == [base, base + 1]
    # Each run's first nemesis made at least 4 faults, its second 2: those are the same
    assert first1[:4] == first2[:4]
    assert second1[:2] == second2[:2]
    assert inner_runs.resources() == []


def test_the_seed_option_and_ini_key_and_a_passing_test_without_a_nemesis_section(inner_runs, pytester):
    pytester.makepyfile(
        test_calm="""
        import time

        def test_calm(dockernet):
            a, b = dockernet.container("a"), dockernet.container("b")
            with dockernet.nemesis([a, b], faults=["pause"], every=(0.05, 0.1)) as nemesis:
                while not nemesis.history:
                    time.sleep(0.05)
            assert nemesis.seed == 12
        """
    )
    result = inner_runs.run("--dockernet-seed", "12")
    result.assert_outcomes(passed=1)
    assert "dockernet nemesis" not in result.stdout.str()
    pytester.makeini("[pytest]\ndockernet_seed = 12\n")
    inner_runs.run().assert_outcomes(passed=1)
    for bad in ("x", "-3"):
        result = inner_runs.run("--dockernet-seed", bad)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [f"*--dockernet-seed (ini dockernet_seed) is '{bad}': give a whole number 0 or more*"]
        )


SIGTERMED = """
    import time

    from inner_run_spy import ready, record

    def test_chaos(dockernet):
        net = dockernet.network("n")
        members = [dockernet.container(n, networks=[net], command=["httpd", "-f", "-p", "80"]) for n in "abc"]
        record(net, *members)
        # a seed whose first fault comes at once and lasts: SIGTERM arrives while it is in force
        drawn = lambda s: dockernet.nemesis(members, seed=s, faults=["{kind}"], every=(0.1, 30)).plan(1)[0]
        seed = next(s for s in range(10000) if drawn(s).calm < 1 and drawn(s).hold > 20)
        with dockernet.nemesis(members, seed=seed, faults=["{kind}"], every=(0.1, 30)) as nemesis:
            while not any(e.lifted is None for e in nemesis.history):
                time.sleep(0.05)
            ready()
            time.sleep(60)
"""


# What the topology holds when its teardown begins: after the nemesis's block has ended.
AT_TEARDOWN = """
    import json
    from pathlib import Path

    def pytest_dockernet_topology_teardown(factory):
        seen = {"faults": [f.describe() for f in factory.faults]}
        seen["states"] = [c.status() for c in factory.containers_list]
        (Path(__file__).parent / "at-teardown").write_text(json.dumps(seen))
"""


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_in_the_middle_of_a_fault_lifts_it_and_leaves_nothing(inner_runs, pytester, kind):
    pytester.makepyfile(SIGTERMED.replace("{kind}", kind))
    pytester.makeconftest(AT_TEARDOWN)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    assert inner_runs.resources(run_id)  # its network, containers, fault helpers, lease
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == pytest.ExitCode.INTERRUPTED, inner_runs.log(proc)
    log = inner_runs.log(proc)
    assert "KeyboardInterrupt" in log
    assert "Exception in thread" not in log, log
    assert inner_runs.resources(run_id) == []
    at_teardown = json.loads((pytester.path / "at-teardown").read_text())
    assert at_teardown == {"faults": [], "states": ["running"] * 3}  # killed: started again; paused: unpaused


def test_a_history_entry_reads_as_the_report_shows_it():
    lifted = NemesisEvent("isolate-one", ("db",), 0.5, 1.75, "[db] | [api]")
    assert lifted.describe() == "  0.50 -  1.75 s  isolate-one [db] | [api]"
    in_force = NemesisEvent("pause", ("api",), 12.0, None, "api")
    assert in_force.describe() == " 12.00 s on   pause api (in force)"
    with pytest.raises(AttributeError):
        lifted.lifted = 2.0  # frozen: the history is a record
