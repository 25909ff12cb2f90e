"""Compose input that must not hurt, without an engine: alias bombs and self-referencing
anchors refused before anything is expanded, a key given twice refused, and every shape
error a ComposeError naming the file, the service and the key path."""

from __future__ import annotations

import json
import re
import textwrap
import tracemalloc

import pytest

from pytest_dockernet.compose.file import load
from pytest_dockernet.compose.values import MAX_PORTS, Mount
from pytest_dockernet.compose.yaml import ALIAS_FLOOR, MAX_DEPTH
from pytest_dockernet.errors import ComposeError


def write(tmp_path, text, name="compose.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text) if isinstance(text, str) else json.dumps(text))
    return path


def refused(path, message):
    """load(path) raises a ComposeError whose message starts with the file and ``message``."""
    with pytest.raises(ComposeError) as raised:
        load(path)
    assert type(raised.value) is ComposeError
    assert str(raised.value).startswith(f"{path}: {message}"), str(raised.value)
    return str(raised.value)


# -- aliases ----------------------------------------------------------------------------


def laughs(levels: int, fan_out: int = 10) -> str:
    """The "billion laughs": each anchor is ``fan_out`` aliases of the one before."""
    lines = ["x-l0: &l0 [" + ", ".join(["lol"] * fan_out) + "]"]
    lines += [f"x-l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan_out) + "]" for i in range(1, levels + 1)]
    lines += [
        "services:",
        "  api:",
        "    image: busybox",
        "    command: [sh, -c, echo]",
        f"    labels: {{a: *l{levels}}}",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [4, 6, 9])
def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path, levels):
    """Before: 6 levels took 7 s and 500 MB, 9 ran out of memory."""
    path = write(tmp_path, laughs(levels))
    assert path.stat().st_size < 1024
    tracemalloc.start()
    try:
        message = refused(path, "excessive aliasing: its YAML aliases expand to more than")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"(the anchor &l3 alone to more than {ALIAS_FLOOR:,})" in message  # the first one past the bound
    assert peak < 20 * 2**20  # refused from the node graph, never expanded


def test_anchors_merge_keys_and_a_shared_block_within_the_bound_still_load(tmp_path):
    spec = {f"s{i}": f"<<: *base\n    hostname: h{i}" for i in range(40)}
    text = "x-base: &base\n  image: busybox\n  environment: &env {A: '1', B: '2'}\n  labels: {tier: back}\n"
    text += "x-more: &more {labels: {tier: front}, privileged: true}\nservices:\n"
    text += "".join(f"  {name}:\n    {body}\n" for name, body in spec.items())
    text += "  web:\n    <<: [*more, *base]\n    environment: *env\n    image: web\n"
    model = load(write(tmp_path, text))
    assert len(model.services) == 41 and model.services["s7"].hostname == "h7"
    web = model.services["web"]
    assert (web.image, web.labels, web.privileged, web.environment) == ("web", {"tier": "front"}, True,
                                                                       {"A": "1", "B": "2"})  # fmt: skip
    # Under the bound: an anchor of 993 nodes used eight times more (about 9,000 in all).
    text = laughs(1, fan_out=31).replace("labels: {a: *l1}", "labels: {a: '1'}")
    big = write(tmp_path, text + "x-use: [" + ", ".join(["*l1"] * 8) + "]\n", "big.yaml")
    assert load(big).services["api"].labels == {"a": "1"}
    over = write(tmp_path, text + "x-use: [" + ", ".join(["*l1"] * 10) + "]\n", "over.yaml")
    refused(over, f"excessive aliasing: its YAML aliases expand to more than {ALIAS_FLOOR:,} nodes")


@pytest.mark.parametrize(
    "text, where",
    [
        ("x-a: &a [1, *a]\n", "x-a[1]"),
        ("x-a: &a {b: {c: *a}}\n", "x-a.b.c"),
        ("x-a: &a {<<: *a, b: 1}\n", "x-a.<<"),
    ],
)
def test_an_alias_inside_its_own_anchor_is_refused(tmp_path, text, where):
    """Before: RecursionError."""
    path = write(tmp_path, text + "services:\n  api: {image: busybox}\n")
    refused(path, f"{where}: the alias *a is inside the value of its own anchor &a (line 1): it would expand")


def test_variables_that_repeat_variables_are_bounded(tmp_path):
    """The same bomb through .env: each variable ten of the one before."""
    lines = ["A0=xxxxxxxxxx"] + [f"A{i}=" + f"${{A{i - 1}}}" * 10 for i in range(1, 10)]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    path = write(tmp_path, "services:\n  api: {image: busybox, environment: {X: '${A9}'}}\n")
    with pytest.raises(ComposeError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{tmp_path / '.env'}, line 7: the value comes to more than 1,048,576")
    (tmp_path / "other").mkdir()
    big = write(tmp_path / "other", "services:\n  api: {image: busybox, environment: {X: '$B$B'}}\n")
    with pytest.raises(ComposeError, match=re.escape(f"{big}: services.api.environment.X: '$B$B' comes to more")):
        load(big, env={"B": "x" * 600_000})


def test_nesting_is_bounded(tmp_path):
    deep = "[" * 5000 + "]" * 5000
    path = write(tmp_path, f"services:\n  api: {{image: busybox, command: {deep}}}\n")
    refused(path, f"line 2: the YAML nests more than {MAX_DEPTH} levels deep")


def test_a_file_that_is_not_text_is_refused_naming_it(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_bytes(b"services:\n  api: {image: \xff\xfe}\n")
    refused(path, "not a text file in UTF-8 (byte 25)")


# -- keys given twice -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("services:\n  api:\n    image: a\n    image: b\n", "services.api.image is given twice (lines 3 and 4)"),
        ("services:\n  api: {image: a}\nservices:\n  db: {image: b}\n", "services is given twice (lines 1 and 3)"),
        ("services:\n  api:\n    image: a\n    ports: [{target: 80, target: 81}]\n",
         "services.api.ports[0].target is given twice (lines 4 and 4)"),
        ("services:\n  api: {image: a, environment: {A: '1', A: '2'}}\n",
         "services.api.environment.A is given twice (lines 2 and 2)"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused(tmp_path, text, message):
    """Before: the last value won silently."""
    refused(write(tmp_path, text), message + ": Compose refuses a key repeated in one mapping")


def test_a_merged_key_may_be_overridden(tmp_path):
    path = write(tmp_path, "x-b: &b {image: a, tty: true}\nservices:\n  api:\n    <<: *b\n    image: b\n")
    assert load(path).services["api"].image == "b"


# -- every shape error names file, service and key path ---------------------------------


def api(tmp_path, spec, extra=None):
    return write(tmp_path, {"services": {"api": {"image": "busybox", **spec}}, **(extra or {})})


BACK = {"networks": {"back": {"ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}, "bare": {}}}


@pytest.mark.parametrize(
    "spec, extra, message",
    [
        # ports: [{target: abc}] was a bare ValueError
        ({"ports": [{"target": "abc"}]}, None, "services.api.ports[0].target: 'abc' is not a port"),
        ({"ports": ["80", {"target": 80, "protocol": "icmp"}]}, None, "services.api.ports[1].protocol: 'icmp'"),
        ({"ports": [{"target": 80, "host_ip": "localhost"}]}, None, "services.api.ports[0].host_ip: 'localhost'"),
        ({"ports": ["abc:80"]}, None, "services.api.ports[0]: 'abc:80' is not"),
        # networks: [{x: {}}] and depends_on: [{x: {}}] were TypeError: unhashable type: 'dict'
        ({"networks": [{"back": {}}]}, BACK, "services.api.networks[0]: {'back': {}} is not a network name"),
        ({"depends_on": [{"db": {}}]}, None, "services.api.depends_on[0]: {'db': {}} is not a service name"),
        # bad ipv4_address, alias, expose, healthcheck.retries failed later in container()
        ({"networks": {"back": {"ipv4_address": "10.9.0.300"}}}, BACK,
         "services.api.networks.back.ipv4_address: '10.9.0.300' is not an IPv4 address"),
        ({"networks": {"back": {"ipv4_address": "10.8.0.5"}}}, BACK,
         "services.api.networks.back.ipv4_address: '10.8.0.5' is not in the network's subnet 10.9.0.0/24"),
        ({"networks": {"back": {"ipv4_address": "10.9.0.1"}}}, BACK,
         "services.api.networks.back.ipv4_address: '10.9.0.1' is its gateway's address"),
        ({"networks": {"bare": {"ipv4_address": "10.9.0.5"}}}, BACK,
         "services.api.networks.bare.ipv4_address: '10.9.0.5': a fixed address needs a subnet"),
        ({"networks": {"back": {"aliases": ["ok", "not ok"]}}}, BACK,
         "services.api.networks.back.aliases[1]: 'not ok' is not a alias"),
        ({"expose": ["abc"]}, None, "services.api.expose[0]: 'abc' is not a port"),
        ({"expose": ["9000", "70000"]}, None, "services.api.expose[1]: '70000' is not a port"),
        ({"healthcheck": {"test": "true", "retries": "three"}}, None,
         "services.api.healthcheck.retries: 'three' is not a whole number"),
        ({"healthcheck": {"test": "true", "retries": -1}}, None, "services.api.healthcheck.retries: -1"),
        # read_only: "false" mounted read-only
        ({"volumes": [{"type": "bind", "source": ".", "target": "/x", "read_only": "false"}]}, None,
         "services.api.volumes[0].read_only must be true or false, got 'false'"),
        # volume mode flags were ignored
        ({"volumes": ["./a:/a:rox"]}, None, "services.api.volumes[0]: mode flag 'rox' is not one of ro, rw, z, Z"),
        ({"volumes": ["./a:/a:ro,rw"]}, None, "services.api.volumes[0]: mode 'ro,rw' says ro and rw"),
        ({"volumes": ["./a:/a:nocopy"]}, None, "services.api.volumes[0]: mode flag 'nocopy' is not one of"),
        ({"volumes": [{"type": "bind", "source": ".", "target": "/x", "bind": {"selinux": "q"}}]}, None,
         "services.api.volumes[0].bind.selinux: 'q' is not 'z' or 'Z'"),
        # ports: ['1-65535'] made 65,535 bindings
        ({"ports": ["1-65535"]}, None,
         f"services.api.ports[0]: '1-65535' is a range of 65,535 ports; compose() takes at most {MAX_PORTS}"),
        ({"ports": ["7000-7060", "8000-8060"]}, None,
         "services.api.ports[1]: with this entry the service has 122 ports; compose() takes at most"),
        ({"expose": ["1-65535"]}, None, "services.api.expose[0]: '1-65535' is a range of 65,535 ports"),
    ],
)  # fmt: skip
def test_a_shape_error_names_the_file_the_service_and_the_key_path(tmp_path, spec, extra, message):
    refused(api(tmp_path, spec, extra), message)


NET = {"back": {"ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}}


@pytest.mark.parametrize(
    "services, networks, message",
    [
        ({"api": {"network_mode": "service:vpn", "hostname": "a"}, "vpn": {}}, None,
         "services.api.hostname: a service in another service's network namespace (network_mode: service:vpn) "
         "cannot set hostname"),
        ({"api": {"network_mode": "service:vpn", "ports": ["80"]}, "vpn": {}}, None,
         "services.api.ports: a service in another service's network namespace (network_mode: service:vpn) cannot "
         "set ports; set it on 'vpn'"),
        ({"api": {"network_mode": "host", "hostname": "a"}}, None,
         "services.api.hostname: a service in the host network's network namespace"),
        ({"api": {"network_mode": "none", "links": ["db"]}, "db": {}}, None,
         "services.api.links: links work on the service's networks (or network_mode: bridge), not with "
         "network_mode: none"),
        ({"api": {"container_name": "x"}, "db": {"container_name": "x"}}, None,
         "services.db.container_name: 'x' is services.api's already"),
        ({"api": {"networks": {"back": {"ipv4_address": "10.9.0.5"}}},
          "db": {"networks": {"back": {"ipv4_address": "10.9.0.5"}}}}, NET,
         "services.db.networks.back.ipv4_address: '10.9.0.5' is services.api's already"),
        ({"api": {"networks": ["back", "front"]}},
         {**NET, "front": {"ipam": {"config": [{"subnet": "10.9.0.128/25"}]}}},
         "networks.front.ipam.config[0]: subnet 10.9.0.128/25 overlaps networks.back's 10.9.0.0/24"),
        ({"api": {"networks": ["back"]}}, {"back": {"ipam": {"config": [{"subnet": "10.9.0.0/33"}]}}},
         "networks.back.ipam.config[0]: subnet='10.9.0.0/33' is not a valid IPv4 network"),
        ({"api": {"networks": ["bad name"]}}, {"bad name": {}}, "networks: 'bad name' is not a network name"),
    ],
)  # fmt: skip
def test_what_the_engine_would_refuse_mid_way_is_refused_first(tmp_path, services, networks, message):
    document = {"services": {name: {"image": "busybox", **spec} for name, spec in services.items()}}
    refused(write(tmp_path, {**document, **({"networks": networks} if networks else {})}), message)


def test_a_wrong_env_file_is_named_by_line_not_echoed(tmp_path):
    """Before: its first line was shown (from /etc/passwd, a user's entry)."""
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    message = refused(api(tmp_path, {"env_file": ["passwd"]}), "services.api.env_file[0]: ")
    assert message.endswith(f"{tmp_path.resolve() / 'passwd'}, line 1: not a KEY=VALUE line (the line is not shown "
                            "here: an env file may hold secrets); is it an env file?")  # fmt: skip
    assert "root" not in message.replace(str(tmp_path), "")
    (tmp_path / "binary").write_bytes(b"A=1\n\x00\xff\n")
    refused(api(tmp_path, {"env_file": [{"path": "binary"}]}), "services.api.env_file[0].path: ")
    (tmp_path / "secret.env").write_text("A=1\nTOKEN=s3cr3t${\n")
    message = refused(api(tmp_path, {"env_file": "secret.env"}), "services.api.env_file[0]: ")
    assert "line 2: the value has an invalid variable name after '${'" in message and "s3cr3t" not in message


def test_volume_mode_flags_are_carried_to_the_container(tmp_path):
    volumes = [
        "./a:/a:z", "./b:/b:ro,Z,rshared", "data:/data:nocopy", "/scratch",
        {"type": "bind", "source": "./c", "target": "/c", "read_only": False, "bind": {"propagation": "slave"}},
        {"type": "volume", "source": "data", "target": "/d", "read_only": True, "volume": {"nocopy": True}},
    ]  # fmt: skip
    mounts = load(api(tmp_path, {"volumes": volumes}, {"volumes": {"data": {}}})).services["api"].mounts
    assert [m.mode() for m in mounts] == ["rw,z", "ro,Z,rshared", "rw,nocopy", "rw", "rw,slave", "ro,nocopy"]
    assert mounts[3] == Mount("anonymous", None, "/scratch")


def test_the_bound_on_ports_is_inclusive(tmp_path):
    service = load(api(tmp_path, {"ports": [f"127.0.0.1::8000-{8000 + MAX_PORTS - 1}"], "expose": ["9000-9001/udp"]}))
    assert len(service.services["api"].ports) == MAX_PORTS
    assert service.services["api"].expose == ["9000/udp", "9001/udp"]


# Values of the wrong shape for every key a service takes: each is refused with a
# ComposeError naming the key, or taken; never another exception, never later.
HOSTILE = [{"x": {}}, [{"x": {}}], ["a", {"b": 1}], "a b", -1, 3.5, True, "", [], [[]], "${", "1-65535", "abc:def"]
KEYS = ("image build command entrypoint environment env_file ports expose networks network_mode links depends_on "
        "healthcheck volumes user working_dir hostname container_name cap_add privileged labels tty init "
        "stop_signal").split()  # fmt: skip


@pytest.mark.parametrize("key", KEYS)
def test_hostile_values_of_every_key_are_refused_naming_the_key(tmp_path, key):
    outcomes = []
    for i, value in enumerate(HOSTILE):
        directory = tmp_path / str(i)
        directory.mkdir()
        path = write(directory, {"services": {"api": {"image": "busybox", key: value}}})
        try:
            load(path)
            outcomes.append("taken")
        except ComposeError as exc:
            assert re.match(rf"{re.escape(str(path))}: services\.api\.{key}\b", str(exc)), str(exc)
            outcomes.append("refused")
    assert "refused" in outcomes
