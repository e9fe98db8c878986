"""Model cards: one YAML file per model saying what it is, where it came from and under which
licence, plus the sha256 that ties the card to exactly one ONNX file.

Why cards: an edge box runs whatever ``.onnx`` it is given, and a model file says nothing about
its licence (AGPL vs Apache matters for a product), its provenance, or which preprocessing it
was trained with. The card is written once, reviewed, and ``gridwarden models check`` finds the
card of a file by its hash, so a renamed or retrained file never borrows another model's card.

Example::

    >>> card = find_card_by_sha256("e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd")
    >>> card.name, card.layout, card.num_classes
    ('yolox_nano_coco', 'yolox', 80)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridwarden.edge.analytics.detector.classes import COCO80

#: The cards shipped with Gridwarden (package data, so they travel with an installed wheel).
CARDS_DIR = Path(__file__).resolve().parent / "cards"
COCO80_KEY = "coco80"


class CardError(ValueError):
    """A card file cannot be read or does not validate; the message names the file and field."""


class ModelCard(BaseModel):
    """One model's card. Unknown keys are errors: a misspelt ``licence`` must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="short id, also the card's file stem")
    file: str = Field(description="file name the model is distributed under, e.g. yolox_nano_coco.onnx")
    family: str = Field(min_length=1, description="model family, e.g. YOLOX-Nano, YOLO11n")
    layout: Literal["ultralytics", "yolox", "yolov5"] = Field(
        description="output layout the detector decodes"
    )
    input_size: int = Field(ge=32, multiple_of=32, description="square input side in pixels")
    input_format: str = Field(default="", description="colour order, scale and padding, for humans")
    classes: Literal["coco80"] | list[str] = Field(description="'coco80' or class names in id order")
    licence: str = Field(min_length=1, description="SPDX id of the weights' licence")
    author: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the ONNX file, lower-case hex")
    source: str = Field(min_length=1, description="where the weights and the export come from")
    notes: str = ""

    @field_validator("classes")
    @classmethod
    def _unique_names(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("classes must not be empty (use 'coco80' for the COCO-80 list)")
            dupes = sorted({n for n in value if value.count(n) > 1})
            if dupes:
                raise ValueError(f"class names must be unique; repeated: {dupes}")
        return value

    @property
    def class_names(self) -> list[str]:
        return list(COCO80) if self.classes == COCO80_KEY else list(self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_card(path: str | Path) -> ModelCard:
    """Read and validate one card; errors name the file and each bad field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardError(f"{path}: cannot read card: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CardError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CardError(f"{path}: a card must be a YAML mapping, got {type(raw).__name__}")
    try:
        card = ModelCard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(card)'}: {err['msg']}" for err in exc.errors()
        )
        raise CardError(f"{path}: {problems}") from exc
    if card.name != path.stem:
        raise CardError(f"{path}: name {card.name!r} differs from the file name {path.stem!r}")
    return card


def load_cards(directory: str | Path = CARDS_DIR) -> list[ModelCard]:
    """Every ``*.yaml`` card in ``directory``, sorted by name. Raises on the first bad card: a
    broken card in the shipped set is a bug, not something to skip."""
    cards = [load_card(p) for p in sorted(Path(directory).glob("*.yaml"))]
    seen: dict[str, str] = {}
    for card in cards:
        if card.sha256 in seen:
            raise CardError(f"cards {seen[card.sha256]!r} and {card.name!r} claim the same sha256")
        seen[card.sha256] = card.name
    return cards


def find_card_by_sha256(digest: str, directory: str | Path = CARDS_DIR) -> ModelCard | None:
    """The card whose sha256 is ``digest``, or None: matching by content, never by file name."""
    digest = digest.lower()
    return next((c for c in load_cards(directory) if c.sha256 == digest), None)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (model files can be hundreds of MB)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
