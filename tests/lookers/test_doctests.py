"""The runnable examples in the lookers' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gridwarden.edge.gate",
    "gridwarden.edge.camera_motion",
    "gridwarden.edge.rules.static_objects",
    "gridwarden.edge.synthetic_scene",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
