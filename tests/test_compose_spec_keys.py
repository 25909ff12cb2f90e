"""Every key of the Compose Specification is accounted for, and the table says what the code
does: compose/spec_keys.py's table lists exactly the schema's keys, a file with each key
(a valid sample value) loads as its row says, and docs/compose.md shows that table.

The schema, tests/compose/compose-spec.json, is ``schema/compose-spec.json`` of
https://github.com/compose-spec/compose-spec at commit a08f8d51631b7127ddac3d2c65537db429d0f1d0
(2025-10-28; unchanged up to 170098ba07d9f53c383a41bfd4c5166b0a4529a6, 2026-06-23). Loading
needs no engine.
"""

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_dockernet.compose.file import load
from pytest_dockernet.compose.spec_keys import IGNORED, KEYS, REFUSED, SUPPORTED, markdown
from pytest_dockernet.errors import ComposeError

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((Path(__file__).parent / "compose" / "compose-spec.json").read_text())
DEFINITIONS = SCHEMA["definitions"]


def _object(node: dict[str, Any]) -> dict[str, Any]:
    """The object schema under ``node``: through ``$ref``, ``oneOf``/``anyOf``, ``items``
    and the ``patternProperties`` of a mapping by name (not ``^x-``)."""
    if "$ref" in node:
        return _object(DEFINITIONS[node["$ref"].rpartition("/")[2]])
    if "properties" in node:
        return node
    children = [*node.get("oneOf", ()), *node.get("anyOf", ())]
    children += [node["items"]] if isinstance(node.get("items"), dict) else []
    children += [v for k, v in node.get("patternProperties", {}).items() if k != "^x-"]
    for child in children:
        try:
            return _object(child)
        except LookupError:
            continue
    raise LookupError(f"no object schema in {node}")


SERVICE = DEFINITIONS["service"]["properties"]
NETWORK = DEFINITIONS["network"]["properties"]
SCHEMA_KEYS = {
    "top": SCHEMA,
    "service": DEFINITIONS["service"],
    "build": _object(SERVICE["build"]),
    "deploy": _object(SERVICE["deploy"]),
    "healthcheck": _object(SERVICE["healthcheck"]),
    "service network": _object(SERVICE["networks"]),
    "service volume": _object(SERVICE["volumes"]),
    "service port": _object(SERVICE["ports"]),
    "depends_on": _object(SERVICE["depends_on"]),
    "env_file": _object(SERVICE["env_file"]),
    "network": DEFINITIONS["network"],
    "ipam": _object(NETWORK["ipam"]),
    "ipam config": _object(NETWORK["ipam"]["properties"]["config"]),
    "volume": DEFINITIONS["volume"],
    "secret": DEFINITIONS["secret"],
    "config": DEFINITIONS["config"],
}

LIMIT = {"nofile": {"soft": 1024, "hard": 2048}}
HOSTS = ["somehost:192.0.2.10"]
# A valid value of each key (as the specification describes it), where it goes in the file.
SAMPLES: dict[str, dict[str, Any]] = {
    "top": {
        "version": "3.8",
        "name": "sample",
        "include": ["other.yaml"],
        "services": {"app": {"image": "busybox"}},
        "models": {"m": {"model": "ai/smollm2"}},
        "networks": {"net": {}},
        "volumes": {"data": {}},
        "secrets": {"s": {"file": "./secret.txt"}},
        "configs": {"c": {"file": "./config.txt"}},
    },
    "service": {
        "annotations": {"com.example.a": "1"},
        "attach": False,
        "blkio_config": {"weight": 300},
        "build": {"context": "."},
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["NET_RAW"],
        "cgroup": "private",
        "cgroup_parent": "sample-parent",
        "command": ["sleep", "1"],
        "configs": ["c"],
        "container_name": "app-one",
        "cpu_count": 1,
        "cpu_percent": 50,
        "cpu_period": 100000,
        "cpu_quota": 50000,
        "cpu_rt_period": 1000000,
        "cpu_rt_runtime": 950000,
        "cpu_shares": 512,
        "cpus": 0.5,
        "cpuset": "0",
        "credential_spec": {"file": "spec.json"},
        "depends_on": ["other"],
        "deploy": {"replicas": 1},
        "develop": {"watch": [{"path": "./src", "action": "sync", "target": "/src"}]},
        "device_cgroup_rules": ["c 1:3 mr"],
        "devices": ["/dev/null:/dev/sample"],
        "dns": ["192.0.2.53"],
        "dns_opt": ["use-vc"],
        "dns_search": ["example.internal"],
        "domainname": "example.internal",
        "entrypoint": ["sh", "-c"],
        "env_file": ["app.env"],
        "environment": {"A": "1"},
        "expose": ["8080"],
        "extends": {"service": "other"},
        "external_links": ["redis_1:redis"],
        "extra_hosts": HOSTS,
        "gpus": "all",
        "group_add": ["mail"],
        "healthcheck": {"test": ["CMD", "true"]},
        "hostname": "app-host",
        "image": "busybox:latest",
        "init": True,
        "ipc": "shareable",
        "isolation": "default",
        "label_file": "app.labels",
        "labels": {"com.example.a": "1"},
        "links": ["other"],
        "logging": {"driver": "json-file"},
        "mac_address": "02:42:ac:11:00:02",
        "mem_limit": "64m",
        "mem_reservation": "32m",
        "mem_swappiness": 10,
        "memswap_limit": "128m",
        "models": ["m"],
        "network_mode": "none",
        "networks": ["default"],
        "oom_kill_disable": True,
        "oom_score_adj": 100,
        "pid": "host",
        "pids_limit": 100,
        "platform": "linux/amd64",
        "ports": ["8080:80"],
        "post_start": [{"command": ["true"]}],
        "pre_stop": [{"command": ["true"]}],
        "privileged": True,
        "profiles": ["debug"],
        "provider": {"type": "awesomecloud", "options": {"type": "mysql"}},
        "pull_policy": "missing",
        "pull_refresh_after": "1h",
        "read_only": True,
        "restart": "always",
        "runtime": "runc",
        "scale": 1,
        "secrets": ["s"],
        "security_opt": ["no-new-privileges:true"],
        "shm_size": "64m",
        "stdin_open": True,
        "stop_grace_period": "5s",
        "stop_signal": "SIGTERM",
        "storage_opt": {"size": "1G"},
        "sysctls": {"net.core.somaxconn": "1024"},
        "tmpfs": ["/run"],
        "tty": True,
        "ulimits": LIMIT,
        "use_api_socket": True,
        "user": "1000",
        "userns_mode": "host",
        "uts": "host",
        "volumes": ["data:/data"],
        "volumes_from": ["other"],
        "working_dir": "/tmp",
    },
    "build": {
        "additional_contexts": {"extra": "./extra"},
        "args": {"A": "1"},
        "cache_from": ["sample/cache:latest"],
        "cache_to": ["type=inline"],
        "context": ".",
        "dockerfile": "Dockerfile",
        "dockerfile_inline": "FROM scratch\n",
        "entitlements": ["network.host"],
        "extra_hosts": HOSTS,
        "isolation": "default",
        "labels": {"com.example.a": "1"},
        "network": "none",
        "no_cache": True,
        "platforms": ["linux/amd64"],
        "privileged": True,
        "provenance": True,
        "pull": True,
        "sbom": True,
        "secrets": ["s"],
        "shm_size": "64m",
        "ssh": ["default"],
        "tags": ["sample/app:extra"],
        "target": "prod",
        "ulimits": LIMIT,
    },
    "deploy": {
        "endpoint_mode": "dnsrr",
        "labels": {"com.example.a": "1"},
        "mode": "replicated",
        "placement": {"constraints": ["node.role==manager"]},
        "replicas": 2,
        "resources": {"limits": {"cpus": "0.5"}},
        "restart_policy": {"condition": "on-failure"},
        "rollback_config": {"parallelism": 1},
        "update_config": {"parallelism": 1},
    },
    "healthcheck": {
        "disable": True,
        "interval": "5s",
        "retries": 3,
        "start_interval": "1s",
        "start_period": "5s",
        "test": ["CMD", "true"],
        "timeout": "2s",
    },
    "service network": {
        "aliases": ["alias1"],
        "driver_opts": {"com.example.option": "1"},
        "gw_priority": 1,
        "interface_name": "eth1",
        "ipv4_address": "10.201.0.5",
        "ipv6_address": "fd00:201::5",
        "link_local_ips": ["169.254.8.8"],
        "mac_address": "02:42:ac:11:00:02",
        "priority": 10,
    },
    "service volume": {
        "bind": {"propagation": "rprivate"},
        "consistency": "cached",
        "image": {"subpath": "bin"},
        "read_only": True,
        "source": "data",
        "target": "/data",
        "tmpfs": {"size": 1000000},
        "type": "volume",
        "volume": {"nocopy": True},
    },
    "service port": {
        "app_protocol": "http",
        "host_ip": "127.0.0.1",
        "mode": "host",
        "name": "web",
        "protocol": "tcp",
        "published": "8080",
        "target": 80,
    },
    "depends_on": {"condition": "service_started", "required": False, "restart": True},
    "env_file": {"format": "raw", "path": "app.env", "required": True},
    "network": {
        "attachable": True,
        "driver": "bridge",
        "driver_opts": {"com.docker.network.bridge.enable_icc": "true"},
        "enable_ipv4": True,
        "enable_ipv6": True,
        "external": True,
        "internal": True,
        "ipam": {"config": [{"subnet": "10.202.0.0/24"}]},
        "labels": {"com.example.a": "1"},
        "name": "fixed-name",
    },
    "ipam": {"config": [{"subnet": "10.203.0.0/24"}], "driver": "default", "options": {"foo": "bar"}},
    "ipam config": {
        "aux_addresses": {"host1": "10.204.0.5"},
        "gateway": "10.204.0.1",
        "ip_range": "10.204.0.128/25",
        "subnet": "10.204.0.0/24",
    },
    "volume": {
        "driver": "local",
        "driver_opts": {"type": "tmpfs", "device": "tmpfs"},
        "external": True,
        "labels": {"com.example.a": "1"},
        "name": "fixed-name",
    },
    "secret": {
        "driver": "sample",
        "driver_opts": {"a": "1"},
        "environment": "DNT_SAMPLE_SECRET",
        "external": True,
        "file": "./secret.txt",
        "labels": {"com.example.a": "1"},
        "name": "fixed-name",
        "template_driver": "golang",
    },
    "config": {
        "content": "hello",
        "environment": "DNT_SAMPLE_SECRET",
        "external": True,
        "file": "./config.txt",
        "labels": {"com.example.a": "1"},
        "name": "fixed-name",
        "template_driver": "golang",
    },
}
# What a key needs beside it: the service or definition it names.
NEEDS: dict[tuple[str, str], dict[str, Any]] = {
    ("service", "configs"): {"configs": {"c": {"file": "./config.txt"}}},
    ("service", "secrets"): {"secrets": {"s": {"file": "./secret.txt"}}},
    ("build", "secrets"): {"secrets": {"s": {"file": "./secret.txt"}}},
    ("service", "models"): {"models": {"m": {"model": "ai/smollm2"}}},
    ("service", "volumes"): {"volumes": {"data": {}}},
}
# The file's own sources ({} for none), from which each key's file is made.
SOURCES = {"secret": {"file": "./secret.txt"}, "config": {"file": "./config.txt"}}
WHERE = {  # where the section's mapping goes, and the path its ignored keys are listed under
    "build": "services.app.build",
    "deploy": "services.app.deploy",
    "healthcheck": "services.app.healthcheck",
    "service network": "services.app.networks.net",
    "service volume": "services.app.volumes[0]",
    "service port": "services.app.ports[0]",
    "depends_on": "services.app.depends_on.other",
    "env_file": "services.app.env_file[0]",
    "network": "networks.net",
    "ipam": "networks.net.ipam",
    "ipam config": "networks.net.ipam.config[0]",
    "volume": "volumes.data",
    "secret": "secrets.s",
    "config": "configs.c",
}


def document(section: str, key: str) -> tuple[dict[str, Any], str]:
    """A file with ``key`` of ``section`` set to its sample, and the path of the key's
    mapping (where an ignored key is listed)."""
    value = SAMPLES[section][key]
    doc: dict[str, Any] = {"services": {"app": {"image": "busybox"}, "other": {"image": "busybox"}}}
    app = doc["services"]["app"]
    for part, more in NEEDS.get((section, key), {}).items():
        doc[part] = more
    if section == "top":
        doc[key] = value
        return doc, ""
    if section == "service":
        app[key] = value
        return doc, "services.app"
    entry = {key: value}
    if section == "build":
        app["build"] = {"context": ".", **entry}
    elif section == "deploy":
        app["deploy"] = entry
    elif section == "healthcheck":
        app["healthcheck"] = {"test": ["CMD", "true"], **entry}
    elif section == "service network":
        app["networks"] = {"net": entry}
        subnets = [{"subnet": "10.201.0.0/24"}] + ([{"subnet": "fd00:201::/64"}] if key == "ipv6_address" else [])
        doc["networks"] = {"net": {"enable_ipv6": True, "ipam": {"config": subnets}}}
    elif section == "service volume":
        base = {"type": "volume", "source": "data", "target": "/data"}
        if key == "bind":
            base = {"type": "bind", "source": ".", "target": "/src"}
        elif key == "tmpfs":
            base = {"type": "tmpfs", "target": "/run"}
        app["volumes"] = [{**base, **entry}]
        doc["volumes"] = {"data": {}}
    elif section == "service port":
        app["ports"] = [{"target": 80, **entry}]
    elif section == "depends_on":
        app["depends_on"] = {"other": {"condition": "service_started", **entry}}
    elif section == "env_file":
        app["env_file"] = [{"path": "app.env", **entry}]
    elif section in ("network", "ipam", "ipam config"):
        network: dict[str, Any] = entry
        if section == "ipam":
            network = {"ipam": entry}
        elif section == "ipam config":
            network = {"ipam": {"config": [{"subnet": "10.204.0.0/24", **entry}]}}
        doc["networks"] = {"net": network}
        app["networks"] = ["net"]
    elif section == "volume":
        doc["volumes"] = {"data": entry}
        app["volumes"] = ["data:/data"]
    else:  # secret, config: a file source unless the key is another source
        source = {} if key in ("file", "environment", "external", "content") else SOURCES[section]
        doc[f"{section}s"] = {section[0]: {**source, **entry}}
    return doc, WHERE[section]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with the files the samples name."""
    for name in [k for k in os.environ if k.startswith("DNT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DNT_SAMPLE_SECRET", "s3cret")
    for name, text in {
        "Dockerfile": "FROM scratch AS prod\n",
        "app.env": "A=1\n",
        "app.labels": "com.example.a=1\n",
        "secret.txt": "s3cret\n",
        "config.txt": "setting=1\n",
        "spec.json": "{}\n",
        "other.yaml": "services:\n  included: {image: busybox}\n",
    }.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "extra").mkdir()
    (tmp_path / "src").mkdir()
    return tmp_path


ROWS = [(section, key) for section, keys in KEYS.items() for key in keys]


def test_the_table_lists_exactly_the_schemas_keys():
    assert list(KEYS) == list(SCHEMA_KEYS)
    for section, schema in SCHEMA_KEYS.items():
        assert sorted(KEYS[section]) == sorted(schema["properties"]), section
    assert sorted(SAMPLES) == sorted(KEYS) and all(sorted(SAMPLES[s]) == sorted(KEYS[s]) for s in KEYS)


@pytest.mark.parametrize("section, key", ROWS, ids=[f"{s}.{k}" for s, k in ROWS])
def test_each_key_does_what_its_row_says(project, section, key):
    row = KEYS[section][key]
    doc, path = document(section, key)
    file = project / "compose.yaml"
    file.write_text(json.dumps(doc))
    listed = f"{path}.{key} (" if path else f"{key} ("
    if row.status == REFUSED:
        with pytest.raises(ComposeError) as refused:
            load(file)
        message = str(refused.value)
        assert any(f"{before}{key}{after}" in message for before, after in (("'", "'"), (".", " "), ("", ":"))), message
        assert row.why and row.why in message, message
        assert "did you mean" not in message
        return
    model = load(file)
    mine = [entry for entry in model.ignored if entry.startswith(listed)]
    if row.status == SUPPORTED:
        assert mine == [], model.ignored
    else:
        assert row.status == IGNORED
        assert mine == [f"{listed}{row.why})"], model.ignored


def test_a_key_outside_the_specification_gets_a_did_you_mean(project):
    file = project / "compose.yaml"
    file.write_text(json.dumps({"services": {"app": {"image": "busybox", "read_olny": True}}}))
    with pytest.raises(ComposeError, match=r"key 'read_olny' of service 'app' is not supported .*did you mean"):
        load(file)


def test_the_docs_show_the_table():
    page = (ROOT / "docs" / "compose.md").read_text()
    start, end = "<!-- spec-keys: start -->\n", "<!-- spec-keys: end -->"
    assert start in page and end in page, "docs/compose.md lost its key table's markers"
    shown = page[page.index(start) + len(start) : page.index(end)]
    assert shown.strip() == markdown().strip(), (
        "docs/compose.md's key table differs from compose/spec_keys.py's: run scripts/sync-compose-keys"
    )


# -- the keys that are one engine option each, on a real engine ----------------------------------


def test_one_option_keys_reach_the_processes(dockernet, tmp_path):
    """read_only, cap_drop, security_opt, group_add and domainname, as the container's
    processes see them (and a service without them, as it was)."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  locked:\n"
        "    image: ${PROBE_IMAGE}\n"
        "    read_only: true\n"
        "    cap_drop: [CHOWN]\n"
        "    security_opt: ['no-new-privileges:true']\n"
        "    group_add: ['4242', 27]\n"
        "    domainname: example.internal\n"
        "  plain:\n"
        "    image: ${PROBE_IMAGE}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    locked, plain = stack["locked"], stack["plain"]
    script = (
        "touch /x 2>/dev/null && echo writable; cat /proc/self/status; echo groups $(id -G); "
        "echo domain $(cat /proc/sys/kernel/domainname)"
    )

    def seen(container):
        code, output = container.exec(["sh", "-c", script])
        assert code == 0, output
        status = dict(line.split(":\t", 1) for line in output.splitlines() if ":\t" in line)
        groups = next(line for line in output.splitlines() if line.startswith("groups ")).split()[1:]
        chown = int(status["CapBnd"], 16) & 1  # CAP_CHOWN is capability 0
        domain = next(line for line in output.splitlines() if line.startswith("domain ")).partition(" ")[2]
        return "writable" in output.split(), chown, status["NoNewPrivs"].strip(), groups, domain

    assert seen(locked) == (False, 0, "1", ["0", "27", "4242"], "example.internal")
    writable, chown, no_new_privileges, groups, domain = seen(plain)
    assert (writable, chown, no_new_privileges, groups) == (True, 1, "0", ["0"]) and domain != "example.internal"


NAMESPACE_LINES = ("pid", "ipc", "cgroup", "processes")


def test_namespace_keys_reach_the_processes(dockernet, tmp_path):
    """pid, ipc and cgroup: the machine's namespace where the file says host (two such
    containers share it), a namespace of the container's own where it says private."""
    (tmp_path / "compose.yaml").write_text(
        "x-host: &host {image: '${PROBE_IMAGE}', pid: host, ipc: host, cgroup: host, userns_mode: host}\n"
        "services:\n"
        "  host-one: *host\n"
        "  host-two: *host\n"
        "  private: {image: '${PROBE_IMAGE}', ipc: private, cgroup: private}\n"
        "  plain: {image: '${PROBE_IMAGE}'}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    script = (
        "for ns in pid ipc cgroup; do echo $ns $(readlink /proc/self/ns/$ns); done; "
        "echo processes $(ls /proc | grep -c '^[0-9]')"
    )

    def seen(service):
        code, output = stack[service].exec(["sh", "-c", script])
        assert code == 0, output
        found = dict(line.split(" ", 1) for line in output.splitlines() if line.split(" ")[0] in NAMESPACE_LINES)
        assert sorted(found) == sorted(NAMESPACE_LINES), output
        return {**found, "processes": int(found["processes"])}

    one, two, private, plain = (seen(s) for s in ("host-one", "host-two", "private", "plain"))
    assert [one[k] for k in ("pid", "ipc", "cgroup")] == [two[k] for k in ("pid", "ipc", "cgroup")]
    assert one["pid"] != plain["pid"] and one["ipc"] != plain["ipc"] != private["ipc"]
    assert private["cgroup"] != one["cgroup"]
    assert one["processes"] > plain["processes"]  # the machine's processes, beside the container's few


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("pid", "service:db", "services.app.pid: 'service:db': sharing another container's pid namespace is not "
                              "carried out by compose(); it takes host"),
        ("ipc", "container:db", "services.app.ipc: 'container:db': sharing another container's ipc namespace"),
        ("cgroup", "shared", "services.app.cgroup: 'shared' is not one of host, private"),
        ("userns_mode", "private", "services.app.userns_mode: 'private' is not one of host"),
        ("group_add", [True], "services.app.group_add[0]: True is not a group name or id"),
        ("domainname", "a..b", "services.app.domainname: 'a..b' is not a domain name"),
        ("read_only", "yes", "services.app.read_only must be true or false, got 'yes'"),
        ("security_opt", [["a"]], "services.app.security_opt[0] must be an option such as no-new-privileges:true"),
    ],
)  # fmt: skip
def test_one_option_keys_are_checked(project, key, value, message):
    file = project / "compose.yaml"
    file.write_text(json.dumps({"services": {"app": {"image": "busybox", key: value}}}))
    with pytest.raises(ComposeError) as refused:
        load(file)
    assert f"{file}: {message}" in str(refused.value)


def test_networks_are_joined_highest_priority_first(project):
    file = project / "compose.yaml"
    networks = {"a": {}, "b": {"priority": 10}, "c": {"priority": 100}, "d": None}
    file.write_text(
        json.dumps({"services": {"app": {"image": "busybox", "networks": networks}}, "networks": dict.fromkeys("abcd")})
    )
    assert list(load(file).services["app"].networks) == ["c", "b", "a", "d"]


def test_volumes_from_mounts_another_services_volumes(dockernet, tmp_path):
    """volumes_from: the source's named and anonymous volumes at the same paths, read-only
    with :ro; the source starts first."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  reader: {image: '${PROBE_IMAGE}', volumes_from: ['store:ro']}\n"
        "  writer: {image: '${PROBE_IMAGE}', volumes_from: [store]}\n"
        "  store: {image: '${PROBE_IMAGE}', volumes: ['data:/data', /scratch]}\n"
        "volumes:\n"
        "  data: {}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    assert stack["writer"].exec(["sh", "-c", "echo one > /data/x && echo two > /scratch/y"]) == (0, "")
    assert stack["store"].exec(["cat", "/data/x", "/scratch/y"]) == (0, "one\ntwo\n")
    assert stack["reader"].exec(["cat", "/data/x", "/scratch/y"]) == (0, "one\ntwo\n")
    code, output = stack["reader"].exec(["sh", "-c", "echo three > /data/x"])
    assert code != 0 and "Read-only file system" in output, output


@pytest.mark.parametrize(
    "entry, message",
    [
        ("container:db", "services.app.volumes_from[0]: 'container:db': a container outside the file's services"),
        ("other:rx", "services.app.volumes_from[0]: 'other:rx': the mode after the service is ro or rw"),
        ("ghost", "services.app.volumes_from: service 'ghost' is not defined in the file"),
    ],
)
def test_volumes_from_names_a_service_of_the_file(project, entry, message):
    file = project / "compose.yaml"
    services = {"app": {"image": "busybox", "volumes_from": [entry]}, "other": {"image": "busybox"}}
    file.write_text(json.dumps({"services": services}))
    with pytest.raises(ComposeError) as refused:
        load(file)
    assert f"{file}: {message}" in str(refused.value)


def test_label_file_labels_and_labels_win(project):
    (project / "more.labels").write_text("# the team's labels\ncom.example.a=2\ncom.example.b=${DNT_SAMPLE_SECRET}\n")
    file = project / "compose.yaml"
    for label_file, expected in (("app.labels", "1"), (["app.labels", "more.labels"], "2")):
        service = {"image": "busybox", "label_file": label_file, "labels": {"com.example.c": "3"}}
        file.write_text(json.dumps({"services": {"app": service}}))
        labels = load(file).services["app"].labels
        assert labels["com.example.a"] == expected and labels["com.example.c"] == "3", labels
    assert labels["com.example.b"] == "s3cret"  # variables substituted as in env files
    service["labels"] = {"com.example.a": "from labels"}
    file.write_text(json.dumps({"services": {"app": service}}))
    assert load(file).services["app"].labels["com.example.a"] == "from labels"


@pytest.mark.parametrize(
    "label_file, text, message",
    [
        ("missing.labels", None, "services.app.label_file[0]: 'missing.labels': no such file"),
        (["own.labels"], "pytest-dockernet.run=x\n", "services.app.label_file.pytest-dockernet.run: labels starting"),
        ([7], None, "services.app.label_file[0]: each entry must be the path of a file of KEY=VALUE lines, got 7"),
    ],
)
def test_label_file_is_checked(project, label_file, text, message):
    if text is not None:
        (project / label_file[0]).write_text(text)
    file = project / "compose.yaml"
    file.write_text(json.dumps({"services": {"app": {"image": "busybox", "label_file": label_file}}}))
    with pytest.raises(ComposeError) as refused:
        load(file)
    assert f"{file}: {message}" in str(refused.value)


def test_an_ipv6_only_network_is_refused_saying_why(project):
    file = project / "compose.yaml"
    document = {"services": {"app": {"image": "busybox", "networks": ["v6"]}}, "networks": {"v6": {}}}
    document["networks"]["v6"] = {"enable_ipv4": False, "enable_ipv6": True}
    file.write_text(json.dumps(document))
    with pytest.raises(ComposeError) as refused:
        load(file)
    assert f"{file}: networks.v6.enable_ipv4: False: a test's networks always have IPv4 (an IPv6-only network " in str(
        refused.value
    )


def test_stdin_open_keeps_the_commands_stdin_open(dockernet, tmp_path):
    """A command that reads its stdin waits under stdin_open: true (a pipe nobody writes
    to), as under docker compose up; without it, stdin is /dev/null."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  waits: {image: '${PROBE_IMAGE}', stdin_open: true, command: [sh, -c, 'read line; echo ended; sleep 60']}\n"
        "  plain: {image: '${PROBE_IMAGE}', command: [sleep, '60']}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    code, output = stack["waits"].exec(["sh", "-c", "readlink /proc/1/fd/0"])
    assert code == 0 and output.startswith("pipe:"), output
    assert "ended" not in stack["waits"].logs()
    assert stack["plain"].exec(["readlink", "/proc/1/fd/0"]) == (0, "/dev/null\n")


def test_docker_options_take_stdin_open_true_only(dockernet):
    with pytest.raises(ValueError, match=r"docker_options\['stdin_open'\] is managed by the plugin: .*only True"):
        dockernet.container("c", docker_options={"stdin_open": False})


@pytest.fixture
def outside_volume(dockernet_client):
    """A volume made outside the test (as an external one is), removed after the topology."""
    volume = dockernet_client.volumes.create(f"dnt-spec-keys-{uuid.uuid4().hex[:12]}")
    yield volume.name
    deadline = time.monotonic() + 60
    while True:  # the topology's containers go in the background, after the test
        try:
            volume.remove(force=True)
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_an_external_volumes_name_is_the_volume_used(outside_volume, dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  app: {image: '${PROBE_IMAGE}', volumes: ['data:/data']}\n"
        f"volumes:\n  data: {{external: true, name: {outside_volume}}}\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    assert stack.volumes == {"data": outside_volume} and not [i for i in stack.ignored if i.startswith("volumes.")]
    assert stack["app"].exec(["sh", "-c", "echo kept > /data/x"]) == (0, "")
    mounts = dockernet.client.api.inspect_container(stack["app"].id)["Mounts"]
    assert [m["Name"] for m in mounts if m["Destination"] == "/data"] == [outside_volume]
