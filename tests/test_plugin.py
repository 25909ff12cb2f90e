"""The plugin as users meet it: the marker, options and ini keys, skips and errors, the probe image."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import uuid

import pytest

from pytest_dockernet.image import STAND_IN_FOR, is_static_elf

# (option, metavar or None for a flag, ini type)
OPTIONS = [
    ("image", "IMAGE", "string"),
    ("busybox", "PATH", "string"),
    ("require", None, "bool"),
    ("dns", "MODE", "string"),
    ("keep", None, "bool"),
    ("prune", None, "bool"),
    ("subnet-pool", "CIDR", "string"),
    ("host-address", "ADDRESS", "string"),
    ("seed", "N", "string"),
]
NO_ENGINE = "unix:///nonexistent/pytest-dockernet-test.sock"


def static_busybox() -> str:
    found = shutil.which("busybox")
    if found is None or not is_static_elf(found):
        pytest.skip("needs a statically linked busybox on PATH (Debian: busybox-static)")
    return found


# -- the marker ---------------------------------------------------------------------------


def test_marker_is_registered_and_documented(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet
        def test_marked():
            pass

        @pytest.mark.dockernet(driver="host")
        def test_marked_with_arguments():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=2, warnings=0)
    result.stdout.no_fnmatch_line("*nknown*mark*")

    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dockernet(driver=None, drivers=None, needs=None): *"])


def test_tests_using_the_fixtures_are_marked_automatically(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def api(dockernet):
            return dockernet

        def test_function(dockernet): pass
        def test_module(dockernet_module): pass
        def test_session(dockernet_session): pass
        def test_client(dockernet_client): pass
        def test_through_another_fixture(api): pass

        @pytest.mark.dockernet
        def test_by_hand(): pass

        def test_plain(): pass
        """
    )
    docker_tests = ["function", "module", "session", "client", "through_another_fixture", "by_hand"]

    result = pytester.runpytest("--collect-only", "-q", "-m", "dockernet")
    result.stdout.fnmatch_lines([f"*::test_{name}" for name in docker_tests] + ["6/7 tests collected (1 deselected)*"])
    result.stdout.no_fnmatch_line("*::test_plain")

    result = pytester.runpytest("--collect-only", "-q", "-m", "not dockernet")
    result.stdout.fnmatch_lines(["*::test_plain", "1/7 tests collected (6 deselected)*"])
    for name in docker_tests:
        result.stdout.no_fnmatch_line(f"*::test_{name}")


def test_marker_driver_is_the_factory_default(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(driver="host")
        def test_host(dockernet, dockernet_client):
            net = dockernet.network("x")
            assert (net.name, net.driver, net.docker_name) == ("x", "host", "host")
            assert net.id == dockernet_client.networks.get("host").id

        @pytest.mark.dockernet(driver="host")
        class TestOnTheClass:
            def test_inherits_it(self, dockernet):
                assert dockernet.network("x").driver == "host"

            def test_explicit_driver_wins(self, dockernet):
                net = dockernet.network("x", driver="bridge")
                assert net.driver == "bridge" and net.docker_name not in ("bridge", "host")

        def test_unmarked_means_bridge(dockernet, dockernet_client):
            net = dockernet.network("x")
            assert net.driver == "bridge"
            assert dockernet_client.networks.get(net.id).attrs["Driver"] == "bridge"
        """
    )
    result = inner_runs.run("-v")
    result.assert_outcomes(passed=4)


def test_marker_drivers_runs_the_test_once_per_driver(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(drivers=["bridge", "overlay"])
        def test_each(dockernet, dockernet_client, request):
            # The engine's word, against the id of the run: not the plugin's against itself.
            from pytest_dockernet.retry import poll

            net = dockernet.network("n")
            # (a swarm network's driver shows a moment after it is made)
            driver, _ = poll(lambda: dockernet_client.api.inspect_network(net.id)["Driver"], bool, timeout=10)
            assert driver == request.node.callspec.id

        @pytest.mark.dockernet(driver="overlay")
        def test_overlay_only(dockernet):
            pass
        """
    )
    result = inner_runs.run("-v", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_each[[]bridge[]] PASSED*",
            "*::test_each[[]overlay[]] SKIPPED*",
            "*::test_overlay_only SKIPPED*",
        ]
    )
    reason = "@pytest.mark.dockernet(driver='overlay') needs swarm mode: engine 0 is not in a swarm*"
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *:3: {reason}", f"SKIPPED [[]1[]] *:13: {reason}"])
    # With a swarm both runs pass (and the swarm the run made is left again).
    result = inner_runs.run("-v", "--dockernet-swarm", "auto", "--dockernet-require")
    result.assert_outcomes(passed=3)


NOT_A_LIST = "@pytest.mark.dockernet(drivers=...) takes a non-empty list such as ['bridge']"
UNKNOWN = (
    "@pytest.mark.dockernet got unknown arguments {}; "
    "it takes driver=, drivers=, needs=, capture=, partition=, degrade= and dns_faults="
)
NOT_A_DRIVER = "@pytest.mark.dockernet driver {!r} is not one of bridge, host, overlay"


@pytest.mark.parametrize(
    "marker, message",
    [
        ('dockernet(drivr="bridge")', UNKNOWN.format("['drivr']")),
        ('dockernet(driver="macvlan")', NOT_A_DRIVER.format("macvlan")),
        ('dockernet(drivers=["bridge", "vxlan"])', NOT_A_DRIVER.format("vxlan")),
        ('dockernet(drivers="bridge")', NOT_A_LIST),
        ("dockernet(drivers=5)", NOT_A_LIST),
        ("dockernet(drivers=[])", NOT_A_LIST),
        ('dockernet(driver="host", drivers=["bridge"])', "@pytest.mark.dockernet takes driver= or drivers=, not both"),
        ('dockernet("bridge")', "@pytest.mark.dockernet takes keyword arguments only (driver=, drivers=)"),
        ('dockernet(capture="yes")', "@pytest.mark.dockernet(capture=...) takes True or False, got 'yes'"),
    ],
    ids=[
        "unknown-argument",
        "unknown-driver",
        "unknown-in-drivers",
        "drivers-str",
        "drivers-int",
        "drivers-empty",
        "driver-and-drivers",
        "positional",
        "capture-not-a-bool",
    ],
)
def test_a_bad_marker_fails_its_own_test(pytester, marker, message):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad(dockernet):
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1, passed=1)  # the run goes on
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*"])
    result.stdout.re_match_lines([r"test_a_bad_marker_\S+::test_bad: " + re.escape(message) + "(, got .*)?$"])


def test_marker_arguments_default_as_documented(inner_runs, pytester):
    """The marker's documented signature is dockernet(driver=None, drivers=None)."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(driver=None)
        def test_driver_none(dockernet):
            assert dockernet.network("n").driver == "bridge"

        @pytest.mark.dockernet(drivers=None)
        def test_drivers_none(dockernet):
            assert dockernet.network("n").driver == "bridge"
        """
    )
    result = inner_runs.run("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*::test_driver_none PASSED*", "*::test_drivers_none PASSED*"])


def test_drivers_needs_the_function_scoped_fixture(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(drivers=["bridge"])
        def test_module_scope(dockernet_module):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*drivers=...) needs the test to use the function-scoped dockernet fixture*"])


# -- options and ini keys -----------------------------------------------------------------


def test_every_option_is_in_help_with_its_ini_key(pytester):
    result = pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["Docker network tests (pytest-dockernet):"])
    for name, metavar, _ in OPTIONS:
        result.stdout.fnmatch_lines([f"  --dockernet-{name}={metavar}*" if metavar else f"  --dockernet-{name} *"])
    for name, _, kind in OPTIONS:
        result.stdout.fnmatch_lines([f"  dockernet_{name.replace('-', '_')} ({kind}):*"])
    result.stdout.fnmatch_lines(["*(default: busybox:stable)*"])
    result.stdout.fnmatch_lines(["*(default: hermetic)*"])


@pytest.mark.parametrize(
    "args, ini, message",
    [
        (["--dockernet-dns=bogus"], "", "*--dockernet-dns (ini dockernet_dns) is 'bogus': use one of hermetic, host*"),
        (
            ["--dockernet-subnet-pool=nonsense"],
            "",
            "*--dockernet-subnet-pool (ini dockernet_subnet_pool): subnet pool 'nonsense' is not an IPv4*",
        ),
        (["--dockernet-subnet-pool=10.77.0.0/16:12"], "", "*--dockernet-subnet-pool*subnets of /12 do not fit*"),
        (["--dockernet-subnet-pool=10.77.0.0/16:x"], "", "*--dockernet-subnet-pool*must be a prefix length*"),
        (["--dockernet-subnet-pool=11.77.0.0/16"], "", "*--dockernet-subnet-pool*not a private address range*"),
        (["--dockernet-image="], "", "*--dockernet-image (ini dockernet_image) is empty*"),
        ([], "dockernet_dns = bogus", "*dockernet*dns*'bogus'*hermetic, host*"),
        ([], "dockernet_subnet_pool = 10.77.0.0/33", "*dockernet*subnet*pool*'10.77.0.0/33'*"),
    ],
    ids=["dns", "pool", "pool-size", "pool-size-nan", "pool-public", "image-empty", "ini-dns", "ini-pool"],
)
def test_bad_option_values_are_usage_errors(pytester, args, ini, message):
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    result.stdout.no_fnmatch_line("*passed*")


def test_command_line_wins_over_ini(pytester):
    pytester.makeini("[pytest]\ndockernet_dns = bogus\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dockernet-dns=host")
    result.assert_outcomes(passed=1)


def test_prune_as_ini_key(inner_runs, pytester):
    pytester.makeini("[pytest]\ndockernet_prune = true\n")
    pytester.makepyfile("def test_never_runs(): raise AssertionError('ran')")
    result = inner_runs.run()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["dockernet: *"])  # what it removed, or that there was nothing
    result.stdout.no_fnmatch_line("*test_never_runs*")


SUBNETS = """
    import ipaddress

    def test_subnets(dockernet, dockernet_client):
        pool = ipaddress.ip_network("10.77.0.0/16")
        nets = [dockernet.network("a"), dockernet.network("b")]
        assert nets[0].subnet != nets[1].subnet
        for net in nets:
            subnet = ipaddress.ip_network(net.subnet)
            assert subnet.prefixlen == 26 and subnet.subnet_of(pool), net
            on_engine = dockernet_client.api.inspect_network(net.id)["IPAM"]["Config"]
            assert [c["Subnet"] for c in on_engine] == [net.subnet]
        c = dockernet.container("c", networks=nets)
        assert all(ipaddress.ip_address(c.ip(net)) in ipaddress.ip_network(net.subnet) for net in nets)
"""


@pytest.mark.parametrize("where", ["option", "ini"])
def test_subnet_pool(inner_runs, pytester, where):
    pytester.makepyfile(SUBNETS)
    if where == "ini":
        pytester.makeini("[pytest]\ndockernet_subnet_pool = 10.77.0.0/16:26\n")
        result = inner_runs.run()
    else:
        result = inner_runs.run("--dockernet-subnet-pool", "10.77.0.0/16:26")
    result.assert_outcomes(passed=1)


RESOLV_CONF = """
    def test_resolver(dockernet):
        code, resolv_conf = dockernet.container("c").exec(["cat", "/etc/resolv.conf"])
        assert code == 0
        print("RESOLV-OPTIONS", [l for l in resolv_conf.splitlines() if l.startswith("options")])
"""


@pytest.mark.parametrize(
    "args, ini, ndots1",
    [([], "", True), (["--dockernet-dns=host"], "", False), ([], "dockernet_dns = host", False)],
    ids=["default-hermetic", "option-host", "ini-host"],
)
def test_dns_mode(inner_runs, pytester, args, ini, ndots1):
    """hermetic gives containers the resolver option ndots:1 (unknown names answered inside the
    engine); host leaves Docker's resolver settings alone."""
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(RESOLV_CONF)
    result = inner_runs.run("-s", *args)
    result.assert_outcomes(passed=1)
    options = next(line for line in result.outlines if "RESOLV-OPTIONS" in line)
    assert ("ndots:1" in options) is ndots1, options


# -- no engine ------------------------------------------------------------------------------


DOCKER_AND_PLAIN_TESTS = """
    def test_network(dockernet):
        dockernet.network("n")

    def test_client(dockernet_client):
        dockernet_client.ping()

    def test_plain():
        pass
"""


def test_without_docker_dockernet_tests_are_skipped_naming_the_host(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    # Shown at each test (line 1 and 4), not at the plugin's line that found no engine.
    why = f"Docker is not available at {NO_ENGINE}: *(pass --dockernet-require to make this an error)"
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_*.py:1: {why}", f"SKIPPED [[]1[]] test_*.py:4: {why}"])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("how", ["option", "ini"])
def test_without_docker_require_makes_them_errors(pytester, monkeypatch, how):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    if how == "ini":
        pytester.makeini("[pytest]\ndockernet_require = true\n")
        result = pytester.runpytest_subprocess()
    else:
        result = pytester.runpytest_subprocess("--dockernet-require")
    result.assert_outcomes(passed=1, errors=2)
    message = f"Docker is not available at {NO_ENGINE}: *(--dockernet-require is set)"
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_network*", message, "*ERROR at setup of test_client*", message]
    )
    # said once per test, not once more as the exception it was raised while handling
    result.stdout.no_fnmatch_line("During handling of the above exception*")


def test_without_docker_other_tests_run(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest_subprocess("--dockernet-require", "-m", "not dockernet")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == pytest.ExitCode.OK


def test_prune_without_docker_fails_clearly(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    result = pytester.runpytest_subprocess("--dockernet-prune")
    assert result.ret == 1
    output = pytest.LineMatcher(result.outlines + result.errlines)
    output.fnmatch_lines(["dockernet: cannot prune: Docker is not available*"])


# -- skips: the user's stay skips, the plugin's are judged and shown at the test --------------


SKIPS = """
    import pytest

    @pytest.fixture
    def frobnicator():
        pytest.skip("the project's fixture: no frobnicator here")

    @pytest.mark.skip(reason="a skip marker")
    def test_skip_marker(dockernet):
        pass

    @pytest.mark.skipif(True, reason="a skipif marker")
    def test_skipif_marker(dockernet):
        pass

    def test_skip_in_the_test(dockernet):
        pytest.skip("pytest.skip() in the test")

    def test_skip_in_a_fixture(dockernet, frobnicator):
        pass

    def test_kernel_feature(dockernet):
        dockernet.container("c")
        dockernet.context.capability_missing("netem is not in this kernel", explicit=False)

    def test_something_else(dockernet):
        dockernet.context.capability_missing("no frobnicator on this engine", explicit=False)
"""


def line_of(source: str, text: str) -> int:
    """The line number (from 1) of the first line of the dedented ``source`` containing ``text``."""
    lines = textwrap.dedent(source).strip().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_a_users_skips_stay_skips_under_require_and_the_plugins_are_judged_at_the_test(inner_runs, pytester):
    pytester.makepyfile(test_skips=SKIPS)
    result = inner_runs.run("--dockernet-require", "-rsf", "-p", "no:xdist")
    result.assert_outcomes(skipped=5, failed=1)
    kernel_line = line_of(SKIPS, 'capability_missing("netem')
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_skips.py:*: a skip marker",
            "SKIPPED [[]1[]] test_skips.py:*: a skipif marker",
            "SKIPPED [[]1[]] test_skips.py:*: pytest.skip() in the test",
            "SKIPPED [[]1[]] test_skips.py:*: the project's fixture: no frobnicator here",
            # The plugin's skip is shown where the test asked for what is missing.
            f"SKIPPED [[]1[]] test_skips.py:{kernel_line}: netem is not in this kernel",
            "test_skips.py::test_something_else: skipped by the plugin under "
            "--dockernet-require, which allows its skips only for a missing kernel feature "
            "(IPVS, netem, CONFIG_IFB, sch_ingress, act_mirred) "
            "or a capability the test is marked as needing: no frobnicator on this engine",
        ]
    )
    assert "plugin.py" not in result.stdout.str()

    result = inner_runs.run("-rs", "-p", "no:xdist")  # without --dockernet-require, all are skips
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_skips.py:{line_of(SKIPS, 'frobnicator on')}: no frob*"])


def test_a_skip_of_the_plugins_in_a_fixture_is_shown_at_the_test(inner_runs, pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def balanced(dockernet):
            dockernet.context.capability_missing("IPVS is not in this kernel", explicit=False)
        """
    )
    pytester.makepyfile(
        test_fixture_skip="""
        def test_plain(dockernet):
            pass

        def test_balanced(balanced):
            pass
        """
    )
    result = inner_runs.run("-rs", "-p", "no:xdist", "--dockernet-require")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_fixture_skip.py:4: IPVS is not in this kernel"])


# -- the probe image ------------------------------------------------------------------------


CONTAINER_TESTS = """
    def test_one(dockernet):
        code, _ = dockernet.container("c").exec(["busybox", "true"])
        assert code == 0

    def test_two(dockernet):
        dockernet.container("c")

    def test_plain():
        pass
"""


@pytest.fixture
def absent(dockernet_client):
    """A probe image no engine has; the stand-ins the plugin builds for it go after the test."""
    name = f"pytest-dockernet-absent-{uuid.uuid4().hex[:10]}:none"
    yield name
    for image in dockernet_client.api.images(filters={"label": f"{STAND_IN_FOR}={name}"}):
        dockernet_client.api.remove_image(image["Id"], force=True)


def test_probe_image_is_built_from_busybox_and_said_once(inner_runs, pytester, dockernet_client, absent):
    busybox = static_busybox()
    missing = absent
    pytester.makepyfile(CONTAINER_TESTS)

    tags = []
    # The second run reuses the image the first one built, without asking the registry again
    # (and, changing nothing, says so only with -v).
    for verbose, note in (
        (
            (),
            f"{missing} is not on the engine and could not be pulled; "
            f"using pytest-dockernet/busybox:*, built FROM scratch around {busybox}",
        ),
        (
            ("-v",),
            f"{missing} is not on the engine; using pytest-dockernet/busybox:*, built FROM scratch around "
            f"{busybox} by an earlier run that could not pull it (docker rmi it to retry the pull)",
        ),
    ):
        result = inner_runs.run(*verbose, "--dockernet-image", missing)
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["*- dockernet -*", note])
        notes = [line for line in result.outlines if "built FROM scratch" in line]
        assert len(notes) == 1, notes
        tags.append(re.search(r"using (\S+), built", notes[0]).group(1))
    assert tags[0] == tags[1]
    image = dockernet_client.images.get(tags[0])
    assert image.attrs["Config"]["Labels"]["pytest-dockernet.image"] == "busybox"


def test_present_image_is_not_announced(inner_runs, pytester, dockernet_client, absent):
    """An image the engine has is used as is: no build, no note."""
    static_busybox()
    pytester.makepyfile("def test_first(dockernet): dockernet.container('c')")
    built = inner_runs.run("--dockernet-image", absent)
    tag = re.search(r"using (\S+), built", built.stdout.str()).group(1)

    pytester.makepyfile(
        f"""
        def test_image(dockernet):
            assert dockernet.container("c").image == {tag!r}
        """
    )
    result = inner_runs.run("--dockernet-image", tag)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*built FROM scratch*")


def test_one_probe_image_is_kept_a_stale_one_goes_once_unused(inner_runs, pytester, dockernet_client, absent, tmp_path):
    """A stand-in built around another busybox (an earlier plugin's, an earlier binary) is
    removed by the next run that resolves the probe image, unless a container uses it."""
    earlier = tmp_path / "busybox"
    shutil.copy(static_busybox(), earlier)
    with open(earlier, "ab") as f:
        f.write(b"\0an earlier busybox")
    pytester.makepyfile("def test_x(dockernet): dockernet.container('c')")

    def built(*args: str) -> str:
        result = inner_runs.run("-v", "--dockernet-image", absent, *args)
        result.assert_outcomes(passed=1)
        return re.search(r"using (\S+), built", result.stdout.str()).group(1)

    stale = built("--dockernet-busybox", str(earlier))
    user = dockernet_client.containers.create(stale, ["true"])  # e.g. a live run's lease
    try:
        current = built()
        assert current != stale
        assert dockernet_client.images.get(stale)  # in use: the engine refused its removal
    finally:
        user.remove(force=True)
    assert built() == current  # reused, and the stale one goes now
    tags = [
        t for i in dockernet_client.api.images(filters={"label": f"{STAND_IN_FOR}={absent}"}) for t in i["RepoTags"]
    ]
    assert tags == [current]


@pytest.fixture(params=["missing", "dynamic", "not-elf"])
def unusable_busybox(request, tmp_path):
    if request.param == "missing":
        return "/nonexistent/busybox", "--dockernet-busybox /nonexistent/busybox: no such file"
    if request.param == "dynamic":
        path = shutil.which("ls")
        if path is None or is_static_elf(path):
            pytest.skip("needs a dynamically linked ls")
        return path, f"--dockernet-busybox {path}: not a statically linked executable"
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\necho not really busybox\n")
    script.chmod(0o755)
    return str(script), f"--dockernet-busybox {script}: not a statically linked executable"


def test_no_probe_image_is_an_error_naming_both_ways_out(inner_runs, pytester, unusable_busybox):
    busybox, why = unusable_busybox
    pytester.makepyfile(CONTAINER_TESTS)
    result = inner_runs.run("--dockernet-image", "pytest-dockernet-nope:none", "--dockernet-busybox", busybox)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_one*",
            "dockernet: no probe image.",
            "image 'pytest-dockernet-nope:none' is not on the engine and could not be pulled: *",
            f"No image could be built instead: {why}.",
            "*name another one with --dockernet-image*point --dockernet-busybox at it.",
        ]
    )
    result.stdout.fnmatch_lines(["*ERROR at setup of test_two*", "dockernet: no probe image."])
    result.stdout.no_fnmatch_line("During handling of the above exception*")
    assert inner_runs.resources() == []


def test_no_probe_image_ini_keys(inner_runs, pytester):
    pytester.makeini(
        "[pytest]\ndockernet_image = pytest-dockernet-nope:none\ndockernet_busybox = /nonexistent/busybox\n"
    )
    pytester.makepyfile(CONTAINER_TESTS)
    result = inner_runs.run()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "image 'pytest-dockernet-nope:none' is not on the engine*",
            "No image could be built instead: --dockernet-busybox /nonexistent/busybox: no such file.",
        ]
    )


def test_summary_shows_where_the_time_went(inner_runs, pytester):
    pytester.makepyfile(
        """
        from pytest_dockernet import assert_reachable

        def test_batch(dockernet):
            started = dockernet.containers({"a": None, "b": None})
            assert_reachable(started["a"], "b")

        def test_plain():
            pass
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- dockernet -*",
            "time: image *.* s, set-up *.* s, probes *.* s, teardown *.* s; made: 2 containers, 1 network, 1 probe",
        ]
    )


def test_summary_is_silent_without_docker_work(pytester):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*- dockernet -*")


def test_xdist_workers_share_the_engine_and_report_to_the_controller(inner_runs, pytester, dockernet_client):
    """Same logical names in every test on two workers: no collision, nothing left, one summary."""
    names = pytester.path / "names.txt"
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_dockernet import assert_resolves

        @pytest.mark.parametrize("i", range(4))
        def test_same_names(dockernet, i):
            a, b = dockernet.container("a"), dockernet.container("b")
            assert_resolves(a, "b", to=b)
            with open({str(names)!r}, "a") as f:
                f.write(a.docker_name + "\\n" + dockernet.get_network("default").docker_name + "\\n")
        """
    )
    result = inner_runs.run_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*- dockernet -*", "time (summed over 2 workers): *; made: 8 containers, 4 networks, 4 probes"]
    )
    made = names.read_text().split()
    containers, networks = made[0::2], set(made[1::2])
    assert len(containers) == len(set(containers)) == 4  # each test's "a": names never collide
    # (a network may repeat: the warm pool hands a worker's empty network to its next test)
    assert not [n for n in containers if dockernet_client.api.containers(all=True, filters={"name": f"^/{n}$"})]
    assert not [n for n in networks if dockernet_client.api.networks(names=[n])]


def test_two_concurrent_runs_with_xdist_each(inner_runs, pytester):
    """Two runs of -n 2 on one engine at once: all pass, names never collide, nothing is left."""
    names = pytester.path / "names.txt"
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_dockernet import assert_isolated, assert_reachable

        @pytest.mark.parametrize("i", range(4))
        def test_topology(dockernet, i):
            front, back = dockernet.network("front"), dockernet.network("back")
            started = dockernet.containers(
                {{"web": {{"networks": [front]}}, "api": {{"networks": [front]}}, "db": {{"networks": [back]}}}}
            )
            assert_reachable(started["web"], "api")
            assert_isolated(front, back)
            with open({str(names)!r}, "a") as f:
                f.write(" ".join([front.docker_name, back.docker_name, *(c.docker_name for c in started.values())]))
                f.write("\\n")
        """
    )
    procs = [
        pytester.popen(inner_runs.pytest_command("-n", "2", "-p", "xdist", "-q"), stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, (out + err).decode()
        assert b"4 passed" in out
    lines = [line.split() for line in names.read_text().splitlines()]
    containers = [name for line in lines for name in line[2:]]
    assert len(lines) == 8 and len(containers) == len(set(containers)) == 8 * 3
    for line in lines:  # a test's two networks are its own while it runs (later tests may have them)
        assert len(set(line[:2])) == 2
    made = [name for line in lines for name in line]
    assert inner_runs.existing(made) == []
