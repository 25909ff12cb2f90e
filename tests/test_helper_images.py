"""Helper images without this machine's tools (issue 22, item 3): ``--dockernet-fault-image``
with an image that has the tools (a real partition, loss and rate cap through it, this
machine's tools hidden), with one that lacks them; the default order when this machine has
no tools (a build FROM a public base tried, then an error naming both fixes); the probe
image's error when it can be neither pulled nor built.

"Hidden" is real: the inner run is a process in a mount namespace of its own where the
binaries are covered by an empty, non-executable file; nothing in the plugin is patched.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
import uuid

import pytest

from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.faults.image import PUBLIC_DOCKERFILE, fault_image

pytestmark = pytest.mark.dockernet

FAULT_TESTS = """
from pytest_dockernet import assert_reachable, assert_unreachable
from pytest_dockernet.labels import ROLE

HTTPD = ["httpd", "-f", "-p", "80"]

def test_faults_take(dockernet, dockernet_client):
    net = dockernet.network("n")
    a, b, c = (dockernet.container(n, networks=[net], command=HTTPD) for n in "abc")
    with dockernet.partition(a, b):
        assert_unreachable(a, b, port=80)
        assert_unreachable(b, a, port=80)
        assert_reachable(a, c, port=80)
    assert_reachable(a, b, port=80)
    with dockernet.degrade(c, loss=1.0):
        assert dockernet.measure(a, c, count=5).loss == 1.0
    with dockernet.degrade(c, rate="1mbit"):
        assert_reachable(a, c, port=80)
    ours = dockernet.context.filters()["label"]
    helpers = dockernet_client.api.containers(all=True, filters={"label": [f"{ROLE}=fault-helper", ours]})
    print("helper images:", *sorted({h["Image"] for h in helpers}), "(end)")
"""

ONE_FAULT = """
def test_partition(dockernet):
    a, b = dockernet.container("a"), dockernet.container("b")
    dockernet.partition(a, b)

def test_partition_again(dockernet):
    a, b = dockernet.container("a"), dockernet.container("b")
    dockernet.partition(a, b)
"""


def hidden(where, *tools: str) -> list[str]:
    """A command prefix running the rest in a mount namespace where ``tools`` (as found on
    PATH or in the sbin directories, through their symlinks) are empty, non-executable files."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("hiding this machine's tools needs root and unshare (util-linux)")
    paths = []
    for tool in tools:
        for found in (shutil.which(tool), f"/usr/sbin/{tool}", f"/sbin/{tool}"):
            if found and os.path.exists(found) and os.path.realpath(found) not in paths:
                paths.append(os.path.realpath(found))
    assert paths, f"none of {tools} is on this machine: nothing to hide"
    empty = where / "hidden"
    empty.write_text("")
    empty.chmod(0o644)
    mounts = " && ".join(f"mount --bind {empty} {path}" for path in paths)
    return ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "hidden"]


@pytest.fixture
def nettools(dockernet, dockernet_client):
    """An image that has the tools, made here without a registry: the plugin's own fault
    image with ``tc`` moved off the sbin directories to a directory of its PATH (so only a
    search of the image's PATH finds it; busybox's ``/bin/tc`` applet comes later)."""
    base = fault_image(DockerEngine(dockernet_client), dockernet.probe_image).tag
    tag = f"dockernet-test/nettools:{uuid.uuid4().hex[:10]}"
    dockerfile = (
        f"FROM {base}\nRUN mkdir -p /opt/nettools/bin && mv /usr/sbin/tc /opt/nettools/bin/tc\n"
        "ENV PATH=/opt/nettools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    dockernet_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    yield tag
    dockernet_client.images.remove(tag)


def test_a_given_fault_image_runs_the_faults_without_this_machines_tools(inner_runs, pytester, nettools):
    pytester.makepyfile(test_faults=FAULT_TESTS)
    command = inner_runs.pytest_command("-s", "--dockernet-require", "--dockernet-fault-image", nettools)
    result = pytester.run(*hidden(pytester.path, "iptables", "ip6tables", "tc"), *command, timeout=180)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*helper images: {nettools} (end)"])


def test_a_given_fault_image_from_the_ini_file(inner_runs, pytester, nettools):
    pytester.makeini(f"[pytest]\ndockernet_fault_image = {nettools}\n")
    pytester.makepyfile(test_faults=FAULT_TESTS)
    result = inner_runs.run("-s", "--dockernet-require")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*helper images: {nettools} (end)"])


def test_a_given_image_without_the_tools_is_an_error_naming_the_option(inner_runs, pytester, dockernet):
    """The probe image has a shell but neither iptables nor a real tc (busybox's applet is
    no tc): each test that needs the helpers fails saying so; the check ran once."""
    probe = dockernet.probe_image
    pytester.makepyfile(test_faults=ONE_FAULT)
    result = inner_runs.run("--dockernet-require", "--dockernet-fault-image", probe)
    result.assert_outcomes(failed=2)
    message = (
        f"*--dockernet-fault-image {probe}: the fault helpers need iptables and tc working in a container's "
        "network namespace; in this image iptables: not found; tc: not found (install iptables and iproute2 in it)"
    )
    result.stdout.fnmatch_lines([message, message])
    assert inner_runs.resources() == []


def test_a_given_image_that_is_nowhere_is_an_error_naming_the_option(inner_runs, pytester):
    pytester.makepyfile(test_faults=ONE_FAULT)
    result = inner_runs.run("--dockernet-fault-image", "dockernet-test/nowhere:1")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*--dockernet-fault-image dockernet-test/nowhere:1: image 'dockernet-test/nowhere:1' is not on the engine*"]
    )


def test_without_tools_here_a_public_base_is_tried_then_both_fixes_named(inner_runs, pytester, dockernet_client):
    """This machine's tools hidden, no option: the plugin builds FROM a public base with its
    package manager. Without a registry (this sandbox) that fails at once, and the error
    names both ways out; with one, the image is built and the faults take."""
    pytester.makepyfile(test_faults=FAULT_TESTS)
    command = inner_runs.pytest_command("-s", "--dockernet-require")
    started = time.monotonic()
    result = pytester.run(*hidden(pytester.path, "iptables", "ip6tables", "tc"), *command, timeout=300)
    took = time.monotonic() - started
    public = "pytest-dockernet/faults:" + hashlib.sha256(PUBLIC_DOCKERFILE.encode()).hexdigest()[:12]
    if result.ret == 0:  # a registry answered: the public base was built and used
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"*helper images: {public} (end)"])
        dockernet_client.images.remove(public)
        return
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*faults need iptables, ip6tables and tc in their helper image: this machine has none to build it "
            "from (iptables and tc looked for on PATH, /usr/sbin, /sbin), and building one FROM alpine:3.20 "
            "with apk failed: *",
            "*Either install them here (Debian: apt-get install iptables iproute2), or pass "
            "--dockernet-fault-image IMAGE (ini dockernet_fault_image) naming an image the engine has or can "
            "pull that has iptables, ip6tables and tc",
        ]
    )
    assert not dockernet_client.images.list(public)
    print(f"inner run with the public build tried: {took:.1f} s")


def test_no_probe_image_without_a_busybox_names_where_it_looked(inner_runs, pytester):
    """The probe image can be neither pulled nor built (no busybox on this machine, hidden):
    the error names both fixes, --dockernet-image and a static busybox, and where it looked."""
    pytester.makepyfile("def test_one(dockernet):\n    dockernet.container('c')\n")
    command = inner_runs.pytest_command("--dockernet-image", "dockernet-test/nowhere:1")
    result = pytester.run(*hidden(pytester.path, "busybox"), *command, timeout=120)
    result.assert_outcomes(errors=1)
    path = re.escape(os.environ["PATH"])
    result.stdout.re_match_lines(
        [
            "dockernet: no probe image.",
            "image 'dockernet-test/nowhere:1' is not on the engine and could not be pulled: .*",
            rf"No image could be built instead: no busybox on PATH \({path}\)\.",
            r"Either make the image available \(docker pull / docker load it, or name another one with "
            r"--dockernet-image\), or install a statically linked busybox \(Debian: busybox-static\) on PATH "
            r"or point --dockernet-busybox at it\.",
        ]
    )


def derived(client, base: str, lines: str) -> str:
    tag = f"dockernet-test/nettools:{uuid.uuid4().hex[:10]}"
    client.images.build(fileobj=io.BytesIO(f"FROM {base}\n{lines}".encode()), tag=tag, rm=True, forcerm=True)
    return tag


def test_a_given_image_without_ip6tables_refuses_what_needs_it(dockernet_client, dockernet, nettools):
    """IPv4 faults work; one that would leave IPv6 uncovered is refused naming the image."""
    from pytest_dockernet import DriverUnavailable, Topology, assert_unreachable

    tag = derived(dockernet_client, nettools, "RUN rm /usr/sbin/ip6tables\n")
    try:
        with Topology(
            dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator, fault_image=tag
        ) as topology:
            v4, v6 = topology.network("v4"), topology.network("v6", ipv6=True)
            a, b = (topology.container(n, networks=[v4]) for n in "ab")
            c, d = (topology.container(n, networks=[v6]) for n in "cd")
            with pytest.raises(
                DriverUnavailable,
                match=rf"^partition #1: \[d\] have IPv6 addresses, which needs ip6tables: --dockernet-fault-image "
                rf"{re.escape(tag)} has no working ip6tables \(install iptables and iproute2\); nothing was applied$",
            ):
                topology.partition(c, d)
            topology.partition(a, b)
            assert_unreachable(a, b)
    finally:
        dockernet_client.images.remove(tag)


def test_a_given_image_with_an_entrypoint_is_refused_naming_it(dockernet_client, dockernet, nettools):
    from pytest_dockernet import DockernetError, Topology

    tag = derived(dockernet_client, nettools, 'ENTRYPOINT ["/bin/busybox"]\n')
    try:
        with Topology(
            dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator, fault_image=tag
        ) as topology:
            a, b = topology.container("a"), topology.container("b")
            with pytest.raises(
                DockernetError,
                match=rf"^--dockernet-fault-image {re.escape(tag)}: the image has an ENTRYPOINT "
                r"\(\['/bin/busybox'\]\), but the fault helpers run `sh` as their command",
            ):
                topology.partition(a, b)
    finally:
        dockernet_client.images.remove(tag)
