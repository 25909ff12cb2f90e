"""A griffe extension for the API reference: the package's docstrings are written for
Sphinx, the site renders them as Markdown. Before mkdocstrings renders a docstring, this
turns the reST that Markdown would show raw into its Markdown form:

- roles (``:class:`~pkg.Name` ``, ``:mod:`.hooks` ``, ``:meth:``, ...) into inline code;
- ``.. versionadded:: 0.1`` (and ``versionchanged``, ``deprecated``) into a sentence;
- a paragraph ending in ``::`` before a literal block into one ending in ``:``;
- ``:param ...:`` fields to the end, where the Sphinx docstring parser expects them
  (text after a field would otherwise be read as part of its description).

The docstrings themselves stay as they are. Loaded from mkdocs.yml (``extensions:``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|mod|meth|func|attr|obj|exc|data|const):`~?([^`]+)`")
VERSION = re.compile(r"^([ \t]*)\.\. (versionadded|versionchanged|deprecated):: *(\S+)[ \t]*$", re.M)
VERSION_WORDS = {"versionadded": "New in", "versionchanged": "Changed in", "deprecated": "Deprecated since"}
LITERAL = re.compile(r"(\S)::$", re.M)
FIELD = re.compile(r"^:(param|type|raises?|returns?|rtype|var|ivar|cvar|yields?)\b")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).split("`")[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _fields_last(text: str) -> str:
    body: list[str] = []
    fields: list[str] = []
    in_field = False
    for line in text.splitlines():
        if FIELD.match(line):
            in_field = True
            fields.append(line)
        elif in_field and line.startswith((" ", "\t")) and line.strip():
            fields.append(line)  # a field's continuation line
        else:
            in_field = False
            body.append(line)
    if not fields:
        return text
    return "\n".join(body).rstrip() + "\n\n" + "\n".join(fields)


def markdown(text: str) -> str:
    text = ROLE.sub(_role, text)
    text = VERSION.sub(lambda m: f"{m.group(1)}*{VERSION_WORDS[m.group(2)]} {m.group(3)}.*", text)
    text = LITERAL.sub(r"\1:", text)
    return _fields_last(text)


class SphinxMarkup(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
