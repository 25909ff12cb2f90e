"""Every exception the package raises of its own: one place to find what to catch; and how
any exception is told in one line."""

from __future__ import annotations


class DockernetError(Exception):
    """Something the engine did or refused that the caller could not have checked up front."""


class DriverUnavailable(DockernetError):
    """The engine (or this release of pytest-dockernet) cannot make networks of a driver."""


class ProbeFailed(DockernetError):
    """A probe could not give an answer to trust (a tool is missing, the exec or the sidecar
    failed, ping or DNS does not work in the source): a negative helper raises this rather
    than pass on it."""


class EngineUnavailable(DockernetError):
    """No Docker engine answers at an address (the message names it and the reason)."""


class ImageUnavailable(Exception):
    """Neither the probe image nor a static busybox to build one from is at hand."""


class LabError(Exception):
    """The lab could not be brought up, taken down or changed; the message says why."""


class ComposeError(ValueError):
    """A Compose file that ``compose()`` cannot bring up as written: the message names the
    file, the service, network or volume, and the key."""


def one_line(exc: BaseException) -> str:
    """``exc`` in one line, for a summary or a report: the engine's own words (an API
    error's ``explanation``) where it has them, else its message's first line, else its class."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
