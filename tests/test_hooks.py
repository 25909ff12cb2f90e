"""The plugin's hooks, as a conftest file implements them."""

from __future__ import annotations

import re

import pytest

# Each hook prints what it was given and what the engine says at that moment.
CONFTEST = """
    def pytest_dockernet_network_created(network):
        on_engine = network.topology.client.api.inspect_network(network.id)
        print(f"\\nHOOK network_created {network.name} {network.docker_name} {network.driver} "
              f"{network.subnet} engine={on_engine['Name']} {on_engine['IPAM']['Config'][0]['Subnet']}")

    def pytest_dockernet_container_started(container):
        state = container.topology.client.api.inspect_container(container.id)["State"]
        networks = sorted(n.name for n in container.networks)
        ips = [container.ip(n) for n in sorted(container.networks, key=lambda n: n.name)]
        print(f"\\nHOOK container_started {container.name} {container.docker_name} "
              f"running={state['Running']} networks={networks} ips={ips}")

    def pytest_dockernet_topology_teardown(factory):
        api = factory.client.api
        running = [c.name for c in factory.containers_list if api.inspect_container(c.id)["State"]["Running"]]
        networks = [api.inspect_network(n.id)["Name"] for n in factory.networks_list if n.owned]
        print(f"\\nHOOK topology_teardown {factory.label} failed={factory.failed} "
              f"running={sorted(running)} networks={sorted(networks)}")
"""


def literal_brackets(patterns: list[str]) -> list[str]:
    """fnmatch patterns whose '[' stand for themselves (Python lists in the hooks' output)."""
    return [p.replace("[", "[[]") for p in patterns]


def test_hooks_are_called_at_their_moments_with_their_handles(inner_runs, pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        def test_passes(dockernet):
            front, back = dockernet.network("front"), dockernet.network("back")
            print("\\nTEST networks made", front.docker_name, back.docker_name)
            web = dockernet.container("web", networks=[front, back])
            print("\\nTEST container made", web.docker_name, web.ip(back), web.ip(front))

        def test_fails(dockernet):
            db = dockernet.container("db")
            print("\\nTEST container made", db.docker_name, db.ip())
            assert False, "deliberate failure"
        """
    )
    result = inner_runs.run("-s")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        literal_brackets(
            [
                # networks: reported once they exist on the engine, with the subnet they got
                "HOOK network_created front dn-* bridge */24 engine=dn-* */24",
                "HOOK network_created back dn-* bridge */24 engine=dn-* */24",
                "TEST networks made dn-* dn-*",
                # containers: once running and attached to every network, addresses known
                "HOOK container_started web dn-*-web running=True networks=['back', 'front'] ips=['*.*', '*.*']",
                "TEST container made dn-*-web *.*.*.* *.*.*.*",
                # teardown: after the test, before anything is removed
                (
                    "HOOK topology_teardown test_hooks_are_called_*.py::test_passes failed=False "
                    "running=['web'] networks=['dn-*', 'dn-*']"
                ),
                # the default network is made (and reported) when the first container needs it
                "HOOK network_created default dn-* bridge *",
                "HOOK container_started db dn-*-db running=True networks=['default'] ips=['*.*.*.*']",
                "TEST container made dn-*-db *.*.*.*",
                (
                    "HOOK topology_teardown test_hooks_are_called_*.py::test_fails failed=True "
                    "running=['db'] networks=['dn-*']"
                ),
            ]
        )
    )
    # each handle's values as the hook saw them are the ones the test got
    hook_web = next(line for line in result.outlines if line.startswith("HOOK container_started web"))
    test_web = next(line for line in result.outlines if line.startswith("TEST container made dn-") and "-web " in line)
    assert test_web.split()[3] == hook_web.split()[3]  # docker name
    assert test_web.split()[4:6] == re.findall(r"'(\d+\.\d+\.\d+\.\d+)'", hook_web)  # ips on back, front
    assert inner_runs.resources() == []


def test_hooks_see_the_engine_network_not_created_for_host(inner_runs, pytester):
    """The engine's own host network is not created, so not reported as created; a container
    on it is."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        def test_host(dockernet):
            host = dockernet.network("h", driver="host")
            print("\\nTEST host handle", host.docker_name)
            dockernet.container("on-host", networks=[host])
        """
    )
    result = inner_runs.run("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        literal_brackets(
            [
                "TEST host handle host",
                "HOOK container_started on-host dn-*-on-host running=True networks=[] ips=[]",
                "HOOK topology_teardown *::test_host failed=False running=['on-host'] networks=[]",
            ]
        )
    )
    result.stdout.no_fnmatch_line("HOOK network_created*")


def test_teardown_hook_sees_a_setup_error_as_a_failure(inner_runs, pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken(dockernet):
            dockernet.container("half")
            raise RuntimeError("setup broke half-way")

        def test_setup_error(broken):
            pass
        """
    )
    result = inner_runs.run("-s")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        literal_brackets(
            [
                "HOOK container_started half *",
                "HOOK topology_teardown *::test_setup_error failed=True running=['half']*",
            ]
        )
    )
    assert inner_runs.resources() == []


def test_hookspecs_are_declared(pytester):
    """pytest checks an implementation's arguments against the plugin's hookspecs."""
    pytester.makeconftest(
        """
        def pytest_dockernet_network_created(net):
            pass
        """
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stderr.fnmatch_lines(
        [
            "*PluginValidationError*conftest.py' for hook 'pytest_dockernet_network_created'",
            "*Argument(s) {'net'} are declared in the hookimpl but can not be found in the hookspec*",
        ]
    )
