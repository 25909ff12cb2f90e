"""Hermetic DNS as the engine has it: the settings each mode gives a container, and no DNS
query leaving a container for a name nobody here provides (counted, not assumed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pytest_dockernet import assert_not_resolves, assert_resolves

COMMENT = "pytest-dockernet-test-dns"


def host_config(container) -> tuple:
    config = container.client.api.inspect_container(container.id)["HostConfig"]
    return config["Dns"] or [], config["DnsSearch"] or [], config["DnsOptions"] or []


def test_hermetic_settings_are_the_engines(dockernet):
    net = dockernet.network("n")
    assert host_config(dockernet.container("c", networks=[net])) == (["127.0.0.1"], ["."], ["ndots:1"])
    assert host_config(dockernet.container("b", network_mode="bridge")) == (["127.0.0.1"], ["."], ["ndots:1"])
    # In the host's network namespace, a container keeps the host's resolver.
    assert host_config(dockernet.container("h", network_mode="host")) == ([], [], [])


def test_host_mode_leaves_dockers_settings_alone(pytester):
    pytester.makepyfile(
        """
        def test_settings(dockernet):
            c = dockernet.container("c")
            config = c.client.api.inspect_container(c.id)["HostConfig"]
            assert (config["Dns"] or [], config["DnsSearch"] or [], config["DnsOptions"] or []) == ([], [], [])
        """
    )
    pytester.runpytest("--dockernet-dns=host", "--dockernet-require").assert_outcomes(passed=1)


def dns_packets_out(pid: int) -> int:
    """Packets to port 53 (UDP and TCP) that left the namespace (not by loopback) so far."""
    listing = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "iptables", "-w", "-L", "OUTPUT", "-v", "-x", "-n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if COMMENT in line)


@pytest.mark.skipif(shutil.which("nsenter") is None or shutil.which("iptables") is None, reason="needs nsenter")
def test_an_unknown_dotted_name_sends_nothing_out(dockernet):
    net = dockernet.network("n")
    a = dockernet.container("a", networks=[net])
    other = dockernet.container("other", networks=[net])
    pid = a.client.api.inspect_container(a.id)["State"]["Pid"]
    for proto in ("udp", "tcp"):
        rule = ["!", "-o", "lo", "-p", proto, "--dport", "53", "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]
        subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "iptables", "-w", "-I", "OUTPUT", *rule], check=True)

    assert_resolves(a, "other", to=other)  # answered by the engine's own DNS, inside
    assert_not_resolves(a, "db.example", timeout=6)  # a dotted name nobody provides
    assert_not_resolves(a, "no-such-service")  # and a single-label one
    assert dns_packets_out(pid) == 0

    # The counter counts: a query sent out on purpose, to a container of this test.
    a.exec(["nslookup", "-timeout=1", "probe.invalid", other.ip()])
    assert dns_packets_out(pid) >= 1
