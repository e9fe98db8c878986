"""Class names, groups and labels files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwarden.edge.analytics.detector.classes import (
    COCO80,
    DEFAULT_CLASS_GROUPS,
    FINE_TUNED_NAMES,
    are_placeholder_names,
    load_labels_file,
    parse_metadata_names,
    resolve_classes,
)


def test_coco80_is_the_standard_order() -> None:
    assert len(COCO80) == 80 == len(set(COCO80))
    assert (COCO80[0], COCO80[2], COCO80[5], COCO80[7], COCO80[67], COCO80[79]) == (
        "person", "car", "bus", "truck", "cell phone", "toothbrush",
    )  # fmt: skip


def test_every_default_group_member_is_a_coco_name() -> None:
    for group, members in DEFAULT_CLASS_GROUPS.items():
        assert set(members) <= set(COCO80) | FINE_TUNED_NAMES, group


def test_non_motor_group_takes_coco_two_wheelers_and_fine_tuned_e_bikes() -> None:
    assert resolve_classes(["non_motor"], COCO80) == {1, 3}  # COCO has no e-bike class
    fine_tuned = ["car", "e_bike", "Tricycle", "bicycle", "person"]
    assert resolve_classes(["non_motor"], fine_tuned) == {1, 2, 3}
    assert resolve_classes(["non_motor"], ["E-Bike"]) == {0}


def test_groups_and_labels_resolve_to_ids() -> None:
    assert resolve_classes(["vehicle"], COCO80) == {1, 2, 3, 5, 7}
    assert resolve_classes(["two_wheeler", "person"], COCO80) == {0, 1, 3}
    assert resolve_classes(["cell_phone", "Car"], COCO80) == {67, 2}
    assert {24, 26, 28} <= resolve_classes(["goods"], COCO80)  # backpack, handbag, suitcase


def test_any_means_all_classes() -> None:
    assert resolve_classes(["car", "any"], COCO80) is None


def test_unknown_name_suggests_the_closest_or_lists_valid_names_once() -> None:
    with pytest.raises(ValueError, match="unknown class or group 'vehicel'") as err:
        resolve_classes(["vehicel"], COCO80)
    assert str(err.value).startswith("unknown class or group 'vehicel'; did you mean 'vehicle'")
    with pytest.raises(ValueError, match="unknown class or group 'zeppelin'") as err:
        resolve_classes(["zeppelin"], COCO80)
    listed = str(err.value).split("valid names are: ")[1].split(", ")
    assert "vehicle" in listed and "toothbrush" in listed
    assert len(listed) == len(set(listed)), "a name listed twice (person is a group and a class)"


def test_group_members_unknown_to_a_custom_model_are_skipped() -> None:
    assert resolve_classes(["vehicle"], ["car", "person"]) == {0}
    assert resolve_classes(["parked"], ["car"], groups={"parked": ["car", "van"]}) == {0}
    with pytest.raises(ValueError):
        resolve_classes(["vehicle"], ["car"], groups={"parked": ["car"]})


def test_metadata_names_parse_as_literal_not_code() -> None:
    assert parse_metadata_names("{0: 'person', 1: 'car'}") == ["person", "car"]
    assert parse_metadata_names("{1: 'car', 0: 'person'}") == ["person", "car"]
    assert parse_metadata_names("['a', 'b']") == ["a", "b"]
    with pytest.raises(ValueError):
        parse_metadata_names("__import__('os').system('true')")
    with pytest.raises(ValueError, match="0..N-1"):
        parse_metadata_names("{0: 'a', 2: 'b'}")


def test_placeholder_names_are_recognised() -> None:
    assert are_placeholder_names([str(i) for i in range(80)])
    assert not are_placeholder_names(["person", "1"])


def test_labels_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("car\nvan\n\n")
    assert load_labels_file(path) == ["car", "van"]
    path.write_text("car\n\nvan\n")
    with pytest.raises(ValueError, match="blank line at line 2"):
        load_labels_file(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_labels_file(tmp_path / "missing.txt")
