"""compose()'s secrets and configs, and container(files=...) under them, on a real engine:
the files are where Compose puts them, with their mode, owner and content; a real server
reads its secret and serves what it read to another container; every refusal is made
before anything is."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from pytest_dockernet import ComposeError, DockernetError
from pytest_dockernet.container_files import ContainerFile, archive, check_files
from pytest_dockernet.container_specs import ContainerSpec
from pytest_dockernet.labels import TOPOLOGY
from pytest_dockernet.warm_pool import asks_nothing

APP_BASE = "pytest-dockernet/app-base:bookworm"  # python3, PostgreSQL, redis (scripts/app-base-image)


def write(directory: Path, compose: str, files: dict[str, str] | None = None) -> Path:
    """A project directory: ``compose.yaml`` and ``files`` (``{relative path: content}``)."""
    for name, content in (files or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(content)
    path = directory / "compose.yaml"
    path.write_text(textwrap.dedent(compose))
    return path


def stat(container, *paths: str) -> dict[str, tuple[str, str, str]]:
    """``{path: (mode in octal, uid, gid)}`` as the container's own ``stat`` sees them."""
    code, out = container.exec(["stat", "-c", "%n %a %u %g", *paths])
    assert code == 0, out
    return {name: (mode, uid, gid) for name, mode, uid, gid in (line.split() for line in out.splitlines())}


def cat(container, path: str) -> str:
    code, out = container.exec(["cat", path])
    assert code == 0, out
    return out


def assert_nothing_made(topology) -> None:
    """Neither the topology nor the engine has anything of it (the warm pool's containers
    carry the pool's labels: they are found by name)."""
    assert (topology.containers_list, topology.networks_list) == ([], [])
    api, filters = topology.client.api, {"label": f"{TOPOLOGY}={topology.id}"}
    named = {"name": f"^/{topology.context.docker_name_for('')}"}
    assert api.containers(all=True, filters=filters) == api.containers(all=True, filters=named) == []
    assert api.networks(filters=filters) == []
    assert (api.volumes(filters=filters) or {}).get("Volumes") in (None, [])


EVERY_FORM = """
    services:
      app:
        image: ${PROBE_IMAGE}
        secrets:
          - db_password                     # short: /run/secrets/db_password
          - source: api_token               # relative target: under /run/secrets
            target: tokens/api
            uid: "1000"
            gid: "2000"
            mode: 0440
          - source: db_password             # absolute target: as given
            target: /etc/app/db_password
            mode: "0400"
        configs:
          - app_conf                        # short: /app_conf
          - source: banner                  # content:, relative target: under /
            target: etc/banner.txt
            uid: "33"
          - source: from_env
            target: /etc/app/from_env.conf
            mode: 0644
    secrets:
      db_password:
        file: ./secrets/db_password.txt
      api_token:
        environment: API_TOKEN
    configs:
      app_conf:
        file: app.conf
      banner:
        content: |
          hello from ${GREETER}
      from_env:
        environment: APP_SETTING
"""


def test_secrets_and_configs_are_where_compose_puts_them_with_their_mode_owner_and_content(dockernet, tmp_path):
    path = write(tmp_path, EVERY_FORM, {"secrets/db_password.txt": "s3cret\n", "app.conf": "port = 8080\n"})
    env = {"PROBE_IMAGE": dockernet.probe_image, "API_TOKEN": "tok-42", "APP_SETTING": "debug=1", "GREETER": "tests"}
    stack = dockernet.compose(path, env=env)

    app = stack["app"]
    assert stat(
        app,
        "/run/secrets/db_password",
        "/run/secrets/tokens/api",
        "/etc/app/db_password",
        "/app_conf",
        "/etc/banner.txt",
        "/etc/app/from_env.conf",
    ) == {
        "/run/secrets/db_password": ("444", "0", "0"),  # Compose's defaults
        "/run/secrets/tokens/api": ("440", "1000", "2000"),
        "/etc/app/db_password": ("400", "0", "0"),
        "/app_conf": ("444", "0", "0"),
        "/etc/banner.txt": ("444", "33", "0"),
        "/etc/app/from_env.conf": ("644", "0", "0"),
    }
    assert cat(app, "/run/secrets/db_password") == cat(app, "/etc/app/db_password") == "s3cret\n"
    assert cat(app, "/run/secrets/tokens/api") == "tok-42"  # a variable's value, as it is
    assert cat(app, "/app_conf") == "port = 8080\n"
    assert cat(app, "/etc/banner.txt") == "hello from tests\n"  # content: is interpolated
    assert cat(app, "/etc/app/from_env.conf") == "debug=1"
    # The directories on the way are made as a bind mount's would be: root's, 0755.
    assert stat(app, "/run/secrets", "/run/secrets/tokens", "/etc/app")["/run/secrets/tokens"] == ("755", "0", "0")
    assert not app.pooled  # a container with files of its own is never the warm pool's


def test_files_are_read_only_and_only_in_the_services_that_name_them_and_survive_a_restart(dockernet, tmp_path):
    path = write(
        tmp_path,
        """
        services:
          holder:
            image: ${PROBE_IMAGE}
            user: "1000"
            secrets: [key]
          other:
            image: ${PROBE_IMAGE}
        secrets:
          key: {file: key.txt}
        """,
        {"key.txt": "k"},
    )
    stack = dockernet.compose(path, env={"PROBE_IMAGE": dockernet.probe_image})
    holder = stack["holder"]
    assert cat(holder, "/run/secrets/key") == "k"  # readable by the container's user (0444)...
    code, out = holder.exec(["sh", "-c", "echo x >> /run/secrets/key"])
    assert code != 0 and "Permission denied" in out, out  # ...and not writable
    assert stack["other"].exec(["ls", "/run/secrets"])[0] != 0
    stack["holder"].restart(timeout=0)
    assert cat(stack["holder"], "/run/secrets/key") == "k"


SERVER = """
    # A server that reads its secret once, at start, as a real one reads a password file,
    # and serves what it read; it runs as nobody and only nobody may read the secret.
    services:
      vault:
        image: ${APP_BASE}
        user: "65534:65534"
        command: ["python3", "/srv/vault.py"]
        secrets:
          - source: token
            uid: "65534"
            gid: "65534"
            mode: 0400
        configs:
          - source: server
            target: /srv/vault.py
        healthcheck:
          test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/')"]
          interval: 500ms
          retries: 60
        networks: [back]
      client:
        image: ${PROBE_IMAGE}
        networks: [back]
        depends_on:
          vault: {condition: service_healthy}
      outsider:
        image: ${PROBE_IMAGE}
        networks: [back]
    networks:
      back: {}
    secrets:
      token:
        environment: VAULT_TOKEN
    configs:
      server:
        content: |
          import http.server, pathlib
          TOKEN = pathlib.Path("/run/secrets/token").read_bytes()
          class Handler(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  self.send_response(200)
                  self.send_header("Content-Length", str(len(TOKEN)))
                  self.end_headers()
                  self.wfile.write(TOKEN)
          http.server.HTTPServer(("", 8080), Handler).serve_forever()
"""


def test_a_server_reads_its_secret_and_another_container_gets_it_over_the_network(dockernet, tmp_path):
    path = write(tmp_path, SERVER)
    env = {"APP_BASE": APP_BASE, "PROBE_IMAGE": dockernet.probe_image, "VAULT_TOKEN": "vt-1234"}
    stack = dockernet.compose(path, env=env)

    assert stack["vault"].status() == "running (healthy)"
    dockernet.assert_http(stack["client"], "http://vault:8080/", contains="vt-1234")
    assert stat(stack["vault"], "/run/secrets/token") == {"/run/secrets/token": ("400", "65534", "65534")}
    # The secret is the server's alone: a container on its network has no such file.
    assert stack["outsider"].exec(["cat", "/run/secrets/token"])[0] != 0


def test_an_owner_the_server_is_not_fails_the_start_with_the_servers_own_error(dockernet, tmp_path):
    """The owner is honoured, not only shown: root's 0400 secret is unreadable to nobody."""
    path = write(tmp_path, SERVER.replace('uid: "65534"', 'uid: "0"').replace('gid: "65534"', 'gid: "0"'))
    env = {"APP_BASE": APP_BASE, "PROBE_IMAGE": dockernet.probe_image, "VAULT_TOKEN": "vt-1234"}
    with pytest.raises(DockernetError, match="PermissionError"):
        dockernet.compose(path, env=env, services=["client"])  # waits for vault healthy
    assert_nothing_made(dockernet)


def test_an_override_file_replaces_a_secret_of_the_same_target(dockernet, tmp_path):
    path = write(
        tmp_path,
        """
        services:
          app:
            image: ${PROBE_IMAGE}
            secrets: [{source: prod, target: password}, other]
        secrets:
          prod: {file: prod.txt}
          test: {file: test.txt}
          other: {file: other.txt}
        """,
        {"prod.txt": "prod", "test.txt": "test", "other.txt": "o"},
    )
    override = tmp_path / "test.yaml"
    override.write_text("services:\n  app:\n    secrets: [{source: test, target: /run/secrets/password}]\n")
    stack = dockernet.compose(path, override=override, env={"PROBE_IMAGE": dockernet.probe_image})
    assert cat(stack["app"], "/run/secrets/password") == "test"
    assert cat(stack["app"], "/run/secrets/other") == "o"


def test_labels_and_names_of_definitions_are_listed_as_ignored(dockernet, tmp_path):
    path = write(
        tmp_path,
        """
        services:
          app:
            image: ${PROBE_IMAGE}
            secrets: [pw]
        secrets:
          pw: {file: pw.txt, name: prod_pw, labels: {team: a}}
        """,
        {"pw.txt": "x"},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = dockernet.compose(path, env={"PROBE_IMAGE": dockernet.probe_image})
    assert any(item.startswith("secrets.pw.labels ") for item in stack.ignored), stack.ignored
    assert any(item.startswith("secrets.pw.name ") for item in stack.ignored), stack.ignored
    assert any("secrets.pw.name" in str(w.message) for w in caught)
    assert cat(stack["app"], "/run/secrets/pw") == "x"


REFUSALS = {
    "external": (
        "secrets:\n  pw:\n    external: true\n    name: prod_db_password\n",
        "secrets: [pw]",
        r"compose\.yaml: secrets\.pw\.external: an external secret \(the engine's 'prod_db_password', made outside "
        r"the test\) is not supported: a test uses nothing outside its own topology",
    ),
    "external config": (
        "configs:\n  conf:\n    external: true\n",
        "configs: [conf]",
        r"configs\.conf\.external: an external config .* is not supported: a test uses nothing outside its own",
    ),
    "undefined secret": (
        "secrets:\n  pw: {file: pw.txt}\n  tls: {file: pw.txt}\n",
        "secrets: [pw, {source: api_key, target: key}]",
        r"compose\.yaml: services\.app\.secrets\[1\]: secret 'api_key' is not defined under the top-level "
        r"'secrets:' \(it defines pw, tls\)",
    ),
    "undefined config, none defined": (
        "",
        "configs: [nginx]",
        r"services\.app\.configs\[0\]: config 'nginx' is not defined under the top-level 'configs:' "
        r"\(it defines none\)",
    ),
    "missing file": (
        "secrets:\n  pw: {file: ./secrets/missing.txt}\n",
        "secrets: [pw]",
        r"secrets\.pw\.file: './secrets/missing.txt': no such file \(/.*/secrets/missing\.txt\); "
        r"services\.app\.secrets\[0\] uses it",
    ),
    "unset variable": (
        "secrets:\n  pw: {environment: NOT_SET_ANYWHERE_H1}\n",
        "secrets: [pw]",
        r"secrets\.pw\.environment: variable 'NOT_SET_ANYWHERE_H1' is not set",
    ),
    "two sources": (
        "configs:\n  conf: {file: pw.txt, content: x}\n",
        "configs: [conf]",
        r"configs\.conf: give exactly one of file, environment, content: it gives file and content",
    ),
    "a secret driver": (
        "secrets:\n  pw: {file: pw.txt, driver: vault}\n",
        "secrets: [pw]",
        r"secrets\.pw\.driver is not supported",
    ),
    "a name for a uid": (
        "secrets:\n  pw: {file: pw.txt}\n",
        "secrets: [{source: pw, uid: postgres}]",
        r"services\.app\.secrets\[0\]\.uid: 'postgres' is not a numeric uid",
    ),
    "two files at one path": (
        "secrets:\n  pw: {file: pw.txt}\nconfigs:\n  conf: {content: x}\n",
        "secrets: [pw]\n    configs: [{source: conf, target: /run/secrets/pw}]",
        r"services\.app\.configs\[0\]: /run/secrets/pw is the path of another of the service's secrets or configs",
    ),
    "a volume over a secret": (
        "secrets:\n  pw: {file: pw.txt}\n",
        "secrets: [pw]\n    volumes: [/run/secrets]",
        r"compose\.yaml: services\.app: files\['/run/secrets/pw'\]: /run/secrets is mounted over it \(volumes\)",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_secret_or_config_names_the_key_and_leaves_nothing(dockernet, tmp_path, case):
    top, uses, message = REFUSALS[case]
    compose = f"services:\n  db:\n    image: ${{PROBE_IMAGE}}\n  app:\n    image: ${{PROBE_IMAGE}}\n    {uses}\n{top}"
    (tmp_path / "pw.txt").write_text("x")
    (tmp_path / "compose.yaml").write_text(compose)
    with pytest.raises(ComposeError, match=message):
        dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    assert_nothing_made(dockernet)


# -- container(files=...), which compose() uses ---------------------------------------------


def test_container_files_take_content_paths_and_owners(dockernet, tmp_path):
    local = tmp_path / "app.conf"
    local.write_bytes(b"\x00binary\xff")
    c = dockernet.container(
        "c",
        files={
            "/run/secrets/token": "t",
            "/etc/app.conf": {"content": local, "mode": 0o640, "uid": 70, "gid": 71},
            "/opt/deep/dir/raw": b"raw",
        },
    )
    assert stat(c, "/run/secrets/token", "/etc/app.conf", "/opt/deep/dir/raw") == {
        "/run/secrets/token": ("444", "0", "0"),
        "/etc/app.conf": ("640", "70", "71"),
        "/opt/deep/dir/raw": ("444", "0", "0"),
    }
    code, out = c.exec(["od", "-An", "-c", "/etc/app.conf"])
    assert code == 0 and "b   i   n   a   r   y" in out, out
    assert not c.pooled


def test_a_spec_with_files_asks_for_something_of_its_own():
    assert asks_nothing(ContainerSpec("a"))
    assert not asks_nothing(ContainerSpec("a", files={"/x": "y"}))


@pytest.mark.parametrize(
    ("files", "options", "error", "message"),
    [
        (
            {"run/secrets/x": "y"},
            {},
            ValueError,
            r"files\['run/secrets/x'\]: the path in the container must be abs",
        ),
        ({"/run/../etc/passwd": "y"}, {}, ValueError, r"may not go up"),
        ({"/": "y"}, {}, ValueError, r"'/' is a directory"),
        ({"/a": "y", "/a/b": "z"}, {}, ValueError, r"files\['/a/b'\]: '/a' is a file of files= too"),
        ({"/x": 3}, {}, TypeError, r"files\['/x'\]: the content must be a str, bytes or a path"),
        (
            {"/x": {"content": "y", "mode": "0644"}},
            {},
            ValueError,
            r"\['mode'\]: '0644' is not a file mode",
        ),
        ({"/x": {"content": "y", "owner": 0}}, {}, ValueError, r"unknown keys \['owner'\]"),
        ({"/x": {"mode": 0o400}}, {}, ValueError, r"no 'content'"),
        ({"/x": {"content": "y", "uid": -1}}, {}, ValueError, r"\['uid'\]: -1 is not a numeric uid"),
        ({"/x": Path("/no/such/file/h1")}, {}, ValueError, r"'/no/such/file/h1': no such file"),
        ({"/x": "y"}, {"read_only": True}, ValueError, r"root file system is read-only"),
        ({"/run/x": "y"}, {"tmpfs": {"/run": ""}}, ValueError, r"files\['/run/x'\]: /run is mounted over it"),
        ("/x", {}, TypeError, r"files must be a dict of paths in the container"),
    ],
)
def test_bad_files_are_refused_before_anything_is_made(dockernet, files, options, error, message):
    with pytest.raises(error, match=message):
        dockernet.container("c", files=files, docker_options=options or None)
    assert_nothing_made(dockernet)


def test_a_file_under_a_volume_is_refused(dockernet):
    with pytest.raises(ValueError, match=r"files\['/data/x'\]: /data is mounted over it \(volumes\)"):
        dockernet.container("c", files={"/data/x": "y"}, volumes=["/data"])
    assert_nothing_made(dockernet)


def test_the_archive_holds_each_file_with_its_owner_and_mode_and_no_directories():
    import io
    import tarfile

    files = check_files({"/run/secrets/a": "1", "//etc/./b": {"content": b"22", "mode": 0o600, "uid": 5, "gid": 6}})
    assert files == {"/run/secrets/a": ContainerFile(b"1"), "/etc/b": ContainerFile(b"22", 0o600, 5, 6)}
    with tarfile.open(fileobj=io.BytesIO(archive(files))) as tar:
        members = [(m.name, m.type, m.mode, m.uid, m.gid, m.size) for m in tar.getmembers()]
    assert members == [("run/secrets/a", tarfile.REGTYPE, 0o444, 0, 0, 1), ("etc/b", tarfile.REGTYPE, 0o600, 5, 6, 2)]
    assert "22" not in repr(files["/etc/b"])  # the content may be a secret: kept out of reprs
