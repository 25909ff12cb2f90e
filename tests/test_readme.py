"""The README stays short and true: it quotes the first example whole, keeps the commands
that CI runs, and its links lead somewhere. (The other examples are included by the
documentation pages: tests/test_docs.py.)"""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
FIRST_EXAMPLE = ROOT / "examples" / "test_bridge_by_name.py"
# The two commands that set everything up on a fresh machine and run the examples (a), and
# run the project's tests (b).
SETUP = ("scripts/ensure-docker", "scripts/ensure-chromium", "scripts/app-base-image", "pip install -e '.[test]'")
EXAMPLES_COMMAND = "python -m pytest examples --dockernet-require --dockernet-lab 3"
TEST_COMMAND = "python -m pytest tests --dockernet-require"


def test_readme_quotes_the_first_example_as_it_is():
    assert f"```python\n{FIRST_EXAMPLE.read_text().strip()}\n```" in README, (
        "README.md no longer quotes examples/test_bridge_by_name.py as it is: run scripts/sync-readme"
    )


def test_readme_test_command_is_the_one_ci_runs():
    assert f"```sh\n{TEST_COMMAND}\n```" in README
    assert TEST_COMMAND in CI


def test_readme_sets_up_a_fresh_machine_and_runs_the_examples_as_ci_does():
    command = " && ".join((*SETUP, EXAMPLES_COMMAND))
    assert f"```sh\n{command}\n```" in README
    assert EXAMPLES_COMMAND in CI
    for script in (step for step in SETUP if step.startswith("scripts/")):
        assert script in CI
        assert os.access(ROOT / script, os.X_OK), f"{script} is not an executable file"


def test_readme_links_lead_to_files_that_exist():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_is_short():
    assert len(README.splitlines()) < 200, "the README is the pitch, the install and links: the rest goes in docs/"


def section(title: str) -> str:
    """The README's text under `## title`, up to the next section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def test_readme_installs_from_a_clone_or_a_wheel_until_the_first_release():
    import pytest_dockernet

    install = section("Install")
    commands = re.findall(r"```sh\n(.*?)```", install, re.S)
    assert not any(re.search(r"^pip install pytest-dockernet\s*$", c, re.M) for c in commands), (
        "the package is not on PyPI yet: `pip install pytest-dockernet` cannot work"
    )
    assert "pip install ./pytest-dockernet" in install
    wheel = f"dist/pytest_dockernet-{pytest_dockernet.__version__}-py3-none-any.whl"
    assert f"pip install {wheel}" in install, f"the wheel's name is {wheel} now"


def test_readme_says_what_the_neighbours_do_and_what_this_adds():
    why = section("Why this one")
    for neighbour in ("testcontainers-python", "pytest-docker]", "pytest-docker-tools", "Toxiproxy"):
        assert neighbour in why, f"'## Why this one' does not name {neighbour.strip(']')}"
    assert "What this plugin adds" in why
