"""Compose variables without an engine: ``${...}`` substitution as Compose does it, and
``.env`` files read as Compose reads them (:mod:`pytest_dockernet.compose.env`)."""

import os
import re
import textwrap

import pytest

from pytest_dockernet.compose.env import Variables, read_env_file, substitute
from pytest_dockernet.errors import ComposeError


@pytest.fixture(autouse=True)
def _no_stray_test_variables(monkeypatch):
    for name in [k for k in os.environ if k.startswith("DNT_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "text, values, expected",
    [
        ("${A}", {"A": "1"}, "1"), ("${A:-d}", {"A": "1"}, "1"), ("${A:-d}", {"A": ""}, "d"), ("${A:-d}", {}, "d"),
        ("${A-d}", {"A": ""}, ""), ("${A-d}", {}, "d"),
        ("${A:+x}", {"A": "1"}, "x"), ("${A:+x}", {"A": ""}, ""), ("${A+x}", {"A": ""}, "x"), ("${A+x}", {}, ""),
        ("${A:?m}", {"A": "1"}, "1"), ("${A?m}", {"A": ""}, ""),
        ("${A:-${B}}", {"B": "b"}, "b"), ("${A:-${B:-deep}/x}", {}, "deep/x"),
        ("$$A costs $$5", {"A": "1"}, "$A costs $5"),
        ("$A/$B_2.txt", {"A": "1", "B_2": "2"}, "1/2.txt"),
        ("a $ b $1", {}, "a $ b $1"),
    ],
)  # fmt: skip
def test_substitution_forms(text, values, expected):
    assert substitute(text, Variables([values]), "f") == expected


@pytest.mark.parametrize(
    "text, values, message",
    [
        ("${A:?set A first}", {}, "f: variable A is unset: set A first"),
        ("${A:?set A first}", {"A": ""}, "f: variable A is empty: set A first"),
        ("${A?}", {}, "f: variable A is unset: it is required"),
        ("${", {}, "f: '${' has an invalid variable name after '${' (write '$$' for a '$')"),
        ("${1A}", {}, "f: '${1A}' has an invalid variable name after '${'"),
        ("${A", {}, "f: '${A': '${A' must be followed by '}' or one of :- - :? ? :+ +"),
        ("${A:-x", {}, "f: '${A:-x' has a '${' without its closing '}'"),
    ],
)
def test_substitution_errors(text, values, message):
    with pytest.raises(ComposeError, match=re.escape(message)):
        substitute(text, Variables([values]), "f")


def test_dotenv_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("DNT_OUTER", "outer")
    path = tmp_path / "vars.env"
    path.write_text(
        textwrap.dedent("""\
        # a comment

           # an indented comment
        export A=1
        B='single $A # kept'
        C="double ${A}\\tx # kept"
        D=plain value # cut
        E=x#y
        F=${A}-$A-${DNT_OUTER}
          G = spaced
        H=
        DNT_OUTER
        DNT_MISSING
        """)
    )
    assert read_env_file(path, Variables([os.environ])) == {
        "A": "1", "B": "single $A # kept", "C": "double 1\tx # kept", "D": "plain value", "E": "x#y",
        "F": "1-1-outer", "G": "spaced", "H": "", "DNT_OUTER": "outer",
    }  # fmt: skip


def test_dotenv_line_that_is_not_key_value(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=1\nnot a line\n")
    with pytest.raises(ComposeError, match=re.escape(f"{path}, line 2: not a KEY=VALUE line")) as raised:
        read_env_file(path)
    assert "not a line" not in str(raised.value)  # an env file may hold secrets: the line is not echoed


@pytest.mark.parametrize(
    "line, expected",
    [
        ("A='x' # don't", "x"),  # a single-quoted value ends at its closing quote
        ('A="a\\\\nb"', "a\\nb"),  # an escaped backslash, then a plain n
    ],
)
def test_dotenv_quotes_as_compose_reads_them(tmp_path, line, expected):
    (tmp_path / ".env").write_text(line + "\n")
    assert read_env_file(tmp_path / ".env") == {"A": expected}
