"""--dockernet-capture and the marker's capture=: a failing test keeps each network's
traffic as <network>.pcap in its artifacts folder, readable by tcpdump and dpkt, and its
report says the flows; a passing test keeps nothing, and no sidecar outlives its topology."""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import dpkt
import pytest
from test_reports import assert_nothing_left, section

from pytest_dockernet import flows
from pytest_dockernet.capture import DIRECTORY

CAPTURE = "dockernet capture"

# api on front, db on back (no shared network), web on front serving nothing on 5432.
CROSS = """
    from inner_run_spy import record

    def test_cross(dockernet):
        front, back = dockernet.network("front"), dockernet.network("back")
        api = dockernet.container("api", networks=[front])
        web = dockernet.container("web", networks=[front])
        db = dockernet.container("db", networks=[back])
        record(front, back, api, web, db)
        dockernet.assert_unreachable(api, web, port=5432)
        dockernet.assert_reachable(api, db)

    def test_passes(dockernet):
        net = dockernet.network("quiet")
        a = dockernet.container("a", networks=[net])
        b = dockernet.container("b", networks=[net])
        record(net, a, b)
        dockernet.assert_reachable(a, b)
"""


def echo_requests(path: Path) -> list[tuple[str, str]]:
    """(source, destination) of each ICMP echo request in the pcap at ``path``, read by dpkt."""
    found = []
    with open(path, "rb") as f:
        for _, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.icmp.ICMP) and ip.data.type == 8:
                found.append((dpkt.utils.inet_to_str(ip.src), dpkt.utils.inet_to_str(ip.dst)))
    return found


def addresses(result: pytest.RunResult, name: str) -> list[str]:
    """The addresses the topology section gives container ``name``."""
    text = section(result, "dockernet topology")
    block = re.search(rf"^    {name}  \[.*?(?=^    \S|\Z)", text, re.S | re.M)
    assert block, text
    return re.findall(r"on \S+: (\d+\.\d+\.\d+\.\d+)", block.group(0))


def test_a_failing_probe_across_two_networks_leaves_a_pcap_of_its_echoes_and_says_they_got_no_reply(
    inner_runs, pytester
):
    pytester.makepyfile(CROSS)
    result = inner_runs.run("--dockernet-capture", "--dockernet-require")
    result.assert_outcomes(passed=1, failed=1)
    root = pytester.path / "dockernet-artifacts"  # the default folder without --dockernet-artifacts
    [front] = root.glob("*test_cross*/front.pcap")
    back = front.parent / "back.pcap"
    (api,), (web,), (db,) = (addresses(result, n) for n in ("api", "web", "db"))

    assert (api, db) in echo_requests(front), "api's echo requests to db are on front"
    assert echo_requests(back) == [], "the engine drops them before back"
    if shutil.which("tcpdump"):
        read = subprocess.run(["tcpdump", "-nr", str(front)], capture_output=True, text=True, check=True)
        assert f"IP {api} > {db}: ICMP echo request" in read.stdout

    summary = section(result, CAPTURE)
    assert f"front: {front}" in summary
    assert re.search(rf"api {re.escape(api)} -> db {re.escape(db)} ICMP echo x\d+, no reply", summary), summary
    assert f"api {api} -> web {web}:5432 TCP SYN x1, RST x1" in summary
    assert f"back: {back}" in summary
    # The passing test keeps nothing, and no capture sidecar is left on the engine.
    assert [p.name for p in root.iterdir()] == [front.parent.name]
    assert result.stdout.str().count(f"- {CAPTURE} -") == 1
    assert_nothing_left(inner_runs)


def test_the_marker_turns_capture_on_or_off_per_test_and_takes_only_a_bool(inner_runs, pytester):
    pytester.makeini("[pytest]\ndockernet_capture = true\n")
    pytester.makepyfile(
        """
        import pytest
        from inner_run_spy import record

        def fails(dockernet):
            net = dockernet.network("n")
            a = dockernet.container("a", networks=[net], command=["httpd", "-f", "-p", "80"])
            b = dockernet.container("b", networks=[net])
            record(net, a, b)
            dockernet.assert_reachable(b, a, port=80)
            dockernet.assert_reachable(b, a, port=81, timeout=1)

        @pytest.mark.dockernet(capture=False)
        def test_not_recorded(dockernet):
            fails(dockernet)

        def test_recorded_by_the_ini_key(dockernet):
            fails(dockernet)

        @pytest.mark.dockernet(capture="yes")
        def test_bad_value(dockernet):
            pass
        """
    )
    result = inner_runs.run("--dockernet-require", "--dockernet-artifacts", "out")
    result.assert_outcomes(failed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_bad_value*@pytest.mark.dockernet(capture=...) takes True or False, got 'yes'*"])
    out = pytester.path / "out"
    assert not list(out.glob("*test_not_recorded*/*.pcap"))
    [pcap] = out.glob("*test_recorded_by_the_ini_key*/n.pcap")
    summary = section(result, CAPTURE)
    assert f"n: {pcap}" in summary
    # An accepted connection, then one refused, between the same two containers.
    assert re.search(r"b \S+ -> a \S+:80 TCP SYN x\d+, SYN-ACK x\d+", summary), summary
    assert re.search(r"b \S+ -> a \S+:81 TCP SYN x\d+, RST x\d+", summary), summary
    assert result.stdout.str().count(f"- {CAPTURE} -") == 1
    assert_nothing_left(inner_runs)


def ring_file(packets: list[tuple[float, bytes]]) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, snaplen=256)
    for ts, buf in packets:
        writer.writepkt(buf, ts=ts)
    return out.getvalue()


def echo(source: str, target: str, kind: int = 8) -> bytes:
    icmp = dpkt.icmp.ICMP(type=kind, data=dpkt.icmp.ICMP.Echo(id=1, seq=1))
    ip = dpkt.ip.IP(src=socket.inet_aton(source), dst=socket.inet_aton(target), p=1, data=icmp)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def test_the_ring_s_files_are_merged_oldest_first_and_a_half_written_last_packet_is_left_out(tmp_path):
    # tcpdump's ring: the file it writes now may come first in the archive, and its last
    # packet may be half-written when the archive is taken.
    newer = ring_file([(20.0, echo("10.0.0.2", "10.0.0.3")), (21.0, echo("10.0.0.3", "10.0.0.2", kind=0))])
    older = ring_file([(10.0, echo("10.0.0.2", "10.0.0.3"))])
    with open(tmp_path / "n.pcap", "wb") as out:
        assert flows.merge([newer[:-7], older, b""], out) == 2
    with open(tmp_path / "n.pcap", "rb") as f:
        assert [ts for ts, _ in dpkt.pcap.Reader(f)] == [10.0, 20.0]
    lines = flows.summarize(tmp_path / "n.pcap", {"10.0.0.2": "api", "10.0.0.3": "db"})
    assert lines == ["api 10.0.0.2 -> db 10.0.0.3 ICMP echo x2, no reply"]


def test_the_capture_image_runs_tcpdump_as_root_into_its_directory(dockernet):
    # What the sidecar needs of its image: tcpdump with its libraries and loader, a user
    # for it to switch to, and a directory the ring's files are fetched from.
    from pytest_dockernet.capture import capture_image

    engine = dockernet.context.engine
    image = capture_image(engine, dockernet.probe_image)
    tool = dockernet.container(
        "tool",
        image=image,
        command=["sh", "-c", f"tcpdump --version && touch {DIRECTORY}/x && exec sleep 600"],
        networks=[dockernet.network("n")],
    )
    code, output = tool.exec(["sh", "-c", f"ls {DIRECTORY} && tcpdump -D"])
    assert code == 0, output
    assert "x" in output.split()
    with tarfile.open(fileobj=io.BytesIO(engine.get_archive(tool.id, DIRECTORY))) as tar:
        assert f"{Path(DIRECTORY).name}/x" in tar.getnames()


def test_a_bridge_named_by_the_network_s_options_is_recorded_and_a_missing_dpkt_is_said(inner_runs, pytester):
    # com.docker.network.bridge.name: the bridge is not br-<id>. And where dpkt cannot be
    # imported, nothing is recorded and the report says what to install.
    pytester.makepyfile(
        """
        from inner_run_spy import record

        def test_named_bridge(dockernet):
            net = dockernet.network("n", options={"com.docker.network.bridge.name": "dnh4cap0"})
            a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
            record(net, a, b)
            dockernet.assert_reachable(a, b)
            dockernet.assert_reachable(a, b, port=9, timeout=1)
        """
    )
    result = inner_runs.run("--dockernet-capture", "--dockernet-require")
    result.assert_outcomes(failed=1)
    [pcap] = (pytester.path / "dockernet-artifacts").glob("*/n.pcap")
    summary = section(result, CAPTURE)
    assert f"n: {pcap}" in summary
    assert re.search(r"a \S+ -> b \S+ ICMP echo x\d+, reply x\d+", summary), summary
    assert re.search(r"a \S+ -> b \S+:9 TCP SYN x\d+, RST x\d+", summary), summary

    (pytester.path / "dpkt").mkdir()
    (pytester.path / "dpkt" / "__init__.py").write_text("raise ImportError('dpkt is not installed here')\n")
    shutil.rmtree(pytester.path / "dockernet-artifacts")
    result = inner_runs.run_subprocess("--dockernet-capture", "--dockernet-require")
    result.assert_outcomes(failed=1)
    assert section(result, CAPTURE).strip() == (
        "nothing recorded: capture needs dpkt to read what it recorded: "
        "pip install 'pytest-dockernet[capture]' (or dpkt)"
    )
    assert not list((pytester.path / "dockernet-artifacts").glob("*/*.pcap"))
    assert_nothing_left(inner_runs)


def test_a_capture_sidecar_removed_by_hand_is_started_again_for_the_next_test(inner_runs, pytester):
    pytester.makepyfile(
        """
        from inner_run_spy import record

        from pytest_dockernet.labels import ROLE, SESSION

        def test_first(dockernet):
            net = dockernet.network("n")
            a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
            record(net, a, b)
            dockernet.assert_reachable(a, b)

        def test_second(dockernet, dockernet_client):
            # This run's own sidecar: other runs on the engine may record too.
            run = f"{SESSION}={dockernet.context.identity.run_id}"
            [sidecar] = dockernet_client.containers.list(filters={"label": [run, f"{ROLE}=capture"]})
            sidecar.remove(force=True)
            net = dockernet.network("m")
            a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
            record(net, a, b)
            dockernet.assert_reachable(a, b, port=9, timeout=1)
        """
    )
    result = inner_runs.run("--dockernet-capture", "--dockernet-require", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    [pcap] = (pytester.path / "dockernet-artifacts").glob("*test_second*/m.pcap")
    summary = section(result, CAPTURE)
    assert f"m: {pcap}" in summary
    assert re.search(r"a \S+ -> b \S+:9 TCP SYN x\d+, RST x\d+", summary), summary
    assert_nothing_left(inner_runs)


def test_a_module_s_topology_and_the_test_s_own_keep_their_networks_of_one_name_apart(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest
        from inner_run_spy import record

        @pytest.fixture(scope="module")
        def shared(dockernet_module):
            net = dockernet_module.network("front")
            server = dockernet_module.container("server", networks=[net], command=["httpd", "-f", "-p", "80"])
            record(net, server)
            return dockernet_module, server

        def test_both(shared, dockernet):
            module, server = shared
            client = module.container("client", networks=[module.get_network("front")])
            own = dockernet.network("front")
            a, b = dockernet.container("a", networks=[own]), dockernet.container("b", networks=[own])
            record(client, own, a, b)
            module.assert_reachable(client, server, port=80)
            dockernet.assert_reachable(a, b, port=7, timeout=1)
        """
    )
    result = inner_runs.run("--dockernet-capture", "--dockernet-require")
    result.assert_outcomes(failed=1)
    [folder] = (pytester.path / "dockernet-artifacts").iterdir()
    assert sorted(p.name for p in folder.glob("*.pcap")) == ["front.pcap", "module-front.pcap"]
    summary = section(result, CAPTURE)
    assert re.search(r"a \S+ -> b \S+:7 TCP SYN x\d+, RST x\d+", summary.split("module-front:")[0]), summary
    assert re.search(r"client \S+ -> server \S+:80 TCP SYN x1, SYN-ACK x1", summary.split("module-front:")[1]), summary
    assert_nothing_left(inner_runs)
