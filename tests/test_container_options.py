"""The container options that go to the engine as written (container_options.py), and
container()'s checks of them before anything is made (container_specs.py)."""

from __future__ import annotations

import pytest

from pytest_dockernet.labels import PREFIX

pytestmark = pytest.mark.dockernet


def test_volumes_as_a_list_and_named_volumes(dockernet, dockernet_client, tmp_path):
    mine = dockernet_client.volumes.create(f"dn-test-mine-{dockernet.id}")  # a volume of the user's
    try:
        fresh = f"dn-test-fresh-{dockernet.id}"
        (tmp_path / "f").write_text("x")
        writer = dockernet.container(
            "writer",
            command=["sh", "-c", "echo kept > /data/v; echo mine > /mine/v; exec sleep 600"],
            volumes=[f"{fresh}:/data", f"{mine.name}:/mine", f"{tmp_path}:/host:ro", "/scratch"],
        )
        writer.wait_until(lambda c: c.exec(["cat", "/data/v"]) == (0, "kept\n"), timeout=10)
        reader = dockernet.container("reader", command=["sleep", "600"], volumes=[f"{fresh}:/data:ro"])
        assert reader.exec(["cat", "/data/v"]) == (0, "kept\n")
        labels = dockernet_client.api.inspect_volume(fresh)["Labels"] or {}
        assert labels.get(f"{PREFIX}.topology") == dockernet.id  # made by the plugin, so removed with it
        dockernet.close()
        assert [v.name for v in dockernet_client.volumes.list(filters={"name": fresh})] == []
        assert dockernet_client.volumes.get(mine.name).name == mine.name  # the user's stays
    finally:
        mine.remove(force=True)


BAD_OPTIONS = [
    ({"docker_options": {"name": "x"}}, ValueError, r"docker_options\['name'\] is managed by the plugin"),
    ({"docker_options": {"network": "bridge"}}, ValueError, r"docker_options\['network'\] is managed.*networks="),
    ({"docker_options": {"labels": {}}}, ValueError, r"docker_options\['labels'\] is managed.*labels="),
    ({"docker_options": {"auto_remove": True}}, ValueError, r"docker_options\['auto_remove'\] is managed"),
    ({"docker_options": {"user": "x"}}, ValueError, r"docker_options\['user'\]: pass user= to container"),
    ({"docker_options": {"no_such": 1}}, ValueError, r"docker_options\['no_such'\] is not an argument of docker-py"),
    ({"docker_options": {"mem_limit": "lots"}}, ValueError, r"docker_options: .*lots"),
    ({"docker_options": ["mem_limit"]}, TypeError, r"docker_options must be a dict"),
    ({"labels": {f"{PREFIX}.name": "x"}}, ValueError, r"labels: .* are the plugin's own keys"),
    ({"labels": {"a": 1}}, TypeError, r"labels must be a dict of str to str"),
    ({"volumes": ["data"]}, ValueError, r"volumes: data: the path inside the container must be absolute"),
    ({"volumes": ["rel/dir:/in"]}, ValueError, r"neither an absolute host path nor a volume name"),
    ({"volumes": ["/a:/in:sideways"]}, ValueError, r"mode 'sideways' is not one of"),
    ({"volumes": {"/a": "/in"}}, TypeError, r"volumes\['/a'\] must be \{'bind'"),
    ({"volumes": "/a:/in"}, TypeError, r"volumes must be a dict or a list"),
    ({"healthcheck": {"cmd": "true"}}, ValueError, r"healthcheck has unknown keys \['cmd'\]"),
    ({"healthcheck": {"test": ""}}, ValueError, r"healthcheck\['test'\] must be a command line"),
    ({"healthcheck": {"test": "true", "interval": "soon"}}, ValueError, r"healthcheck\['interval'\]='soon'"),
    ({"healthcheck": {"test": "true", "retries": -1}}, ValueError, r"healthcheck\['retries'\]=-1"),
    ({"ready": "up"}, ValueError, r"ready='up' is not one of 'running', 'healthy'"),
    ({"ready": 5}, TypeError, r"ready must be 'running', 'healthy', LogLine"),
    ({"ready_timeout": 0}, ValueError, r"ready_timeout=0 must be a positive number of seconds"),
    ({"entrypoint": 5}, TypeError, r"entrypoint=5 must be a string or a non-empty list"),
    ({"user": ""}, TypeError, r"user must be a non-empty string"),
    ({"working_dir": 3}, TypeError, r"working_dir must be a non-empty string"),
    ({"hostname": "h", "network_mode": "host"}, ValueError, r"hostname= cannot be set .* host's network namespace"),
]


@pytest.mark.parametrize("arguments, error, message", BAD_OPTIONS, ids=[str(i) for i in range(len(BAD_OPTIONS))])
def test_bad_options_are_refused_before_anything_is_made(dockernet, dockernet_client, arguments, error, message):
    with pytest.raises(error, match=message):
        dockernet.container("c", **arguments)
    assert dockernet_client.api.containers(all=True, filters=dockernet.context.filters()) == []


def test_healthcheck_durations_in_seconds_reach_the_engine_in_nanoseconds(dockernet, dockernet_client):
    c = dockernet.container(
        "c",
        command=["sleep", "600"],
        healthcheck={
            "test": ["CMD", "true"],
            "interval": 0.5,
            "timeout": "2s",
            "start_period": 3_000_000_000,
            "retries": 4,
        },
        ready="healthy",
    )
    health = dockernet_client.api.inspect_container(c.id)["Config"]["Healthcheck"]
    assert health == {
        "Test": ["CMD", "true"],
        "Interval": 500_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 3_000_000_000,
        "Retries": 4,
    }
