"""compose()'s service keys that shape one container (issue 23, item 4): each observed
inside the container on a real engine (/proc/sys, /etc/hosts, resolv.conf, the interface,
/proc/mounts, ulimit, PID 1, the stop timeout), platform and runtime against the engine's,
and bad values refused naming the key's path before anything is made."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import textwrap
import time
import warnings

import pytest

from pytest_dockernet import ComposeError
from pytest_dockernet.compose.file import load
from pytest_dockernet.compose.service_keys import HOST_GATEWAY

pytestmark = pytest.mark.dockernet

BASE = "pytest-dockernet/app-base:bookworm"
# Fixed subnets of these tests' files (no other test file uses them).
NET4, NET6 = "10.77.231", "fd00:77:231:"


def write(tmp_path, document: dict | str, name: str = "compose.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if isinstance(document, dict) else textwrap.dedent(document))
    return path


def out(container, command: str) -> str:
    code, output = container.exec(["sh", "-c", command])
    assert code == 0, f"{command}: exit {code}: {output}"
    return output.strip()


def inspect(container) -> dict:
    return container.client.api.inspect_container(container.id)


def test_kernel_hosts_mounts_and_limits_are_the_files(dockernet, tmp_path):
    probe = dockernet.probe_image
    path = write(
        tmp_path,
        {
            "services": {
                "a": {
                    "image": probe,
                    "sysctls": {"net.ipv4.ip_unprivileged_port_start": 80, "net.ipv4.tcp_syncookies": "0"},
                    "extra_hosts": ["db.test:10.9.0.5", "six.test=::1", f"gw.test:{HOST_GATEWAY}"],
                    "tmpfs": ["/scratch:size=1m", "/plain"],
                    "volumes": [{"type": "tmpfs", "target": "/fast", "tmpfs": {"size": "2m", "mode": 1770}}],
                    "shm_size": "16m",
                    "ulimits": {"nofile": {"soft": 1000, "hard": 2000}, "nproc": 500},
                    "init": True,
                    "mac_address": "02:42:0a:4d:e7:09",
                },
                "b": {
                    "image": probe,
                    "sysctls": ["net.ipv4.ip_unprivileged_port_start=1000"],
                    "extra_hosts": {"db.test": "10.9.0.6", "many.test": ["10.9.0.7", "10.9.0.8"]},
                    "tmpfs": "/one",
                },
            }
        },
    )
    stack = dockernet.compose(path)
    a, b = stack["a"], stack["b"]

    assert out(a, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/tcp_syncookies") == "80\n0"
    assert out(b, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start") == "1000"

    hosts = out(a, "cat /etc/hosts").splitlines()
    assert "10.9.0.5\tdb.test" in hosts and "::1\tsix.test" in hosts
    gateway = next(line.split("\t")[0] for line in hosts if line.endswith("\tgw.test"))
    ipam = dockernet.client.api.inspect_network("bridge")["IPAM"]["Config"][0]
    # Docker 20.10 leaves the default bridge's gateway out of its IPAM config after some of
    # its restarts: it is then the subnet's first address, as the engine gives it.
    bridge = ipam.get("Gateway") or str(ipaddress.ip_network(ipam["Subnet"])[1])
    assert gateway == bridge  # host-gateway: the engine's host on its default bridge
    assert {"10.9.0.6\tdb.test", "10.9.0.7\tmany.test", "10.9.0.8\tmany.test"} <= set(
        out(b, "cat /etc/hosts").splitlines()
    )

    mounts = {line.split()[1]: line.split() for line in out(a, "cat /proc/mounts").splitlines()}
    assert mounts["/scratch"][2] == "tmpfs" and "size=1024k" in mounts["/scratch"][3]
    assert mounts["/plain"][2] == "tmpfs"
    assert mounts["/fast"][2] == "tmpfs" and "size=2048k" in mounts["/fast"][3] and "mode=1770" in mounts["/fast"][3]
    assert "size=16384k" in mounts["/dev/shm"][3]
    assert out(b, "grep ' /one ' /proc/mounts").split()[2] == "tmpfs"

    # The container's own process's limits, as the kernel keeps them. Not those of the
    # command that reads them: a probe that runs by `docker exec` gets its soft NOFILE raised
    # to the hard limit by runc (a Go program: Go raises it at start and its child inherits).
    limits = out(a, "grep -E '^Max (open files|processes) ' /proc/1/limits").splitlines()
    assert [line.split()[-3:-1] for line in limits] == [["500", "500"], ["1000", "2000"]], limits
    assert out(a, "cat /proc/1/comm") == "docker-init"  # init: true: PID 1 is the engine's init
    assert out(b, "cat /proc/1/comm") != "docker-init"
    assert out(a, "cat /sys/class/net/eth0/address") == "02:42:0a:4d:e7:09"
    assert not a.pooled and not b.pooled  # what they ask for is seen inside: never a pooled container


def test_redis_sizes_its_clients_to_the_files_nofile_ulimit(dockernet, tmp_path, app_base):
    """A real server reads the limits the file sets: redis keeps 32 descriptors for itself."""
    path = write(
        tmp_path,
        {
            "services": {
                "cache": {
                    "image": app_base,
                    "command": ["redis-server", "--protected-mode", "no", "--tcp-backlog", "1000"],
                    "ulimits": {"nofile": 1056},
                    "sysctls": {"net.core.somaxconn": 1000},
                }
            }
        },
    )
    cache = dockernet.compose(path)["cache"]
    cache.wait_until(lambda c: "Ready to accept connections" in c.logs(), 30)
    assert out(cache, "redis-cli config get maxclients").splitlines() == ["maxclients", "1024"]
    assert "somaxconn" not in cache.logs()  # redis warns when its backlog exceeds the kernel's


@pytest.fixture(scope="module")
def app_base(dockernet_client) -> str:
    try:
        dockernet_client.images.get(BASE)
    except Exception:  # noqa: BLE001 - the image is made by scripts/app-base-image
        subprocess.run(["scripts/app-base-image"], check=True)
    return BASE


# A Python service that takes 2 s to shut down on SIGTERM, then says so.
SLOW_STOP = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    time.sleep(2); print('bye', flush=True); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('up', flush=True)\n"
    "while True: time.sleep(1)\n"
)


def test_stop_grace_period_is_the_stop_timeout_of_stop_and_restart(dockernet, tmp_path, app_base):
    service = {"image": app_base, "command": ["python3", "-c", SLOW_STOP], "healthcheck": {"disable": True}}
    path = write(
        tmp_path,
        {
            "services": {
                "patient": {**service, "stop_grace_period": "6s"},
                "hasty": {**service, "stop_grace_period": "500ms"},
            }
        },
    )
    stack = dockernet.compose(path)
    patient, hasty = stack["patient"], stack["hasty"]
    assert inspect(patient)["Config"]["StopTimeout"] == 6 and inspect(hasty)["Config"]["StopTimeout"] == 1
    for container in (patient, hasty):
        container.wait_until(lambda c: "up" in c.logs())

    started = time.monotonic()
    patient.stop()  # no timeout given: the file's 6 s, so its 2 s shutdown completes
    assert 1.5 < time.monotonic() - started < 6
    assert (inspect(patient)["State"]["ExitCode"], patient.logs().split()[-1]) == (0, "bye")

    hasty.stop()  # 1 s, then SIGKILL: its shutdown never finishes
    assert inspect(hasty)["State"]["ExitCode"] == 137 and "bye" not in hasty.logs()

    patient.start()
    patient.wait_until(lambda c: c.logs().split().count("up") == 2)
    patient.restart()  # the stop of a restart waits as long
    assert patient.logs().split().count("bye") == 2
    hasty.start()
    hasty.restart(timeout=0)  # a timeout given still wins
    assert "bye" not in hasty.logs()


# -- DNS --------------------------------------------------------------------------------


# A DNS server of the test's own: every A question is answered 10.1.2.3, any other has no answer.
DNS_SERVER = """
import socket
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("0.0.0.0", 53))
print("serving", flush=True)
while True:
    query, peer = server.recvfrom(512)
    end = query.index(b"\\0", 12) + 5  # the question: its name, type and class
    a = query[end - 4 : end - 2] == b"\\0\\1"
    answer = b"\\xc0\\x0c\\0\\1\\0\\1\\0\\0\\0\\x3c\\0\\4" + bytes([10, 1, 2, 3]) if a else b""
    header = query[:2] + b"\\x81\\x80" + query[4:6] + (b"\\0\\1" if a else b"\\0\\0") + b"\\0\\0\\0\\0"
    server.sendto(header + query[12:end] + answer, peer)
"""


def dns_file(tmp_path, probe: str, servers: list[str], server_image: str = BASE):
    """A DNS server of the test's own (Python, at a fixed address) and a client whose dns:
    lists ``servers``."""
    return write(
        tmp_path,
        {
            "services": {
                "ns": {
                    "image": server_image,
                    "command": ["python3", "-c", DNS_SERVER],
                    "healthcheck": {"disable": True},
                    "networks": {"lan": {"ipv4_address": f"{NET4}.53"}},
                },
                "client": {
                    "image": probe,
                    "depends_on": ["ns"],
                    "dns": servers,
                    "dns_search": "inside.test",
                    "dns_opt": ["timeout:1", "attempts:1"],
                    "networks": ["lan"],
                },
            },
            "networks": {"lan": {"ipam": {"config": [{"subnet": f"{NET4}.0/24"}]}}},
        },
    )


def resolver(container) -> tuple[list[str], list[str], list[str]]:
    config = inspect(container)["HostConfig"]
    return config["Dns"] or [], config["DnsSearch"] or [], config["DnsOptions"] or []


def test_hermetic_dns_asks_the_stacks_own_server_and_never_an_outside_one(dockernet, tmp_path, app_base):
    # TEST-NET-1's 192.0.2.1 is outside: never asked; loopback is the container itself.
    path = dns_file(tmp_path, dockernet.probe_image, [f"{NET4}.53", "192.0.2.1", "127.0.0.1"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = dockernet.compose(path)
    warned = " ".join(str(w.message) for w in caught)
    assert "services.client.dns 192.0.2.1 (hermetic DNS: a server outside the stack's networks" in warned
    client = stack["client"]
    # The search list and options on top of the plugin's; its own server in place of the loopback one.
    assert resolver(client) == ([f"{NET4}.53", "127.0.0.1"], ["inside.test"], ["ndots:1", "timeout:1", "attempts:1"])
    conf = out(client, "cat /etc/resolv.conf")
    assert "search inside.test" in conf and re.search(r"options .*timeout:1", conf)
    assert "nameserver 127.0.0.11" in conf  # the engine's resolver, which forwards to the file's server
    stack["ns"].wait_until(lambda c: "serving" in c.logs())
    assert "10.1.2.3" in out(client, "nslookup answer.inside.test")


def test_host_dns_mode_applies_the_files_dns_keys_as_written(pytester, tmp_path):
    path = dns_file(tmp_path, "PROBE", [f"{NET4}.53", "192.0.2.1"])
    pytester.makepyfile(
        f"""
        import json, pathlib, warnings

        def test_as_written(dockernet, tmp_path):
            text = pathlib.Path({str(path)!r}).read_text().replace("PROBE", dockernet.probe_image)
            (tmp_path / "compose.yaml").write_text(text)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing ignored in this mode
                stack = dockernet.compose(tmp_path / "compose.yaml", services=["client"])
            config = stack["client"].client.api.inspect_container(stack["client"].id)["HostConfig"]
            # No lookup is made: 192.0.2.1 is outside, and would be asked in this mode.
            assert config["Dns"] == ["{NET4}.53", "192.0.2.1"]
            assert config["DnsSearch"] == ["inside.test"]
            assert config["DnsOptions"] == ["timeout:1", "attempts:1"]
            code, conf = stack["client"].exec(["cat", "/etc/resolv.conf"])
            assert code == 0 and "search inside.test" in conf and "nameserver 127.0.0.11" in conf
            assert "timeout:1" in conf and "ndots:1" not in conf, conf  # the plugin's option is not added
        """
    )
    pytester.runpytest("--dockernet-dns=host", "--dockernet-require", "-p", "no:cacheprovider").assert_outcomes(
        passed=1
    )


def test_container_dns_keywords_in_both_modes(dockernet):
    net = dockernet.network("n", subnet=f"{NET4}.0/24")
    server = dockernet.container("ns", networks={net: {"ipv4_address": f"{NET4}.53"}})
    client = dockernet.container("c", networks=[net], dns=[f"{NET4}.53"], dns_opt=["ndots:3"])
    assert resolver(client) == ([f"{NET4}.53"], ["."], ["ndots:3"])  # an option replaces the plugin's by name
    itself = dockernet.container("self", networks=[net], dns=["127.0.0.1"], dns_search=["inside.test"])
    assert resolver(itself) == (["127.0.0.1"], ["inside.test"], ["ndots:1"])  # loopback: the container itself
    assert not client.pooled and server.ip(net) == f"{NET4}.53"
    with pytest.raises(ValueError, match=r"dns: 192\.0\.2\.1 is neither a loopback address nor one on this topology's"):
        dockernet.container("out", networks=[net], dns=["192.0.2.1"])
    with pytest.raises(ValueError, match=r"dns, dns_search and dns_opt cannot be set .*\(network_mode='host'\)"):
        dockernet.container("h", network_mode="host", dns_search=["inside.test"])
    with pytest.raises(ValueError, match=r"docker_options\['dns'\] is managed by the plugin: pass dns= to container"):
        dockernet.container("d", docker_options={"dns": ["10.0.0.1"]})


# -- addresses --------------------------------------------------------------------------


def test_ipv6_address_and_a_mac_address_per_network(dockernet, tmp_path):
    dockernet.context.need("ipv6")
    mac = "02:42:0a:4d:e7:10"
    path = write(
        tmp_path,
        {
            "services": {
                "a": {
                    "image": dockernet.probe_image,
                    "networks": {
                        "v6": {"ipv4_address": f"{NET4}.10", "ipv6_address": f"{NET6}:10", "mac_address": mac}
                    },
                },
                "b": {"image": dockernet.probe_image, "networks": ["v6"]},
            },
            "networks": {
                "v6": {"enable_ipv6": True, "ipam": {"config": [{"subnet": f"{NET4}.0/24"}, {"subnet": f"{NET6}:/64"}]}}
            },
        },
    )
    stack = dockernet.compose(path)
    a = stack["a"]
    assert f"inet6 {NET6}:10/64" in out(a, "ip -6 addr show eth0")
    assert out(a, "cat /sys/class/net/eth0/address") == mac
    assert stack.networks["v6"].subnet6 == f"{NET6}:/64"
    dockernet.assert_reachable(stack["b"], f"{NET6}:10")


def test_a_mac_address_on_a_second_network_needs_api_1_44(dockernet, tmp_path):
    api = dockernet.client.version()["ApiVersion"]
    if tuple(int(p) for p in api.split(".")) >= (1, 44):
        pytest.skip(f"this engine speaks API {api}: it takes a MAC address per network")
    path = write(
        tmp_path,
        {
            "services": {
                "a": {
                    "image": dockernet.probe_image,
                    "networks": {"one": {}, "two": {"mac_address": "02:42:0a:4d:e7:11"}},
                }
            },
            "networks": {"one": {}, "two": {}},
        },
    )
    with pytest.raises(
        ComposeError,
        match=rf"services\.a\.networks\.two\.mac_address: .* needs engine API 1\.44; "
        rf"this engine speaks {re.escape(api)}",
    ):
        dockernet.compose(path)
    assert dockernet.containers_list == [] and dockernet.networks_list == []


# -- platform and runtime ---------------------------------------------------------------


def engine_platform(client) -> str:
    version = client.version()
    return f"{version['Os']}/{version['Arch']}"


def test_platform_and_runtime_of_the_engine_are_accepted(dockernet, tmp_path):
    runtimes = sorted(dockernet.client.info()["Runtimes"])
    path = write(
        tmp_path,
        {
            "services": {
                "a": {
                    "image": dockernet.probe_image,
                    "platform": engine_platform(dockernet.client),
                    "runtime": runtimes[-1],
                }
            }
        },
    )
    a = dockernet.compose(path)["a"]
    assert inspect(a)["HostConfig"]["Runtime"] == runtimes[-1]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("platform", "wasi/wasm", "'wasi/wasm' cannot run on this engine, whose platform is {platform}"),
        (
            "runtime",
            "io.containerd.wasmedge.v1",
            "this engine ({engine}) has no runtime 'io.containerd.wasmedge.v1'; it has {runtimes}",
        ),
    ],
)
def test_a_platform_or_runtime_the_engine_lacks_is_refused_naming_the_engines(dockernet, tmp_path, key, value, message):
    info = dockernet.context.capabilities.of(dockernet.context.engine).info
    expected = message.format(
        platform=engine_platform(dockernet.client),
        engine=info.describe(),
        runtimes=", ".join(sorted(dockernet.client.info()["Runtimes"])),
    )
    path = write(tmp_path, {"services": {"web": {"image": dockernet.probe_image, key: value}}})
    with pytest.raises(ComposeError, match=re.escape(f"{path}: services.web.{key}: ") + re.escape(expected)):
        dockernet.compose(path)
    assert dockernet.containers_list == [] and dockernet.networks_list == []


# -- refusals, before anything is made ---------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"sysctls": {"kernel.shmmax": 1}},
            "services.web.sysctls.kernel.shmmax: an IPC namespace sysctl; compose() "
            "sets the network namespace's sysctls (net.*) only",
        ),
        ({"sysctls": ["vm.swappiness=1"]}, "services.web.sysctls.vm.swappiness: not namespaced"),
        ({"sysctls": ["net.ipv4.ip_forward"]}, "services.web.sysctls.net.ipv4.ip_forward: give a value"),
        (
            {"sysctls": {"net.ipv4.ip_forward": 1}, "network_mode": "host"},
            "services.web.sysctls.net.ipv4.ip_forward: the service runs in the host's network namespace",
        ),
        ({"extra_hosts": ["db.test:nowhere"]}, "services.web.extra_hosts[0]: 'nowhere' is not an IP address"),
        ({"extra_hosts": {"db test": "10.0.0.1"}}, "services.web.extra_hosts.db test: 'db test' is not a host name"),
        ({"dns": ["ns.example"]}, "services.web.dns[0]: 'ns.example' is not a DNS server's IP address"),
        ({"dns_search": ["a b"]}, "services.web.dns_search[0]: 'a b' is not a search domain"),
        ({"dns_opt": "ndots:2"}, "services.web.dns_opt must be a list"),
        ({"dns": "10.0.0.1", "network_mode": "host"}, "services.web.dns: a service in another network namespace"),
        ({"tmpfs": ["scratch"]}, "services.web.tmpfs[0]: 'scratch' is not '/path/inside'"),
        (
            {"volumes": [{"type": "tmpfs", "target": "/t", "tmpfs": {"mode": "rwx"}}]},
            "services.web.volumes[0].tmpfs.mode: 'rwx' is not a file mode in octal",
        ),
        (
            {"volumes": [{"type": "tmpfs", "target": "/t", "source": "x"}]},
            "services.web.volumes[0]: key 'source' is not one of a tmpfs mount",
        ),
        ({"shm_size": "lots"}, "services.web.shm_size: 'lots' is not a size in bytes"),
        ({"ulimits": {"files": 10}}, "services.web.ulimits.files: not a ulimit"),
        (
            {"ulimits": {"nofile": {"soft": 20, "hard": 10}}},
            "services.web.ulimits.nofile: soft 20 is above hard 10",
        ),
        ({"ulimits": {"nofile": {"soft": 20}}}, "services.web.ulimits.nofile: give 'soft' and 'hard'"),
        ({"stop_grace_period": "soon"}, "services.web.stop_grace_period: 'soon' is not a duration"),
        ({"platform": "amd64"}, "services.web.platform: 'amd64' is not os/arch[/variant]"),
        ({"mac_address": "02:42"}, "services.web.mac_address: '02:42' is not a MAC address"),
        ({"mac_address": "03:42:0a:00:00:01"}, "services.web.mac_address: 03:42:0a:00:00:01 is a multicast address"),
        ({"runtime": ""}, "services.web.runtime must be a non-empty string"),
        (
            {"networks": {"lan": {"ipv6_address": "fd00:77:231::5"}}},
            "services.web.networks.lan.ipv6_address: 'fd00:77:231::5': a fixed IPv6 address needs the network's "
            "own IPv6 subnet",
        ),
        (
            {"networks": {"lan": {"ipv6_address": "10.0.0.1"}}},
            "services.web.networks.lan.ipv6_address: '10.0.0.1' is not an IPv6 address",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, keys, message):
    path = write(tmp_path, {"services": {"web": {"image": "busybox", **keys}}, "networks": {"lan": {}}})
    with pytest.raises(ComposeError, match=re.escape(f"{path}: {message}")):
        load(path)


def test_ipv6_subnets_and_addresses_are_checked(tmp_path):
    def network(*configs, ipv6=True):
        return {"lan": {"enable_ipv6": ipv6, "ipam": {"config": [{"subnet": f"{NET4}.0/24"}, *configs]}}}

    cases = [
        (
            network({"subnet": f"{NET6}:/64"}, ipv6=False),
            {},
            "networks.lan.ipam.config[1].subnet: an IPv6 subnet needs the network's enable_ipv6: true",
        ),
        (
            network({"subnet": f"{NET6}:/64", "gateway": f"{NET6}:1"}),
            {},
            "networks.lan.ipam.config[1]: an IPv6 entry takes 'subnet' only",
        ),
        (network({"subnet": f"{NET6}:1/64"}), {}, "networks.lan.ipam.config[1].subnet: "),
        (network({"subnet": f"{NET6}:/64"}), {"ipv6_address": "fd00:1::5"}, "is not in the network's IPv6 subnet"),
        (network({"subnet": f"{NET6}:/64"}), {"ipv6_address": f"{NET6}:1"}, "is the subnet's own or its gateway's"),
    ]
    for networks, endpoint, message in cases:
        path = write(
            tmp_path, {"services": {"web": {"image": "b", "networks": {"lan": endpoint}}}, "networks": networks}
        )
        with pytest.raises(ComposeError, match=re.escape(message)):
            load(path)
    twice = {"lan": {"ipv6_address": f"{NET6}:5"}}
    path = write(
        tmp_path,
        {
            "services": {"a": {"image": "b", "networks": twice}, "b": {"image": "b", "networks": twice}},
            "networks": network({"subnet": f"{NET6}:/64"}),
        },
    )
    with pytest.raises(
        ComposeError, match=re.escape("services.b.networks.lan.ipv6_address: 'fd00:77:231::5' is services.a's already")
    ):
        load(path)


def test_read_values(tmp_path):
    """What the readers make of each form (what container() is given)."""
    path = write(
        tmp_path,
        """
        services:
          web:
            image: busybox
            sysctls: [net.core.somaxconn=1024]
            extra_hosts: {gw: host-gateway, v6: "[::1]"}
            shm_size: 1gb
            ulimits: {nofile: "100", core: -1}
            stop_grace_period: 1m30s
            tmpfs: /run
            volumes: [{type: tmpfs, target: /t, read_only: true, tmpfs: {size: 1000}}]
            mac_address: 02-42-0A-00-00-01
            dns: 10.0.0.53
            dns_search: [a.test, b.test]
            platform: linux/arm64/v8
        """,
    )
    web = load(path).services["web"]
    assert web.docker_options == {
        "sysctls": {"net.core.somaxconn": "1024"},
        "extra_hosts": ["gw:host-gateway", "v6:::1"],
        "tmpfs": {"/t": "size=1000,ro", "/run": ""},
        "shm_size": 1 << 30,
        "ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 100}, {"Name": "core", "Soft": -1, "Hard": -1}],
        "mac_address": "02:42:0a:00:00:01",
    }
    assert (web.stop_timeout, web.dns, web.dns_search, web.platform) == (
        90,
        ["10.0.0.53"],
        ["a.test", "b.test"],
        "linux/arm64/v8",
    )
    assert web.mounts == []  # the tmpfs volume is a tmpfs mount, not a volume
