"""The pieces under the factory: run identity (the image check: test_image.py; the subnet
allocator: test_subnets.py; probe parsing: test_probes.py)."""

import os
import subprocess
import sys

from pytest_dockernet.labels import RunIdentity

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


def test_an_engines_api_is_compared_as_numbers():
    """API 1.9 is older than 1.41, and an API that does not say counts as older."""
    import dataclasses

    from pytest_dockernet.engine.info import EngineInfo

    fields = {f.name: "" for f in dataclasses.fields(EngineInfo) if f.name != "runtimes"}
    info = EngineInfo(**{**fields, "rootless": False, "shares_host": False, "shares_network": False})
    assert dataclasses.replace(info, api_version="1.41").api_at_least(1, 9)
    assert not dataclasses.replace(info, api_version="1.41").api_at_least(1, 44)
    assert dataclasses.replace(info, api_version="1.44").api_at_least(1, 44)
    assert not dataclasses.replace(info, api_version="unknown").api_at_least(1, 0)
