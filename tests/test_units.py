"""The pieces under the factory: run identity, probe parsing (the image check: test_image.py;
the subnet allocator: test_subnets.py)."""

import os
import subprocess
import sys

from pytest_dockernet.labels import RunIdentity
from pytest_dockernet.probes import parse_addresses

# -- identity -------------------------------------------------------------------------


def test_owner_liveness():
    me = RunIdentity()
    other = RunIdentity(run_id="other")
    assert not me.owner_is_gone(me.labels())  # never our own
    assert not me.owner_is_gone(other.labels())  # same live process, another run id
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_labels = {**other.labels(), "pytest-dockernet.pid": dead.stdout.strip()}
    assert me.owner_is_gone(dead_labels)
    assert not me.owner_is_gone({**dead_labels, "pytest-dockernet.host": "another-host"})
    assert me.owner_is_gone({**other.labels(), "pytest-dockernet.boot": "an-earlier-boot"})
    # A live pid that was reused by a newer process: its start time differs.
    assert me.owner_is_gone({**other.labels(), "pytest-dockernet.started": "1"})
    assert not me.owner_is_gone(
        {**other.labels(), "pytest-dockernet.pid": str(os.getppid()), "pytest-dockernet.started": ""}
    )


# -- probe output ---------------------------------------------------------------------


def test_parse_nslookup_output():
    output = (
        "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\n"
        "Name:\tdb\nAddress: 10.213.5.3\nName:\tdb\nAddress: 10.213.5.4\n\n"
        "Non-authoritative answer:\nName:\tdb\nAddress: fd0d:e7e7:213:5::3\n"
    )
    assert parse_addresses(output) == ["10.213.5.3", "10.213.5.4", "fd0d:e7e7:213:5::3"]


def test_parse_hosts_and_empty_answers():
    assert parse_addresses("hosts 172.17.0.2\nhosts 172.17.0.2\n") == ["172.17.0.2"]
    empty = "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\n\n"
    assert parse_addresses(empty) == []
    assert parse_addresses(";; connection timed out; no servers could be reached\n") == []


def test_an_answer_that_does_not_repeat_is_not_counted(dockernet):
    """A negative probe's answer is asked again (Docker's isolation rules flicker while
    networks come and go): only one that repeats counts."""
    from pytest_dockernet.assertions import _confirmed

    src = dockernet.container("src")
    once = "test ! -e /tmp/answered && touch /tmp/answered"
    assert _confirmed(src, [once, "true", "false"]) == [False, True, False]
