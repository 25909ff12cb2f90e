"""Compose value shapes without an engine (:mod:`pytest_dockernet.compose.values`)."""

import re

import pytest

from pytest_dockernet.compose.values import seconds
from pytest_dockernet.errors import ComposeError


@pytest.mark.parametrize("value, expected", [("1h2m3.5s", 3723.5), ("250us", 0.00025), (2, 2.0), (1.5, 1.5)])
def test_seconds(value, expected):
    assert seconds(value, "w") == pytest.approx(expected)


@pytest.mark.parametrize("value", ["10", "1m 30s", "5 s", "", True])
def test_seconds_refuses(value):
    with pytest.raises(ComposeError, match=re.escape(f"w: {value!r} is not a duration such as '10s'")):
        seconds(value, "w")
