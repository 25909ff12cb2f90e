"""What a failing test's report shows of its topology (the topology, its containers' last
log lines, the containers that are not running), --dockernet-logs, what --dockernet-keep
lists, and when the summary speaks of the probe image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

from pytest_dockernet.image import is_static_elf

# A container with output of its own: one line, then it waits to be killed.
SERVING = "command=['sh', '-c', 'echo serving on 8080; exec sleep 600']"


def sections(result: pytest.RunResult) -> list[str]:
    """The titles of the dockernet sections in a run's output, in order."""
    return re.findall(r"^-+ (dockernet[ :][^\n]*?) -+$", result.stdout.str(), re.MULTILINE)


def section(result: pytest.RunResult, title: str) -> str:
    """The text of the first section titled ``title``."""
    pattern = rf"^-+ {re.escape(title)} -+\n(.*?)(?=^(?:[-=_]{{5}}|- generated))"
    match = re.search(pattern, result.stdout.str(), re.S | re.M)
    assert match, f"no section {title!r} in:\n{result.stdout.str()}"
    return match.group(1)


def assert_nothing_left(inner_runs) -> None:
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []


def test_a_container_killed_during_the_test_is_named_with_its_exit_code_and_last_line(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        from inner_run_spy import record

        def test_app_dies(dockernet, dockernet_client):
            app = dockernet.container("app", {SERVING})
            idle = dockernet.container("idle")
            record(app, idle)
            dockernet_client.api.kill(app.id)
            dockernet_client.api.wait(app.id, timeout=30)
            assert idle.exec(["true"])[0] == 0, "the other container still runs"
            assert False, "the app stopped answering"
        """
    )
    for args in ([], ["--dockernet-logs", "0"]):
        result = inner_runs.run(*args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*AssertionError: the app stopped answering*"])
        app, idle = inner_runs.made()[-2:]
        stopped = section(result, "dockernet: containers not running")
        assert stopped.splitlines() == [
            f"app  [{app}]  exited (137): exit code 137 (128 + SIGKILL)",
            "  last lines:",
            "    serving on 8080",
        ]
        assert "idle" not in stopped  # it runs
        titles = sections(result)
        assert titles[0] == "dockernet: containers not running"
        assert ("dockernet logs: app" in titles) == (args == [])
        assert_nothing_left(inner_runs)


def test_a_failing_assert_shows_the_topology_and_the_logs_of_the_containers_with_output(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        from inner_run_spy import record

        def test_fails(dockernet):
            net = dockernet.network("back")
            app = dockernet.container("app", networks=[net], {SERVING})
            db = dockernet.container("db", networks=[net], command=["sh", "-c", "echo db 1; echo db 2; exec sleep 600"])
            probe = dockernet.container("probe", networks=[net])  # the resident probe shell
            dockernet.context.sidecar_of(app)
            dockernet.assert_reachable(probe, "app")  # the probe shell has run something
            record(net, app, db, probe)
            assert 1 + 1 == 3
        """
    )
    result = inner_runs.run("--junitxml=report.xml")
    result.assert_outcomes(failed=1)
    net, app, db, probe = inner_runs.made()
    assert sections(result) == ["dockernet topology", "dockernet logs: app", "dockernet logs: db"]
    topology = section(result, "dockernet topology")
    assert topology.splitlines()[0].endswith("::test_fails:")  # describe(), labelled with the test
    for name in (net, app, db, probe):
        assert f"[{name}]" in topology
    assert section(result, "dockernet logs: app").strip() == "serving on 8080"
    assert section(result, "dockernet logs: db").strip() == "db 1\ndb 2"
    # The sections follow the traceback, and reach the JUnit XML with it.
    result.stdout.fnmatch_lines(["E       assert (1 + 1) == 3", "*- dockernet topology -*"])
    (failure,) = ET.parse(pytester.path / "report.xml").iter("failure")
    assert "dockernet logs: db" in failure.text and "db 2" in failure.text and f"[{probe}]" in failure.text
    assert_nothing_left(inner_runs)

    result = inner_runs.run("--dockernet-logs", "0")
    result.assert_outcomes(failed=1)
    assert sections(result) == ["dockernet topology"]
    assert_nothing_left(inner_runs)

    pytester.makeini("[pytest]\ndockernet_logs = 1\n")
    result = inner_runs.run()
    result.assert_outcomes(failed=1)
    assert section(result, "dockernet logs: db").strip() == "db 2"
    assert_nothing_left(inner_runs)


def test_passing_tests_and_tests_without_a_topology_get_no_sections(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        from inner_run_spy import record

        def test_passes(dockernet):
            record(dockernet.container("app", {SERVING}))

        def test_fails_without_dockernet():
            assert False, "not a docker test"

        def test_fails_with_the_client_only(dockernet_client):
            assert False, "no topology"
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(passed=1, failed=2)
    assert sections(result) == []
    result.stdout.no_fnmatch_line("*serving on 8080*")
    assert_nothing_left(inner_runs)


def test_a_failing_setup_after_the_topology_was_made_shows_it(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        import pytest
        from inner_run_spy import record

        @pytest.fixture
        def app(dockernet):
            app = dockernet.container("app", {SERVING})
            record(app)
            app.client.api.kill(app.id)
            app.client.api.wait(app.id, timeout=30)
            raise RuntimeError("the app did not come up")

        def test_uses_app(app):
            pass

        @pytest.fixture
        def web(dockernet):
            record(dockernet.container("web", command=["sh", "-c", "echo web up; exec sleep 600"]))
            pytest.fail("web is not ready", pytrace=False)  # a report without a traceback

        def test_uses_web(web):
            pass
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_app*", "*RuntimeError: the app did not come up"])
    assert sections(result) == [
        "dockernet: containers not running",
        "dockernet topology",
        "dockernet logs: app",
        "dockernet topology",
        "dockernet logs: web",
    ]
    assert "exited (137)" in section(result, "dockernet: containers not running")
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_web*", "web is not ready", "*- dockernet topology -*"])
    assert "web up" in result.stdout.str().split("ERROR at setup of test_uses_web")[1]
    assert_nothing_left(inner_runs)


def test_a_module_topology_the_test_uses_is_in_its_report(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        import pytest
        from inner_run_spy import record

        @pytest.fixture(scope="module")
        def backend(dockernet_module):
            db = dockernet_module.container("db", {SERVING})
            record(db)
            return db

        def test_passes(backend):
            pass

        def test_fails(backend, dockernet):
            record(dockernet.container("own", command=["sh", "-c", "echo mine; exec sleep 600"]))
            assert False, "with both topologies"

        def test_fails_without_the_module_topology(dockernet):
            assert False, "own topology only"
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(passed=1, failed=2)
    db, own = inner_runs.made()
    # Each failure's sections, in the order of the failures.
    with_both, own_only = result.stdout.str().split("test_fails_without_the_module_topology ___")[-2:]
    titles = re.findall(r"^-+ (dockernet[ :][^\n]*?) -+$", with_both, re.M)
    assert titles == [
        "dockernet topology",
        "dockernet topology (dockernet_module)",
        "dockernet logs: own",
        "dockernet logs: db (dockernet_module)",
    ]
    assert f"[{db}]" in section(result, "dockernet topology (dockernet_module)")
    assert section(result, "dockernet logs: db (dockernet_module)").strip() == "serving on 8080"
    assert re.findall(r"^-+ (dockernet[ :][^\n]*?) -+$", own_only, re.M) == ["dockernet topology"]
    assert_nothing_left(inner_runs)


def test_a_container_whose_engine_does_not_answer_is_said_so_and_the_failure_stays(inner_runs, pytester):
    pytester.makepyfile(
        """
        import docker
        from inner_run_spy import record

        def test_engine_gone(dockernet):
            app = dockernet.container("app", command=["sleep", "600"])
            record(app)
            # As if its engine had gone away: a client of an engine that is not there.
            app.client = docker.DockerClient(base_url="unix:///nonexistent/dockernet.sock", version="1.41")
            assert False, "the real failure"
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the real failure*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    stopped = section(result, "dockernet: containers not running")
    assert "app  [" in stopped and "state unknown: the engine did not answer" in stopped
    assert "(no logs: the engine did not answer" in section(result, "dockernet logs: app")
    assert_nothing_left(inner_runs)


@pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="needs the engine's unix socket")
def test_an_engine_lost_before_the_report_is_said_in_one_section(inner_runs, pytester, monkeypatch, tmp_path):
    from relay import Relay

    path = str(tmp_path / "engine.sock")
    relay = Relay(path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makepyfile(
        test_inner=f"""
        import os, time
        from inner_run_spy import ready, record

        def test_fails_after_the_engine_went(dockernet):
            record(dockernet.container("app", {SERVING}))
            ready()
            while not os.path.exists("engine-gone"):
                time.sleep(0.1)
            assert False, "the real failure"
        """
    )
    proc = inner_runs.start("-p", "no:cacheprovider", "test_inner.py")
    relay.close()
    (pytester.path / "engine-gone").touch()
    proc.wait(timeout=180)
    log = inner_runs.log(proc)
    try:
        assert "AssertionError: the real failure" in log, log
        assert re.search(r"^-+ dockernet: engine -+$", log, re.M), log
        assert (
            f"the Docker engine at unix://{path} did not answer: no topology, container states or logs in this report"
            in log
        ), log
        assert "INTERNALERROR" not in log and "dockernet logs:" not in log, log
    finally:
        inner_runs.remove_resources()  # what the run could not remove, through the real socket


def test_keep_lists_the_probe_sidecars(inner_runs, pytester):
    pytester.makepyfile(
        """
        from inner_run_spy import record

        def test_fails(dockernet, dockernet_client):
            app, other = dockernet.container("app", command=["sleep", "600"]), dockernet.container("other")
            record(app, other)
            sidecar = dockernet_client.api.inspect_container(dockernet.context.sidecar_of(app))["Name"].lstrip("/")
            open("sidecar", "w").write(sidecar)
            assert False
        """
    )
    result = inner_runs.run("--dockernet-keep")
    result.assert_outcomes(failed=1)
    app, other = inner_runs.made()
    sidecar = (pytester.path / "sidecar").read_text()
    result.stdout.fnmatch_lines(["kept after failures (--dockernet-keep):", f"  containers: {app} {sidecar} {other}"])
    assert inner_runs.existing([app, sidecar, other]) == [app, sidecar, other]

    command = re.search(r"^  remove with: (.*)$", result.stdout.str(), re.MULTILINE).group(1)
    subprocess.run(command, shell=True, check=True, capture_output=True, timeout=60)
    assert inner_runs.existing([app, sidecar, other]) == []
    # Left: the run's ended lease, which says the kept resources were a dead run's; the next
    # run's prune takes it (as test_teardown.py's keep test shows).
    assert all(r.endswith("-lease") for r in inner_runs.resources())
    inner_runs.run("--dockernet-prune")
    assert inner_runs.resources() == []


def test_the_probe_image_is_announced_only_by_the_run_that_built_it(inner_runs, pytester, dockernet_client):
    busybox = shutil.which("busybox")
    if busybox is None or not is_static_elf(busybox):
        pytest.skip("needs a statically linked busybox on PATH (Debian: busybox-static)")
    missing = f"pytest-dockernet-absent-{uuid.uuid4().hex[:10]}:none"
    pytester.makepyfile("def test_x(dockernet): dockernet.container('c')")

    built = inner_runs.run("--dockernet-image", missing)
    built.assert_outcomes(passed=1)
    built.stdout.fnmatch_lines([f"{missing} is not on the engine and could not be pulled; using *, built FROM *"])
    tag = re.search(r"using (\S+), built", built.stdout.str()).group(1)
    try:
        unchanged = inner_runs.run("--dockernet-image", missing)
        unchanged.assert_outcomes(passed=1)
        unchanged.stdout.fnmatch_lines(["*- dockernet -*", "time: *"])  # the summary, without the image
        unchanged.stdout.no_fnmatch_line(f"*{missing}*")
        unchanged.stdout.no_fnmatch_line("*built FROM scratch*")

        verbose = inner_runs.run("-v", "--dockernet-image", missing)
        verbose.assert_outcomes(passed=1)
        verbose.stdout.fnmatch_lines([f"{missing} is not on the engine; using {tag}, built FROM * by an earlier run*"])
    finally:
        dockernet_client.api.remove_image(tag)  # the tag only: the image is another tag's too
    assert_nothing_left(inner_runs)


def test_logs_option_is_in_help_with_its_ini_key(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["  --dockernet-logs=N*", "  dockernet_logs (string):*"])
    assert "(default: 50)" in re.sub(r"\s+", " ", result.stdout.str())


@pytest.mark.parametrize(
    "args, ini, shown",
    [
        (["--dockernet-logs", "lots"], "", "'lots'"),
        (["--dockernet-logs=-1"], "", "'-1'"),
        ([], "dockernet_logs = 5x", "'5x'"),
    ],
    ids=["word", "negative", "ini"],
)
def test_a_bad_logs_value_is_a_usage_error(pytester, args, ini, shown):
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --dockernet-logs (ini dockernet_logs) is {shown}: give the number of *"])
    result.stdout.no_fnmatch_line("*passed*")


# A healthcheck that fails as a Python program does: a long traceback, the error at its end.
TRACEBACK = (
    "echo 'Traceback (most recent call last):'; "
    'for i in $(seq 1 40); do echo "  File /app/layer$i.py, line $i, in call$i"; done; '
    "echo 'ConnectionRefusedError: db:5432 refused the connection'; exit 1"
)


def test_healthy_and_still_starting_containers_are_not_listed_and_an_unhealthy_one_is_said_so(inner_runs, pytester):
    pytester.makepyfile(
        f"""
        from pytest_dockernet.retry import poll

        def test_fails(dockernet):
            dockernet.container(
                "healthy", {SERVING}, healthcheck={{"test": "true", "interval": 0.2}}, ready="healthy"
            )
            dockernet.container("starting", {SERVING}, healthcheck={{"test": "true", "interval": 600}})
            check = ["CMD", "sh", "-c", {TRACEBACK!r}]
            dockernet.container("sick", {SERVING}, healthcheck={{"test": check, "interval": 0.2, "retries": 1}})
            sick = dockernet.get_container("sick")
            poll(sick.status, lambda status: status == "unhealthy", timeout=30)
            assert False
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(failed=1)
    # Running, so not among the containers not running (there are none): a section of its own.
    assert "dockernet: containers not running" not in sections(result)
    unhealthy = section(result, "dockernet: containers unhealthy")
    assert "sick  [" in unhealthy and "healthy  [" not in unhealthy and "starting" not in unhealthy
    assert "running, but its healthcheck fails (unhealthy)" in unhealthy
    # The end of the check's output, where the error is; not its first lines.
    assert re.search(r"its last healthcheck failed \(exit code 1, \d+ in a row\), saying:\n", unhealthy), unhealthy
    assert "    ConnectionRefusedError: db:5432 refused the connection\n" in unhealthy, unhealthy
    assert "Traceback" not in unhealthy and "earlier lines)" in unhealthy
    topology = section(result, "dockernet topology")
    assert "(running (healthy))" in topology and "(running (health: starting))" in topology
    assert "(unhealthy)" in topology
    assert_nothing_left(inner_runs)
