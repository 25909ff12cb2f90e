"""A failing test's artifacts (issue 24): ``--dockernet-artifacts DIR`` (ini
``dockernet_artifacts``) writes a folder per failing test (set-up or call) with its
topology as SVG and JSON, each container's full log and the timeline; a passing test
leaves nothing; the report lists the folder, JUnit XML carries ``[[ATTACHMENT|path]]``
lines whatever ``junit_logging`` says, and pytest-html's row shows the picture."""

from __future__ import annotations

import html.parser
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_reports import assert_nothing_left, section

from pytest_dockernet.artifacts import safe_name
from pytest_dockernet.timeline import Timeline, render

# A test whose assert_reachable fails (api on front, db on back), after a partition applied
# and healed; its network made in set-up (a fixture), the rest in the call. And one that passes.
FAILING = """
import pytest
from inner_run_spy import record

@pytest.fixture
def front(dockernet):
    return dockernet.network("front")

def test_fails(dockernet, front):
    back = dockernet.network("back")
    api = dockernet.container("api", networks=[front], command=["sh", "-c", "echo api says hello; exec sleep 600"])
    web = dockernet.container("web", networks=[front], command=["httpd", "-f", "-p", "80"])
    db = dockernet.container("db", networks=[back])
    record(front, back, api, web, db)
    with dockernet.partition(api, web):
        pass
    web.restart(timeout=0)
    dockernet.connect(web, back)
    dockernet.disconnect(web, back)
    dockernet.assert_reachable(api, db, timeout=1)

def test_passes(dockernet):
    net = dockernet.network("quiet")
    dockernet.container("calm", networks=[net])
"""
NAMES = ("api", "web", "db")


def folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def attachments(report: Path) -> dict[str, list[str]]:
    """Each test case's ``[[ATTACHMENT|path]]`` lines' paths, by its name."""
    found = {}
    for case in ET.parse(report).iter("testcase"):
        outs = [out.text or "" for out in case.iter("system-out")]
        assert len(outs) <= 1, "one <system-out> per test case"
        found[case.get("name")] = re.findall(r"^\[\[ATTACHMENT\|(.+)\]\]$", "".join(outs), re.M)
    return found


def test_a_failing_test_leaves_its_folder_and_a_passing_one_nothing(inner_runs, pytester):
    pytester.makepyfile(test_app=FAILING)
    result = inner_runs.run("--dockernet-artifacts", "out", "--junitxml=report.xml")
    result.assert_outcomes(failed=1, passed=1)
    root = pytester.path / "out"
    assert folders(root) == ["test_app.py__test_fails"] == [safe_name("test_app.py::test_fails")]
    folder = root / "test_app.py__test_fails"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["topology.svg", "topology.json", "timeline.txt", "api.log", "web.log", "db.log"]
    )

    svg = ET.parse(folder / "topology.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    said = " ".join(svg.itertext())
    for name in (*NAMES, "front", "back"):
        assert name in said, f"{name} is not in the drawing: {said}"
    doc = json.loads((folder / "topology.json").read_text())
    assert doc["version"] == 1
    assert sorted(c["name"] for c in doc["containers"]) == sorted(NAMES)
    assert sorted(n["name"] for n in doc["networks"]) == ["back", "front"]

    assert (folder / "api.log").read_text() == "api says hello\n"  # the whole log, not a tail
    assert (folder / "db.log").read_text() == ""  # a resident probe shell says nothing

    timeline = (folder / "timeline.txt").read_text().splitlines()
    events = [re.match(r"^\s*([+-]\d+\.\d{3})  (.*)$", line) for line in timeline[1:]]
    assert all(events), timeline
    at = {m.group(2): float(m.group(1)) for m in events if m}
    order = [
        "network front made",
        "test_fails: its call phase starts",
        "network back made",
        "container api started: on front 10.",
        "container web started",
        "container db started: on back 10.",
        "partition #1 [api] | [web], drop: applied",
        "partition #1 [api] | [web], drop: lifted",
        "container web restarted: on front 10.",
        "container web connected to back: on ",
        "container web disconnected from back: on front 10.",
        "probe from api: ICMP echo 10.",
        "test_fails: call failed (AssertionError)",
    ]
    seen = [next(what for what in at if what.startswith(prefix)) for prefix in order]
    assert [at[what] for what in seen] == sorted(at[what] for what in seen), timeline
    signs = {m.group(2): m.group(1)[0] for m in events if m}
    assert signs[seen[0]] == "-" and signs[seen[2]] == "+", "set-up's events before the call's start, the call's after"
    assert at[seen[1]] == 0.0
    assert seen[-2].endswith(": no answer") or ": no answer  (x" in seen[-2], seen[-2]

    listed = section(result, "dockernet artifacts").splitlines()
    assert listed[0] == f"{folder}/"
    assert set(listed[1].split()) == {p.name for p in folder.iterdir()}
    cases = attachments(pytester.path / "report.xml")
    assert sorted(cases["test_fails"]) == sorted(str(p) for p in folder.iterdir())
    assert cases["test_passes"] == []
    assert_nothing_left(inner_runs)

    # Run again: the failing test's folder is written afresh; nothing else appears.
    (folder / "stale.txt").write_text("from the first run")
    inner_runs.run("--dockernet-artifacts", "out").assert_outcomes(failed=1, passed=1)
    assert folders(root) == ["test_app.py__test_fails"]
    assert not (folder / "stale.txt").exists()
    assert_nothing_left(inner_runs)


def test_a_failing_set_up_leaves_a_folder_and_the_attachments_join_pytests_system_out_under_xdist(inner_runs, pytester):
    pytester.makepyfile(
        test_setup="""
        import pytest
        from pytest_dockernet import LogLine

        @pytest.fixture
        def app(dockernet):
            net = dockernet.network("net")
            dockernet.container("steady", networks=[net], command=["sh", "-c", "echo steady; exec sleep 600"])
            crash = ["sh", "-c", "echo boom; sleep 0.5; exit 3"]
            return dockernet.container("crashes", networks=[net], command=crash, ready=LogLine("never said"))

        def test_app(app):
            pass

        def test_prints_then_fails(dockernet, dockernet_module):
            dockernet.container("one", command=["sh", "-c", "echo one; exec sleep 600"])
            dockernet_module.container("one", command=["sh", "-c", "echo module; exec sleep 600"])
            print("the test's own output")
            assert False
        """
    )
    # The ini key, from the ini file's folder; pytest's own <system-out> (junit_logging) gets the lines.
    (pytester.path / "sub").mkdir()
    pytester.makeini("[pytest]\ndockernet_artifacts = sub/arts\njunit_logging = system-out\n")
    # Under xdist: the controller writes the XML from the reports its workers send.
    result = inner_runs.run_subprocess("--junitxml=report.xml", "-n", "2", "-p", "xdist")
    result.assert_outcomes(errors=1, failed=1)
    root = pytester.path / "sub" / "arts"
    assert folders(root) == ["test_setup.py__test_app", "test_setup.py__test_prints_then_fails"]
    setup = root / "test_setup.py__test_app"
    assert (setup / "steady.log").read_text() == "steady\n"
    timeline = (setup / "timeline.txt").read_text()
    assert timeline.startswith("seconds from the start of the test's set-up (the test failed there")
    assert re.search(r"^\s*\+\d+\.\d{3}  container crashes did not start: .*exit code 3", timeline, re.M), timeline
    assert timeline.rstrip().endswith("test_app: setup failed (DockernetError)")
    assert "steady" in " ".join(ET.parse(setup / "topology.svg").getroot().itertext())
    cases = attachments(pytester.path / "report.xml")
    assert sorted(cases["test_app"]) == sorted(str(p) for p in setup.iterdir())
    (out,) = [c for c in ET.parse(pytester.path / "report.xml").iter("testcase") if c.get("name") != "test_app"]
    text = out.find("system-out").text
    assert "the test's own output" in text and "one.log]]" in text
    # Two factories' containers of one name: the module's log is named after its fixture too.
    called = root / "test_setup.py__test_prints_then_fails"
    assert (called / "one.log").read_text() == "one\n"
    assert (called / "dockernet_module.one.log").read_text() == "module\n"
    assert "[dockernet_module] network " in (called / "timeline.txt").read_text()
    assert_nothing_left(inner_runs)


def test_without_the_option_nothing_is_written_and_a_file_is_refused(inner_runs, pytester):
    pytester.makepyfile(test_app=FAILING)
    result = inner_runs.run("--junitxml=report.xml")
    result.assert_outcomes(failed=1, passed=1)
    assert "dockernet artifacts" not in result.stdout.str()
    assert attachments(pytester.path / "report.xml") == {"test_fails": [], "test_passes": []}
    assert folders(pytester.path / "dockernet-artifacts") == []
    assert_nothing_left(inner_runs)

    # A folder that cannot be written: one line in the section, the report is as before.
    # Nor is a folder of the same name that this option did not write (its files stay).
    (pytester.path / "out" / "test_app.py__test_fails").mkdir(parents=True)
    (pytester.path / "out" / "test_app.py__test_fails" / "mine.txt").write_text("the user's")
    result = inner_runs.run("--dockernet-artifacts=out")
    result.assert_outcomes(failed=1, passed=1)
    (line,) = section(result, "dockernet artifacts").strip().splitlines()
    assert line.startswith("not written: ") and "test_app.py__test_fails is in the way" in line, line
    assert [p.name for p in (pytester.path / "out" / "test_app.py__test_fails").iterdir()] == ["mine.txt"]
    result.stdout.fnmatch_lines(["*why: api and db share no network*", "*- dockernet topology -*"])
    assert_nothing_left(inner_runs)

    (pytester.path / "taken").write_text("a file")
    result = pytester.runpytest("--dockernet-artifacts=taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --dockernet-artifacts (ini dockernet_artifacts) is 'taken': * is a file; name a folder*"]
    )


class _Blob(html.parser.HTMLParser):
    """pytest-html 4 keeps its results as JSON in one element's ``data-jsonblob``."""

    blob: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "data-jsonblob" and value:
                self.blob = json.loads(value)


def test_pytest_html_shows_the_topology_in_the_failing_tests_row(inner_runs, pytester):
    pytest.importorskip("pytest_html")  # the test extra installs it (CI)
    pytester.makepyfile(test_app=FAILING)
    result = inner_runs.run("--html=report.html", "--self-contained-html")
    result.assert_outcomes(failed=1, passed=1)
    parser = _Blob()
    parser.feed((pytester.path / "report.html").read_text())
    assert parser.blob is not None
    extras = {
        test_id: [e for run in runs for e in run.get("extras", [])] for test_id, runs in parser.blob["tests"].items()
    }
    (failing,) = [k for k in extras if k.endswith("test_fails")]
    (passing,) = [k for k in extras if k.endswith("test_passes")]
    assert extras[passing] == []
    (picture,) = extras[failing]
    svg = re.search(r"<svg.*</svg>", picture["content"], re.S)
    assert svg, picture
    said = " ".join(ET.fromstring(svg.group(0)).itertext())
    for name in NAMES:
        assert name in said
    assert folders(pytester.path / "dockernet-artifacts") == []  # the picture needs no folder
    assert_nothing_left(inner_runs)


def test_the_timeline_counts_repeats_and_from_the_call_phase():
    timeline, other = Timeline(), Timeline()
    timeline.add("network n made")
    origin = timeline.events()[0].at + 1.0
    for _ in range(3):
        timeline.add("probe from a: ping b: exit 1")
    other.add("container x started")
    lines = render([("dockernet", timeline), ("dockernet_module", other)], origin).splitlines()
    assert lines[0].startswith("seconds from the start of the test's call phase")
    assert re.fullmatch(r"\s+-1\.000  \[dockernet\] network n made", lines[1])
    assert re.fullmatch(
        r"\s+[+-]\d\.\d{3}  \[dockernet\] probe from a: ping b: exit 1  \(x3, the last at [+-]\d\.\d{3}\)", lines[2]
    )
    assert lines[3].endswith("[dockernet_module] container x started")
    assert render([("", Timeline())], origin).splitlines()[1] == "(nothing happened)"


@pytest.mark.parametrize(
    "nodeid, name",
    [
        ("tests/test_a.py::test_b", "tests_test_a.py__test_b"),
        ("test_a.py::TestC::test_d[x/y-1 2]", "test_a.py__TestC__test_d_x_y-1_2"),
        ("test_a.py::test_" + "é" * 200, None),
    ],
)
def test_a_node_id_becomes_one_file_name(nodeid, name):
    made = safe_name(nodeid)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,120}", made)
    if name is not None:
        assert made == name
    else:
        assert made != safe_name(nodeid + "x")  # cut, and told apart by a digest


ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "docs" / "snippets" / "artifacts-run.txt"
PICTURE = ROOT / "docs" / "snippets" / "artifacts-topology.svg"  # that run's topology.svg
EXAMPLE = ROOT / "examples" / "test_artifacts.py"
# The change docs/how-to/artifacts.md makes to the example: no heal().
HEALED, STILL_CUT = "\n    dockernet.heal(cut)\n", "\n"


def normalised(text: str) -> str:
    """What stays the same from run to run: no times, addresses or counts of repeats."""
    text = re.sub(r"^\s*[+-]\d+\.\d{3}  ", "T  ", text, flags=re.M)
    text = re.sub(r"\b\d{1,3}(\.\d{1,3}){3}(/\d+)?\b", "IP", text)
    return re.sub(r"  \(x\d+, the last at [+-]\d+\.\d{3}\)", "  (xN)", text)


def test_the_how_tos_failing_run_is_what_the_example_leaves(inner_runs, pytester):
    """docs/snippets/artifacts-run.txt and its picture, shown by docs/how-to/artifacts.md,
    are a real run's (``DOCKERNET_UPDATE_DOCS=1`` rewrites them; else the picture names the
    same containers and networks); the example itself passes (examples/)."""
    source = EXAMPLE.read_text()
    assert source.count(HEALED) == 1
    (pytester.path / "examples").mkdir()
    (pytester.path / "examples" / "test_artifacts.py").write_text(source.replace(HEALED, STILL_CUT))
    # In a process of its own: this module is test_artifacts too.
    result = inner_runs.run_subprocess("examples/test_artifacts.py", "--dockernet-artifacts=artifacts")
    result.assert_outcomes(failed=1)
    listed = section(result, "dockernet artifacts")
    folder = listed.splitlines()[0].replace(f"{pytester.path}/", "")
    listed = listed.replace(f"{pytester.path}/", "/home/you/project/")  # the folder's absolute path
    timeline = (pytester.path / folder / "timeline.txt").read_text()
    (header,) = re.findall(r"^-+ dockernet artifacts -+$", result.stdout.str(), re.M)
    command = "$ pytest examples/test_artifacts.py --dockernet-artifacts=artifacts"
    output = f"{command}\n(...)\n{header}\n{listed.rstrip()}\n(...)\n\n$ cat {folder}timeline.txt\n{timeline}"
    assert "partition #1 [api] | [db], drop: applied" in output and ": lifted" not in output
    assert_nothing_left(inner_runs)
    svg = (pytester.path / folder / "topology.svg").read_text()
    if os.environ.get("DOCKERNET_UPDATE_DOCS") == "1":
        SNIPPET.write_text(output)
        PICTURE.write_text(svg)
        return
    names = {"api", "db", "front"}
    assert names <= set(" ".join(ET.fromstring(svg.encode()).itertext()).split())
    assert names <= set(" ".join(ET.parse(PICTURE).getroot().itertext()).split())
    assert normalised(SNIPPET.read_text()) == normalised(output), (
        f"{SNIPPET} is not what a run leaves now; if the new output is right, run with DOCKERNET_UPDATE_DOCS=1"
    )


@pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="needs the engine's unix socket")
def test_an_engine_that_stopped_answering_gets_one_line_not_a_folder(inner_runs, pytester, monkeypatch, tmp_path):
    from relay import Relay  # a socket forwarder to the real engine, stopped half-way (test_engine_loss)

    path = str(tmp_path / "engine.sock")
    forwarder = Relay(path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makepyfile(
        test_inner="""
        import os
        import time

        from inner_run_spy import ready, record

        def test_first(dockernet):
            net = dockernet.network("n")
            record(net, dockernet.container("c", networks=[net]))
            ready()
            while not os.path.exists("engine-gone"):
                time.sleep(0.1)
            dockernet.container("late")
        """
    )
    proc = inner_runs.start("-p", "no:cacheprovider", "--dockernet-artifacts=out", "test_inner.py")
    forwarder.close()
    (pytester.path / "engine-gone").touch()
    proc.wait(timeout=180)
    log = inner_runs.log(proc)
    try:
        assert proc.returncode == pytest.ExitCode.TESTS_FAILED, log
        assert re.search(
            r"^-+ dockernet artifacts -+\nnot written: the Docker engine stopped answering \(", log, re.M
        ), log
        assert folders(pytester.path / "out") == [], log
    finally:
        inner_runs.remove_resources()  # what the run could not remove, through the real socket
