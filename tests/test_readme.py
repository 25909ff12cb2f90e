"""The README quotes the examples whole: a changed example must change the README too."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_quotes_the_example(example):
    assert example.read_text().strip() in (ROOT / "README.md").read_text(), (
        f"README.md no longer quotes {example.relative_to(ROOT)} as it is"
    )


def test_readme_test_command_is_the_one_ci_runs():
    command = "python -m pytest tests --dockernet-require"
    assert command in (ROOT / "README.md").read_text()
    assert command in (ROOT / ".ci" / "run").read_text()
