"""Every helper works from a container whose image has no shell and no tools.

Probes run in a sidecar of the probe image that shares the source's network namespace
(and its /etc/hosts and /etc/resolv.conf), so they see what the application sees.
"""

import pytest

from pytest_dockernet import (
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)


@pytest.fixture(scope="session")
def no_shell_image(dockernet_session, tmp_path_factory):
    """FROM scratch with nothing but a busybox binary, serving HTTP on port 80. busybox
    is copied out of the probe image, so this builds wherever the plugin works; it must
    keep a name starting with "busybox" to run applets named in its arguments. Built
    once per run and, without a tag, removed at the run's end."""
    context = tmp_path_factory.mktemp("no-shell")
    (context / "Dockerfile").write_text(f"""\
FROM {dockernet_session.probe_image} AS tools
FROM scratch
COPY --from=tools /bin/busybox /busybox
ENTRYPOINT ["/busybox", "httpd", "-f", "-p", "80"]
""")
    return dockernet_session.build(context)


def test_every_helper_works_from_a_source_without_shell(dockernet, no_shell_image):
    app = dockernet.network("app")
    web = dockernet.container("web", image=no_shell_image, networks=[app])
    peer = dockernet.container(
        "peer", networks=[app], command=["httpd", "-f", "-p", "8080"]
    )
    stranger = dockernet.container(
        "stranger", networks=[dockernet.network("elsewhere")]
    )

    exit_code, _ = web.exec(["sh", "-c", "true"])
    assert exit_code != 0  # really no shell

    assert_reachable(web, "peer")
    assert_reachable(web, peer, port=8080)
    assert_resolves(web, "peer", to=peer)
    assert_unreachable(web, stranger)
    assert_not_resolves(web, "stranger")
    assert_isolated([web], [stranger])
    matrix = reachability([web], [peer, stranger])
    assert matrix[web, peer] and not matrix[web, stranger]

    assert_reachable(peer, "web", port=80)  # and it serves
