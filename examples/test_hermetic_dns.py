"""Hermetic DNS (--dockernet-dns=hermetic, the default): names no container provides fail
inside the engine instead of being asked of the host's resolvers."""

import time

from pytest_dockernet import assert_not_resolves, assert_resolves


def test_unknown_name_fails_at_once(dockernet):
    api = dockernet.container("api")  # no networks=: joins the factory's "default" network
    dockernet.container("db")

    assert_resolves(api, "db", to=dockernet.get_container("db"))
    started = time.monotonic()
    assert_not_resolves(api, "no-such-service")
    assert time.monotonic() - started < 2  # an empty answer at once, no upstream timeout
