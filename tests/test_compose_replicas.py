"""compose(): ``deploy.replicas`` and ``scale`` on a real engine: containers named per
replica, each resolving by its own name and all of them by the service name (and its
aliases), ``stack.replicas()``, ``depends_on`` waiting for every replica, and the file's
claims that cannot hold for several containers refused before anything is made."""

from __future__ import annotations

import json
import warnings

import pytest
from test_compose import NOTHING, assert_nothing_made, env_of, on_engine
from test_http import REDIS, ensure_app_base

from pytest_dockernet import ComposeError
from pytest_dockernet.compose.file import load


def bring_up(dockernet, tmp_path, text: str, **kwargs):
    (tmp_path / "compose.yaml").write_text(text)
    return dockernet.compose(tmp_path / "compose.yaml", env=env_of(dockernet), **kwargs)


TWO_NETWORKS = (
    "services:\n"
    "  api:\n    image: ${PROBE_IMAGE}\n    deploy: {replicas: 3}\n"
    "    networks: {front: {}, back: {aliases: [backend]}}\n"
    "  web:\n    image: ${PROBE_IMAGE}\n    networks: [front]\n    depends_on: [api]\n"
    "  worker:\n    image: ${PROBE_IMAGE}\n    networks: [back]\n    links: ['api:linked']\n"
    "networks:\n  front: {}\n  back: {}\n"
)


def test_the_service_name_resolves_to_every_replica_and_each_replica_by_its_own_name(dockernet, tmp_path):
    stack = bring_up(dockernet, tmp_path, TWO_NETWORKS)

    replicas = stack.replicas("api")
    assert [r.name for r in replicas] == ["api-1", "api-2", "api-3"]
    assert stack.services == {"api": ["api-1", "api-2", "api-3"], "web": ["web"], "worker": ["worker"]}
    assert list(stack.containers) == ["api-1", "api-2", "api-3", "web", "worker"]
    assert list(stack) == ["api", "web", "worker"] and "api" in stack and "api-2" in stack
    web, worker = stack["web"], stack["worker"]
    # On each network the service joins, with its aliases there: web shares front, worker back.
    dockernet.assert_resolves(web, "api", to=replicas)
    dockernet.assert_resolves(worker, "api", to=replicas)
    dockernet.assert_resolves(worker, "backend", to=replicas)
    dockernet.assert_not_resolves(web, "backend")
    addresses = {r.ip("front") for r in replicas}
    assert len(addresses) == 3 and all(a is not None for a in addresses)
    for replica in replicas:
        dockernet.assert_resolves(web, replica.name, to=replica)
        dockernet.assert_resolves(worker, replica.name, to=replica)
        dockernet.assert_reachable(web, replica)
    # A link to a replicated service is made to each replica under the alias, as Compose makes
    # it; the engine answers the alias with one of them.
    code, out = worker.exec(["nslookup", "linked"])
    assert code == 0 and any(r.ip("back") in out for r in replicas), out
    # The failure report's picture names each replica and the service name it answers to.
    description = dockernet.describe()
    assert "api-2  [" in description and "aliases: api-2, api, backend" in description


def test_stack_getitem_is_a_services_one_container_and_refuses_to_pick_a_replica(dockernet, tmp_path):
    stack = bring_up(dockernet, tmp_path, TWO_NETWORKS)

    assert stack["web"] is stack.containers["web"] and stack.replicas("web") == [stack["web"]]
    assert stack["api-2"] is stack.replicas("api")[1]
    with pytest.raises(KeyError, match=r"service 'api' .* has 3 replicas \(api-1, api-2, api-3\).*stack\.replicas"):
        stack["api"]
    with pytest.raises(KeyError, match=r"no service 'nope'.*it has api, web, worker"):
        stack.replicas("nope")
    assert "services api, web, worker" in repr(stack)


def test_scale_and_deploy_replicas_agreeing_are_one_count_and_one_replica_keeps_the_service_name(dockernet, tmp_path):
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n"
        "  api:\n    image: ${PROBE_IMAGE}\n    scale: 2\n    deploy: {replicas: '2'}\n"
        "  one:\n    image: ${PROBE_IMAGE}\n    scale: 1\n"
        "  node:\n    image: ${PROBE_IMAGE}\n    deploy: {mode: global, endpoint_mode: dnsrr}\n",
    )

    assert stack.services == {"api": ["api-1", "api-2"], "one": ["one"], "node": ["node"]}
    dockernet.assert_resolves(stack["one"], "api", to=stack.replicas("api"))
    dockernet.assert_resolves(stack["one"], "node", to=stack["node"])


def test_replicas_0_starts_no_container_and_what_depends_on_it_does_not_wait(dockernet, tmp_path):
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n"
        "  debug:\n    image: ${PROBE_IMAGE}\n    deploy: {replicas: 0}\n"
        "  off:\n    image: ${PROBE_IMAGE}\n    scale: 0\n"
        "  app:\n    image: ${PROBE_IMAGE}\n    depends_on: {debug: {condition: service_healthy}, off: {}}\n",
    )

    assert stack.replicas("debug") == [] and stack.replicas("off") == []
    assert stack.services == {"debug": [], "off": [], "app": ["app"]} and list(stack.containers) == ["app"]
    assert sorted(c.name for c in dockernet.containers_list) == ["app"]
    with pytest.raises(KeyError, match=r"service 'debug' .* has no container \(replicas: 0\)"):
        stack["debug"]
    dockernet.assert_not_resolves(stack["app"], "debug")


def test_depends_on_service_healthy_waits_for_every_replica(dockernet, tmp_path):
    """Each replica turns healthy after a random 0-2 s of its own, so the last is seen late."""
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n"
        "  db:\n    image: ${PROBE_IMAGE}\n    scale: 3\n"
        "    command: sh -c 'sleep $$((RANDOM % 3)); touch /tmp/up; exec sleep 3600'\n"
        "    healthcheck: {test: [CMD, test, -f, /tmp/up], interval: 300ms, retries: 100}\n"
        "  api:\n    image: ${PROBE_IMAGE}\n    command: sleep 3600\n"  # its own: not a warm pool's
        "    depends_on: {db: {condition: service_healthy}}\n",
    )

    api = dockernet.client.api.inspect_container(stack["api"].id)["State"]
    for db in stack.replicas("db"):
        health = dockernet.client.api.inspect_container(db.id)["State"]["Health"]
        first_pass = min(check["End"] for check in health["Log"] if check["ExitCode"] == 0)
        assert api["StartedAt"] > first_pass, db.name  # RFC 3339 in UTC with nanoseconds: they compare as text


def test_depends_on_a_replicated_job_waits_until_every_replica_completed(dockernet, tmp_path):
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n"
        "  migrate:\n    image: ${PROBE_IMAGE}\n    deploy: {replicas: 2}\n"
        "    command: sh -c 'sleep $$((RANDOM % 2)).5; echo migrated'\n"
        "  api:\n    image: ${PROBE_IMAGE}\n    command: sleep 3600\n"  # its own: not a warm pool's
        "    depends_on: {migrate: {condition: service_completed_successfully}}\n",
    )

    api = dockernet.client.api.inspect_container(stack["api"].id)["State"]
    for job in stack.replicas("migrate"):
        state = dockernet.client.api.inspect_container(job.id)["State"]
        assert job.status() == "exited (0)" and api["StartedAt"] > state["FinishedAt"], job.name


@pytest.mark.parametrize(
    "service, message",
    [
        ("scale: 2\n    deploy: {replicas: 3}",
         r"services\.api: scale: 2 and deploy\.replicas: 3 differ \(Compose refuses them too\): keep one"),
        ("scale: 2\n    container_name: the-api",
         r"services\.api\.container_name: 'the-api' with 2 replicas: a container name is one container's"),
        ("scale: 2\n    ports: ['8080:80']",
         r"services\.api\.ports\[0\]: '8080:80' with 2 replicas: every replica would publish host port 8080, .*"
         r"'port is already allocated'.*such as '8080-8081:80'"),
        ("scale: 3\n    ports: [{target: 80, published: '8080-8081'}]",
         r"services\.api\.ports\[0\]: .* with 3 replicas: every replica would publish host ports 8080-8081"),
        ("scale: 2\n    ports: ['8080-8081:80-81']",
         r"every replica would publish host ports 8080-8081 \(a range mapped onto as many container ports is fixed\)"),
        ("scale: 2\n    networks: {back: {ipv4_address: 10.77.9.5}}",
         r"services\.api\.networks\.back\.ipv4_address: with 2 replicas every one would get '10\.77\.9\.5'"),
        ("deploy: {mode: global, replicas: 2}",
         r"services\.api: deploy\.mode: global runs one container per node and takes no deploy\.replicas"),
        ("deploy: {replicas: -1}", r"services\.api\.deploy\.replicas: -1 is not a number of containers"),
        ("scale: true", r"services\.api\.scale: True is not a number of containers"),
        ("scale: 101", r"services\.api\.scale: 101 containers; compose\(\) starts at most 100 per service"),
        ("deploy: {replicas: 2, placment: {}}",
         r"services\.api\.deploy: key 'placment' of deploy is not supported .*\(did you mean 'placement'\?\)"),
        ("deploy: {endpoint_mode: round-robin}",
         r"services\.api\.deploy\.endpoint_mode: 'round-robin' is not one of vip, dnsrr"),
        ("scale: 2\n  api-2:\n    image: ${PROBE_IMAGE}",
         r"services\.api: its replica 'api-2' would have the name of service 'api-2'"),
        ("scale: 0\n  sidecar:\n    image: ${PROBE_IMAGE}\n    network_mode: service:api",
         r"services\.sidecar\.network_mode: service 'api' has replicas: 0, so no container to join"),
    ],
)  # fmt: skip
def test_what_several_replicas_cannot_share_is_refused_before_anything_is_made(dockernet, tmp_path, service, message):
    text = (
        "services:\n  first:\n    image: ${PROBE_IMAGE}\n"  # a service the call would otherwise have started
        f"  api:\n    image: ${{PROBE_IMAGE}}\n    {service}\n"
        "networks:\n  back: {ipam: {config: [{subnet: 10.77.9.0/24}]}}\n"
    )
    with pytest.raises(ComposeError, match=message):
        bring_up(dockernet, tmp_path, text)
    assert_nothing_made(dockernet)


def test_a_host_range_with_a_port_for_each_replica_is_published_on_free_host_ports(dockernet, tmp_path):
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n  web:\n    image: ${PROBE_IMAGE}\n    command: httpd -f -p 80\n    scale: 2\n"
        "    ports: ['127.0.0.1:8080-8081:80', '9000']\n",
    )

    ports = {replica.host_port(80) for replica in stack.replicas("web")}
    assert len(ports) == 2 and {replica.host_port(9000) for replica in stack.replicas("web")}


def test_deploy_keys_that_change_nothing_here_are_named_in_the_warning(dockernet, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = bring_up(
            dockernet,
            tmp_path,
            "services:\n  api:\n    image: ${PROBE_IMAGE}\n"
            "    deploy:\n      replicas: 2\n      endpoint_mode: vip\n      restart_policy: {condition: any}\n"
            "      placement: {constraints: [node.role==manager]}\n      labels: {team: shop}\n"
            "      update_config: {parallelism: 1}\n      rollback_config: {parallelism: 1}\n"
            "      resources: {limits: {cpus: '0.5'}}\n",
        )
    [message] = [str(w.message) for w in caught if "ignored by compose()" in str(w.message)]
    for key in ("resources", "restart_policy", "update_config", "rollback_config", "placement", "labels"):
        assert f"services.api.deploy.{key} (" in message
    assert "services.api.deploy.endpoint_mode (the service name resolves to every replica's address" in message
    assert len(stack.replicas("api")) == 2
    labels = dockernet.client.api.inspect_container(stack["api-1"].id)["Config"]["Labels"]
    assert "team" not in labels  # a swarm service's labels, not its containers'


def test_network_mode_service_of_a_replicated_service_joins_the_first_replica(dockernet, tmp_path):
    stack = bring_up(
        dockernet,
        tmp_path,
        "services:\n  api:\n    image: ${PROBE_IMAGE}\n    scale: 2\n"
        "  sidecar:\n    image: ${PROBE_IMAGE}\n    network_mode: service:api\n    scale: 2\n",
    )

    first = dockernet.client.api.inspect_container(stack["api-1"].id)["Id"]
    for sidecar in stack.replicas("sidecar"):
        mode = dockernet.client.api.inspect_container(sidecar.id)["HostConfig"]["NetworkMode"]
        assert mode == f"container:{first}", sidecar.name


def test_teardown_removes_every_replica(dockernet, tmp_path):
    stack = bring_up(
        dockernet, tmp_path, TWO_NETWORKS.replace("deploy: {replicas: 3}", "scale: 3\n    command: sleep 3600")
    )
    ids = [replica.id for replica in stack.replicas("api")]
    assert len(ids) == 3 and len(on_engine(dockernet)["containers"]) == 5

    dockernet.close()
    assert on_engine(dockernet) == NOTHING
    assert [c for c in dockernet.client.api.containers(all=True) if c["Id"] in ids] == []


SERVER = (
    "import http.server, socket\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = socket.gethostname().encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()\n"
)


def test_real_servers_behind_one_service_name_each_answer_as_itself(dockernet, dockernet_client, tmp_path):
    """Two Python HTTP services and two redis servers, reached from a client container: by
    the service name (which resolves to both) and each replica by its own name."""
    base = ensure_app_base(dockernet_client)
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  web:\n    image: ${BASE}\n    command: [python3, /srv/server.py]\n    deploy: {replicas: 2}\n"
        "    volumes: ['./server.py:/srv/server.py:ro']\n    healthcheck: {test: [NONE]}\n"
        f"  cache:\n    image: ${{BASE}}\n    command: {json.dumps(REDIS)}\n    scale: 2\n"
        "    healthcheck: {test: [NONE]}\n"
        "  client:\n    image: ${BASE}\n    command: [sleep, infinity]\n    healthcheck: {test: [NONE]}\n"
        "    depends_on: [web, cache]\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"BASE": base})

    client, webs, caches = stack["client"], stack.replicas("web"), stack.replicas("cache")
    dockernet.assert_resolves(client, "web", to=webs)
    dockernet.assert_resolves(client, "cache", to=caches)
    for web in webs:  # each replica is its own server: its container's host name answers
        hostname = web.exec(["hostname"])[1].strip()
        for target in (web.name, web.ip()):
            dockernet.assert_http(client, f"http://{target}:8080/", contains=hostname, timeout=20)
    assert {dockernet.http_get(client, "http://web:8080/").body for _ in range(3)} <= {
        w.exec(["hostname"])[1].strip() for w in webs
    }

    def redis(*args: str) -> str:
        code, out = client.exec(["redis-cli", *args])
        assert code == 0, out
        return out.strip()

    for cache in caches:
        dockernet.assert_reachable(client, cache.name, port=6379, timeout=20)
    assert redis("-h", "cache", "PING") == "PONG"
    assert redis("-h", "cache-1", "SET", "key", "one") == "OK"
    assert redis("-h", "cache-2", "GET", "key") == ""  # two servers, not one under two names
    assert redis("-h", "cache-1", "GET", "key") == "one"


def test_a_replica_name_longer_than_a_dns_label_is_refused_naming_it(tmp_path):
    long = "s" * 62  # a service name that fits; its replica "sss...-2" does not
    (tmp_path / "compose.yaml").write_text(f"services:\n  {long}:\n    image: x\n    scale: 2\n")
    with pytest.raises(ComposeError, match=rf"services\.{long}: replica 2's name: '{long}-2' is not a name for a"):
        load(tmp_path / "compose.yaml")


def test_deploy_x_keys_and_mode_replicated_are_accepted_without_a_warning(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  api:\n    image: x\n    deploy: {mode: replicated, replicas: 2, x-note: kept}\n"
    )
    model = load(tmp_path / "compose.yaml")
    assert (model.services["api"].replicas, model.ignored) == (2, [])
