"""Chaos that replays: while the API serves its clients, a nemesis cuts it off from its
database, or kills one of them and starts it again, at random, one fault at a time.
The API (examples/app) must answer 200 while it reaches its database and 503 naming the
database while it does not; nothing else. A failure's report gives the seed and the
command that replays the same faults (`--dockernet-seed N`).
The `fresh_stack` fixture is in examples/conftest.py.
"""

from pytest_dockernet import DockernetError, assert_http, http_get

# What the API may answer, whatever the nemesis does: 200, or 503 naming what it misses
# (the cache too while its names do not resolve: see Podman in docs/engines.md)
DESIGNED = {
    (200, "ok\n"),
    (503, "unavailable: no database\n"),
    (503, "unavailable: no cache\n"),
    (503, "unavailable: no database, cache\n"),
}


def test_the_api_answers_as_designed_under_random_faults(fresh_stack, dockernet):
    stack = fresh_stack
    api, database, client = stack["api"], stack["database"], stack["client"]
    answers, unanswered = [], 0
    with dockernet.nemesis(
        [api, database],
        faults=("isolate-one", "kill-restart"),
        every=(0.5, 1.5),  # each calm and each fault: 0.5 to 1.5 seconds
    ) as nemesis:
        while nemesis.running and len(nemesis.history) < 6:
            try:
                response = http_get(client, "http://api:8080/health", timeout=2)
            except DockernetError:
                unanswered += 1  # the API itself was killed
                continue
            answers.append((response.status, response.body))
    # Every fault is lifted here; a fault the nemesis could not apply is raised above
    assert set(answers) <= DESIGNED, answers
    assert [e.fault for e in nemesis.history] == [
        s.fault for s in nemesis.plan(len(nemesis.history))
    ]  # what ran is what the seed drew: the same in a replay
    # The API recovers by itself once its database is back (Podman's DNS may take
    # 40 s to answer again after a restart)
    api.wait_until("healthy", timeout=120)
    assert_http(client, "http://api:8080/health", status=200, timeout=120)
