"""docs/architecture.md names a module for every step, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_path_in_the_architecture_page_exists() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    paths = {p for p in re.findall(r"`([^`\s]+)`", text) if "/" in p and not p.startswith("/api")}
    assert len(paths) > 30
    assert sorted(p for p in paths if not (REPO / p).exists()) == []


def test_every_step_row_names_a_module() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| \d+\. ", line)]
    assert len(rows) >= 20
    assert all("`gridwarden/" in row.split("|")[3] for row in rows)
