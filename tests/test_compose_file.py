"""Reading a Compose file without an engine: variables, .env, override merges, YAML scalars,
the key checks and the values handed to container()."""

import json
import os
import re
import textwrap
import warnings

import pytest
import yaml

from pytest_dockernet.compose.file import NetworkDef, load
from pytest_dockernet.compose.services import IGNORED
from pytest_dockernet.compose.values import Mount
from pytest_dockernet.errors import ComposeError


@pytest.fixture(autouse=True)
def _no_stray_test_variables(monkeypatch):
    for name in [k for k in os.environ if k.startswith("DNT_")]:
        monkeypatch.delenv(name)


def write(directory, document, name="compose.yaml"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    text = json.dumps(document) if isinstance(document, dict) else textwrap.dedent(document)
    path.write_text(text)
    return path


def load_doc(tmp_path, document, **kwargs):
    return load(write(tmp_path, document), **kwargs)


def web(tmp_path, **keys):
    return load_doc(tmp_path, {"services": {"web": {"image": "busybox", **keys}}}).services["web"]


def refused(tmp_path, document, message):
    path = write(tmp_path, document)
    with pytest.raises(ComposeError, match=re.escape(f"{path}: {message}")):
        load(path)


# -- interpolation ----------------------------------------------------------------------


def test_unset_variable_becomes_empty_with_one_warning_naming_it(tmp_path):
    path = write(tmp_path, {"services": {"web": {"image": "busybox${DNT_TAG}", "hostname": "h${DNT_TAG}"}}})
    with pytest.warns(UserWarning) as caught:
        model = load(path)
    assert (model.services["web"].image, model.services["web"].hostname) == ("busybox", "h")
    assert [str(w.message) for w in caught if "DNT_TAG" in str(w.message)] == [
        f"{path}: services.web.image: variable DNT_TAG is not set (env=, the environment, .env): it is "
        "replaced by an empty string, as Compose does; give a default with ${DNT_TAG:-default}"
    ]


def test_defaults_and_mapping_keys_are_not_warned_about_or_substituted(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        service = web(tmp_path, labels={"${DNT_KEY}": "${DNT_V:-v}"})
    assert service.labels == {"${DNT_KEY}": "v"}


# -- where values come from -------------------------------------------------------------


def test_env_argument_beats_environment_beats_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("DNT_A=dotenv\nDNT_B=dotenv\nDNT_C=dotenv\n")
    monkeypatch.setenv("DNT_B", "environ")
    monkeypatch.setenv("DNT_C", "environ")
    model = load_doc(tmp_path, {"services": {"web": {"image": "x-${DNT_A}-${DNT_B}-${DNT_C}"}}}, env={"DNT_C": "arg"})
    assert model.services["web"].image == "x-dotenv-environ-arg"


def test_project_dir_holds_dotenv_and_anchors_relative_paths(tmp_path):
    project = (tmp_path / "project").resolve()
    (project / "app").mkdir(parents=True)
    (project / ".env").write_text("DNT_TAG=project\n")
    (project / "web.env").write_text("FROM_FILE=1\n")
    spec = {"image": "web:${DNT_TAG}", "build": "./app", "env_file": "web.env", "volumes": ["./data:/data:ro"]}
    path = write(tmp_path / "files", {"services": {"web": spec}})
    (tmp_path / "files" / "app").mkdir()
    (tmp_path / "files" / ".env").write_text("DNT_TAG=beside-the-file\n")
    (tmp_path / "files" / "web.env").write_text("FROM_FILE=2\n")
    model = load(path, project_dir=project)
    service = model.services["web"]
    assert (model.name, model.project_dir, model.files) == ("project", project, [path.resolve()])
    assert service.image == "web:project"
    assert service.build.context == project / "app"
    assert service.environment == {"FROM_FILE": "1"}
    assert service.mounts == [Mount("bind", str(project / "data"), "/data", True)]
    beside = load(path).services["web"]
    assert (beside.image, beside.environment) == ("web:beside-the-file", {"FROM_FILE": "2"})
    assert beside.build.context == path.parent.resolve() / "app"


# -- override files ---------------------------------------------------------------------


def test_overrides_merge_in_order_as_compose_does(tmp_path):
    base = write(tmp_path, """\
    services:
      web:
        image: web:1
        command: [serve, --port, "80"]
        entrypoint: /bin/sh
        ports: ["8080:80"]
        expose: ["9000"]
        cap_add: [NET_ADMIN]
        environment: [A=1, B=2]
        labels: {tier: front}
        volumes: ["./a:/data", "cache:/cache"]
        healthcheck: {test: [CMD, "true"], interval: 5s}
        networks: [back]
    networks:
      back: {ipam: {config: [{subnet: 10.1.0.0/24}]}}
    volumes:
      cache:
    """)  # fmt: skip
    first = write(tmp_path, """\
    services:
      web:
        image: web:2
        command: [serve]
        entrypoint: [/entry]
        ports: ["8080:80", "8443:443"]
        expose: ["9000", "9001"]
        cap_add: [NET_ADMIN, NET_RAW]
        environment: {B: "20", C: "3"}
        labels: [role=api]
        volumes: [{type: bind, source: ./b, target: /data}]
        healthcheck: {interval: 10s}
      worker: {image: worker, networks: [back]}
    networks:
      back: {ipam: {config: [{subnet: 10.2.0.0/24}]}}
    """, "first.yaml")  # fmt: skip
    second = write(tmp_path, {"services": {"web": {"image": "web:3", "environment": ["C=30"]}}}, "second.yaml")
    model = load(base, override=[first, second])
    service = model.services["web"]
    assert model.files == [base.resolve(), first.resolve(), second.resolve()]
    assert list(model.services) == ["web", "worker"]
    assert service.image == "web:3"
    assert (service.command, service.entrypoint) == (["serve"], ["/entry"])
    assert service.ports == {"80/tcp": None, "443/tcp": None}
    assert (service.expose, service.cap_add) == (["9000", "9001"], ["NET_ADMIN", "NET_RAW"])
    assert service.environment == {"A": "1", "B": "20", "C": "30"}
    assert service.labels == {"tier": "front", "role": "api"}
    assert service.mounts == [Mount("volume", "cache", "/cache"), Mount("bind", str(tmp_path.resolve() / "b"), "/data")]
    assert service.healthcheck == {"test": ["CMD", "true"], "interval": 10.0}
    assert model.networks["back"].subnet == "10.2.0.0/24"


def test_override_of_build_keeps_a_short_form_context(tmp_path):
    (tmp_path / "app").mkdir()
    base = write(tmp_path, {"services": {"web": {"build": "./app"}}})
    override = write(tmp_path, {"services": {"web": {"build": {"dockerfile": "Dockerfile.test"}}}}, "o.yaml")
    build = load(base, override=[override]).services["web"].build
    assert (build.context, build.dockerfile) == ((tmp_path / "app").resolve(), "Dockerfile.test")


def test_override_does_not_repeat_an_exposed_port_written_as_a_number(tmp_path):
    base = write(tmp_path, "services:\n  web: {image: x, expose: [9000]}\n")
    override = write(tmp_path, "services:\n  web: {expose: ['9000']}\n", "o.yaml")
    assert load(base, override=[override]).services["web"].expose == ["9000"]


def test_a_single_override_path_is_accepted_and_a_missing_one_refused(tmp_path):
    base = write(tmp_path, {"services": {"web": {"image": "a"}}})
    override = write(tmp_path, "services:\n  web:\n    image: b\n", "o.yaml")
    assert load(base, override=str(override)).services["web"].image == "b"
    with pytest.raises(ComposeError, match=r"compose\(\): override='nope.yaml': no such file"):
        load(base, override=["nope.yaml"])


# -- YAML -------------------------------------------------------------------------------


def test_yaml_1_2_scalars(tmp_path):
    text = """\
    x-base: &base
      image: busybox
    services:
      web:
        <<: *base
        privileged: true
        tty: False
        environment: {A: yes, B: no, C: on, D: off, E: true, F: 22:22, G: 010, H: 0x10}
        labels: {port: 22:22}
        ports: [22:22]
    """
    service = load_doc(tmp_path, text).services["web"]
    assert service.environment == {"A": "yes", "B": "no", "C": "on", "D": "off", "E": "true", "F": "22:22",
                                   "G": "8", "H": "16"}  # fmt: skip
    assert service.labels == {"port": "22:22"}
    assert service.ports == {"22/tcp": None}
    assert (service.privileged, service.docker_options) == (True, {"tty": False})
    assert yaml.safe_load("a: yes") == {"a": True}  # the plain SafeLoader is left as it was


# -- checks -----------------------------------------------------------------------------


def test_ignored_keys_are_collected(tmp_path):
    model = load_doc(tmp_path, """\
    version: "3.8"
    x-common: {anything: [1, 2]}
    services:
      web:
        image: x
        restart: always
        logging: {driver: json-file}
        deploy: {resources: {limits: {cpus: "0.5"}}}
        x-note: kept out of the way
        depends_on: {db: {condition: service_started, restart: true}}
        networks: [back]
      db: {image: y, networks: [back]}
    networks:
      back: {name: fixed-name}
    """)  # fmt: skip
    assert model.ignored == [
        "networks.back.name (the engine's name: a test's networks get unique names of their own)",
        *(f"services.web.{key} ({IGNORED[key]})" for key in ("restart", "logging")),
        "services.web.depends_on.db.restart (the test restarts containers itself)",
        "services.web.deploy.resources (resource limits are not applied)",
    ]
    assert list(model.networks) == ["back"]


@pytest.mark.parametrize(
    "document, message",
    [
        ({"services": {"web": {"image": "x", "devices": ["/dev/null:/dev/sample"]}}},
         "services.web: key 'devices' of service 'web' is not supported by pytest-dockernet's compose(): "
         "the machine's devices are not passed into a test's containers"),
        ({"services": {"web": {"imgae": "x"}}},
         "services.web: key 'imgae' of service 'web' is not supported by pytest-dockernet's compose() "
         "(did you mean 'image'?)"),
        ("services:\n  web:\n    image: x\n    privileged: yes\n",
         "services.web.privileged must be true or false, got 'yes'"),
        ({"services": {"web": {"image": "${DNT_IMAGE:?pick an image}"}}},
         "services.web.image: variable DNT_IMAGE is unset: pick an image"),
        ({"services": {"web": {"image": "x", "deploy": {"replica": 2}}}},
         "services.web.deploy: key 'replica' of deploy is not supported by pytest-dockernet's compose() (did you "
         "mean 'replicas'?); supported: endpoint_mode, mode, replicas"),
        ({"services": {"web": {"image": "x", "networks": ["out"]}}, "networks": {"out": {"external": True}}},
         "networks.out: external: true is not supported: a test's networks are its own, made and removed by the test"),
        ({"services": {"a": {"image": "x", "depends_on": ["b"]}, "b": {"image": "x", "links": ["a"]}}},
         "services depend on each other in a cycle: a -> b -> a"),
        ({"services": {"api": {"image": "x", "depends_on": ["db"]}}},
         "services.api.depends_on: service 'db' is not defined in the file"),
        ({"services": {"api": {"image": "x", "network_mode": "service:vpn"}}},
         "services.api.network_mode: service 'vpn' is not defined in the file"),
        ({"services": {"web": {"image": "x", "networks": ["back"]}}},
         "services.web.networks: network 'back' is not defined under the top-level 'networks:'"),
        ({"services": {"web": {"image": "x", "volumes": ["data:/data"]}}},
         "services.web.volumes: volume 'data' is not defined under the top-level 'volumes:'"),
        ({"services": {"web": {"image": "x", "network_mode": "host", "networks": ["default"]}}},
         "services.web: network_mode and networks cannot both be set (as under Compose)"),
        ({"services": {"web": {"image": "x", "network_mode": "container:ghost"}}},
         "services.web.network_mode: 'container:ghost': no service of this file is named or has container_name "
         "'ghost'"),
        ({"services": {"web": {"command": "true"}}}, "services.web: give the service an 'image:' or a 'build:'"),
        ({"services": {}}, "the file defines no services"),
        ({"services": {"web": {"image": "x"}}, "secret": {}},
         "key 'secret' of top level is not supported by pytest-dockernet's compose() (did you mean 'secrets'?)"),
    ],
)  # fmt: skip
def test_refused(tmp_path, document, message):
    refused(tmp_path, document, message)


def test_network_mode_container_is_resolved_by_container_name(tmp_path):
    document = (
        "services:\n  db: {image: x, container_name: the-db}\n  app: {image: x, network_mode: 'container:the-db'}"
    )
    app = load_doc(tmp_path, document).services["app"]
    assert (app.network_mode, app.shares, app.requires()) == ("container:the-db", "db", ["db"])


def test_optional_dependencies(tmp_path):
    depends = {"ghost": {"required": False}, "db": {"condition": "service_healthy", "required": False}}
    document = {"services": {"api": {"image": "x", "depends_on": depends}, "db": {"image": "x"}}}
    assert load_doc(tmp_path, document).services["api"].depends_on == {"db": "service_healthy"}


# -- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("8080:80", {"80/tcp": None}),
        ("127.0.0.1:8080:80/udp", {"80/udp": ("127.0.0.1",)}),
        ("[::1]::80", {"80/tcp": ("::1",)}),
        ("80", {"80/tcp": None}),
        (80, {"80/tcp": None}),
        ("9000-9001:9000-9001", {"9000/tcp": None, "9001/tcp": None}),
        ({"target": 53, "published": 5353, "protocol": "udp", "host_ip": "127.0.0.1"}, {"53/udp": ("127.0.0.1",)}),
        ({"target": 80, "published": "8080"}, {"80/tcp": None}),
    ],
)
def test_ports(tmp_path, entry, expected):
    assert web(tmp_path, ports=[entry]).ports == expected


def test_one_port_published_twice(tmp_path):
    assert web(tmp_path, ports=["8080:80", "127.0.0.1:8081:80"]).ports == {"80/tcp": [None, ("127.0.0.1",)]}


@pytest.mark.parametrize(
    "entry, message",
    [("80:http", "'80:http' is not [[host_ip:]host_port:]container_port[/protocol]"),
     ("0", "'0' is not a port or a range of ports (1-65535)"),
     ({"published": 80}, "{'published': 80} needs 'target'")],
)  # fmt: skip
def test_bad_ports(tmp_path, entry, message):
    refused(tmp_path, {"services": {"web": {"image": "x", "ports": [entry]}}}, f"services.web.ports[0]: {message}")


def test_volumes(tmp_path):
    root = tmp_path.resolve()
    model = load_doc(tmp_path, """\
    services:
      web:
        image: x
        volumes:
          - ./conf:/etc/conf:ro
          - /srv:/srv
          - data:/data
          - /cache
          - {type: bind, source: logs, target: /logs, read_only: true}
          - {type: volume, target: /tmp/scratch}
    volumes:
      data: {driver: local, labels: [a=1]}
    """)  # fmt: skip
    assert model.services["web"].mounts == [
        Mount("bind", str(root / "conf"), "/etc/conf", True),
        Mount("bind", "/srv", "/srv"),
        Mount("volume", "data", "/data"),
        Mount("anonymous", None, "/cache"),
        Mount("bind", str(root / "logs"), "/logs", True),
        Mount("anonymous", None, "/tmp/scratch"),
    ]
    assert model.services["web"].named_volumes() == ["data"]
    assert (model.volumes["data"].driver, model.volumes["data"].labels) == ("local", {"a": "1"})


def test_healthcheck_durations(tmp_path):
    check = {"test": ["CMD", "true"], "interval": "1m30s", "timeout": "500ms", "start_period": 3, "retries": 2}
    expected = {"test": ["CMD", "true"], "interval": 90.0, "timeout": 0.5, "start_period": 3.0, "retries": 2}
    assert web(tmp_path, healthcheck=check).healthcheck == expected
    assert web(tmp_path, healthcheck={"disable": True}).healthcheck == {"test": ["NONE"]}


def test_environment_values(tmp_path, monkeypatch):
    monkeypatch.setenv("DNT_FROM", "here")
    environment = {"FLAG": True, "OFF": False, "N": 3, "F": 1.5, "DNT_FROM": None, "DNT_UNSET": None}
    expected = {"FLAG": "true", "OFF": "false", "N": "3", "F": "1.5", "DNT_FROM": "here"}
    assert web(tmp_path, environment=environment).environment == expected
    listed = web(tmp_path, environment=["DNT_FROM", "DNT_UNSET", "X=a=b", "E="]).environment
    assert listed == {"DNT_FROM": "here", "X": "a=b", "E": ""}


def test_env_file_under_environment(tmp_path):
    (tmp_path / "a.env").write_text("A=file\nB=file\nC=${A}-more\n")
    (tmp_path / "b.env").write_text("C=second\n")
    env_file = ["a.env", {"path": "b.env"}, {"path": "missing.env", "required": False}]
    service = web(tmp_path, env_file=env_file, environment={"B": "inline"})
    assert service.environment == {"A": "file", "B": "inline", "C": "second"}
    refused(tmp_path, {"services": {"web": {"image": "x", "env_file": "nope.env"}}},
            f"services.web.env_file[0]: 'nope.env': no such file ({tmp_path.resolve() / 'nope.env'})")  # fmt: skip


def test_depends_on_links_and_aliases(tmp_path):
    services = load_doc(tmp_path, """\
    services:
      web: {image: x, depends_on: [db], links: ["db:database", cache], hostname: w, container_name: web-1}
      db: {image: x, hostname: db}
      cache: {image: x, container_name: cache, hostname: c}
    """).services  # fmt: skip
    assert services["web"].depends_on == {"db": "service_started"}
    assert services["web"].links == {"db": "database", "cache": "cache"}
    assert services["web"].requires() == ["db", "cache"]
    assert [services[name].aliases() for name in ("web", "db", "cache")] == [["web-1", "w"], [], ["c"]]


def test_default_network_appears_only_when_a_service_names_none(tmp_path):
    model = load_doc(tmp_path, "services:\n  web: {image: x}\n  probe: {image: x, network_mode: none}\n")
    assert model.networks == {"default": NetworkDef("default")}
    assert model.services["web"].networks == {}
    model = load_doc(tmp_path, """\
    services:
      web:
        image: x
        networks: {back: {aliases: [w], ipv4_address: 10.9.0.5}}
    networks:
      back:
        internal: true
        ipam: {config: [{subnet: 10.9.0.0/24, gateway: 10.9.0.1}]}
    """)  # fmt: skip
    assert model.networks == {"back": NetworkDef("back", internal=True, subnet="10.9.0.0/24", gateway="10.9.0.1")}
    assert model.services["web"].networks == {"back": (["w"], "10.9.0.5")}


# -- what a subset of services needs ----------------------------------------------------


def test_needed_follows_every_kind_of_dependency_in_file_order(tmp_path):
    model = load_doc(tmp_path, """\
    services:
      web: {image: x, depends_on: [api]}
      cache: {image: x}
      vpn: {image: x}
      api: {image: x, network_mode: "service:vpn", depends_on: [db]}
      db: {image: x, links: ["cache:c"]}
      other: {image: x}
    """)  # fmt: skip
    assert model.needed(["api"]) == ["cache", "vpn", "api", "db"]
    assert model.needed(["db", "other"]) == ["cache", "db", "other"]
    assert model.needed(None) == ["web", "cache", "vpn", "api", "db", "other"]
