"""What in a Dockerfile needs BuildKit, read before a build so that a run without BuildKit
fails naming the line instead of with the legacy builder's parse error.

Two levels, as measured on Docker 20.10: ``buildkit`` forms the engine's built-in
BuildKit frontend has and the legacy builder refuses (``RUN --mount``, ``--chmod``), and
``frontend`` forms that only a newer Dockerfile frontend has (heredocs, ``COPY --link``,
``RUN --network``...), which a ``# syntax=`` line loads from an image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUILDKIT = "buildkit"  # the engine's built-in BuildKit frontend has it
FRONTEND = "frontend"  # a newer Dockerfile frontend (a `# syntax=` line's image) has it

_DIRECTIVE = re.compile(r"#\s*(?P<name>[A-Za-z_]+)\s*=\s*(?P<value>\S+)\s*$")
_HEREDOC = re.compile(r"<<-?\s*[\"']?(?P<word>[A-Za-z_][A-Za-z0-9_]*)[\"']?")
# (instruction, flag) -> level; flags the legacy builder has (COPY --chown, --from) are not here.
_FLAGS = {
    ("RUN", "mount"): BUILDKIT,
    ("COPY", "chmod"): BUILDKIT,
    ("ADD", "chmod"): BUILDKIT,
    ("RUN", "network"): FRONTEND,
    ("RUN", "security"): FRONTEND,
    ("COPY", "link"): FRONTEND,
    ("ADD", "link"): FRONTEND,
    ("COPY", "parents"): FRONTEND,
    ("ADD", "parents"): FRONTEND,
    ("COPY", "exclude"): FRONTEND,
    ("ADD", "exclude"): FRONTEND,
    ("ADD", "keep-git-dir"): FRONTEND,
    ("ADD", "checksum"): FRONTEND,
}


@dataclass(frozen=True)
class Need:
    """One form of the Dockerfile that needs BuildKit: its line, the form, and its level."""

    line: int
    form: str
    level: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.form}"


def syntax_image(dockerfile: str) -> tuple[int, str] | None:
    """The ``# syntax=IMAGE`` parser directive (its line and image), if the Dockerfile has one:
    directives are the comments before the first other line."""
    for number, line in enumerate(dockerfile.splitlines(), 1):
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            return None
        if match["name"].lower() == "syntax":
            return number, match["value"]
    return None


def buildkit_needs(dockerfile: str) -> list[Need]:
    """The forms of ``dockerfile`` (its text) the legacy builder lacks, in line order."""
    needs: list[Need] = []
    continued, heredoc_end = False, None
    for number, raw in enumerate(dockerfile.splitlines(), 1):
        line = raw.strip()
        if heredoc_end is not None:  # a heredoc's body: not instructions
            heredoc_end = None if line == heredoc_end else heredoc_end
            continue
        was_continued, continued = continued, line.endswith("\\")
        if not line or line.startswith("#") or was_continued:
            continue
        words = line.split()
        instruction = words[0].upper()
        for word in words[1:]:
            if not word.startswith("--"):
                break  # flags come first
            flag = word[2:].split("=", 1)[0]
            level = _FLAGS.get((instruction, flag))
            if level is not None:
                needs.append(Need(number, f"{instruction} --{flag}", level))
        heredoc = _HEREDOC.search(line) if instruction in ("RUN", "COPY", "ADD") else None
        if heredoc is not None:
            needs.append(Need(number, f"a heredoc in {instruction} ({heredoc[0]})", FRONTEND))
            heredoc_end = heredoc["word"]
    return needs
