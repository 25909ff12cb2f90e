"""Swarm mode's facts and a service's spec (pytest_dockernet.swarm). Services on overlay
networks across engines, and the plugin's swarm over runs, are test_overlay.py's."""

from __future__ import annotations

from typing import Any

import docker.types
import pytest
from test_overlay import no_swarm, plain, swarm_state  # noqa: F401 - fixtures: engine 0 in no swarm; a topology

from pytest_dockernet import DriverUnavailable
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.handles import Network
from pytest_dockernet.swarm import at_risk, replicated, require_swarm, task_template

pytestmark = pytest.mark.dockernet


def without_nulls(value: Any) -> Any:
    """The API's JSON as the engine reads it: a null is a key not given."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize(
    "hermetic, resident, constraints", [(True, True, ["node.role==manager"]), (False, False, None)]
)
def test_a_services_spec_is_what_docker_pys_types_made(hermetic, resident, constraints):
    network = Network(None, "o", "dn-run-o", "network-id", "overlay")  # type: ignore[arg-type]
    made = task_template("svc", "img", ["sh", "-c", "x"], {"a": "b"}, [network], constraints, hermetic, resident)
    dns = docker.types.DNSConfig(nameservers=["127.0.0.1"], search=["."], options=["ndots:1"]) if hermetic else None
    container = docker.types.ContainerSpec(
        "img", args=["sh", "-c", "x"], labels={"a": "b"}, dns_config=dns, open_stdin=resident or None, hostname=None
    )
    expected = docker.types.TaskTemplate(
        container,
        networks=[docker.types.NetworkAttachmentConfig("network-id", aliases=["svc"])],
        placement=docker.types.Placement(constraints=constraints) if constraints else None,
        restart_policy=docker.types.RestartPolicy(condition="any", delay=200_000_000),
    )
    assert made == without_nulls(expected)
    assert replicated(3) == docker.types.ServiceMode("replicated", 3)


def test_a_leave_would_break_the_names_of_running_containers_on_user_networks(dockernet, dockernet_client):
    dockernet.container("c", networks=[dockernet.network("n")])
    for engine in (DockerEngine(dockernet_client), dockernet_client):  # an Engine, or a docker-py client
        assert any("running container" in line and "on user-defined networks" in line for line in at_risk(engine))


def test_without_a_swarm_a_need_for_one_says_how_to_get_it(plain, dockernet_client):  # noqa: F811
    assert swarm_state(dockernet_client) == "inactive", "engine 0 is in a swarm already"
    context = plain.context
    with pytest.raises(
        DriverUnavailable, match=r"a test needs swarm mode: engine 0 is not in a swarm \(state 'inactive'\)"
    ):
        require_swarm(context, "a test")
    assert context.facts.swarm is False and context.facts.swarm_state == "inactive"  # asked once per run
    with pytest.raises(DriverUnavailable, match=r"^driver='overlay' needs swarm mode.*--dockernet-swarm auto"):
        require_swarm(context)


def test_no_ipvs_verdict_is_taken_from_no_task(inner_runs, pytester, no_swarm):  # noqa: F811
    pytester.makepyfile(
        """
        from pytest_dockernet.swarm import check_vip

        def test_vip(dockernet):
            net = dockernet.network("o", driver="overlay")
            svc = dockernet.service("s", networks=[net], replicas=1, endpoint_mode="dnsrr")
            svc.scale(0)
            check_vip(dockernet.context, svc, explicit=True)  # no container to look in
            assert dockernet.context.facts.vip is None  # nothing remembered, nothing skipped
        """
    )
    result = inner_runs.run("--dockernet-swarm", "auto", "--dockernet-require")
    result.assert_outcomes(passed=1)
