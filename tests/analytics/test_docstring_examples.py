"""The runnable examples in the analytics modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gridwarden.edge.analytics.tracking",
    "gridwarden.edge.analytics.zones",
    "gridwarden.edge.analytics.rules.schedule",
    "gridwarden.edge.analytics.rules.parking",
    "gridwarden.edge.analytics.rules.occupancy",
    "gridwarden.edge.analytics.rules.scene",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
