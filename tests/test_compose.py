"""compose(): the issue's scenarios, on a real engine, from the files under tests/compose/."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

from pytest_dockernet import ComposeError, ComposeStack, DockernetError
from pytest_dockernet.labels import TOPOLOGY

HERE = Path(__file__).parent / "compose"
SHOP = HERE / "shop" / "compose.yaml"


def env_of(dockernet) -> dict[str, str]:
    return {"PROBE_IMAGE": dockernet.probe_image}


def on_engine(topology) -> dict[str, list[str]]:
    """Everything on the engine of the topology's: labelled with it, or (the warm pool's
    containers, which carry the pool's labels) named for it. (A network the pool gave it
    is the pool's again once empty, and one with a container on it has that container.)"""
    api, filters = topology.client.api, {"label": f"{TOPOLOGY}={topology.id}"}
    named = {"name": f"^/{topology.context.docker_name_for('')}"}
    containers = {
        c["Names"][0] for c in [*api.containers(all=True, filters=filters), *api.containers(all=True, filters=named)]
    }
    return {
        "containers": sorted(containers),
        "networks": [n["Name"] for n in api.networks(filters=filters)],
        "volumes": [v["Name"] for v in (api.volumes(filters=filters) or {}).get("Volumes") or []],
    }


NOTHING = {"containers": [], "networks": [], "volumes": []}


def assert_nothing_made(topology) -> None:
    """Neither the topology nor the engine has anything of it."""
    assert (topology.containers_list, topology.networks_list) == ([], [])
    assert on_engine(topology) == NOTHING


# What tests/compose/shop/compose.yaml says: web and api share front; api, db and cache share back.
SHOP_PATHS = [{"web", "api"}, {"api", "db"}, {"api", "cache"}, {"db", "cache"}]


def intent(stack: ComposeStack) -> dict[tuple[str, str], bool]:
    """Two services of the shop reach each other exactly when the file puts them on a network together."""
    return {(a, b): {a, b} in SHOP_PATHS for a in stack.containers for b in stack.containers if a != b}


def test_a_three_tier_file_resolves_reaches_and_isolates_as_written(dockernet):
    stack = dockernet.compose(SHOP, env=env_of(dockernet))

    assert list(stack) == ["web", "api", "db", "cache"]
    assert list(stack.networks) == ["front", "back"]
    back = stack.networks["back"]
    assert (back.internal, back.subnet) == (True, "10.77.3.0/24")
    api, web, db = stack["api"], stack["web"], stack["db"]
    for name in ("db", "database", "postgres"):  # service name, container_name, alias
        dockernet.assert_reachable(api, name, port=5432)
        dockernet.assert_resolves(api, name, to=db)
    dockernet.assert_reachable(api, "cache", port=6379)
    dockernet.assert_reachable(web, "api", port=8080)
    dockernet.assert_reachable(db, "backend")  # api's alias on back
    dockernet.assert_unreachable(web, db, port=5432)
    dockernet.assert_not_resolves(web, "database")
    matrix = dockernet.reachability(list(stack.containers.values()), list(stack.containers.values()))
    assert matrix == intent(stack), str(matrix)


def test_a_service_healthy_dependency_is_healthy_before_its_dependent_starts(dockernet):
    stack = dockernet.compose(SHOP, env=env_of(dockernet))

    db = dockernet.client.api.inspect_container(stack["db"].id)["State"]
    api = dockernet.client.api.inspect_container(stack["api"].id)["State"]
    first_pass = min(check["End"] for check in db["Health"]["Log"] if check["ExitCode"] == 0)
    assert api["StartedAt"] > first_pass  # both RFC 3339 in UTC with nanoseconds: they compare as text
    assert stack["db"].status() == "running (healthy)"


def test_a_completed_job_runs_to_its_end_before_its_dependent_starts(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  migrate:\n    image: ${PROBE_IMAGE}\n    command: sh -c 'sleep 0.5; echo migrated'\n"
        "  api:\n    image: ${PROBE_IMAGE}\n    command: sleep 3600\n"
        "    depends_on:\n      migrate: {condition: service_completed_successfully}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))

    migrate = dockernet.client.api.inspect_container(stack["migrate"].id)["State"]
    api = dockernet.client.api.inspect_container(stack["api"].id)["State"]
    assert stack["migrate"].status() == "exited (0)" and "migrated" in stack["migrate"].logs()
    assert api["StartedAt"] > migrate["FinishedAt"]


def test_an_override_file_adds_a_service_and_changes_a_subnet(dockernet):
    stack = dockernet.compose(SHOP, override=[HERE / "shop" / "admin.override.yaml"], env=env_of(dockernet))

    assert list(stack) == ["web", "api", "db", "cache", "admin"]
    assert stack.networks["back"].subnet == "10.77.4.0/24"
    assert stack["admin"].ip("back").startswith("10.77.4.")
    dockernet.assert_reachable(stack["admin"], "database", port=5432)
    dockernet.assert_unreachable(stack["web"], stack["admin"])


def test_variables_come_from_env_then_the_environment_then_dotenv(dockernet, tmp_path, monkeypatch):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  app:\n"
        "    image: ${PROBE_IMAGE}\n"
        "    environment:\n"
        "      GIVEN: ${ONLY_GIVEN}\n"
        "      PROCESS: ${ONLY_PROCESS}\n"
        "      DOTENV: ${ONLY_DOTENV}\n"
        "      WINNER: ${EVERYWHERE}\n"
        "      DEFAULTED: ${NOWHERE:-fallback}\n"
        "      PRICE: $$5\n"
    )
    (tmp_path / ".env").write_text("ONLY_DOTENV=from-dotenv\nEVERYWHERE=dotenv\n")
    monkeypatch.setenv("ONLY_PROCESS", "from-process")
    monkeypatch.setenv("EVERYWHERE", "process")

    stack = dockernet.compose(
        tmp_path / "compose.yaml", env={**env_of(dockernet), "ONLY_GIVEN": "given", "EVERYWHERE": "env"}
    )

    environment = dockernet.client.api.inspect_container(stack["app"].id)["Config"]["Env"]
    expected = ["GIVEN=given", "PROCESS=from-process", "DOTENV=from-dotenv", "WINNER=env", "DEFAULTED=fallback"]
    assert set(expected) | {"PRICE=$5"} <= set(environment)


def test_a_required_variable_fails_with_the_files_message_before_anything_is_made(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: ${PROBE_IMAGE}\n    environment:\n"
        "      SHOP_URL: ${SHOP_URL:?set SHOP_URL to the shop under test}\n"
    )
    with pytest.raises(ComposeError, match=r"variable SHOP_URL is unset: set SHOP_URL to the shop under test"):
        dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))
    assert_nothing_made(dockernet)


def test_services_brings_up_only_those_and_what_they_depend_on(dockernet):
    stack = dockernet.compose(SHOP, services=["api"], env=env_of(dockernet))

    assert sorted(stack) == ["api", "cache", "db"]
    assert sorted(stack.networks) == ["back", "front"]
    assert sorted(c.name for c in dockernet.containers_list) == ["api", "cache", "db"]
    with pytest.raises(KeyError, match=r"no service 'web' in compose stack 'shop'; it has"):
        stack["web"]


def test_network_mode_service_and_links_behave_as_under_compose(dockernet):
    stack = dockernet.compose(SHOP, override=[HERE / "shop" / "sharing.override.yaml"], env=env_of(dockernet))

    sidecar, api, reports, db = stack["api-sidecar"], stack["api"], stack["reports"], stack["db"]
    assert sidecar.ip("front") == api.ip("front")
    code, output = sidecar.exec(["nc", "-w", "2", "127.0.0.1", "8080"])  # api's server, on its loopback
    assert code == 0, output
    assert "api-sidecar" not in {c.name for c in stack.networks["front"].containers}
    # A link's alias resolves for the linking service only, as under Compose.
    dockernet.assert_resolves(reports, "warehouse", to=db)
    dockernet.assert_reachable(reports, "warehouse", port=5432)
    dockernet.assert_not_resolves(api, "warehouse")


@pytest.mark.parametrize(
    "file, message",
    [
        ("unsupported.yaml", r"services\.api: key 'devices' of service 'api' is not supported .*: the machine's"),
        ("external.yaml", r"networks\.shared: external: true is not supported: a test's networks are its own"),
        ("cycle.yaml", r"services depend on each other in a cycle: api -> worker -> api"),
        ("missing-image.yaml", r"services\.db\.image: .*no-such-image:1"),
        ("address.yaml", r"services\.api\.networks\.back\.ipv4_address: '10\.77\.9\.1' is its gateway's address"),
    ],
)
def test_a_bad_file_fails_clearly_and_leaves_nothing(dockernet, file, message):
    with pytest.raises(ComposeError, match=message):
        dockernet.compose(HERE / "bad" / file, env=env_of(dockernet))
    assert_nothing_made(dockernet)


def test_a_service_that_crashes_half_way_takes_the_stack_it_started_with_it(dockernet, tmp_path):
    """web waits for api to be healthy, which it cannot be before it exits (its first check
    is an hour away), so the crash is seen however busy the machine: a wait for 'running'
    alone may look before the exit, and did once."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  db:\n    image: ${PROBE_IMAGE}\n    volumes: [data:/data]\n    networks: [back]\n"
        "  api:\n    image: ${PROBE_IMAGE}\n    command: sh -c 'echo no config here; exit 3'\n"
        "    networks: [back]\n    depends_on: [db]\n"
        "    healthcheck: {test: [CMD, 'true'], interval: 1h}\n"
        "  web:\n    image: ${PROBE_IMAGE}\n    networks: [back]\n"
        "    depends_on: {api: {condition: service_healthy}}\n"
        "networks:\n  back: {}\nvolumes:\n  data: {}\n"
    )
    with pytest.raises(DockernetError, match=r"(?s)container 'api' .*exit code 3.*no config here"):
        dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))
    assert_nothing_made(dockernet)


def test_named_volumes_are_the_stacks_own_and_go_with_the_topology(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  writer:\n    image: ${PROBE_IMAGE}\n    command: sh -c 'echo kept > /data/file; exec sleep 3600'\n"
        "    volumes: ['data:/data', './config:/config:ro']\n"
        "volumes:\n  data:\n    labels: {team: shop}\n"
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings").write_text("colour=blue\n")

    stack = dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))

    volume = dockernet.client.api.inspect_volume(stack.volumes["data"])
    assert stack.volumes["data"] != "data" and volume["Labels"]["team"] == "shop"
    writer = stack["writer"]
    assert writer.exec(["cat", "/config/settings"]) == (0, "colour=blue\n")
    assert writer.exec(["sh", "-c", "echo x > /config/other"])[0] != 0  # mounted read-only
    dockernet.close()
    assert on_engine(dockernet) == NOTHING


def test_volume_mode_flags_reach_the_engine(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: ${PROBE_IMAGE}\n    command: sleep 3600\n"
        "    volumes: ['./conf:/conf:ro,z', 'data:/data:nocopy']\nvolumes:\n  data: {}\n"
    )
    (tmp_path / "conf").mkdir()
    stack = dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))

    binds = dockernet.client.api.inspect_container(stack["app"].id)["HostConfig"]["Binds"]
    assert sorted(binds) == sorted(
        [f"{tmp_path.resolve() / 'conf'}:/conf:ro,z", f"{stack.volumes['data']}:/data:rw,nocopy"]
    )
    assert stack["app"].exec(["sh", "-c", "echo x > /conf/other"])[0] != 0  # read-only indeed


def test_keys_that_change_nothing_here_are_named_in_a_warning(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: ${PROBE_IMAGE}\n    restart: always\n    logging: {driver: json-file}\n"
    )
    with pytest.warns(UserWarning, match=r"ignored by compose\(\) .*services\.app\.restart.*services\.app\.logging"):
        stack = dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))
    assert stack["app"].status() == "running"
    policy = dockernet.client.api.inspect_container(stack["app"].id)["HostConfig"]["RestartPolicy"]
    assert policy["Name"] in ("", "no")  # ignored indeed: the topology removes what it made


def test_keys_that_change_nothing_here_are_warned_about_once_per_file_in_a_run(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  one:\n    image: ${PROBE_IMAGE}\n    network_mode: none\n    restart: always\n"
        "  two:\n    image: ${PROBE_IMAGE}\n    network_mode: none\n"
    )
    calls = []
    for service in ("one", "two"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dockernet.compose(tmp_path / "compose.yaml", services=[service], env=env_of(dockernet))
        calls.append([str(w.message) for w in caught if "ignored by compose()" in str(w.message)])
    assert len(calls[0]) == 1 and "services.one.restart" in calls[0][0]
    assert calls[1] == []  # the same file again in this run: said already
    assert sorted(c.name for c in dockernet.containers_list) == ["one", "two"]


def test_published_ports_get_free_host_ports(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: ${PROBE_IMAGE}\n    command: httpd -f -p 80\n"
        "    ports: ['127.0.0.1:8080:80']\n    expose: ['9100']\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet))

    port = stack["web"].host_port(80)
    info = dockernet.client.api.inspect_container(stack["web"].id)
    # A free port on the file's address, not the file's 8080: runs of one file never collide.
    assert info["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
    assert "9100/tcp" in info["Config"]["ExposedPorts"]
    try:
        status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
    except urllib.error.HTTPError as exc:  # busybox httpd has no index page to serve
        status = exc.code
    assert status in (200, 404)


def test_two_stacks_of_one_file_in_one_topology_are_refused(dockernet):
    dockernet.compose(SHOP, services=["cache"], env=env_of(dockernet))
    with pytest.raises(ComposeError, match=r"this topology already has a service 'cache', a network 'back'"):
        dockernet.compose(SHOP, env=env_of(dockernet))
    assert sorted(c.name for c in dockernet.containers_list) == ["cache"]


INNER = """
import pytest
from pytest_dockernet.topology import Topology
import inner_run_spy

SHOP = {shop!r}


@pytest.mark.parametrize("n", [1, 2])
def test_shop(dockernet, n):
    stack = dockernet.compose(SHOP, env={{"PROBE_IMAGE": dockernet.probe_image}})
    inner_run_spy.record(*stack.containers.values(), *stack.networks.values())
    dockernet.assert_reachable(stack["api"], "database", port=5432)
    dockernet.assert_unreachable(stack["web"], stack["db"], timeout=1)
"""


def test_two_runs_of_one_file_at_once_under_n_2_never_collide(inner_runs):
    """Four stacks of one file at once (two runs, two workers each): unique names although
    the file says container_name, and its fixed subnet held by one stack at a time."""
    pytest.importorskip("xdist")
    inner_runs.pytester.makepyfile(test_shop=INNER.format(shop=str(SHOP)))
    runs = [
        inner_runs.pytester.popen(
            inner_runs.pytest_command("-n", "2", "-p", "xdist", "--dockernet-require"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output
        assert "2 passed" in output, output
    made = inner_runs.made()
    assert len(made) == 4 * 6 and len(set(made)) == len(made)  # 4 containers and 2 networks per stack
    assert "database" not in made
    assert inner_runs.existing(made) == []


def test_build_contexts_are_built_once_per_run(inner_runs):
    inner_runs.pytester.makepyfile(
        test_built=f"""
        BUILT = {str(HERE / "built" / "compose.yaml")!r}

        def test_one(dockernet):
            stack = dockernet.compose(BUILT, env={{"PROBE_IMAGE": dockernet.probe_image}})
            assert stack["server"].image == stack["client"].image
            assert stack["client"].exec(["cat", "/built"]) == (0, "built\\n")
            dockernet.assert_reachable(stack["client"], "server", port=80)

        def test_two(dockernet):
            test_one(dockernet)
        """
    )
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([r"time: .*; made: (.*, )?1 image build(,|$)"])


SMALL = """
services:
  web:
    image: ${PROBE_IMAGE}
    command: httpd -f -p 80
  cache:
    image: ${PROBE_IMAGE}
    networks: [back]
networks:
  back: {}
"""


def test_compose_works_at_every_fixture_scope_and_after_a_failure(inner_runs):
    inner_runs.pytester.makefile(".yaml", compose=SMALL)
    inner_runs.pytester.makepyfile(
        test_scopes="""
        import pytest

        def up(topology, *services):
            return topology.compose("compose.yaml", services=services, env={"PROBE_IMAGE": topology.probe_image})

        @pytest.fixture(scope="session")
        def session_stack(dockernet_session):
            return up(dockernet_session, "cache")

        @pytest.fixture(scope="module")
        def module_stack(dockernet_module):
            return up(dockernet_module, "web")

        def test_module_and_session(module_stack, session_stack, dockernet):
            assert module_stack["web"].status() == session_stack["cache"].status() == "running"
            dockernet.assert_unreachable(module_stack["web"], session_stack["cache"], timeout=1)

        def test_function_scope_failing(module_stack, dockernet):
            stack = up(dockernet, "web", "cache")
            dockernet.assert_reachable(module_stack["web"], module_stack["web"].ip())
            assert stack["cache"].status() == "gone", "a failure on purpose"
        """
    )
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a failure on purpose*", "*- dockernet topology -*", "*cache *(running)*"])
