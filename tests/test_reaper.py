"""Removing what dead runs left (pytest_dockernet.reaper): how a prune reports it. Runs killed
and pruned for real: test_teardown.py, test_liveness.py, test_build.py."""

from __future__ import annotations

import io
import subprocess
import uuid

from pytest_dockernet.builds import BUILD, BUILD_ROLE, BUILD_RUN
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.labels import ROLE, SESSION, STARTED, RunIdentity
from pytest_dockernet.reaper import Pruned, prune


def test_how_a_prune_reports_images():
    pruned = Pruned(containers=["dn-r1-1-c"], images=["pytest-dockernet/build:abc-r1"], runs={"r1"})
    assert pruned.describe() == (
        "removed 1 container and 0 networks left by 1 dead run (r1); removed 1 image that build() made for "
        "dead runs\n  container dn-r1-1-c\n  image pytest-dockernet/build:abc-r1"
    )
    assert Pruned(images=["pytest-dockernet/build:abc-r2"]).describe() == (
        "removed 1 image that build() made for dead runs\n  image pytest-dockernet/build:abc-r2"
    )


def test_an_untagged_build_of_a_dead_run_is_pruned_once(dockernet_client, dockernet):
    """A run's build whose tag a later build took (or one cut short) is left untagged: the
    next prune removes it, and the prune after that does not claim its run again."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid whose process has ended: the dead run's
    dead = RunIdentity(run_id=f"dead{uuid.uuid4().hex[:6]}", pid=gone.pid)
    labels = {**dead.labels(), STARTED: "1", ROLE: BUILD_ROLE, BUILD_RUN: dead.run_id, BUILD: "0" * 64}
    dockerfile = io.BytesIO(f"FROM {dockernet.probe_image}\nLABEL untagged=yes\n".encode())
    image, _ = dockernet_client.images.build(fileobj=dockerfile, labels=labels, rm=True)
    assert image.tags == []

    first = prune(DockerEngine(dockernet_client), RunIdentity())
    assert dead.run_id in first.runs and image.id in first.images
    assert not dockernet_client.images.list(filters={"label": f"{SESSION}={dead.run_id}"})
    again = prune(DockerEngine(dockernet_client), RunIdentity())
    assert dead.run_id not in again.runs
