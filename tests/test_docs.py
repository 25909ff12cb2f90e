"""The documentation site (docs/, mkdocs.yml) says what the code does.

Without Docker: every file of examples/ is included by some page, every include exists,
every option and ini key of ``pytest --help`` is in the options reference, every public
name has its API reference. With Docker: the two outputs the pages show (a first run, a
failing test) are what real runs print now. ``DOCKERNET_UPDATE_DOCS=1`` rewrites them
instead of comparing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

import pytest_dockernet

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
# A pymdownx.snippets include: a line `--8<-- "path"` (relative to the repository root).
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)
UPDATE = os.environ.get("DOCKERNET_UPDATE_DOCS") == "1"


def pages() -> list[Path]:
    """The site's pages (docs/README.md is a note beside them, not a page)."""
    return sorted(page for page in DOCS.rglob("*.md") if page != DOCS / "README.md")


def includes() -> dict[str, list[str]]:
    """Each included path, with the pages that include it."""
    found: dict[str, list[str]] = {}
    for page in pages():
        for path in INCLUDE.findall(page.read_text()):
            path = path.split(":")[0]  # "file:section" includes a part of it
            found.setdefault(path, []).append(str(page.relative_to(ROOT)))
    return found


# Not examples: ruff's settings for them (their width, that of the docs' code box).
NOT_EXAMPLES = {"examples/ruff.toml"}


def example_files() -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "examples").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        and str(path.relative_to(ROOT)) not in NOT_EXAMPLES
    )


# -- no Docker needed ---------------------------------------------------------------------


@pytest.mark.parametrize("example", example_files())
def test_every_example_file_is_included_by_a_page(example):
    assert example in includes(), (
        f'no page of docs/ includes {example}: add `--8<-- "{example}"` to the how-to page of its scenario'
    )


def test_every_include_names_a_file_that_exists():
    missing = {path: where for path, where in includes().items() if not (ROOT / path).is_file()}
    assert not missing, f"includes of files that do not exist: {missing}"


# Options that are commands (they run instead of the tests): no ini key.
COMMANDS = ("--dockernet-capabilities",)


def test_every_option_and_ini_key_of_help_is_in_the_options_reference(pytester):
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    options = sorted(set(re.findall(r"^\s+(--dockernet-[a-z-]+)", text, re.M)))
    ini_keys = sorted(set(re.findall(r"^\s+(dockernet_[a-z_]+) \(", text, re.M)))
    assert len(options) >= 12 and len(ini_keys) == len(options) - len(COMMANDS), (options, ini_keys)

    table = (DOCS / "reference" / "options.md").read_text()
    row = re.compile(r"^\| `(--dockernet-[a-z-]+)[^`]*` \| (?:`(dockernet_[a-z_]+)`|none \(a command\)) \|", re.M)
    rows = dict(row.findall(table))
    assert sorted(rows) == options, "the options table and pytest --help list different options"
    for option in options:
        ini = "" if option in COMMANDS else option[2:].replace("-", "_")
        assert rows[option] == ini, f"{option}: wrong ini key in the table"
    assert sorted(v for v in rows.values() if v) == ini_keys


def test_every_public_name_has_its_api_reference():
    api = (DOCS / "reference" / "api.md").read_text()
    missing = [name for name in pytest_dockernet.__all__ if f"::: pytest_dockernet.{name}\n" not in api]
    assert not missing, f"docs/reference/api.md has no `::: pytest_dockernet.NAME` for {missing}"


def test_every_fixture_hook_and_marker_argument_has_its_reference():
    from pytest_dockernet import hooks
    from pytest_dockernet.markers import MARKER_KWARGS
    from pytest_dockernet.plugin import DOCKER_FIXTURES

    reference = DOCS / "reference"
    fixtures, hook_page, marker = ((reference / f"{page}.md").read_text() for page in ("fixtures", "hooks", "marker"))
    missing = [f"fixture {name}" for name in (*DOCKER_FIXTURES, "dockernet_lab") if f"| `{name}` |" not in fixtures]
    hook_names = [name for name in vars(hooks) if name.startswith("pytest_dockernet_")]
    assert hook_names, "no hooks found in pytest_dockernet.hooks"
    missing += [f"hook {name}" for name in hook_names if f"| `{name}(" not in hook_page]
    missing += [f"marker argument {name}" for name in MARKER_KWARGS if f"| `{name}=` |" not in marker]
    assert not missing, f"not in a row of docs/reference: {missing}"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    left_out = [
        str(page.relative_to(DOCS))
        for page in pages()
        if SNIPPETS not in page.parents
        and not re.search(rf"^\s+- (.*: )?{re.escape(str(page.relative_to(DOCS)))}$", nav, re.M)
    ]
    assert not left_out, f"pages missing from nav: in mkdocs.yml: {left_out}"


# -- how the pages show ---------------------------------------------------------------------

MERMAID = re.compile(r"^```mermaid\n(.*?)^```$", re.M | re.S)
# What a code box of the site holds (docs/stylesheets/extra.css; Chromium, from 1280 px up).
CODE_BOX_COLUMNS = 88


def how_to_pages() -> list[Path]:
    return [*sorted(set((DOCS / "how-to").glob("*.md")) - {DOCS / "how-to" / "index.md"}), DOCS / "compose.md"]


@pytest.mark.parametrize("page", how_to_pages(), ids=lambda page: page.name)
def test_every_how_to_opens_with_a_diagram_and_has_subheadings(page):
    text = page.read_text()
    first_section = text.split("\n## ", 1)[0]
    assert MERMAID.search(first_section), (
        f"{page.relative_to(ROOT)}: no ```mermaid diagram of its topology before its first ## heading"
    )
    assert len(re.findall(r"^## ", text, re.M)) >= 2, f"{page.relative_to(ROOT)}: sections under ## subheadings"


@pytest.mark.parametrize("example", example_files())
def test_every_example_line_fits_the_code_box(example):
    path = ROOT / example
    if path.suffix not in {".py", ".yaml", ".yml", ".sh", ""} and path.name != "Dockerfile":
        return  # data the examples read (a password file), not shown as code
    long = [
        f"{number}: {line}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > CODE_BOX_COLUMNS
    ]
    assert not long, f"{example}: lines wider than the docs' code box ({CODE_BOX_COLUMNS}): {long}"


def test_the_site_renders_its_diagrams_without_network_access():
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"- name: mermaid\n\s+class: mermaid\n\s+format: !!python/name:pymdownx", config)
    scripts = re.findall(r"^extra_javascript:\n((?:\s+- .*\n)+)", config, re.M)
    assert scripts, "mkdocs.yml has no extra_javascript: Material would load mermaid.js from unpkg.com"
    mermaid = [line.strip()[2:] for line in scripts[0].splitlines() if "mermaid" in line]
    assert mermaid and (DOCS / mermaid[0]).is_file(), f"docs/{mermaid} is missing"
    assert 'globalThis["mermaid"]' in (DOCS / mermaid[0]).read_text()[-2000:], "not a browser build of mermaid"
    assert re.search(r"^  font: false$", config, re.M), "the theme would fetch its fonts from Google Fonts"


def test_every_mermaid_diagram_renders(tmp_path):
    """Mermaid's own parser and renderer, in headless Chromium (scripts/ensure-chromium), on
    every diagram of the pages: a diagram with an error is shown on the site as its source."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("no chromium on PATH: run scripts/ensure-chromium (the README's set-up does)", pytrace=False)
    diagrams = [(str(page.relative_to(ROOT)), d) for page in pages() for d in MERMAID.findall(page.read_text())]
    assert len(diagrams) >= len(how_to_pages())
    page = tmp_path / "diagrams.html"
    page.write_text(
        f'''<html><head><script src="{(DOCS / "javascripts" / "mermaid.tiny.js").as_uri()}"></script></head>
<body><script>
mermaid.initialize({{startOnLoad: false}});
(async () => {{
  const results = [];
  for (const [i, [page, source]] of {json.dumps(diagrams)}.entries()) {{
    try {{ await mermaid.render("d" + i, source); results.push("ok"); }}
    catch (e) {{ results.push(page + ": " + String(e.message || e).split("\\n")[0]); }}
  }}
  document.title = "RESULTS " + JSON.stringify(results);
}})();
</script></body></html>'''
    )
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout  # fmt: skip
    found = re.search(r"<title>RESULTS (.*?)</title>", dom, re.S)
    assert found, f"Chromium did not run the diagrams' page: {dom[-500:]!r}"
    results = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(results) == len(diagrams)
    assert results == ["ok"] * len(diagrams), [r for r in results if r != "ok"]


def test_no_page_installs_from_pypi_before_the_first_release():
    import pytest_dockernet

    if not pytest_dockernet.__version__.startswith("0.1."):
        pytest.skip("released: pip install pytest-dockernet works")  # pragma: no cover
    command = re.compile(r"pip install (--\S+ )*pytest-dockernet\b(?! @)")
    found = [
        str(page.relative_to(ROOT))
        for page in [*pages(), ROOT / "README.md"]
        if any(command.search(line) and "does not work" not in line for line in page.read_text().splitlines())
    ]
    assert not found, f"not on PyPI yet: install from a clone or a wheel (README's Install) in {found}"


# Public members of the classes the API reference lists member by member that are the
# plugin's own bookkeeping, not for tests: left out of the page on purpose.
API_INTERNALS = {
    "Topology": {"client", "id", "label", "context"},
    "Network": {"context", "owned", "allocated", "warm", "topology", "ref"},
    "Container": {
        *("context", "endpoints", "sidecar_id", "resident", "lifecycle", "pooled", "reusable"),
        *("logs_after", "stop_timeout", "topology", "client", "last_output_stamp", "refresh"),
    },
    "ReachabilityMatrix": {"compared"},
    "LogLine": {"holds"},
    "Listening": {"holds"},
    "Partition": {"lifted_as", "number", "chain", "apply", "reapply"},
    "Degradation": {"lifted_as", "apply", "reapply", "settings"},
    "DnsFault": {"seconds", "answer_of", "rule", "apply", "reapply"},
    "Nemesis": {"context", "error", "failed_at", "seed_given", "stop", "started", "describe"},
    "Service": {"context", "topology"},
    "Remover": set(),
    "RunIdentity": {"pid", "host", "boot", "pidns", "started", "owner_is_gone", "maker_is_gone"},
}


def public_members(cls: type) -> set[str]:
    """What mkdocstrings (griffe, statically) sees as the class's public members: its
    methods, properties and class-level names, and the attributes ``__init__`` sets."""
    import ast
    import inspect

    tree = ast.parse(Path(inspect.getsourcefile(cls) or "").read_text())
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    names = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
            if item.name == "__init__":
                names |= {
                    t.attr
                    for t in ast.walk(item)
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                    and isinstance(t.ctx, ast.Store)
                }  # fmt: skip
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
        elif isinstance(item, ast.Assign):
            names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def test_the_api_reference_lists_what_tests_call_first_and_leaves_out_the_bookkeeping():
    api = (DOCS / "reference" / "api.md").read_text()
    order = re.findall(r"^::: pytest_dockernet\.(\w+)$", api, re.M)
    assert order[:3] == ["Topology", "Network", "Container"], "the factory and its handles come first"
    listed = dict(
        re.findall(
            r"^::: pytest_dockernet\.(\w+)\n    options:\n(?:      .*\n)*?      members:\n((?:        - \w+\n)+)",
            api,
            re.M,
        )
    )
    assert set(listed) == set(API_INTERNALS), "API_INTERNALS names the classes listed member by member"
    for name, block in listed.items():
        members = re.findall(r"- (\w+)", block)
        public = public_members(getattr(pytest_dockernet, name))
        assert not set(members) - public, f"{name}: the page lists members it does not have: {set(members) - public}"
        unplaced = public - set(members) - API_INTERNALS[name]
        assert not unplaced, f"{name}: public members neither on the page nor named internal: {unplaced}"

    # The factory's constructor as the page writes it out (its signature is not generated:
    # most of its arguments are the plugin's wiring).
    import inspect

    (written,) = re.findall(r"`Topology\(client, \*, ([^`]*)\)`", api.replace("\n", " "))
    parameters = inspect.signature(pytest_dockernet.Topology).parameters
    for argument in written.split(", "):
        keyword, default = argument.split("=")
        assert keyword in parameters, f"Topology() has no argument {keyword}"
        assert repr(parameters[keyword].default) == default, f"Topology({keyword}=...) defaults to something else"


# -- captured outputs (Docker) -------------------------------------------------------------

SEPARATOR = re.compile(r"^([=_-])\1{2,} (.*?) \1{2,}$")


# Notes of the run summary that depend on what the engine had before, not on the test: the
# probe image pulled or built, dead runs' resources pruned (with a line per resource), the
# plugin's swarm left or kept.
INCIDENTAL = (
    "is not on the engine",
    "probe image ",
    "dead run",
    "left the swarm the plugin",
    "stays in the swarm the plugin made",
)


def cleaned(output: str, here: Path) -> str:
    """A run's output as a page shows it: its temporary directory named neutrally, and
    without the incidental notes of its summary."""
    lines, in_summary, in_note = [], False, False
    for line in output.replace(str(here), "/path/to/project").splitlines():
        if re.match(r"^-+ dockernet -+$", line):
            in_summary = True
        elif SEPARATOR.match(line):
            in_summary = False
        if in_summary and any(note in line for note in INCIDENTAL):
            in_note = True
            continue
        if in_note and line.startswith("  "):
            continue  # a pruned resource, under its note
        in_note = False
        lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"


def normalised(output: str) -> str:
    """What may differ between two runs that say the same: run ids and Docker names,
    addresses, the probe image's tag, times, counts of attempts and probes, the width of
    pytest's separator lines."""
    text = re.sub(r"\bdn-[0-9a-f]{10}-\d+-", "dn-RUN-N-", output)
    text = re.sub(r"\bdn-[0-9a-f]{10}-pool-", "dn-RUN-pool-", text)
    text = re.sub(r"\b[0-9a-f]{10}-\d+\b", "RUN-N", text)
    text = re.sub(r"\b\d{1,3}(\.\d{1,3}){3}\b", "IP", text)
    text = re.sub(r"pytest-dockernet/busybox:[0-9a-f]+|busybox:stable", "PROBE-IMAGE", text)
    text = re.sub(r"\d+(\.\d+)?( ?)s\b", r"T\2s", text)
    text = re.sub(r"\b\d+ (attempt|probe exec|probe)s?\b", r"N \1s", text)
    text = re.sub(r"\b\d+ ms\b", "T ms", text)
    return "\n".join(SEPARATOR.sub(r"\1 \2 \1", line) for line in text.splitlines())


def check_capture(name: str, output: str) -> None:
    path = SNIPPETS / name
    if UPDATE:
        path.write_text(output)
        return
    assert path.exists(), f"{path} is missing: run with DOCKERNET_UPDATE_DOCS=1 to capture it"
    shown, now = normalised(path.read_text()), normalised(output)
    if shown != now:
        diff = "\n".join(difflib.unified_diff(shown.splitlines(), now.splitlines(), "on the page", "now", lineterm=""))
        pytest.fail(
            f"{path.relative_to(ROOT)} is not what a run prints now (normalised diff below); if the new "
            f"output is right, run with DOCKERNET_UPDATE_DOCS=1 to rewrite it.\n{diff}",
            pytrace=False,
        )


def test_two_captures_that_say_the_same_compare_equal(tmp_path):
    def run(run_id, ip, seconds, note):
        return "\n".join(
            [
                f"E       AssertionError: api did not reach db ({ip}) by ICMP echo within 5 s (4 attempts)",
                f"E           probe from api (in dn-{run_id}-1-api):",
                f"E           web  [dn-{run_id}-1-web]  pytest-dockernet/busybox:c9969154c539  (running)",
                f"{tmp_path}/test_tiers.py:12: AssertionError",
                "-" * 34 + " dockernet " + "-" * 35,
                *note,
                f"time: image 0.01 s, set-up {seconds} s, probes 5.84 s; made: 3 containers, 2 networks, 5 probes",
                "=" * 30 + f" 1 failed in {seconds}s " + "=" * 30,
            ]
        )

    pruned = ["removed 1 container and 1 network left by 1 dead run (0123456789)", "  container dn-x", "  network n"]
    built = ["busybox:stable is not on the engine and could not be pulled; using pytest-dockernet/busybox:ab12"]
    first = cleaned(run("24bad33203", "10.213.94.2", "11.67", []), tmp_path)
    second = cleaned(run("0fe1d2c3b4", "10.213.7.12", "9.1", pruned + built), tmp_path)
    assert "/path/to/project/test_tiers.py:12" in first and "dead run" not in second
    assert normalised(first) == normalised(second)
    assert normalised(first) != normalised(first.replace("by ICMP echo", "by TCP"))


@pytest.fixture
def inner_run(inner_runs, pytester, monkeypatch):
    """A fresh run in its own process, as a user starts it, on a terminal 80 wide.

    pytest does not shorten the summary's lines when it sees a CI system (``CI`` or ``BUILD_NUMBER`` set),
    so those are unset: the page shows what a run on a user's own terminal prints.
    """
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)

    def run(test_file: str, source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(**{test_file: source})
        return inner_runs.run_subprocess("--no-header", "-p", "no:cacheprovider", "-p", "no:xdist", *args)

    return run


def test_the_first_run_shown_in_getting_started_is_what_a_run_prints(inner_run, pytester):
    result = inner_run("test_bridge_by_name", (ROOT / "examples" / "test_bridge_by_name.py").read_text())
    result.assert_outcomes(passed=1)
    check_capture("first-run-output.txt", cleaned(result.stdout.str(), pytester.path))


def test_the_failure_shown_in_the_docs_is_what_a_run_prints(inner_run, pytester):
    result = inner_run("test_tiers", (SNIPPETS / "failure-test.py").read_text(), "--dockernet-artifacts", "artifacts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: why: api and db share no network*", "E       api did not reach db*"])
    check_capture("failure-output.txt", cleaned(result.stdout.str(), pytester.path))

    folder = pytester.path / "artifacts" / "test_tiers.py__test_the_api_reaches_the_database"
    check_picture(folder / "topology.svg", json.loads((folder / "topology.json").read_text()))


def svg_texts(svg: str) -> set[str]:
    """Every text the picture shows (and the whole of each text it had to shorten)."""
    ns = "{http://www.w3.org/2000/svg}"
    root = ElementTree.fromstring(svg.encode())
    return {"".join(e.itertext()).strip() for e in root.iter() if e.tag in (f"{ns}text", f"{ns}title")}


def check_picture(drawn: Path, doc: dict) -> None:
    """The failure page's picture (snippets/failure-topology.svg) is the topology a run
    draws now: rewritten under DOCKERNET_UPDATE_DOCS=1; otherwise it must show the run's
    networks and containers by their names, and no other container or network."""
    names = {n["name"] for n in doc["networks"]} | {c["name"] for c in doc["containers"]}
    assert names >= {"front", "back", "web", "api", "db"}, names
    now = drawn.read_text()
    assert names <= svg_texts(now), f"the run's topology.svg does not show {names - svg_texts(now)}"
    path = SNIPPETS / "failure-topology.svg"
    if UPDATE:
        path.write_text(now)
        return
    assert path.exists(), f"{path} is missing: run with DOCKERNET_UPDATE_DOCS=1 to draw it"
    shown = svg_texts(path.read_text())
    assert names <= shown, f"{path.relative_to(ROOT)} does not show {names - shown}: DOCKERNET_UPDATE_DOCS=1 redraws it"
    # Names of the page's own picture that the run has no longer (a container taken out).
    drawn_names = {t for t in svg_texts(now) if t in names}
    extra = {t for t in shown - svg_texts(now) if re.fullmatch(r"[a-z][a-z_-]*", t)} - drawn_names
    assert not extra, f"{path.relative_to(ROOT)} shows {extra}, which a run no longer draws: DOCKERNET_UPDATE_DOCS=1"
