"""The subnet allocator (subnets.py): parsing --dockernet-subnet-pool, and handing out subnets
of its range."""

import ipaddress

import pytest

from pytest_dockernet.subnets import SubnetAllocator, parse_subnet_range


def test_parse_subnet_range():
    assert parse_subnet_range("10.213.0.0/16") == (ipaddress.IPv4Network("10.213.0.0/16"), 24)
    assert parse_subnet_range("10.77.0.0/16:26") == (ipaddress.IPv4Network("10.77.0.0/16"), 26)
    assert parse_subnet_range("10.77.0.0/28") == (ipaddress.IPv4Network("10.77.0.0/28"), 28)


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
def test_parse_subnet_range_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        parse_subnet_range(text)


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
    """Each grant looks at one subnet of the range, however many were granted before (no
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
