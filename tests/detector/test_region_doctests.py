"""The runnable examples in the region-inference docstrings stay true."""

from __future__ import annotations

import doctest

from gridwarden.edge.analytics.detector import regions


def test_region_planning_examples() -> None:
    result = doctest.testmod(regions, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
