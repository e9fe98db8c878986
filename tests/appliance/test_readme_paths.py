"""The README's "where things are" table names only paths that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def table_paths(readme: str) -> list[str]:
    """Every `backticked` path in the second column of the "you look for | file" table."""
    start = readme.index("| you look for | file |")
    rows = []
    for line in readme[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[2])
    return [p for row in rows for p in re.findall(r"`([^`]+)`", row) if "/" in p or "." in p]


def test_every_path_in_the_where_things_are_table_exists() -> None:
    paths = table_paths((REPO / "README.md").read_text())
    assert len(paths) > 30
    missing = [p for p in paths if not (REPO / p).exists()]
    assert missing == []


def test_the_check_would_catch_a_stale_path() -> None:
    readme = (
        "| you look for | file |\n| --- | --- |\n| the pipeline | `gridwarden/edge/pipeline.py` |\n\nmore"
    )
    assert table_paths(readme) == ["gridwarden/edge/pipeline.py"]
    assert not (REPO / "gridwarden/edge/pipeline.py").exists()
