"""`--help` texts are for the person running the command: no reStructuredText markup, no notes
meant for the code's readers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT


@pytest.mark.parametrize("command", [["demo"], ["users"], ["config", "check"], ["edge", "replay"]])
def test_help_has_no_markup(command: list[str]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", *command, "--help"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for markup in ("``", ":mod:", ":class:", ":func:", "Why "):
        assert markup not in res.stdout, (markup, res.stdout)
