"""Every ``models`` sub-command explains itself, and ``cards`` lists and validates."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gridwarden.models.cli import main, register_cli


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], "SUBCOMMAND"),
        (["check"], "execution providers"),
        (["export"], "never downloads"),
        (["quantize"], "IoU >= 0.5"),
        (["cards"], "validate"),
    ],
)
def test_help(command: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", *command, "--help"])
    assert info.value.code == 0
    assert expected.lower() in " ".join(capsys.readouterr().out.split()).lower()


def test_register_cli_plugs_into_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", "cards"])
    assert callable(args.func)


def test_cards_lists_the_shipped_cards(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "cards"]) == 0
    out = capsys.readouterr().out
    assert "yolox_nano_coco: YOLOX-Nano (Megvii, Apache-2.0)" in out
    assert "yolo11n: YOLO11n (Ultralytics, AGPL-3.0)" in out


def test_cards_validates_given_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfamily: x\n", encoding="utf-8")
    assert main(["models", "cards", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "sha256" in err
