"""The runnable examples in the lookers' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gridwarden.edge.analytics.gate",
    "gridwarden.edge.analytics.camera_motion",
    "gridwarden.edge.analytics.rules.static_objects",
    "gridwarden.edge.capture.synthetic_scene",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
