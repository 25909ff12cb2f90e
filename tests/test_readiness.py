"""When a container is ready (readiness.py): the strategies the forms of ``ready=`` map to,
the waits that end at once, and the checks of ``LogLine`` and ``Listening``.

Waits on real servers (PostgreSQL, redis, the example API) are in test_application.py.
"""

from __future__ import annotations

import time

import pytest

from pytest_dockernet import DockernetError, Listening, LogLine
from pytest_dockernet.readiness import WORDS, Check, Readiness, check_ready

pytestmark = pytest.mark.dockernet


def test_each_word_is_one_strategy_and_says_what_the_parts_may_assume():
    running, healthy, completed = (check_ready(word) for word in ("running", "healthy", "completed"))
    assert list(WORDS) == ["running", "healthy", "completed"]
    assert all(isinstance(s, Readiness) for s in (running, healthy, completed))
    assert (running.ready_when_started, running.poolable) == (True, True)
    assert not any((healthy.poolable, completed.poolable, healthy.ready_when_started))
    assert running.rank < healthy.rank < completed.rank  # what a Compose dependency waits for
    assert completed.exit_is_success({"ExitCode": 0}) and not completed.exit_is_success({"ExitCode": 3})
    assert not running.exit_is_success({"ExitCode": 0})
    assert (str(running), str(healthy), str(completed)) == ("'running'", "'healthy'", "'completed'")


def test_the_other_forms_are_strategies_too():
    def ready_now(container):
        return True

    assert check_ready(ready_now) == Check(ready_now) and str(check_ready(ready_now)) == "ready_now"
    line, port = LogLine("up"), Listening(80)
    assert check_ready(line) is line and check_ready(port) is port
    assert not any(s.poolable or s.ready_when_started for s in (line, port, Check(ready_now)))
    assert (str(line), str(port)) == ("LogLine('up')", "Listening(80/tcp)")


def test_a_wait_the_warm_pool_cannot_serve_gets_a_fresh_container(dockernet, pytestconfig):
    checked = dockernet.container("checked", ready=lambda c: True)
    plain = dockernet.container("plain")
    assert not checked.pooled  # a callable is not Running: not poolable
    pool = pytestconfig.getoption("dockernet_pool") or pytestconfig.getini("dockernet_pool")
    assert plain.pooled == (str(pool).strip() != "0")


def test_a_one_shot_job_is_ready_once_it_completed(dockernet):
    job = dockernet.container("migrate", image=dockernet.probe_image, command="sh -c 'sleep 0.3; echo migrated'",
                              ready="completed")  # fmt: skip
    assert job.status() == "exited (0)" and "migrated" in job.logs()
    with pytest.raises(DockernetError, match=r"(?s)container 'broken' .*did not complete successfully.*exit code 3"):
        dockernet.container("broken", image=dockernet.probe_image, command="sh -c 'sleep 0.3; exit 3'",
                            ready="completed")  # fmt: skip
    assert [c.name for c in dockernet.containers_list] == ["migrate"]


def test_an_unhealthy_container_fails_the_wait_at_once(dockernet):
    began = time.monotonic()
    said = r"(?s)turned unhealthy before it was ready \('healthy'\).*healthcheck failed.*saying:\n  not yet\n"
    with pytest.raises(DockernetError, match=said):
        dockernet.container(
            "sick",
            healthcheck={"test": "echo not yet; exit 1", "interval": 0.2, "retries": 2},
            ready="healthy",
            ready_timeout=60,
        )
    assert time.monotonic() - began < 30


def test_ready_healthy_without_a_healthcheck_says_so(dockernet):
    with pytest.raises(DockernetError, match=r"ready='healthy', but image .* has no healthcheck: pass healthcheck="):
        dockernet.container("plain", ready="healthy")


@pytest.mark.parametrize(
    "made, error, message",
    [
        (lambda: LogLine(""), TypeError, r"LogLine\(pattern\): pattern must be a non-empty regular expression"),
        (lambda: LogLine("(unclosed"), ValueError, r"LogLine\(pattern='\(unclosed'\) is not a regular expression"),
        (lambda: Listening(0), ValueError, r"Listening\(port=0\): port must be a port number"),
        (lambda: Listening(80, proto="sctp"), ValueError, r"Listening\(proto='sctp'\) must be 'tcp' or 'udp'"),
    ],
)
def test_bad_readiness_checks(made, error, message):
    with pytest.raises(error, match=message):
        made()
