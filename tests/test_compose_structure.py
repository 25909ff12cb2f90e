"""compose()'s structure keys as Compose resolves them: profiles (the argument and
COMPOSE_PROFILES), extends (in the file and across files), include (each project with its
own directory and .env) and the !reset / !override tags of override files. Most checks are
on the loaded model; the bring-ups prove the result runs as read."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import warnings
from pathlib import Path

import pytest
from test_compose import assert_nothing_made, env_of
from test_http import ensure_app_base

from pytest_dockernet import ComposeError
from pytest_dockernet.compose.file import load
from pytest_dockernet.compose.values import Mount

HERE = Path(__file__).parent / "compose" / "structure"
PROFILES = HERE / "profiles" / "compose.yaml"
IMAGE = {"PROBE_IMAGE": "busybox"}


@pytest.fixture(autouse=True)
def _no_profiles_from_the_shell(monkeypatch):
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    for name in [k for k in os.environ if k.startswith("DNT_")]:
        monkeypatch.delenv(name)


def write(directory: Path, document: object, name: str = "compose.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(document) if isinstance(document, dict) else textwrap.dedent(str(document)))
    return path


def refused(message: str, *args, **kwargs) -> None:
    with pytest.raises(ComposeError, match=message):
        load(*args, **kwargs)


# -- profiles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "started"),
    [
        (None, ["foo"]),
        ([], ["foo"]),
        (["test"], ["foo", "bar", "baz"]),
        (("test", "debug"), ["foo", "bar", "baz", "zot"]),
        (["*"], ["foo", "bar", "baz", "zot"]),
    ],
)
def test_services_without_profiles_always_start_the_others_when_one_is_active(profiles, started):
    model = load(PROFILES, env=IMAGE, profiles=profiles)
    assert list(model.services) == model.needed(None) == started
    assert model.disabled == {
        name: own for name, own in {"bar": ["test"], "baz": ["test"], "zot": ["debug"]}.items() if name not in started
    }


def test_compose_profiles_comes_from_env_then_the_environment_then_dotenv(tmp_path, monkeypatch):
    path = tmp_path / "compose.yaml"
    shutil.copy(PROFILES, path)
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=test\n")
    assert list(load(path, env=IMAGE).services) == ["foo", "bar", "baz"]
    monkeypatch.setenv("COMPOSE_PROFILES", "debug, test")
    assert list(load(path, env=IMAGE).services) == ["foo", "bar", "baz", "zot"]
    assert list(load(path, env={**IMAGE, "COMPOSE_PROFILES": "*"}).services) == ["foo", "bar", "baz", "zot"]
    assert list(load(path, env={**IMAGE, "COMPOSE_PROFILES": ""}).services) == ["foo"]
    assert list(load(path, env=IMAGE, profiles=[]).services) == ["foo"]  # the argument wins


def test_a_service_named_in_services_starts_whatever_its_profiles(tmp_path):
    model = load(PROFILES, env=IMAGE, services=["baz"])  # its profile, test, becomes active: bar too
    assert (model.needed(["baz"]), model.profiles) == (["bar", "baz"], ["test"])
    assert list(load(PROFILES, env=IMAGE, services=["bar"]).services) == ["foo", "bar", "baz"]


def test_a_dependency_on_a_service_its_profiles_leave_out_is_refused_naming_both():
    message = (
        r"profiles/compose\.yaml: services\.zot\.depends_on: service 'bar' is not enabled: its profiles \(test\) "
        r"are not active \(active: {}\); activate one with profiles=\[\.\.\.\] or COMPOSE_PROFILES, or name 'bar' "
        r"in services=\[\.\.\.\]"
    )
    refused(message.format("debug"), PROFILES, env=IMAGE, profiles=["debug"])
    refused(message.format("debug"), PROFILES, env=IMAGE, services=["zot"])  # as `docker compose up zot`
    assert list(load(PROFILES, env=IMAGE, profiles=["test"], services=["zot"]).services) == list(
        load(PROFILES, env=IMAGE, profiles=["*"]).services
    )


def test_an_optional_dependency_on_a_left_out_service_is_dropped_and_left_out_services_are_not_checked(tmp_path):
    path = write(tmp_path, """\
    services:
      app:
        image: busybox
        depends_on: {debugger: {condition: service_started, required: false}}
      debugger:
        image: busybox
        profiles: [debug]
        networks: [nowhere]
        no_such_key: true
    """)  # fmt: skip
    model = load(path)
    assert (list(model.services), model.services["app"].depends_on) == (["app"], {})
    refused(r"services\.debugger: key 'no_such_key' of service 'debugger' is not supported", path, profiles=["debug"])


def test_bad_profiles_are_refused_naming_the_argument_or_the_key(tmp_path):
    for bad in ("debug", 3, [1]):
        with pytest.raises(TypeError, match=r"compose\(\): profiles must be a list of profile names"):
            load(PROFILES, env=IMAGE, profiles=bad)
    with pytest.raises(ValueError, match=r"profiles=\['de bug'\]: 'de bug' is not a profile name"):
        load(PROFILES, env=IMAGE, profiles=["de bug"])
    path = write(tmp_path, {"services": {"web": {"image": "busybox", "profiles": "debug"}}})
    refused(re.escape(f"{path}: services.web.profiles must be a list of profile names"), path)


def test_compose_takes_profiles_and_services_as_any_iterable(dockernet):
    stack = dockernet.compose(PROFILES, profiles=iter(["test"]), services=(s for s in ["baz"]), env=env_of(dockernet))
    assert list(stack) == ["bar", "baz"]
    dockernet.assert_reachable(stack["baz"], "bar")


def test_profiles_select_the_services_brought_up(dockernet, tmp_path):
    path = tmp_path / "compose.yaml"
    shutil.copy(PROFILES, path)
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=test\n")

    stack = dockernet.compose(path, env=env_of(dockernet))

    assert list(stack) == ["foo", "bar", "baz"]
    assert sorted(c.name for c in dockernet.containers_list) == ["bar", "baz", "foo"]
    dockernet.assert_reachable(stack["baz"], "bar")
    dockernet.assert_reachable(stack["foo"], "baz")


def test_a_dependency_on_a_left_out_service_leaves_nothing(dockernet):
    with pytest.raises(ComposeError, match=r"services\.zot\.depends_on: service 'bar' is not enabled"):
        dockernet.compose(PROFILES, profiles=["debug"], env=env_of(dockernet))
    assert_nothing_made(dockernet)


# -- extends --------------------------------------------------------------------------------


def test_extends_across_files_takes_the_other_files_relative_paths_as_its_own():
    common = (HERE / "extends" / "common").resolve()
    model = load(HERE / "extends" / "compose.yaml", env=IMAGE)
    api, worker = model.services["api"], model.services["worker"]
    assert (api.image, api.command) == ("busybox", "sleep 3600")
    assert api.environment == {"GREETING": "hello from common", "ROLE": "api", "LAYER": "shell"}
    assert api.mounts == [Mount("bind", str(common / "conf"), "/conf", True)]
    assert (worker.environment["ROLE"], worker.mounts) == ("worker", api.mounts)


def test_extends_merges_as_override_files_merge(tmp_path):
    path = write(tmp_path, """\
    services:
      base:
        image: busybox
        command: [serve, "1"]
        ports: ["80"]
        cap_add: [NET_ADMIN]
        environment: [A=1, B=2]
        volumes: ["./one:/data", "./logs:/logs"]
        healthcheck: {test: [CMD, "true"], interval: 5s}
      web:
        extends: {service: base}
        command: [serve, "2"]
        ports: ["443"]
        environment: {B: "20"}
        volumes: ["./two:/data"]
        healthcheck: {interval: 10s}
    """)  # fmt: skip
    web = load(path).services["web"]
    root = tmp_path.resolve()
    assert web.command == ["serve", "2"]
    assert (web.ports, web.cap_add) == ({"80/tcp": None, "443/tcp": None}, ["NET_ADMIN"])
    assert web.environment == {"A": "1", "B": "20"}
    assert web.mounts == [Mount("bind", str(root / "logs"), "/logs"), Mount("bind", str(root / "two"), "/data")]
    assert web.healthcheck == {"test": ["CMD", "true"], "interval": 10.0}


def test_extends_resolves_build_contexts_and_env_files_of_another_directory(tmp_path):
    (tmp_path / "lib" / "app").mkdir(parents=True)
    (tmp_path / "lib" / "app.env").write_text("FROM=lib\n")
    write(tmp_path / "lib", {"services": {"app": {"build": "./app", "env_file": [{"path": "app.env"}]}}}, "base.yaml")
    path = write(tmp_path / "main", {"services": {"web": {"extends": {"file": "../lib/base.yaml", "service": "app"}}}})
    web = load(path).services["web"]
    assert (web.build.context, web.environment) == ((tmp_path / "lib" / "app").resolve(), {"FROM": "lib"})


def test_a_chain_of_extends_across_directories_resolves_each_file_against_its_own(tmp_path):
    (tmp_path / "a" / "b" / "data").mkdir(parents=True)
    write(tmp_path / "a" / "b", {"services": {"base": {"image": "busybox", "volumes": ["./data:/data"]}}}, "base.yaml")
    write(tmp_path / "a", {"services": {"mid": {"extends": {"file": "b/base.yaml", "service": "base"}}}}, "mid.yaml")
    path = write(tmp_path, {"services": {"top": {"extends": {"file": "a/mid.yaml", "service": "mid"}}}})
    top = load(path).services["top"]
    assert top.mounts == [Mount("bind", str((tmp_path / "a" / "b" / "data").resolve()), "/data")]


def test_an_include_path_takes_variables(tmp_path):
    write(tmp_path / "lib", {"services": {"db": {"image": "db"}}})
    path = write(
        tmp_path, {"include": ["${DNT_LIB:?name the library}/compose.yaml"], "services": {"app": {"image": "x"}}}
    )
    assert list(load(path, env={"DNT_LIB": "lib"}).services) == ["db", "app"]
    refused(r"include\[0\]: variable DNT_LIB is unset: name the library", path)


def test_an_extending_services_reset_clears_the_bases_key(tmp_path):
    path = write(tmp_path, """\
    services:
      base: {image: busybox, ports: ["80"], environment: {A: "1", B: "2"}}
      web:
        extends: base
        ports: !reset []
        environment: {B: !reset null}
    """)  # fmt: skip
    web = load(path).services["web"]
    assert (web.ports, web.environment) == ({}, {"A": "1"})
    assert load(path).services["base"].ports == {"80/tcp": None}


@pytest.mark.parametrize(
    ("services", "message"),
    [
        (
            {"a": {"image": "x", "extends": "b"}, "b": {"extends": {"service": "c"}}, "c": {"extends": "a"}},
            r"services\.a\.extends: services extend each other in a cycle: a \(.*compose\.yaml\) -> "
            r"b \(.*compose\.yaml\) -> c \(.*compose\.yaml\) -> a \(.*compose\.yaml\)",
        ),
        ({"a": {"extends": "nope"}}, r"services\.a\.extends\.service: service 'nope' is not defined in this file"),
        (
            {"a": {"extends": {"service": "x", "file": "missing.yaml"}}},
            r"services\.a\.extends\.file: 'missing\.yaml': no such file \(.*missing\.yaml\)",
        ),
        (
            {"a": {"extends": {"service": "x", "file": "other.yaml"}}},
            r"services\.a\.extends\.service: service 'x' is not defined in .*other\.yaml; it has app",
        ),
        ({"a": {"extends": {"file": "other.yaml"}}}, r"services\.a\.extends\.service: give the name of the service"),
        ({"a": {"extends": {"service": "b", "files": "x"}}}, r"services\.a\.extends: key 'files' is not one of"),
        ({"a": {"extends": ["b"]}}, r"services\.a\.extends: a service name, or a mapping with 'service'"),
    ],
)
def test_bad_extends_are_refused_naming_the_chain_the_file_or_the_service(tmp_path, services, message):
    write(tmp_path, {"services": {"app": {"image": "busybox"}}}, "other.yaml")
    path = write(tmp_path, {"services": services})
    refused(re.escape(str(path)) + ": " + message, path)


def test_extends_across_files_runs_with_the_other_directorys_files(dockernet):
    stack = dockernet.compose(HERE / "extends" / "compose.yaml", env=env_of(dockernet))

    for name in ("api", "worker"):
        assert stack[name].exec(["cat", "/conf/settings"]) == (0, "colour=green\n")
        code, environment = stack[name].exec(["env"])
        assert {"GREETING=hello from common", f"ROLE={name}", "LAYER=shell"} <= set(environment.splitlines())
    dockernet.assert_reachable(stack["worker"], "api")


# -- include --------------------------------------------------------------------------------


def test_an_included_project_has_its_own_directory_and_dotenv():
    lib = (HERE / "include" / "lib").resolve()
    model = load(HERE / "include" / "compose.yaml", env=IMAGE)
    assert list(model.services) == ["metrics", "cache", "front"]  # nested includes too
    cache = model.services["cache"]
    assert cache.environment == {"FLAVOUR": "from the included .env"}
    assert cache.mounts == [Mount("bind", str(lib / "data"), "/data", True)]
    assert model.services["front"].depends_on == {"cache": "service_started"}
    assert sorted(model.networks) == ["back", "default"]  # defined alike in lib and nested: one network


def test_the_including_projects_variables_win_over_the_included_dotenv(tmp_path):
    (tmp_path / ".env").write_text("FLAVOUR=from the main .env\n")
    shutil.copytree(HERE / "include", tmp_path / "include")
    path = tmp_path / "include" / "compose.yaml"
    assert load(path, env=IMAGE).services["cache"].environment == {"FLAVOUR": "from the included .env"}
    given = load(path, env={**IMAGE, "FLAVOUR": "given"})
    assert given.services["cache"].environment == {"FLAVOUR": "given"}
    shutil.copy(tmp_path / ".env", tmp_path / "include" / ".env")
    main = load(path, env=IMAGE)
    assert main.services["cache"].environment == {"FLAVOUR": "from the main .env"}


def test_the_long_form_takes_several_files_a_project_directory_and_env_files(tmp_path):
    (tmp_path / "lib" / "files").mkdir(parents=True)
    (tmp_path / "lib" / "ctx").mkdir()
    (tmp_path / "lib" / "files" / "one.env").write_text("DNT_TAG=one\nDNT_OTHER=one\n")
    (tmp_path / "lib" / "files" / "two.env").write_text("DNT_TAG=two\n")
    write(tmp_path / "lib" / "files", {"services": {"db": {"image": "db:${DNT_TAG}-${DNT_OTHER}", "build": "ctx"}}})
    write(tmp_path / "lib" / "files", {"services": {"db": {"volumes": ["./data:/data"]}}}, "override.yaml")
    path = write(tmp_path, """\
    include:
      - path: [lib/files/compose.yaml, lib/files/override.yaml]
        project_directory: lib
        env_file: [lib/files/one.env, lib/files/two.env]
    services:
      app: {image: busybox, depends_on: [db]}
    """)  # fmt: skip
    db = load(path).services["db"]
    lib = (tmp_path / "lib").resolve()
    assert (db.image, db.build.context) == ("db:two-one", lib / "ctx")
    assert db.mounts == [Mount("bind", str(lib / "data"), "/data")]


@pytest.mark.parametrize(
    ("include", "services", "message"),
    [
        (
            ["lib.yaml"],
            {"db": {"image": "other"}},
            r"include\[0\]: services\.db of .*lib\.yaml is defined in this file too: Compose refuses a resource "
            r"defined twice through include; rename one, or change the included one with an override file",
        ),
        (["lib.yaml", "again.yaml"], {}, r"include\[1\]: services\.db of .*again\.yaml is defined in include\[0\]"),
        (["missing.yaml"], {}, r"include\[0\]\.path: 'missing\.yaml': no such file"),
        (["loop.yaml"], {}, r"loop\.yaml: include\[0\]: an include cycle: .*loop\.yaml includes .*loop\.yaml"),
        ([{"path": "lib.yaml", "env": "x"}], {}, r"include\[0\]: key 'env' is not one of path, project_directory"),
        ([{"project_directory": "."}], {}, r"include\[0\]\.path must be a path or a list of paths, got None"),
        ([{"path": "lib.yaml", "env_file": "none.env"}], {}, r"include\[0\]\.env_file: no such file"),
        ("lib.yaml", {}, r"include must be a list of paths"),
    ],
)
def test_bad_includes_are_refused_naming_the_entry(tmp_path, include, services, message):
    write(tmp_path, {"services": {"db": {"image": "db"}}}, "lib.yaml")
    write(tmp_path, {"services": {"db": {"image": "db:2"}}}, "again.yaml")
    write(tmp_path, {"include": ["loop.yaml"], "services": {"x": {"image": "x"}}}, "loop.yaml")
    path = write(tmp_path, {"include": include, "services": {"app": {"image": "busybox"}, **services}})
    refused(message, path)


def test_an_included_file_defined_alike_is_no_conflict_and_an_override_file_changes_an_included_service(tmp_path):
    write(tmp_path, {"services": {"db": {"image": "db"}}}, "lib.yaml")
    path = write(tmp_path, {"include": ["lib.yaml"], "services": {"db": {"image": "db"}}})
    override = write(tmp_path, {"services": {"db": {"image": "db:2"}}}, "override.yaml")
    assert load(path).services["db"].image == "db"
    assert load(path, override=override).services["db"].image == "db:2"


def test_an_included_value_from_its_own_dotenv_reaches_a_real_server(dockernet, dockernet_client, tmp_path):
    """lib/ runs redis on the port its own .env names; the main file's client asks it."""
    base = ensure_app_base(dockernet_client)
    write(tmp_path / "lib", """\
    services:
      cache:
        image: ${BASE}
        command: redis-server --port ${REDIS_PORT} --protected-mode no --save ''
        healthcheck: {test: "redis-cli -p ${REDIS_PORT} ping", interval: 1s, retries: 30}
    """)  # fmt: skip
    (tmp_path / "lib" / ".env").write_text("REDIS_PORT=6390\n")
    path = write(tmp_path, """\
    include: [lib/compose.yaml]
    services:
      client:
        image: ${BASE}
        command: sleep infinity
        depends_on: {cache: {condition: service_healthy}}
    """)  # fmt: skip

    stack = dockernet.compose(path, env={"BASE": base})

    assert stack["client"].exec(["redis-cli", "-h", "cache", "-p", "6390", "ping"]) == (0, "PONG\n")
    assert "REDIS_PORT" not in stack["cache"].exec(["env"])[1]  # a variable of the file, not of the container


def test_include_brings_the_included_projects_services_up_with_their_files(dockernet):
    stack = dockernet.compose(HERE / "include" / "compose.yaml", env=env_of(dockernet))

    assert list(stack) == ["metrics", "cache", "front"]
    assert stack["cache"].exec(["cat", "/data/file"]) == (0, "included data\n")
    assert "FLAVOUR=from the included .env" in stack["cache"].exec(["env"])[1].splitlines()
    dockernet.assert_reachable(stack["front"], "cache")
    dockernet.assert_reachable(stack["metrics"], "cache")
    dockernet.assert_unreachable(stack["front"], stack["metrics"])


def test_an_include_conflict_leaves_nothing(dockernet, tmp_path):
    write(tmp_path, {"services": {"db": {"image": "${PROBE_IMAGE}"}}}, "lib.yaml")
    path = write(tmp_path, {"include": ["lib.yaml"], "services": {"db": {"image": "other"}}})
    with pytest.raises(ComposeError, match=r"include\[0\]: services\.db of .* is defined in this file too"):
        dockernet.compose(path, env=env_of(dockernet))
    assert_nothing_made(dockernet)


# -- !reset and !override -------------------------------------------------------------------


def test_reset_and_override_in_an_override_file():
    model = load(HERE / "tags" / "compose.yaml", override=HERE / "tags" / "override.yaml", env=IMAGE)
    app = model.services["app"]
    assert (app.ports, app.environment, app.labels) == ({"8080/tcp": None}, {"KEEP": "kept"}, {})
    plain = load(HERE / "tags" / "compose.yaml", env=IMAGE).services["app"]
    assert set(plain.ports) == {"80/tcp", "443/tcp"}


def test_reset_removes_whole_services_keys_and_mappings(tmp_path):
    base = write(tmp_path, """\
    services:
      web:
        image: busybox
        command: [serve]
        healthcheck: {test: [CMD, "true"]}
        networks: {back: {aliases: [api]}}
        depends_on: [debug]
      debug: {image: busybox}
    networks:
      back: {}
    """)  # fmt: skip
    override = write(tmp_path, """\
    services:
      web:
        command: !reset null
        healthcheck: !reset {}
        networks: !override {front: {}}
        depends_on: !reset []
      debug: !reset
    networks:
      front: {}
    """, "override.yaml")  # fmt: skip
    model = load(base, override=override)
    web = model.services["web"]
    assert list(model.services) == ["web"]
    assert (web.command, web.healthcheck, web.networks, web.depends_on) == (None, None, {"front": ([], None)}, {})


def test_override_replaces_a_mapping_and_tags_follow_anchors(tmp_path):
    services = {"a": {"image": "x", "environment": {"A": "1"}}, "b": {"image": "x", "environment": {"B": "2"}}}
    base = write(tmp_path, {"services": services})
    override = write(tmp_path, """\
    services:
      a:
        environment: &env !override {C: "3"}
      b:
        environment: *env
    """, "override.yaml")  # fmt: skip
    model = load(base, override=override)
    assert model.services["a"].environment == model.services["b"].environment == {"C": "3"}


def test_tags_in_the_first_file_and_an_empty_value_in_an_override(tmp_path):
    base = write(tmp_path, "services:\n  web:\n    image: busybox\n    ports: !reset ['80']\n    user: !override '1'\n")
    override = write(tmp_path, "services:\n  web:\n    image:\n", "override.yaml")
    web = load(base, override=override).services["web"]
    assert (web.image, web.ports, web.user) == ("busybox", {}, "1")  # "image:" with nothing keeps the base's


def test_another_tag_is_still_refused(tmp_path):
    path = write(tmp_path, "services:\n  web:\n    image: !custom busybox\n")
    refused(re.escape(f"{path}: not valid YAML") + r".*!custom", path)


def test_reset_and_override_are_seen_in_the_running_container(dockernet):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing ignored, nothing unset
        stack = dockernet.compose(
            HERE / "tags" / "compose.yaml", override=[HERE / "tags" / "override.yaml"], env=env_of(dockernet)
        )

    config = dockernet.client.api.inspect_container(stack["app"].id)["Config"]
    assert "KEEP=kept" in config["Env"] and not any(e.startswith("DROP=") for e in config["Env"])
    assert sorted(config["ExposedPorts"]) == ["8080/tcp"]
    assert stack["app"].host_port(8080) and "tier" not in config["Labels"]
