"""A negative answer must be proven: negative helpers fail when the answer is yes, and
raise, rather than pass, when the probe itself could not answer (issue 10)."""

from __future__ import annotations

import os
import shutil

import pytest

from pytest_dockernet import (
    Topology,
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_unreachable,
    reachability,
)
from pytest_dockernet.errors import ProbeFailed

# A real shell (Debian's dash, not busybox, whose shell runs its applets without links) and
# tail (for the resident shell), with none of the probe tools: like a user's minimal image.
TOOLLESS = b"""FROM scratch
COPY root/ /
"""
TOOLLESS_FILES = {
    "/bin/dash": "bin/sh",
    "/usr/bin/tail": "usr/bin/tail",
    "/lib/x86_64-linux-gnu/libc.so.6": "lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "lib64/ld-linux-x86-64.so.2",
}


def test_negative_helpers_fail_when_the_answer_is_yes(dockernet):
    net = dockernet.network("net")
    a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
    with pytest.raises(AssertionError, match=r"a reached b .* expected it not to"):
        assert_unreachable(a, b)
    with pytest.raises(AssertionError, match=r"expected 'b' not to resolve from a; it resolved to"):
        assert_not_resolves(a, "b")
    with pytest.raises(AssertionError, match=r"expected \[a\] and \[b\] to be isolated"):
        assert_isolated([a], [b])
    assert reachability([a], [b])[a, b] is True


def test_assert_unreachable_over_several_targets_names_each_that_answered(dockernet):
    """Several targets are probed at once (one timeout for all); every one that answered is named."""
    front, back = dockernet.network("front"), dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    api = dockernet.container("api", networks=[front, back])
    httpd = ["httpd", "-f", "-p", "8080"]
    cache, db = (dockernet.container(n, networks=[back], command=httpd) for n in ("cache", "db"))
    assert_unreachable(web, [db, cache, db.ip(back)], timeout=1.0)  # containers and an address
    with pytest.raises(AssertionError, match=r"web reached api \([\d.]+\) by ICMP echo, expected it not to") as info:
        dockernet.assert_unreachable(web, (db, api), timeout=1.0)
    assert "db" not in str(info.value).splitlines()[1]  # the line after the diagnosis
    assert_reachable(api, "db", port=8080)
    with pytest.raises(AssertionError, match=r"api reached cache \(cache\) and db \([\d.]+\) on TCP port 8080"):
        assert_unreachable(api, ["cache", db, web], port=8080, timeout=1.0)  # web serves nothing
    with pytest.raises(ValueError, match=r"dst is empty: give a container, a name or an IP address, or a list"):
        assert_unreachable(web, [])
    with pytest.raises(TypeError, match=r"dst\[1\] must be a Container, a DNS name or an IP address, got 5"):
        assert_unreachable(web, [db, 5])


@pytest.fixture(scope="module")
def toolless_image(dockernet_session, tmp_path_factory):
    """The run's own build (no tag), removed at its end."""
    missing = [path for path in TOOLLESS_FILES if not os.path.exists(path)]
    if missing:
        pytest.fail(f"needs Debian's dash and coreutils here: {missing} missing")
    context = tmp_path_factory.mktemp("toolless")
    (context / "Dockerfile").write_bytes(TOOLLESS)
    for source, target in TOOLLESS_FILES.items():
        (context / "root" / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(source), context / "root" / target)
    (context / "root" / "tmp").mkdir()
    (context / "root" / "tmp").chmod(0o1777)
    return dockernet_session.build(context)


@pytest.fixture(scope="module")
def other_image(dockernet_session, tmp_path_factory):
    """Not the probe image (so probed through a sidecar), but its files: the run's own build."""
    context = tmp_path_factory.mktemp("other-image")
    (context / "Dockerfile").write_text(f"FROM {dockernet_session.probe_image}\nLABEL other=1\n")
    return dockernet_session.build(context)


def test_a_probe_without_its_tools_raises_instead_of_passing(dockernet_client, toolless_image):
    with Topology(dockernet_client, image=toolless_image) as t:
        net = t.network("net")
        a, b = t.container("a", networks=[net]), t.container("b", networks=[net])
        for check in (
            lambda: assert_unreachable(a, b),
            lambda: assert_unreachable(a, b, port=80),
            lambda: assert_not_resolves(a, "b"),
            lambda: assert_isolated([a], [b]),
            lambda: reachability([a], [b]),
        ):
            toolless = r"cannot (probe|resolve) from 'a': \S+ has no [a-z, ]+ \(probes need .*trusted"
            with pytest.raises(ProbeFailed, match=toolless):
                check()


def test_a_probe_whose_sidecar_died_raises(dockernet, dockernet_client, other_image):
    other = other_image
    net = dockernet.network("net")
    a = dockernet.container("a", image=other, command=["tail", "-f", "/dev/null"], networks=[net])
    b = dockernet.container("b", networks=[dockernet.network("elsewhere")])
    assert_unreachable(a, b)  # through the sidecar
    dockernet_client.api.kill(a.sidecar_id)
    with pytest.raises(ProbeFailed, match=r"cannot probe from 'a': its probe sidecar is not running"):
        assert_unreachable(a, b)


def test_a_source_whose_dns_is_broken_cannot_prove_a_name_does_not_resolve(dockernet):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    assert_not_resolves(a, "nobody-here")  # its DNS answers for its own name: a proven no
    code, _ = a.exec(["sh", "-c", "echo nameserver 127.0.0.2 > /etc/resolv.conf"])
    assert code == 0
    with pytest.raises(ProbeFailed, match=r"DNS does not answer in .*its own name 'a' did not resolve"):
        assert_not_resolves(a, "nobody-here")
    with pytest.raises(ProbeFailed, match=r"DNS does not answer"):
        assert_unreachable(a, "nobody-here")


def test_a_target_without_an_address_is_an_error(dockernet):
    a = dockernet.container("a")
    loner = dockernet.container("loner", network_mode="none")
    with pytest.raises(ValueError, match=r"dst 'loner' has no address that 'a' could use, so there is nothing"):
        assert_unreachable(a, loner)
    assert_reachable(a, "a")


def test_a_tcp_probe_of_a_server_that_holds_the_connection_open_counts_as_reached(dockernet):
    """busybox nc waits for the server to close; a server that never does (it runs
    `sleep` on the connection) is still answered as reached, within the probe's bound."""
    net = dockernet.network("n")
    dockernet.container("holder", networks=[net], command=["nc", "-ll", "-p", "9000", "-e", "sleep", "600"])
    client = dockernet.container("client", networks=[net])
    assert_reachable(client, "holder", port=9000, timeout=10)
    matrix = reachability([client], [("holder", 9000), ("holder", 9001)], timeout=1)
    assert matrix[client, ("holder", 9000)] and not matrix[client, ("holder", 9001)]


def test_a_stopped_source_probed_through_its_sidecar_raises_instead_of_answering_no(
    dockernet, dockernet_client, other_image
):
    """The sidecar outlives the source, in a namespace left without the source's networks:
    every probe there would answer "no"."""
    net = dockernet.network("n")
    other = other_image
    src = dockernet.container(
        "src", image=other, command=["sh", "-c", "echo about to stop; exec sleep 600"], networks=[net]
    )
    dst = dockernet.container("dst", networks=[net])
    assert_reachable(src, dst)  # its sidecar is up
    dockernet_client.api.kill(src.id)
    dockernet_client.api.wait(src.id, timeout=30)
    for helper in (lambda: assert_unreachable(src, dst), lambda: assert_not_resolves(src, "dst")):
        with pytest.raises(
            ProbeFailed, match=r"(?s)cannot probe from 'src': it is not running.*exit code 137.*about to stop"
        ):
            helper()
    with pytest.raises(ProbeFailed, match="it is not running"):
        reachability([src], [dst])
