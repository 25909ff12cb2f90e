"""topology.json and topology.svg (issue 24): ``snapshot()`` read from real topologies,
``render_svg()`` parsed as XML (every container's name, the faults, the failing probe's
path), the JSON round trip, and a screenshot of a real run's SVG in headless Chromium."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import pytest

from pytest_dockernet.snapshot import FailingProbe, snapshot
from pytest_dockernet.topology_svg import render_svg, render_text

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(svg.encode())


def texts(root: ET.Element) -> list[str]:
    """What the drawing says: each <text>, and the whole of a cut one (its <title>)."""
    return [e.text or "" for e in root.iter() if e.tag in (SVG + "text", SVG + "title")]


def of_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if set(cls.split()) <= set(e.get("class", "").split())]


def shop(dockernet: Any) -> dict[str, Any]:
    """api on front, db on back (alias database; back is internal), web on both."""
    front, back = dockernet.network("front"), dockernet.network("back", internal=True)
    return {
        "front": front,
        "back": back,
        "api": dockernet.container("api", networks=[front]),
        "db": dockernet.container("db", networks={back: ["database"]}),
        "web": dockernet.container("web", networks=[front, back]),
    }


@pytest.mark.dockernet
def test_the_snapshot_has_each_network_and_container_with_addresses_aliases_and_state(dockernet):
    t = shop(dockernet)
    job = dockernet.container("job", networks=[t["front"]], command=["sh", "-c", "sleep 0.5; exit 3"])
    dockernet.client.api.wait(job.id, timeout=30)
    doc = snapshot([dockernet.context])
    assert (doc["version"], doc["label"], doc["topologies"]) == (1, dockernet.context.label, [dockernet.context.label])
    networks = {n["name"]: n for n in doc["networks"]}
    assert set(networks) == {"front", "back"}
    for name in ("front", "back"):
        net = t[name]
        assert networks[name]["docker_name"] == net.docker_name
        assert (networks[name]["driver"], networks[name]["subnet"]) == ("bridge", net.subnet)
    assert (networks["front"]["internal"], networks["back"]["internal"]) == (False, True)
    containers = {c["name"]: c for c in doc["containers"]}
    assert set(containers) == {"api", "db", "web", "job"}
    db = containers["db"]
    assert (db["docker_name"], db["state"], db["exit_code"], db["service"]) == (
        t["db"].docker_name,
        "running",
        None,
        None,
    )
    assert [e["network"] for e in db["endpoints"]] == ["back"]
    assert db["endpoints"][0]["ip"] == t["db"].ip("back")
    assert "database" in db["endpoints"][0]["aliases"]
    web = {e["network"]: e["ip"] for e in containers["web"]["endpoints"]}
    assert web == {"front": t["web"].ip("front"), "back": t["web"].ip("back")}
    assert (containers["job"]["state"], containers["job"]["exit_code"]) == ("exited (3)", 3)
    assert (doc["faults"], doc["links"], doc["services"], doc["failing"]) == ([], [], [], None)


@pytest.mark.dockernet
def test_a_container_removed_behind_the_plugins_back_is_shown_removed(dockernet):
    gone = dockernet.container("gone")
    dockernet.client.api.remove_container(gone.id, force=True)
    (entry,) = snapshot([dockernet.context])["containers"]
    assert (entry["name"], entry["state"], entry["exit_code"]) == ("gone", "removed", None)
    root = parse(render_svg(snapshot([dockernet.context])))
    assert "removed" in texts(root) and len(of_class(root, "rect", "box down")) == 1


@pytest.mark.dockernet
def test_faults_in_force_are_cut_and_degraded_links_and_go_once_lifted(dockernet):
    t = shop(dockernet)
    dockernet.context.timeline.origin = origin = time.monotonic()  # the call phase's start, as the plugin sets it
    partition = dockernet.partition(t["api"], [t["web"], t["db"]], one_way=True)
    dockernet.degrade(t["db"], loss=0.3, rate="1mbit", to=[t["web"]])
    doc = snapshot([dockernet.context])
    cut, degraded = doc["faults"]
    assert 0 <= cut["since"] <= degraded["since"] <= time.monotonic() - origin  # seconds from the origin
    assert cut["kind"] == "partition" and cut["id"] == f"partition #{partition.number}"
    assert (cut["a"], cut["b"], cut["one_way"], cut["text"]) == (["api"], ["web", "db"], True, partition.title())
    assert degraded["kind"] == "degradation"
    assert (degraded["container"], degraded["to"], degraded["loss"], degraded["rate"]) == ("db", ["web"], 0.3, "1mbit")
    assert (degraded["delay"], degraded["network"]) == (None, None)
    assert doc["links"] == [
        {"kind": "cut", "from": "api", "to": "web", "fault": cut["id"], "one_way": True, "since": cut["since"]},
        {"kind": "cut", "from": "api", "to": "db", "fault": cut["id"], "one_way": True, "since": cut["since"]},
        {
            "kind": "degraded",
            "from": "db",
            "to": "web",
            "fault": "degrade db",
            "one_way": True,
            "since": degraded["since"],
        },
    ]
    root = parse(render_svg(doc))
    assert len(of_class(root, "path", "cut")) == 2  # one red dashed link per pair
    assert len(of_class(root, "path", "xmark")) == 2
    assert len(of_class(root, "path", "deg")) == 1
    said = texts(root)
    assert f"partition #{partition.number}" in said and "loss 0.3, rate 1mbit" in said
    assert f"in force: {partition.title()} (since {cut['since']:.1f} s)" in said
    dockernet.heal()
    dockernet.restore()
    doc = snapshot([dockernet.context])
    assert (doc["faults"], doc["links"]) == ([], [])
    assert of_class(parse(render_svg(doc)), "path", "cut") == []


@pytest.mark.dockernet
def test_a_degradation_of_all_a_container_sends_colours_its_wire_and_says_so_in_its_box(dockernet):
    t = shop(dockernet)
    dockernet.degrade(t["web"], rate="1mbit", network=t["back"])
    doc = snapshot([dockernet.context])
    (fault,) = doc["faults"]
    assert (fault["container"], fault["to"], fault["network"], fault["rate"]) == ("web", [], "back", "1mbit")
    assert doc["links"] == []
    root = parse(render_svg(doc))
    assert "degraded: rate 1mbit" in texts(root)
    assert len(of_class(root, "line", "wire deg")) >= 1


@pytest.mark.dockernet
def test_the_failing_probe_is_highlighted_over_the_network_it_went_or_between_two_that_share_none(dockernet):
    t = shop(dockernet)
    why = "api and db share no network: api is on front, db on back"
    across = FailingProbe("api", "db", "icmp", address=t["db"].ip(), verdict="no reply within 5 s", diagnosis=why)
    doc = snapshot([dockernet.context], failing=across)
    assert doc["failing"] == {
        "source": "api",
        "target": "db",
        "target_container": "db",
        "target_service": None,
        "address": t["db"].ip(),
        "kind": "icmp",
        "port": None,
        "network": None,
        "verdict": "no reply within 5 s",
        "diagnosis": why,
    }
    root = parse(render_svg(doc))
    hot = of_class(root, "rect", "box hot")
    assert len(hot) == 2
    (arrow,) = of_class(root, "path", "path none")  # box to box: no network to go over
    assert arrow.get("marker-end") == "url(#arrow)"
    said = texts(root)
    assert "no shared network" in said and f"why: {why}" in said
    assert f"failing probe: api → db ({t['db'].ip()}) by icmp over no shared network: no reply within 5 s" in said

    over = snapshot([dockernet.context], failing=FailingProbe("api", "web", "tcp", port=80))["failing"]
    assert (over["network"], over["target_container"]) == ("front", "web")
    root = parse(render_svg(snapshot([dockernet.context], failing=FailingProbe("api", "web", "tcp", port=80))))
    assert len(of_class(root, "polyline", "path")) == 1 and of_class(root, "path", "path") == []
    assert {t["api"].ip("front"), t["web"].ip("front")} <= set(texts(root))  # both ends' addresses on the bus

    by_alias = snapshot([dockernet.context], failing=FailingProbe("web", "database", "dns"))["failing"]
    assert (by_alias["target_container"], by_alias["network"]) == ("db", "back")
    # An alias on a network the source is not on: no network to go over, though the two share one.
    dockernet.container("cache", networks={t["front"]: [], t["back"]: ["store"]})
    elsewhere = snapshot([dockernet.context], failing=FailingProbe("api", "store", "dns"))["failing"]
    assert (elsewhere["target_container"], elsewhere["network"]) == ("cache", None)
    assert snapshot([dockernet.context], failing=FailingProbe("api", "cache", "dns"))["failing"]["network"] == "front"


@pytest.mark.dockernet
def test_every_container_is_drawn_with_its_state_addresses_and_aliases_and_the_json_round_trips(dockernet):
    t = shop(dockernet)
    long_name = "a-container-with-a-name-too-long-for-its-box"
    dockernet.container(long_name, networks=[t["front"]])
    t["web"].stop(timeout=0)
    doc = snapshot([dockernet.context], failing=FailingProbe("api", "web", "tcp", port=8080, verdict="refused"))
    again = json.loads(json.dumps(doc))
    assert again == doc
    svg = render_svg(again)
    assert svg == render_svg(doc)
    root = parse(svg)
    said = texts(root)
    for name in ("api", "db", "web", long_name):
        assert name in said
    assert any(s.startswith(long_name[:15]) and s.endswith("…") for s in said)  # cut in its box, whole in <title>
    for name, network in (("api", "front"), ("db", "back"), ("web", "front"), ("web", "back")):
        assert f"{network}: {t[name].ip(network)}" in said
    assert "  aka database" in said
    assert f"db [{t['db'].docker_name}]" in said  # the box's tooltip: the engine's name
    assert "exited (137)" in said or "exited (0)" in said
    assert len(of_class(root, "rect", "box down")) == 1  # the stopped one
    buses = {e.get("class") for e in root.iter(SVG + "line") if "bus" in e.get("class", "")}
    assert buses == {"bus", "bus internal"}  # back is internal: dashed
    text = render_text(doc)
    assert "failing probe: api -> web:8080 by tcp over front\n  refused\n" in text
    for name in ("api", "db", "web", long_name, "front", "back", t["db"].docker_name):
        assert name in text


@pytest.mark.dockernet
def test_two_topologies_of_one_test_keep_their_names_apart(dockernet, dockernet_module):
    first, second = dockernet.network("front"), dockernet_module.network("front-m")
    dockernet.container("api", networks=[first])
    dockernet_module.container("api", networks=[second])
    doc = snapshot([dockernet.context, dockernet_module.context])
    assert [c["name"] for c in doc["containers"]] == ["api#1", "api#2"]
    assert [(n["name"], n["topology"]) for n in doc["networks"]] == [("front", 0), ("front-m", 1)]
    assert [c["endpoints"][0]["network"] for c in doc["containers"]] == ["front", "front-m"]
    said = texts(parse(render_svg(doc)))
    assert "api#1" in said and "api#2" in said
    dockernet.container("web", networks=[first])
    failing = snapshot([dockernet.context, dockernet_module.context], failing=FailingProbe("api", "web", "tcp"))
    assert (failing["failing"]["source"], failing["failing"]["network"]) == ("api#1", "front")


def test_names_are_escaped_and_a_service_is_framed_with_its_tasks():
    """No engine: the renderer takes only the document (a service's, as a swarm gives it)."""
    doc = {
        "version": 1,
        "label": 'test_x.py::test_<&>"',
        "networks": [{"name": "mesh", "docker_name": "dn-x-mesh", "driver": "overlay", "subnet": "10.0.9.0/24"}],
        "containers": [
            {
                "name": f"web.{i}",
                "state": "running",
                "service": "web",
                "endpoints": [{"network": "mesh", "ip": f"10.0.9.{i + 2}", "aliases": []}],
            }
            for i in (1, 2)
        ]
        + [
            {"name": 'a<b>&"c"', "state": "exited (1)", "exit_code": 1, "endpoints": []},
            {"name": "client", "state": "running", "endpoints": [{"network": "mesh", "ip": "10.0.9.9", "aliases": []}]},
        ],
        "services": [
            {
                "name": "web",
                "endpoint_mode": "vip",
                "replicas": 2,
                "vips": [{"network": "mesh", "ip": "10.0.9.2"}],
                "tasks": ["web.1", "web.2"],
            }
        ],  # fmt: skip
        "faults": [],
        "links": [],
        "failing": {"source": "client", "target": "web", "target_service": "web", "kind": "tcp", "network": "mesh"},
    }
    svg = render_svg(doc, id_prefix="t1-")
    assert "&lt;b&gt;&amp;" in svg
    root = parse(svg)
    said = texts(root)
    assert {"web.1", "web.2", 'a<b>&"c"'} <= set(said)
    assert "service web · vip 10.0.9.2 on mesh · 2/2 tasks" in said
    assert len(of_class(root, "rect", "frame hot")) == 1  # the failing probe's target
    (path,) = of_class(root, "polyline", "path")  # to its first task, over mesh
    box_x = next(float(e.get("x", 0)) - 7 for e in root.iter(SVG + "text") if e.text == "web.1")
    end_x = float(path.get("points", "").split()[-1].split(",")[0])
    assert end_x in (box_x + 0.3 * 160, box_x + 0.7 * 160)  # down web.1's wire (as drawn above or below the buses)
    # Inline in an HTML page (pytest-html) beside other drawings: its ids and rules are its own.
    assert {m.get("id") for m in root.iter(SVG + "marker")} == {"t1-arrow", "t1-redarrow", "t1-orangearrow"}
    (style,) = root.iter(SVG + "style")
    rules = (style.text or "").strip().splitlines()
    assert rules and all(rule.startswith("svg.dockernet-topology ") for rule in rules)
    assert root.get("class") == "dockernet-topology"
    assert "tasks: web.1, web.2" in render_text(doc)


def test_a_topology_with_nothing_made_yet_still_draws():
    """A set-up that failed before its first network: the document has no networks or containers."""
    doc = {"version": 1, "label": "t.py::test_x", "networks": [], "containers": [], "faults": [], "failing": None}
    said = texts(parse(render_svg(doc)))
    assert "dockernet topology · t.py::test_x" in said
    assert render_text(doc) == "dockernet topology · t.py::test_x\nnetworks:\ncontainers:\n"


# -- a screenshot in headless Chromium ------------------------------------------------------


def chromium(*args: str, profile: Path) -> None:
    """Headless Chromium (as root there is no sandbox); its own profile, so that parallel
    runs do not share one. Its stderr is noise (Debian's wrapper, GPU lines): the exit code
    and the file it writes say whether it worked."""
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*command, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def png_rows(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and rows of an 8-bit RGB(A) PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, header = 8, b"", (0, 0, 0, 0)
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        header = struct.unpack(">IIBB", body[:10]) if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        at += 12 + length
    width, height, depth, colour = header
    assert (depth, colour in (2, 6)) == (8, True)
    bpp = 3 if colour == 2 else 4
    raw, stride, rows = zlib.decompress(idat), width * bpp, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                nearest = (
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
                )
                line[i] = (line[i] + nearest) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


# The failure page's scenario (api on front, db on back: they share no network), with web on
# both and a partition in force between api and web; its artifacts are a real run's picture.
FAILING = """
def test_the_api_reaches_the_database(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    api = dockernet.container("api", networks=[front])
    web = dockernet.container("web", networks=[front, back], command=["httpd", "-f", "-p", "80"])
    db = dockernet.container("db", networks={back: ["database"]})
    dockernet.partition(api, web)
    dockernet.assert_reachable(api, db, timeout=1)
"""


def test_a_real_runs_svg_is_legible_in_headless_chromium(inner_runs, pytester, tmp_path):
    if shutil.which("chromium") is None or shutil.which("pdftotext") is None:  # not a skip: CI installs them
        pytest.fail("needs chromium and pdftotext: run scripts/ensure-chromium", pytrace=False)
    pytester.makepyfile(test_tiers=FAILING)
    inner_runs.run("--dockernet-artifacts", "out").assert_outcomes(failed=1)
    (folder,) = (pytester.path / "out").iterdir()
    doc = json.loads((folder / "topology.json").read_text(encoding="utf-8"))
    failing = doc["failing"]
    assert [failing[key] for key in ("source", "target_container", "kind", "network")] == ["api", "db", "icmp", None]
    assert failing["diagnosis"].startswith("api and db share no network")
    address = {c["name"]: c["endpoints"][0]["ip"] for c in doc["containers"]}
    svg = (folder / "topology.svg").read_text(encoding="utf-8")
    root = parse(svg)
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))

    shot = tmp_path / "topology.png"
    page = (folder / "topology.svg").as_uri()
    chromium(f"--window-size={width},{height}", f"--screenshot={shot}", page, profile=tmp_path / "p1")
    w, h, bpp, rows = png_rows(shot.read_bytes())
    assert (w, h) == (width, height)
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), bpp)]
    inked = sum(1 for p in pixels if min(p) < 200)
    assert inked > len(pixels) // 50, f"{inked} of {len(pixels)} pixels drawn: a blank page"
    red = sum(1 for r, g, b in pixels if r > 170 and g < 90 and b < 90)  # the cut link, its X, the diagnosis
    blue = sum(1 for r, g, b in pixels if r < 90 and 70 < g < 130 and b > 160)  # the probe's arrow, hot boxes
    assert red > 100 and blue > 100, (red, blue)

    # The text as Chromium laid it out: a page the drawing's size, the SVG inline.
    html = tmp_path / "topology.html"
    style = f"@page {{ size: {width}px {height}px; margin: 0 }} body {{ margin: 0 }}"
    html.write_text(f"<!doctype html><style>{style}</style>{svg.split(chr(10), 1)[1]}", encoding="utf-8")
    pdf = tmp_path / "topology.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri(), profile=tmp_path / "p2")
    laid_out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    shown = laid_out.stdout
    for name in ("api", "db", "web", "front", "back", "partition #1", "no shared network", "aka database"):
        assert name in shown, f"{name!r} not legible in:\n{shown}"
    assert f"front: {address['api']}" in shown and f"back: {address['db']}" in shown
    assert "why: api and db share no network" in shown
    assert not "".join(shown.split("\f")[1:]).strip(), "the drawing spilled over one page"
