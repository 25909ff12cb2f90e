"""Variables in a Compose file, as Compose substitutes them: ``${VAR}``, ``$VAR``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``,
``${VAR:+other}``, ``${VAR+other}`` and ``$$`` for a literal ``$``; defaults may hold
variables themselves. Values come from ``env=`` first, then the process environment, then
the project's ``.env`` file (:func:`read_env_file`, also used for ``env_file:``).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, cast

from ..errors import ComposeError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A value is an environment variable or a key of the file: a megabyte is far past any real
# one, and stops a chain of variables each repeating the one before ("billion laughs").
MAX_VALUE = 1 << 20
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")


class Variables:
    """A chain of mappings looked up in order; remembers the names that were missing."""

    def __init__(self, layers: Iterable[Mapping[str, str]]):
        self.layers = list(layers)
        self.missing: set[str] = set()

    def get(self, name: str) -> str | None:
        for layer in self.layers:
            if name in layer:
                return layer[name]
        return None


def interpolate(value: Any, variables: Variables, where: str, path: str = "") -> Any:
    """``value`` (a parsed YAML tree) with every string's variables substituted; mapping keys
    are left as they are, as Compose leaves them. Messages name ``where`` (the file) and the
    key path below ``path`` (``services.web.ports[0]``)."""
    if isinstance(value, str):
        return substitute(value, variables, f"{where}: {path}" if path else where)
    if isinstance(value, Mapping):
        return {
            key: interpolate(item, variables, where, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [interpolate(item, variables, where, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def substitute(text: str, variables: Variables, where: str, shown: str | None = None) -> str:
    """One string with its variables substituted (see the module's docstring). Messages
    quote ``text``, or say ``shown`` instead (for a value that may be a secret)."""
    result, _ = _scan(text, 0, variables, where, False, repr(text) if shown is None else shown)
    return result


def _scan(text: str, i: int, variables: Variables, where: str, closing: bool, shown: str) -> tuple[str, int]:
    """Substitute from ``i``; with ``closing``, stop at the ``}`` that ends a default."""
    out: list[str] = []
    size = 0  # of the values put in: variables that hold variables multiply
    while i < len(text):
        char = text[i]
        if closing and char == "}":
            return "".join(out), i
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            value, i = _braced(text, i + 2, variables, where, shown)
            out.append(value)
            size += len(value)
        else:
            match = _NAME.match(text, i + 1)
            if match is None:  # a lone "$" stays, as Compose leaves it
                out.append("$")
                i += 1
                continue
            out.append(_value(match.group(), variables, where))
            size += len(out[-1])
            i = match.end()
        if size > MAX_VALUE:
            raise ComposeError(
                f"{where}: {shown} comes to more than {MAX_VALUE:,} characters with its variables substituted: "
                "variables that repeat other variables multiply"
            )
    if closing:
        raise ComposeError(f"{where}: {shown} has a '${{' without its closing '}}'")
    return "".join(out), i


def _braced(text: str, i: int, variables: Variables, where: str, shown: str) -> tuple[str, int]:
    match = _NAME.match(text, i)
    if match is None:
        raise ComposeError(f"{where}: {shown} has an invalid variable name after '${{' (write '$$' for a '$')")
    name, i = match.group(), match.end()
    if text[i : i + 1] == "}":
        return _value(name, variables, where), i + 1
    for operator in (":-", ":?", ":+", "-", "?", "+"):
        if text.startswith(operator, i):
            break
    else:
        raise ComposeError(
            f"{where}: {shown}: '${{{name}' must be followed by '}}' or one of :- - :? ? :+ + (then '}}')"
        )
    argument, end = _scan(text, i + len(operator), variables, where, True, shown)
    value = variables.get(name)
    unset = value is None or (operator.startswith(":") and value == "")
    kind = operator[-1]
    if kind == "-":
        return (argument if unset else cast(str, value)), end + 1
    if kind == "+":
        return ("" if unset else argument), end + 1
    if unset:  # "?": the file's own message
        said = "unset" if value is None else "empty"
        raise ComposeError(f"{where}: variable {name} is {said}: {argument or 'it is required'}")
    return cast(str, value), end + 1  # set: an unset one raised above


def _value(name: str, variables: Variables, where: str) -> str:
    value = variables.get(name)
    if value is None:
        if name not in variables.missing:
            variables.missing.add(name)
            warnings.warn(
                f"{where}: variable {name} is not set (env=, the environment, .env): it is replaced by an "
                f"empty string, as Compose does; give a default with ${{{name}:-default}}",
                UserWarning,
                stacklevel=2,
            )
        return ""
    return value


def read_env_file(path: str | os.PathLike[str], variables: Variables | None = None) -> dict[str, str]:
    """``KEY=VALUE`` lines as Compose reads ``.env`` and ``env_file:`` files: ``#`` comments,
    ``export`` prefixes, single quotes (literal), double quotes (with ``\\n`` escapes and
    variables), unquoted values (trailing `` #`` comments cut, variables substituted). A
    variable refers to ``variables`` or to a line above."""
    result: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except UnicodeDecodeError as exc:
        raise ComposeError(
            f"{path}: not a text file in UTF-8 (byte {exc.start}): an env file has KEY=VALUE lines"
        ) from None
    except OSError as exc:
        raise ComposeError(f"{path}: cannot be read: {exc.strerror}") from None
    chain = Variables([result, *(variables.layers if variables else [])])
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            if _NAME.fullmatch(line.strip()):  # a bare name: taken from the environment
                value = chain.get(line.strip())
                if value is not None:
                    result[line.strip()] = value
                continue
            raise ComposeError(
                f"{path}, line {number}: not a KEY=VALUE line (the line is not shown here: an env file may hold "
                "secrets); is it an env file?"
            )
        key, raw = match.groups()
        result[key] = _env_value(raw.strip(), chain, f"{path}, line {number}")
    return result


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _env_value(raw: str, variables: Variables, where: str) -> str:
    if raw[:1] == "'" and raw.find("'", 1) > 0:  # literal, up to the first closing quote
        return raw[1 : raw.find("'", 1)]
    quoted = _DOUBLE_QUOTED.match(raw)
    if quoted:
        inner = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), quoted.group(1))
        return substitute(inner, variables, where, "the value")
    comment = re.search(r"\s#", raw)
    if comment:
        raw = raw[: comment.start()].rstrip()
    return substitute(raw, variables, where, "the value")
