"""Model cards: the shipped ones validate, their sha256 matches the shared files, and their facts
agree with what the detector reads from those files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwarden.edge.analytics.detector import Detector
from gridwarden.models.cards import (
    CARDS_DIR,
    CardError,
    find_card_by_sha256,
    load_card,
    load_cards,
    sha256_file,
)
from tests.support.paths import SHARED

CARD_FILES = sorted(CARDS_DIR.glob("*.yaml"))


def test_the_two_required_cards_ship() -> None:
    assert {c.name for c in load_cards()} == {"yolox_nano_coco", "yolo11n"}


@pytest.mark.parametrize("path", CARD_FILES, ids=[p.stem for p in CARD_FILES])
def test_card_validates_and_matches_its_shared_file(path: Path) -> None:
    card = load_card(path)
    model = SHARED / "models" / card.file
    assert model.is_file(), f"{card.file} is missing from {SHARED / 'models'}"
    assert sha256_file(model) == card.sha256
    detector = Detector(model)
    assert detector.layout == card.layout
    assert detector.input_size == (card.input_size, card.input_size)
    assert detector.class_names == card.class_names


def test_licences_are_the_known_ones() -> None:
    cards = {c.name: c for c in load_cards()}
    assert (cards["yolox_nano_coco"].licence, cards["yolox_nano_coco"].author) == ("Apache-2.0", "Megvii")
    assert (cards["yolo11n"].licence, cards["yolo11n"].author) == ("AGPL-3.0", "Ultralytics")


def test_find_by_sha256_matches_content_not_name() -> None:
    assert find_card_by_sha256("0" * 64) is None
    card = find_card_by_sha256(load_card(CARDS_DIR / "yolo11n.yaml").sha256.upper())
    assert card is not None and card.name == "yolo11n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _valid_text(**changes: str) -> str:
    fields = {
        "name": "demo", "file": "demo.onnx", "family": "YOLOX-Nano", "layout": "yolox", "input_size": "416",
        "classes": "coco80", "licence": "Apache-2.0", "author": "Megvii", "sha256": "a" * 64,
        "source": "somewhere",
    }  # fmt: skip
    fields.update(changes)
    return "\n".join(f"{k}: {v}" for k, v in fields.items())


def test_a_valid_custom_card_loads(tmp_path: Path) -> None:
    card = load_card(_write(tmp_path, "demo", _valid_text(classes="[car, van]")))
    assert card.class_names == ["car", "van"] and card.num_classes == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"licence_typo": "MIT"}, "licence_typo"),
        ({"sha256": "xyz"}, "sha256"),
        ({"layout": "detr"}, "layout"),
        ({"input_size": "415"}, "input_size"),
        ({"classes": "[car, car]"}, "repeated"),
        ({"classes": "[]"}, "classes"),
        ({"name": "other"}, "differs from the file name"),
    ],
)
def test_invalid_cards_name_the_field(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    path = _write(tmp_path, "demo", _valid_text(**changes))
    with pytest.raises(CardError, match=message) as info:
        load_card(path)
    assert str(path) in str(info.value)


def test_a_card_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="mapping"):
        load_card(_write(tmp_path, "demo", "- just\n- a list\n"))
