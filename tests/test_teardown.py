"""Nothing is left on the engine: after failures, setup errors, Ctrl-C, SIGTERM, and (by pruning)
after SIGKILL; --dockernet-keep keeps a failed test's resources on purpose."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid

import pytest

# A background run: its test makes a network and a container, says so, and sleeps until killed.
SLEEPER = """
    import time

    from inner_run_spy import ready, record

    def test_sleeps(dockernet):
        net = dockernet.network("n")
        record(net, dockernet.container("c", networks=[net]))
        ready()
        time.sleep(60)
"""


def test_failing_test_leaves_nothing(inner_runs, pytester):
    pytester.makepyfile(
        """
        from inner_run_spy import record

        def test_fails(dockernet, dockernet_client):
            front, back = dockernet.network("front"), dockernet.network("back")
            web = dockernet.container("web", networks=[front, back])
            db = dockernet.container("db", networks={back: ["database"]})
            record(front, back, web, db)
            dockernet.assert_reachable(web, "database")
            assert dockernet_client.api.inspect_container(db.id)["State"]["Running"]
            assert False, "deliberate failure"
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: deliberate failure*"])
    assert len(inner_runs.made()) == 4
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


def test_setup_error_half_way_leaves_nothing(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest
        from inner_run_spy import record

        @pytest.fixture
        def backend(dockernet):
            net = dockernet.network("backend")
            record(net, dockernet.container("db", networks=[net]))
            raise RuntimeError("setup broke half-way")

        def test_uses_backend(backend):
            pass

        def test_next_one_is_fine(dockernet):
            record(dockernet.container("other"))
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_backend*", "*RuntimeError: setup broke half-way"])
    assert len(inner_runs.made()) == 3
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


def test_keyboard_interrupt_leaves_nothing(inner_runs, pytester):
    pytester.makepyfile(
        """
        from inner_run_spy import record

        def test_interrupted(dockernet, dockernet_session):
            net = dockernet.network("n")
            record(net, dockernet.container("c", networks=[net]), dockernet_session.container("s"))
            raise KeyboardInterrupt

        def test_never_runs():
            pass
        """
    )
    result = inner_runs.run_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*! KeyboardInterrupt !*"])
    result.stdout.no_fnmatch_line("*test_never_runs*PASSED*")
    assert len(inner_runs.made()) == 3
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


@pytest.mark.parametrize("how", ["option", "ini"])
def test_keep_leaves_a_failed_test_in_place_and_says_how_to_remove_it(inner_runs, pytester, how):
    pytester.makepyfile(
        """
        from inner_run_spy import record

        def test_fails(dockernet):
            net = dockernet.network("back")
            record(net, dockernet.container("db", networks=[net]))
            assert False, "deliberate failure"

        def test_passes(dockernet):
            record(dockernet.container("web"))
        """
    )
    if how == "ini":
        pytester.makeini("[pytest]\ndockernet_keep = true\n")
        result = inner_runs.run()
    else:
        result = inner_runs.run("--dockernet-keep")
    result.assert_outcomes(failed=1, passed=1)
    back, db, web = inner_runs.made()
    result.stdout.fnmatch_lines(
        [
            "*- dockernet -*",
            "kept after failures (--dockernet-keep):",
            "*::test_fails:",
            f"  networks:   {back}",
            f"  containers: {db}",
            "  remove with: docker rm -f *",
        ]
    )
    result.stdout.no_fnmatch_line("*::test_passes:")
    assert inner_runs.existing([back, db, web]) == [back, db]  # the passing test's are gone

    command = re.search(r"^  remove with: (.*)$", result.stdout.str(), re.MULTILINE).group(1)
    subprocess.run(command, shell=True, check=True, capture_output=True, timeout=60)
    assert inner_runs.existing([back, db]) == []
    # What is left is the run's ended lease, kept beside the kept resources so that the next
    # run knows them for a dead run's: its prune takes it.
    assert all(r.endswith("-lease") for r in inner_runs.resources())  # (another run's prune may take it first)
    inner_runs.run("--dockernet-prune")
    assert inner_runs.resources() == []


def test_module_and_session_factories_clean_up_when_their_scope_ends(inner_runs, pytester):
    pytester.makepyfile(
        test_a="""
        from inner_run_spy import record

        def test_makes(dockernet_module, dockernet_session):
            mod, sess = dockernet_module.network("mod"), dockernet_session.network("sess")
            record(mod, dockernet_module.container("mod-c", networks=[mod]),
                   sess, dockernet_session.container("sess-c", networks=[sess]))

        def test_same_module_same_factory(dockernet_module, dockernet_client):
            net = dockernet_module.get_network("mod")
            dockernet_client.api.inspect_network(net.id)
            assert [c.name for c in net.containers] == ["mod-c"]
        """,
        test_b="""
        import docker.errors
        import pytest

        def test_module_factory_of_a_is_gone(dockernet_client, dockernet_session):
            mod, mod_c, sess, sess_c = open("made").read().split()
            api = dockernet_client.api
            with pytest.raises(docker.errors.NotFound):
                api.inspect_container(mod_c)
            try:  # gone, or the warm pool's: empty, or parked whole (its container under a pool name)
                attached = api.inspect_network(mod)["Containers"]
                assert "-pool-" in mod and all("-pool-" in c["Name"] for c in attached.values())
            except docker.errors.NotFound:
                pass
            dockernet_client.api.inspect_network(sess)
            assert dockernet_client.api.inspect_container(sess_c)["State"]["Running"]
            assert dockernet_session.get_container("sess-c").docker_name == sess_c
        """,
    )
    result = inner_runs.run("-v")
    result.assert_outcomes(passed=3)
    assert len(inner_runs.made()) == 4
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


def test_sigterm_tears_down_like_ctrl_c(inner_runs, pytester):
    pytester.makepyfile(SLEEPER)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    assert len(inner_runs.resources(run_id)) == 3  # a network, a container, the run's lease

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == pytest.ExitCode.INTERRUPTED, inner_runs.log(proc)
    assert "KeyboardInterrupt" in inner_runs.log(proc)
    assert inner_runs.resources(run_id) == []


def killed_run(inner_runs, host: str | None) -> tuple[str, list[str]]:
    """Start a background run, SIGKILL it once it has made its resources: (run id, what it left)."""
    proc = inner_runs.start(host=host)
    run_id = inner_runs.run_id_of(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    left = inner_runs.resources(run_id)
    assert len(left) == 3, left  # SIGKILL: no teardown at all (a network, a container, the lease)
    return run_id, inner_runs.made()


def test_prune_removes_what_a_killed_run_left_and_reports_it(inner_runs, pytester):
    pytester.makepyfile(SLEEPER)
    host = inner_runs.own_host()
    run_id, (network, container) = killed_run(inner_runs, host)

    result = inner_runs.run_on(host, "--dockernet-prune")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"dockernet: removed * container* and * network* left by * dead run* (*{run_id}*)",
            f"  container {container}",
            f"  network {network}",
        ]
    )
    result.stdout.no_fnmatch_line("*collected*")  # it prunes and exits: no tests run
    assert inner_runs.resources(run_id) == []


def test_prune_never_touches_a_live_run(inner_runs, pytester):
    pytester.makepyfile(SLEEPER)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    before = sorted(inner_runs.resources(run_id))

    result = inner_runs.run("--dockernet-prune")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["dockernet: *"])
    assert run_id not in result.stdout.str()
    assert sorted(inner_runs.resources(run_id)) == before

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert inner_runs.resources(run_id) == []


def test_next_run_prunes_a_killed_run_by_itself(inner_runs, pytester):
    pytester.makepyfile(SLEEPER)
    host = inner_runs.own_host()
    run_id, (network, container) = killed_run(inner_runs, host)

    pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
    result = inner_runs.run_on(host, "test_next.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- dockernet -*",
            f"removed * container* and * network* left by * dead run* (*{run_id}*)",
            f"  container {container}",
            f"  network {network}",
        ]
    )
    assert inner_runs.resources(run_id) == []


def killed_without_lease(inner_runs, proc: subprocess.Popen, run_id: str) -> None:
    """SIGKILL a background run and remove its lease, so that only runs of its host name
    (see own_host) can tell it is dead: other runs sharing the engine would otherwise prune
    what it left before the run a test means to watch does (its ended lease tells them)."""
    api, lease = inner_runs.client.api, f"dn-{run_id}-lease"
    api.pause(lease)  # alive to everyone until it is gone
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    api.remove_container(lease, force=True)


# A background run whose test makes two named volumes: one of container(volumes=...), one of
# a Compose file's; it says so, and sleeps until killed.
VOLUME_SLEEPER = """
    import time
    from pathlib import Path

    from inner_run_spy import ready

    def test_sleeps(dockernet):
        dockernet.container("c", networks=[dockernet.network("n")], volumes=["{volume}:/v"])
        stack = dockernet.compose("compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
        Path("stack-volume").write_text(stack.volumes["data"])
        ready()
        time.sleep(60)
"""


@pytest.mark.parametrize("by", ["the next run", "--dockernet-prune"])
def test_a_killed_run_s_volumes_are_pruned(inner_runs, pytester, by):
    volume = f"dn-test-{uuid.uuid4().hex[:8]}"
    compose = "services:\n  db:\n    image: ${PROBE_IMAGE}\n    volumes: [data:/data]\nvolumes:\n  data: {}\n"
    pytester.makefile(".yaml", compose=compose)
    pytester.makepyfile(VOLUME_SLEEPER.replace("{volume}", volume))
    host = inner_runs.own_host()
    proc = inner_runs.start(host=host)
    run_id = inner_runs.run_id_of(proc)
    killed_without_lease(inner_runs, proc, run_id)
    stack_volume = (pytester.path / "stack-volume").read_text()
    left = inner_runs.resources(run_id)
    assert {f"volume {volume}", f"volume {stack_volume}"} <= set(left), left

    if by == "--dockernet-prune":
        result = inner_runs.run_on(host, "--dockernet-prune")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    else:
        pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
        result = inner_runs.run_on(host, "test_next.py")
        result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*removed * and 2 volumes left by * dead run* (*{run_id}*)"])
    result.stdout.fnmatch_lines_random([f"  volume {volume}", f"  volume {stack_volume}"])
    assert inner_runs.resources(run_id) == []


def test_what_the_engine_refuses_to_remove_is_reported_and_the_run_goes_on(inner_runs, pytester, dockernet_client):
    """A refusal of the engine's own: a file in a dead run's container is made immutable in
    that container's writable layer (``chattr +i``), so the engine cannot remove the container."""
    if shutil.which("chattr") is None or os.geteuid() != 0:  # not a skip: scripts/ensure-docker installs it
        pytest.fail("needs root and chattr (Debian's e2fsprogs)", pytrace=False)
    pytester.makepyfile(SLEEPER)
    host = inner_runs.own_host()
    run_id, (network, container) = killed_run(inner_runs, host)
    api = dockernet_client.api
    api.exec_start(api.exec_create(container, ["touch", "/stuck"]))
    stuck = os.path.join(api.inspect_container(container)["GraphDriver"]["Data"]["UpperDir"], "stuck")
    subprocess.run(["chattr", "+i", stuck], check=True)
    try:
        pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
        result = inner_runs.run_on(host, "test_next.py")
        result.assert_outcomes(passed=1)  # the run went on, and passed
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(
            [
                "*- dockernet -*",
                "*could not remove 1 resource of dead runs (the next run tries again)*",
                f"  not removed: container {container}: *",
            ]
        )
        assert f"container dn-{run_id}-lease" in inner_runs.resources(run_id)  # the run is still known dead

        again = inner_runs.run_on(host, "--dockernet-prune")
        assert again.ret == 1, again.stdout.str()  # a prune alone says so in its status
        again.stdout.fnmatch_lines([f"  not removed: container {container}: *"])
    finally:
        subprocess.run(["chattr", "-i", stuck], check=True)
    last = inner_runs.run_on(host, "--dockernet-prune")
    assert last.ret == pytest.ExitCode.OK, last.stdout.str()
    last.stdout.fnmatch_lines([f"dockernet: removed * left by 1 dead run ({run_id})", f"  container {container}"])
    assert inner_runs.resources(run_id) == []


# -- when a test's own topology is removed: --dockernet-teardown ----------------------------

TWO_TESTS = """
    import docker.errors
    import pytest
    from inner_run_spy import record

    def test_makes(dockernet):
        net = dockernet.network("n")
        record(net, dockernet.container("c", networks=[net]{ports}))

    def test_next(dockernet_client):
        for name in open("made").read().split():
            with pytest.raises(docker.errors.NotFound):
                dockernet_client.api.inspect_network(name) if name.endswith("-n") else (
                    dockernet_client.api.inspect_container(name))
"""


@pytest.mark.parametrize("how", [("--dockernet-teardown=wait", ""), ("", ", ports={8080: None}")])
def test_a_test_s_resources_are_gone_when_the_next_test_starts(inner_runs, pytester, how):
    """With 'wait', always; in the background mode, when the topology holds a host port."""
    option, ports = how
    pytester.makepyfile(TWO_TESTS.replace("{ports}", ports))
    result = inner_runs.run(*filter(None, [option]))
    result.assert_outcomes(passed=2)
    assert inner_runs.resources() == []


def test_background_teardown_finishes_before_the_session_ends(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest
        from inner_run_spy import record

        @pytest.mark.parametrize("i", range(4))
        def test_makes(dockernet, i):
            net = dockernet.network("n")
            record(net, *dockernet.containers({"a": {"networks": [net]}, "b": {"networks": [net]}}).values())
        """
    )
    result = inner_runs.run("--dockernet-teardown=background")
    result.assert_outcomes(passed=4)
    assert len(inner_runs.made()) == 12
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


def test_a_bad_teardown_mode_is_a_usage_error(pytester):
    result = pytester.runpytest("--dockernet-teardown=later")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dockernet-teardown (ini dockernet_teardown) is 'later': use one of background, wait"]
    )
