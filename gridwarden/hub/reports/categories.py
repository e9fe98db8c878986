"""City event categories (数字城管): the urban-management event code every case carries.

The city's case systems sort street-order events by code: 0505 motor vehicles parked illegally,
0506 non-motor vehicles parked illegally, 0504 business outside the shop, 0507 materials piled on
the street. A camera case gets its code from its rule and detected classes through a table the
district may replace (``GRIDWARDEN_HUB_CATEGORY_TABLE=categories.yaml``); a resident picks the
category on the report page, from the same table.

The table is an ordered list; the first entry whose ``rules`` (empty: any rule) contains the
case's rule and whose ``classes_any`` (empty: any classes) shares a class with it wins. No match:
:data:`OTHER`.

>>> table = default_table()
>>> table.classify("illegal_parking", ["car"]), table.classify("illegal_parking", ["bicycle"])
('0505', '0506')
>>> table.classify("occupied_space", ["person"]), table.classify("static_object", ["object"])
('0504', '0507')
>>> table.classify("illegal_parking", ["dog"])
'other'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

OTHER = "other"
CODE_PATTERN = r"^([0-9]{4,8}|other)$"


class CategoryEntry(BaseModel):
    """One category: its code, its names and which camera cases fall under it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=CODE_PATTERN, description="The city's event code, e.g. 0505, or 'other'.")
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=64)
    rules: tuple[str, ...] = Field(default=(), description="Rules this entry matches; empty: any.")
    classes_any: tuple[str, ...] = Field(
        default=(), description="Classes, any one of which matches; empty: any."
    )
    # Whether residents may choose it on the report page (a camera-only code may be hidden).
    resident: bool = True

    def matches(self, rule: str, classes: Sequence[str]) -> bool:
        if self.rules and rule not in self.rules:
            return False
        return not self.classes_any or bool(set(self.classes_any) & set(classes))


class CategoryTable(BaseModel):
    """The ordered table; ``classify`` maps a camera case, ``names`` label codes for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: tuple[CategoryEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique_with_other(self) -> CategoryTable:
        codes = [c.code for c in self.categories]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"category codes must be unique; repeated: {', '.join(dupes)}")
        if OTHER not in codes:
            raise ValueError("the table needs an entry with code 'other' (the fallback)")
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    def entry(self, code: str) -> CategoryEntry | None:
        return next((c for c in self.categories if c.code == code), None)

    def classify(self, rule: str, classes: Sequence[str]) -> str:
        """The code of the first entry matching a camera case's rule and classes."""
        for entry in self.categories:
            if entry.code != OTHER and entry.matches(rule, classes):
                return entry.code
        return OTHER

    def resident_choices(self) -> tuple[CategoryEntry, ...]:
        return tuple(c for c in self.categories if c.resident)


_DEFAULT = CategoryTable(
    categories=(
        CategoryEntry(
            code="0505", name_zh="机动车乱停放", name_en="Motor vehicle parked illegally",
            rules=("illegal_parking",), classes_any=("car", "bus", "truck"),
        ),
        CategoryEntry(
            code="0506", name_zh="非机动车乱停放", name_en="Non-motor vehicle parked illegally",
            rules=("illegal_parking",), classes_any=("bicycle", "motorcycle", "e-bike", "tricycle"),
        ),
        CategoryEntry(
            code="0504", name_zh="店外经营", name_en="Business outside the shop", rules=("occupied_space",),
        ),
        CategoryEntry(
            code="0507", name_zh="道路堆积物", name_en="Materials piled on the street", rules=("static_object",),
        ),
        CategoryEntry(code=OTHER, name_zh="其他", name_en="Other"),
    )
)  # fmt: skip


def default_table() -> CategoryTable:
    """The built-in table (the four street-order codes above plus ``other``)."""
    return _DEFAULT


class CategoryTableError(ValueError):
    """A category table file that cannot be used; the message names the file and field."""


def load_table(path: Path | str) -> CategoryTable:
    """Read a YAML table (``categories: [{code, name_zh, name_en, rules, classes_any}, ...]``)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CategoryTableError(f"{path}: cannot read the category table: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CategoryTableError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return CategoryTable.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise CategoryTableError(f"{path}: {problems}") from exc


_active: CategoryTable = _DEFAULT


def use_table(table: CategoryTable) -> None:
    """Make ``table`` the one this process classifies new cases with (the hub calls it at start:
    ingest and API run in one process and must agree)."""
    global _active
    _active = table


def active_table() -> CategoryTable:
    return _active
