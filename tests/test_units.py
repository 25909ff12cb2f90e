"""The pieces under the factory: subnet allocation, run identity, probe parsing, the image check."""

import ipaddress
import os
import subprocess
import sys

import pytest

from pytest_dockernet import Topology
from pytest_dockernet.image import find_busybox, is_static_elf
from pytest_dockernet.labels import RunIdentity
from pytest_dockernet.probes import parse_addresses
from pytest_dockernet.subnets import SubnetAllocator, parse_pool

# -- subnets --------------------------------------------------------------------------


def test_parse_pool():
    assert parse_pool("10.213.0.0/16") == (ipaddress.IPv4Network("10.213.0.0/16"), 24)
    assert parse_pool("10.77.0.0/16:26") == (ipaddress.IPv4Network("10.77.0.0/16"), 26)
    assert parse_pool("10.77.0.0/28") == (ipaddress.IPv4Network("10.77.0.0/28"), 28)


@pytest.mark.parametrize(
    "text, match",
    [
        ("nonsense", "is not an IPv4 network"),
        ("10.0.0.1/16", "is not an IPv4 network"),
        ("10.0.0.0/16:x", "must be a prefix length"),
        ("10.0.0.0/16:8", "do not fit"),
        ("10.0.0.0/16:30", "do not fit"),
        ("8.8.0.0/16", "not a private address range"),
        ("127.213.0.0/24:24", "cannot be used for containers: it is a loopback range"),
        ("169.254.0.0/16", "cannot be used for containers: it is a link-local range"),
        ("0.0.0.0/8", "cannot be used for containers: it is in 0.0.0.0/8"),
        ("224.0.0.0/16", "cannot be used for containers: it is a multicast range"),
        ("240.0.0.0/16", "cannot be used for containers: it is a reserved range"),
    ],
)
def test_parse_pool_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        parse_pool(text)


def test_allocator_skips_taken_subnets_and_never_repeats():
    allocator = SubnetAllocator("10.77.0.0/24:26", taken=["10.77.0.0/25", "172.17.0.0/16"])
    granted = list(allocator.candidates())
    assert sorted(map(str, granted)) == ["10.77.0.128/26", "10.77.0.192/26"]
    assert list(allocator.candidates()) == []  # all in use
    allocator.release(granted[0])
    assert list(allocator.candidates()) == [granted[0]]


def test_allocator_moves_on_after_a_rejection():
    allocator = SubnetAllocator("10.77.0.0/24:26")
    first = next(allocator.candidates())
    allocator.reject(first)
    rest = list(allocator.candidates())
    assert first not in rest and len(rest) == 3


def test_allocator_cost_does_not_grow_with_grants():
    """Each grant looks at one subnet of the pool, however many were granted before (no
    rescan from the start): counted, not timed."""

    class Counting(SubnetAllocator):
        looked = 0

        def _free(self, subnet):
            self.looked += 1
            return super()._free(subnet)

    allocator = Counting("10.77.0.0/16")
    looks = []
    for _ in range(256):
        before = allocator.looked
        next(allocator.candidates())
        looks.append(allocator.looked - before)
    assert looks == [1] * 256
    with pytest.raises(StopIteration):
        next(allocator.candidates())
    assert allocator.looked == 256 * 2  # the last call looked once at each, and found none free


def test_ipv6_pairs_with_ipv4():
    allocator = SubnetAllocator("10.77.0.0/16")
    a = allocator.ipv6_for(ipaddress.IPv4Network("10.77.3.0/24"))
    b = allocator.ipv6_for(ipaddress.IPv4Network("10.77.4.0/24"))
    assert a.prefixlen == b.prefixlen == 64 and a != b and a.is_private


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


# -- image ----------------------------------------------------------------------------


def test_static_elf_detection(tmp_path):
    busybox, why = find_busybox(None)
    assert busybox is not None, why
    assert is_static_elf(busybox)
    assert not is_static_elf(sys.executable)  # dynamically linked
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not is_static_elf(str(script))
    assert not is_static_elf(str(tmp_path / "missing"))
    assert find_busybox(str(tmp_path / "missing"))[1].endswith("no such file")
    assert "not a statically linked" in find_busybox(sys.executable)[1]


# -- subnets on the engine ------------------------------------------------------------


def test_another_process_taking_the_subnet_first(dockernet_client):
    """The engine refuses an overlapping subnet; the factory moves on to the next one."""
    allocator = SubnetAllocator("10.97.0.0/24:26")
    allocator._start = 0  # the first candidate is 10.97.0.0/26 ...
    squatter = dockernet_client.api.create_network(
        "pytest-dockernet-test-squatter",
        ipam={"Driver": "default", "Config": [{"Subnet": "10.97.0.0/26"}]},
        labels={"pytest-dockernet.session": "test-squatter"},
    )  # ... which "another process" takes after the allocator read the engine's networks
    try:
        with Topology(dockernet_client, allocator=allocator) as topology:
            assert topology.network("n").subnet == "10.97.0.64/26"
            assert topology.network("m").subnet == "10.97.0.128/26"
    finally:
        dockernet_client.api.remove_network(squatter["Id"])


def test_more_networks_than_the_engine_default_pools_allow(dockernet):
    """The engine's own pools give out about 29 networks; explicit subnets have no such limit."""
    networks = [dockernet.network(f"n{i}") for i in range(40)]
    subnets = {n.subnet for n in networks}
    assert len(subnets) == 40
    assert all(ipaddress.IPv4Network(s).subnet_of(ipaddress.IPv4Network("10.213.0.0/16")) for s in subnets)


def test_an_answer_that_does_not_repeat_is_not_counted(dockernet):
    """A negative probe's answer is asked again (Docker's isolation rules flicker while
    networks come and go): only one that repeats counts."""
    from pytest_dockernet.assertions import _confirmed

    src = dockernet.container("src")
    once = "test ! -e /tmp/answered && touch /tmp/answered"
    assert _confirmed(src, [once, "true", "false"]) == [False, True, False]
