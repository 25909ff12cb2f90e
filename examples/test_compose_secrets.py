"""Secrets in the Compose file you ship: the database password is a file under
/run/secrets, put there by compose() with the owner and mode the file gives, and the API
starts only once the database (which set its password from the same secret) is healthy.

The tests check what the file promises: the API logs in with its copy of the secret, a
wrong password is refused, and the password is in no environment variable.
"""

from pathlib import Path

import pytest

from pytest_dockernet import assert_http

COMPOSE_FILE = Path(__file__).parent / "compose" / "secrets" / "compose.yaml"
PASSWORD = (COMPOSE_FILE.parent / "db_password.txt").read_text().strip()
# Made by scripts/app-base-image (no registry here)
LOCAL_BASE = "pytest-dockernet/app-base:bookworm"


@pytest.fixture(scope="module")
def vault(dockernet_module, dockernet_client):
    # Without a registry, the image builds FROM the local Debian base; with one, the
    # file's default.
    local = dockernet_client.images.list(name=LOCAL_BASE)
    env = {"APP_BASE": LOCAL_BASE} if local else {}
    return dockernet_module.compose(COMPOSE_FILE, env=env)


def test_the_api_started_after_the_database_was_healthy_and_logs_in_with_its_secret(
    vault,
):
    assert vault["db"].status() == "running (healthy)"
    assert_http(vault["db"], "http://api:8080/health", status=200, contains="ok")


def test_each_service_has_the_secret_where_and_as_the_file_says(vault):
    stat = ["stat", "-c", "%a %U"]
    assert vault["db"].exec([*stat, "/run/secrets/db_password"]) == (0, "444 root\n")
    secret = "/run/secrets/api/db_password"
    assert vault["api"].exec([*stat, secret]) == (0, "400 root\n")
    assert vault["api"].exec(["cat", secret]) == (0, PASSWORD + "\n")


def test_the_database_refuses_a_wrong_password(vault):
    psql = ["psql", "-h", "db", "-U", "postgres", "-c", "select 1"]
    code, out = vault["api"].exec(["env", "PGPASSWORD=wrong", *psql])
    assert code != 0 and "password authentication failed" in out, out


def test_the_password_is_in_no_environment(vault, dockernet_client):
    for service in ("db", "api"):
        config = dockernet_client.api.inspect_container(vault[service].id)["Config"]
        assert not any(PASSWORD in variable for variable in config["Env"])
