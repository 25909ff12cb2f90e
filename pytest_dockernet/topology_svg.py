"""A topology document (:mod:`.snapshot`'s, as written to ``topology.json``) drawn as SVG,
or as text.

Networks are horizontal buses stacked in the middle; containers are boxes in one row above
and one row below, each with a wire to the buses it is on (a dot where it attaches: a wire
that crosses a bus without a dot is not on it, the schematic convention). A service's tasks
sit together in a frame named after it. Faults in force are links between boxes (a cut
partition: red, dashed, crossed out; a degraded link: orange, dotted); the failing probe's
path is blue, along the wires and the bus it went over, or straight between the two boxes
when they share no network.

Standard library only, nothing fetched when the file is viewed (no font, script or link):
it opens in a browser without network access. Text widths are estimated (no font metrics
at hand); what does not fit is cut with ``…`` and kept whole in a ``<title>`` (the tooltip).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SANS = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
SCOPE = "dockernet-topology"  # the root's class: the rules reach no other part of a page it is inline in
RULES = (
    ("text", f"font-family: {SANS}; font-size: 11px; fill: #222"),
    (".mono", f"font-family: {MONO}"),
    (".b", "font-weight: bold"),
    (".small", "font-size: 10px; fill: #555"),
    (".title", "font-size: 15px; font-weight: bold"),
    (".ok", "fill: #1a7f37"),
    (".bad", "fill: #c62828"),
    (".warn", "fill: #b26a00"),
    (".probe", "fill: #1f5fbf"),
    (".box", "fill: #f7f9fc; stroke: #6b7a90; stroke-width: 1.2"),
    (".box.hot", "stroke: #1f5fbf; stroke-width: 3"),
    (".box.down", "fill: #fdecea"),
    (".frame", "fill: none; stroke: #7a5cc4; stroke-width: 1.2; stroke-dasharray: 6 3"),
    (".frame.hot", "stroke: #1f5fbf; stroke-width: 3"),
    (".bus", "stroke: #37474f; stroke-width: 4"),
    (".bus.internal", "stroke-dasharray: 10 5"),
    (".wire", "stroke: #8a96a8; stroke-width: 1.6; fill: none"),
    (".wire.deg", "stroke: #e68a00; stroke-width: 2.5"),
    (".dot", "fill: #37474f"),
    (".cut", "stroke: #c62828; stroke-width: 2.2; stroke-dasharray: 7 4; fill: none"),
    (".xmark", "stroke: #c62828; stroke-width: 3"),
    (".deg", "stroke: #e68a00; stroke-width: 2.5; stroke-dasharray: 2 4; fill: none"),
    (".path", "stroke: #1f5fbf; stroke-width: 4; fill: none; opacity: .85"),
    (".path.none", "stroke-dasharray: 8 5"),
    (".halo", "fill: #fff; opacity: .9"),
)
STYLE = "\n" + "\n".join(f"svg.{SCOPE} {selector} {{ {rules}; }}" for selector, rules in RULES) + "\n"
COLUMN, BOX_W, LINE, BUS_GAP, GUTTER, PAD = 180.0, 160.0, 14.0, 40.0, 250.0, 16.0
MIN_WIDTH = 780.0
LIFTED_DRAWN = 10  # the last faults lifted during the test (a nemesis lifts many)
Point = tuple[float, float]


def width_of(text: str, size: float = 11, mono: bool = False, bold: bool = False) -> float:
    """A safe estimate of a text's width in DejaVu's advances."""
    return len(text) * size * (0.61 if mono else 0.64 if bold else 0.6)


def fit(text: str, room: float, size: float = 11, mono: bool = False, bold: bool = False) -> str:
    """``text``, cut with ``…`` to what fits in ``room`` pixels."""
    if width_of(text, size, mono, bold) <= room:
        return text
    keep = max(1, int(room / width_of("x", size, mono, bold)) - 1)
    return text[:keep] + "…"


class Canvas:
    """The SVG being drawn: elements kept in layers, so that links lie over boxes."""

    def __init__(self, id_prefix: str) -> None:
        self.prefix = id_prefix  # several SVGs inline in one page must not share marker ids
        self.layers: dict[str, list[ET.Element]] = {k: [] for k in ("back", "mid", "front", "top")}

    def add(self, tag: str, layer: str = "mid", text: str | None = None, **attrs: object) -> ET.Element:
        """An element; ``class_``, ``marker_end`` are written ``class``, ``marker-end``."""
        values = {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items() if v is not None}
        element = ET.Element(tag, values)
        element.text = text
        self.layers[layer].append(element)
        return element

    def marker(self, name: str) -> str:
        return f"url(#{self.prefix}{name})"

    def text(
        self,
        x: float,
        y: float,
        text: str,
        cls: str = "",
        room: float = 1e9,
        layer: str = "mid",
        halo: bool = False,
        anchor: str = "start",
    ) -> None:
        size = 10 if "small" in cls else 15 if "title" in cls else 11
        mono, bold = "mono" in cls, "b" in cls.split() or "title" in cls
        shown = fit(text, room, size, mono, bold)
        if halo:  # a white ground under a label that crosses lines
            w = width_of(shown, size, mono, bold)
            left = x - w / 2 if anchor == "middle" else x
            self.add(
                "rect",
                layer,
                x=f"{left - 3:.1f}",
                y=f"{y - size:.1f}",
                width=f"{w + 6:.1f}",
                height=f"{size + 4:.1f}",
                class_="halo",
                rx=3,
            )
        anchor_attr = None if anchor == "start" else anchor
        element = self.add(
            "text", layer, shown, x=f"{x:.1f}", y=f"{y:.1f}", class_=cls or None, text_anchor=anchor_attr
        )
        if shown != text:
            ET.SubElement(element, "title").text = text

    def svg(self, width: float, height: float) -> str:
        size = {"width": f"{width:.0f}", "height": f"{height:.0f}", "viewBox": f"0 0 {width:.0f} {height:.0f}"}
        root = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "class": SCOPE, **size})
        ET.SubElement(root, "style").text = STYLE
        defs = ET.SubElement(root, "defs")
        for name, colour in (("arrow", "#1f5fbf"), ("redarrow", "#c62828"), ("orangearrow", "#e68a00")):
            marker = ET.SubElement(
                defs,
                "marker",
                id=self.prefix + name,
                viewBox="0 0 10 10",
                refX="8",
                refY="5",
                markerWidth="5",
                markerHeight="5",
                orient="auto-start-reverse",
            )
            ET.SubElement(marker, "path", d="M0,0 L10,5 L0,10 z", fill=colour)
        ET.SubElement(root, "rect", width="100%", height="100%", fill="#ffffff")
        for layer in self.layers.values():
            root.extend(layer)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def state_class(state: str) -> str:
    if state.startswith("running"):
        return "ok"
    return "warn" if state in ("paused", "restarting", "created") or state.startswith("state unknown") else "bad"


def effects(fault: Mapping[str, Any]) -> str:
    """A degradation's settings: ``loss 0.3, rate 1mbit, delay 100ms ± 10ms``."""
    parts = [f"loss {fault['loss']:g}"] if fault.get("loss") is not None else []
    parts += [f"rate {fault['rate']}"] if fault.get("rate") else []
    if fault.get("delay"):
        parts.append(f"delay {fault['delay']}" + (f" ± {fault['jitter']}" if fault.get("jitter") else ""))
    return ", ".join(parts)


def box_lines(c: Mapping[str, Any], degraded: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """A container box's lines: (text, css class)."""
    state = c.get("state") or "state unknown"
    lines = [(c["name"], "b"), (state, state_class(state))]
    lines += [(c["image"], "small")] if c.get("image") else []
    if c.get("network_mode"):
        lines.append((f"network_mode={c['network_mode']}", "small"))
    if c.get("engine"):
        lines.append((f"on engine {c['engine']}", "small"))
    for e in c.get("endpoints", []):
        lines.append((f"{e['network']}: {e.get('ip') or '-'}", "mono"))
        others = [a for a in e.get("aliases", []) if a != c["name"].split("#")[0]]
        if others:
            lines.append(("  aka " + ", ".join(others), "small"))
    lines += [(f"degraded: {effects(f)}", "warn b") for f in degraded]
    return lines


@dataclass
class Box:
    """A container's box: its entry, the buses it is on, its row and place, its lines."""

    c: Mapping[str, Any]
    nets: list[int]  # the buses it is on, by index
    above: bool
    lines: list[tuple[str, str]] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0

    @property
    def name(self) -> str:
        return str(self.c["name"])

    @property
    def h(self) -> float:
        return 12 + LINE * len(self.lines)

    @property
    def wire_x(self) -> float:  # the two rows' wires never share an x
        return self.x + BOX_W * (0.3 if self.above else 0.7)


def place(doc: Mapping[str, Any], nets: list[str]) -> list[Box]:
    """A box per container, in the row where its wires cross fewer buses it is not on (a
    service's tasks together), the rows kept within one container of half each; columns
    ordered by first and last bus, so that neighbours share buses."""
    whole = [f for f in doc.get("faults", []) if f.get("kind") == "degradation" and not f.get("to")]
    boxes: dict[str, Box] = {}
    for c in doc.get("containers", []):
        on = sorted({nets.index(e["network"]) for e in c.get("endpoints", []) if e["network"] in nets})
        mine = [f for f in whole if f.get("container") == c["name"]]
        boxes[c["name"]] = Box(c, on, True, box_lines(c, mine))
    units: dict[str, list[Box]] = {}
    for b in boxes.values():
        units.setdefault(b.c.get("service") or "\0" + b.name, []).append(b)

    def cost(unit: list[Box]) -> tuple[float, int, int]:
        on = sorted({i for b in unit for i in b.nets}) or [0]
        above, below = on[-1] + 1 - len(on), len(nets) - on[0] - len(on)
        return (above - below, on[0], on[-1])

    taken = 0
    for unit in sorted(units.values(), key=cost):
        for b in unit:
            b.above = taken * 2 < len(boxes)
        taken += len(unit)
    for row in (True, False):
        members = [b for unit in sorted(units.values(), key=lambda u: cost(u)[1:]) for b in unit if b.above == row]
        for i, b in enumerate(members):
            b.x = GUTTER + i * COLUMN
    return list(boxes.values())


def bezier(p: list[Point], t: float) -> Point:
    u = 1 - t
    k = (u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t)
    return (sum(k[i] * p[i][0] for i in range(4)), sum(k[i] * p[i][1] for i in range(4)))


def overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_point(p: list[Point], buses: list[float], taken: list[Rect]) -> Point:
    """The point of curve ``p`` nearest its middle that is clear of every bus and of what is
    ``taken`` (else clear of the buses only; else its middle): where its mark goes."""
    steps = [t / 40 for t in range(4, 37)]
    clear = [t for t in steps if all(abs(bezier(p, t)[1] - y) >= 14 for y in buses)]
    free = [t for t in clear if not any(overlaps(square(bezier(p, t), 9), r) for r in taken)]
    return bezier(p, min(free or clear, key=lambda t: abs(t - 0.5)) if free or clear else 0.5)


def square(at: Point, half: float) -> Rect:
    return (at[0] - half, at[1] - half, at[0] + half, at[1] + half)


Rect = tuple[float, float, float, float]  # left, top, right, bottom
Link = tuple[Box, Box, str, str, bool]  # from, to, css class, label, whether it has an arrow


class Drawing:
    """One document's layout (rows, buses, rails for the links) and the canvas drawn on."""

    def __init__(self, doc: Mapping[str, Any], id_prefix: str) -> None:
        self.doc, self.cv = doc, Canvas(id_prefix)
        self.nets = [n["name"] for n in doc.get("networks", [])]
        for c in doc.get("containers", []):  # a network not of the topology gets a bus too
            self.nets += [e["network"] for e in c.get("endpoints", []) if e["network"] not in self.nets]
        self.boxes = place(doc, self.nets)
        self.taken: list[Rect] = []  # where labels over lines may not go: boxes, labels put
        self.by_name = {b.name: b for b in self.boxes}
        self.faults: list[Mapping[str, Any]] = doc.get("faults", [])
        self.lifted: list[Mapping[str, Any]] = doc.get("lifted", [])
        self.failing: Mapping[str, Any] | None = doc.get("failing")
        self.links = self.link_list()
        same = [sum(1 for a, b, *_ in self.links if a.above == b.above == row) for row in (True, False)]
        failing = self.failing
        self.frame = 24.0 if doc.get("services") else 0.0
        self.top_rail = 56.0 + 18 * bool(failing) + 18 * bool(failing and failing.get("diagnosis"))
        self.top_rail += (50 + 18 * same[0]) if same[0] else 0
        h_above = max([b.h for b in self.boxes if b.above] or [0])
        h_below = max([b.h for b in self.boxes if not b.above] or [0])
        self.row_bottom = self.top_rail + self.frame + h_above
        # Room between the rows and the buses for the labels of links that cross them.
        margin = 46.0 if any(a.above != b.above for a, b, *_ in self.links) or failing else 34.0
        self.bus_y = [self.row_bottom + margin + i * BUS_GAP for i in range(len(self.nets))]
        self.bus_y = self.bus_y or [self.row_bottom + margin]
        self.below_top = self.bus_y[-1] + margin
        self.bottom_rail = self.below_top + h_below + self.frame + 10
        self.legend_y = self.bottom_rail + (50 + 18 * same[1] if same[1] else 0) + 20
        columns = max(sum(b.above for b in self.boxes), sum(not b.above for b in self.boxes), 1)
        self.width = max(GUTTER + columns * COLUMN + PAD, MIN_WIDTH)

    def link_list(self) -> list[Link]:
        """Faults' links between two boxes, and a failing probe's between two that share no network."""
        wanted: list[tuple[str, str, str, str, bool]] = []
        for link in self.doc.get("links", []):
            degraded = link.get("kind") == "degraded"
            fault = next((f for f in self.faults if f.get("id") == link.get("fault")), {})
            label = effects(fault) if degraded else str(link.get("fault", ""))
            wanted.append((link["from"], link["to"], "deg" if degraded else "cut", label, bool(link.get("one_way"))))
        failing = self.failing
        if failing and not failing.get("network") and failing.get("target_container"):
            wanted.append((failing["source"], failing["target_container"], "path none", "no shared network", True))
        known = self.by_name
        return [
            (known[a], known[b], cls, text, arrow) for a, b, cls, text, arrow in wanted if a in known and b in known
        ]

    def header(self) -> None:
        room, failing = self.width - 2 * PAD, self.failing
        self.cv.text(PAD, 24, f"dockernet topology · {self.doc.get('label', '')}", "title", room=room)
        if failing:
            where = f"over {failing['network']}" if failing.get("network") else "over no shared network"
            port = f":{failing['port']}" if failing.get("port") else ""
            address = f" ({failing['address']}{port})" if failing.get("address") else port
            line = f"failing probe: {failing['source']} → {failing.get('target', '?')}{address}"
            line += f" by {failing.get('kind', '?')} {where}"
            verdict = failing.get("verdict")
            self.cv.text(PAD, 44, f"{line}: {verdict}" if verdict else line, "probe b", room=room)
            if failing.get("diagnosis"):
                self.cv.text(PAD, 62, f"why: {failing['diagnosis']}", "bad", room=room)

    def buses(self) -> None:
        info = {n["name"]: n for n in self.doc.get("networks", [])}
        for name, y in zip(self.nets, self.bus_y):
            n = info.get(name, {"driver": "not the topology's"})
            facts = ["internal" if n.get("internal") else "", n.get("subnet") or "", n.get("driver") or ""]
            cls = "bus internal" if n.get("internal") else "bus"
            self.cv.add("line", "back", x1=GUTTER - 14, y1=y, x2=self.width - PAD, y2=y, class_=cls)
            self.cv.text(PAD, y - 3, name, "b", room=GUTTER - PAD - 20)
            self.cv.text(PAD, y + 11, " · ".join(f for f in facts if f), "small", room=GUTTER - PAD - 20)

    def containers(self) -> None:
        """Boxes, their wires (orange where a degradation is on them) and a dot per network."""
        whole = [f for f in self.faults if f.get("kind") == "degradation" and not f.get("to")]
        degraded = {(f.get("container"), f.get("network")) for f in whole}
        failing = self.failing
        hot = {failing["source"], failing.get("target_container")} if failing else set()
        for b in self.boxes:
            b.y = self.row_bottom - b.h if b.above else self.below_top
            cls = "box" + (" hot" if b.name in hot else "") + ("" if state_class(b.lines[1][0]) != "bad" else " down")
            self.taken.append((b.x, b.y, b.x + BOX_W, b.y + b.h))
            box = self.cv.add("rect", "mid", x=b.x, y=f"{b.y:.1f}", width=BOX_W, height=f"{b.h:.1f}", rx=5, class_=cls)
            if b.c.get("docker_name"):  # the engine's name, for `docker logs` and the like: the box's tooltip
                ET.SubElement(box, "title").text = f"{b.name} [{b.c['docker_name']}]"
            for k, (text, tcls) in enumerate(b.lines):
                self.cv.text(b.x + 7, b.y + 18 + k * LINE, text, tcls, room=BOX_W - 12)
            if not b.nets:
                continue
            edge = b.y + b.h if b.above else b.y
            for i in [b.nets[-1] if b.above else b.nets[0], *b.nets]:
                orange = (b.name, None) in degraded or (b.name, self.nets[i]) in degraded
                wire = "wire deg" if orange else "wire"
                self.cv.add("line", "back", x1=b.wire_x, y1=edge, x2=b.wire_x, y2=self.bus_y[i], class_=wire)
                self.cv.add("circle", "mid", cx=b.wire_x, cy=self.bus_y[i], r=4.5, class_="dot")

    def services(self) -> None:
        for s in self.doc.get("services", []):
            tasks = [self.by_name[t] for t in s.get("tasks", []) if t in self.by_name]
            if not tasks:
                continue
            up, pad = tasks[0].above, self.frame - 2
            x0, x1 = min(t.x for t in tasks) - 6, max(t.x for t in tasks) + BOX_W + 6
            y0 = min(t.y for t in tasks) - (pad if up else 6)
            y1 = max(t.y + t.h for t in tasks) + (6 if up else pad)
            hot = self.failing is not None and self.failing.get("target_service") == s["name"]
            frame = "frame hot" if hot else "frame"
            self.cv.add("rect", "back", x=x0, y=f"{y0:.1f}", width=x1 - x0, height=f"{y1 - y0:.1f}", rx=8, class_=frame)
            vips = ", ".join(f"{v['ip']} on {v['network']}" for v in s.get("vips", []))
            label = f"service {s['name']} · {s.get('endpoint_mode') or 'vip'}{' ' + vips if vips else ''}"
            label += f" · {len(tasks)}/{s.get('replicas') or len(tasks)} tasks"
            self.cv.text(x0 + 8, y0 + 15 if up else y1 - 6, label, "small b", room=x1 - x0 - 14)

    def probe_path(self) -> None:
        """Along the source's wire, the bus it went over and the target's wire, with both addresses."""
        failing = self.failing
        if not failing or failing.get("network") not in self.nets:
            return
        src, dst = self.by_name.get(failing["source"]), self.by_name.get(failing.get("target_container") or "")
        if dst is None:  # a service's name: to its first task on that network
            named = [s for s in self.doc.get("services", []) if s["name"] == failing.get("target_service")]
            tasks = [self.by_name[t] for s in named for t in s.get("tasks", []) if t in self.by_name]
            index = self.nets.index(failing["network"])
            dst = next((t for t in tasks if index in t.nets), None)
        if src is None or dst is None:
            return
        network = failing["network"]
        y = self.bus_y[self.nets.index(network)]
        points = [
            (src.wire_x, src.y + src.h if src.above else src.y),
            (src.wire_x, y),
            (dst.wire_x, y),
            (dst.wire_x, dst.y + dst.h + 2 if dst.above else dst.y - 2),
        ]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.cv.add("polyline", "front", points=line, class_="path", marker_end=self.cv.marker("arrow"))
        for box in (src, dst):
            ip = next((e.get("ip") for e in box.c.get("endpoints", []) if e["network"] == network), None)
            self.label(box.wire_x + 9, y + (-7 if box.above else 16), ip or "-", "mono probe")

    def label(self, x: float, y: float, text: str, cls: str, anchor: str = "start") -> None:
        """A label over lines, on a white ground, moved a line or two up or down, or to the
        right, where it would cover a box, a mark or a label put before it."""
        w = width_of(text, 11, "mono" in cls, "b" in cls.split()) + 6
        left = x - w / 2 if anchor == "middle" else x - 3
        moves = sorted(
            ((dx, dy) for dx in range(0, 181, 30) for dy in (0, -15, 15, -30, 30)),
            key=lambda m: abs(m[0]) + 2 * abs(m[1]),
        )
        for dx, dy in moves:
            rect = (left + dx, y + dy - 11, left + dx + w, y + dy + 4)
            if not any(overlaps(rect, r) for r in self.taken):
                break
        else:
            dx, dy = 0, 0  # crowded: where it was asked for
        self.taken.append((left + dx, y + dy - 11, left + dx + w, y + dy + 4))
        self.cv.text(x + dx, y + dy, text, cls, layer="top", halo=True, anchor=anchor)

    def link_curves(self) -> None:
        """Within a row: an arc outside the row from a rail; across the buses: an S-curve."""
        rails, used = {True: self.top_rail, False: self.bottom_rail}, {True: 0, False: 0}
        pairs: dict[frozenset[str], int] = {}  # links between one pair of boxes are drawn apart
        for a, b, cls, label, arrow in self.links:
            pair = frozenset((a.name, b.name))
            k = pairs[pair] = pairs.get(pair, -1) + 1
            if a.above == b.above:
                rail, lift = rails[a.above], (40 + 18 * used[a.above]) * (-1 if a.above else 1)
                used[a.above] += 1
                ax, bx = a.x + BOX_W * 0.6 + 12 * k, b.x + BOX_W * 0.4 - 12 * k
                for box, x in ((a, ax), (b, bx)):
                    edge = box.y if a.above else box.y + box.h
                    self.cv.add("line", "front", x1=x, y1=edge, x2=x, y2=rail, class_=cls)
                p = [(ax, rail), (ax, rail + lift), (bx, rail + lift), (bx, rail)]
            else:
                up, down = (a, b) if a.above else (b, a)
                p0, p3 = (up.x + BOX_W * 0.75 - 22 * k, up.y + up.h), (down.x + BOX_W * 0.25 + 22 * k, down.y)
                p = [p0, (p0[0], p0[1] + 80), (p3[0], p3[1] - 80), p3][:: 1 if a.above else -1]
            d = "M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}".format(*[v for q in p for v in q])
            end = {"path none": "arrow", "deg": "orangearrow", "cut": "redarrow"}[cls] if arrow else None
            self.cv.add("path", "front", d=d, class_=cls, marker_end=self.cv.marker(end) if end else None)
            mx, my = label_point(p, [] if a.above == b.above else self.bus_y, self.taken)
            if cls == "cut":
                self.cv.add("path", "top", d=f"M{mx - 7:.1f},{my - 7:.1f} l14,14 m0,-14 l-14,14", class_="xmark")
                self.taken.append(square((mx, my), 9))
            tcls = {"cut": "bad b", "deg": "warn b"}.get(cls, "probe b")
            if a.above == b.above:  # over the arc's top; else beside the mark, between two buses
                self.label(mx, my - 10, label, tcls, anchor="middle")
            else:
                self.label(mx + 12, my + 4, label, tcls)

    def legend(self) -> float:
        """The legend, then a line per fault in force; returns the drawing's height."""
        x, y = PAD, self.legend_y
        for cls, text in (
            ("bus", "network (dashed: internal)"),
            ("cut", "partition in force (cut)"),
            ("deg", "degraded (loss, rate, delay)"),
            ("path", "failing probe's path"),
        ):
            self.cv.add("line", "back", x1=x, y1=y, x2=x + 34, y2=y, class_=cls)
            self.cv.text(x + 40, y + 4, text, "small")
            x += 48 + width_of(text, 10)
        for f in self.faults:
            y += 15
            since = f" (since {f['since']:.1f} s)" if isinstance(f.get("since"), (int, float)) else ""
            measured = f", measured {f['measured']}" if f.get("measured") else ""
            text = f"in force: {f.get('text') or f.get('id', '?')}{since}{measured}"
            self.cv.text(PAD, y + 9, text, "small", room=self.width - 2 * PAD)
        earlier = len(self.lifted) - LIFTED_DRAWN
        if earlier > 0:
            y += 15
            self.cv.text(PAD, y + 9, f"lifted: {earlier} earlier faults (topology.json has them)", "small")
        for f in self.lifted[-LIFTED_DRAWN:]:
            y += 15
            self.cv.text(PAD, y + 9, f"lifted: {lifted_line(f)}", "small", room=self.width - 2 * PAD)
        return y + 30


def render_svg(doc: Mapping[str, Any], *, id_prefix: str = "") -> str:
    """The SVG document (with its XML declaration) of topology document ``doc``.
    ``id_prefix`` starts its element ids, for several drawings inline in one HTML page."""
    drawing = Drawing(doc, id_prefix)
    for step in (
        drawing.header,
        drawing.buses,
        drawing.containers,
        drawing.services,
        drawing.probe_path,
        drawing.link_curves,
    ):
        step()
    return drawing.cv.svg(drawing.width, drawing.legend())


def lifted_line(fault: Mapping[str, Any]) -> str:
    """A lifted fault of a snapshot: ``partition #1 [a] | [b], drop (0.3 s to 1.6 s, measured loss 1.0)``."""
    when = [f"{fault[k]:.1f} s" if isinstance(fault.get(k), (int, float)) else "?" for k in ("since", "lifted")]
    measured = f", measured {fault['measured']}" if fault.get("measured") else ""
    return f"{fault.get('text', '?')} ({when[0]} to {when[1]}{measured})"


def render_text(doc: Mapping[str, Any]) -> str:
    """The same document as plain text: one line per network, container, service, fault,
    and the failing probe first."""
    lines = [f"dockernet topology · {doc.get('label', '')}"]
    failing = doc.get("failing")
    if failing:
        port = f":{failing['port']}" if failing.get("port") else ""
        over = f"over {failing['network']}" if failing.get("network") else "over no shared network"
        address = f" ({failing['address']}{port})" if failing.get("address") else port
        target = f"{failing['target']}{address}"
        lines.append(f"failing probe: {failing['source']} -> {target} by {failing.get('kind', '?')} {over}")
        lines += [f"  {failing['verdict']}"] if failing.get("verdict") else []
        lines += [f"  why: {failing['diagnosis']}"] if failing.get("diagnosis") else []
    lines.append("networks:")
    for n in doc.get("networks", []):
        facts = [n.get("driver") or "", n.get("subnet") or "-", "internal" if n.get("internal") else ""]
        lines.append(f"  {n['name']}  [{n.get('docker_name', '')}]  {'  '.join(f for f in facts if f)}")
    lines.append("containers:")
    for c in doc.get("containers", []):
        of = f"  task of {c['service']}" if c.get("service") else ""
        mode = f"  network_mode={c['network_mode']}" if c.get("network_mode") else ""
        lines.append(f"  {c['name']}  [{c.get('docker_name', '')}]  {c.get('image', '')}{mode}{of}  ({c.get('state')})")
        for e in c.get("endpoints", []):
            lines.append(
                f"    on {e['network']}: {e.get('ip') or '-'}  aliases: {', '.join(e.get('aliases', [])) or '-'}"
            )
    if doc.get("services"):
        lines.append("services:")
        for s in doc["services"]:
            vips = ", ".join(f"{v['ip']} on {v['network']}" for v in s.get("vips", []))
            lines.append(
                f"  {s['name']}  {s.get('endpoint_mode')}  {vips or '-'}  tasks: {', '.join(s['tasks']) or '-'}"
            )
    if doc.get("faults"):
        lines.append("faults in force:")
        for f in doc["faults"]:
            since = f"  (since {f['since']:.1f} s)" if isinstance(f.get("since"), (int, float)) else ""
            measured = f"  (measured {f['measured']})" if f.get("measured") else ""
            lines.append(f"  {f.get('text') or f.get('id')}{since}{measured}")
    if doc.get("lifted"):
        lines.append("faults lifted during the test:")
        lines.extend(f"  {lifted_line(f)}" for f in doc["lifted"])
    return "\n".join(lines) + "\n"
