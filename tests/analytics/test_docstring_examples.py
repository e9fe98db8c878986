"""The runnable examples in the analytics modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gridwarden.edge.tracking",
    "gridwarden.edge.zones",
    "gridwarden.edge.rules.schedule",
    "gridwarden.edge.rules.parking",
    "gridwarden.edge.rules.occupancy",
    "gridwarden.edge.rules.scene",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
