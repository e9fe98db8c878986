"""``gridwarden hub export-dataset`` on a real hub: reviewed cases in, a YOLO dataset out."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from gridwarden.hub.dataset_export import (
    SKIP_NO_CHOSEN_CLASS,
    SKIP_SNAPSHOT_MISSING,
    ClassMap,
    DatasetExportError,
    export_dataset,
    main,
    parse_since,
    register_cli,
    split_for_case,
    yolo_label_lines,
)
from gridwarden.hub.serve_cli import register_hub_cli
from tests.dataset.conftest import Hub, read_labels
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

EARLY = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)  # before --since
SINCE = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
CONFIRM_AT = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
REJECT_AT = datetime(2025, 3, 11, 14, 30, tzinfo=UTC)

CAR_STARTED = (0.10, 0.20, 0.30, 0.50)
CAR_LATER = (0.40, 0.40, 0.60, 0.70)  # where an `updated` event moved the box after the snapshot


class Scenario:
    """Who is where: case ids by name, and the JPEG bytes each incident's snapshot has."""

    def __init__(self, hub: Hub, frames: list[bytes]) -> None:
        self.hub = hub
        self.jpeg: dict[str, bytes] = {}
        self.case: dict[str, int] = {}
        it = iter(frames)

        def add(name: str, zone: str, objects: list, **kw: object) -> int:
            self.jpeg[name] = next(it)
            self.case[name] = hub.incident(name, jpeg=self.jpeg[name], objects=objects, zone=zone, **kw)
            return self.case[name]

        add("inc-car", "kerb-a", [("car", CAR_STARTED)], updated_objects=[("car", CAR_LATER)])
        add("inc-two", "kerb-b", [("car", (0.5, 0.5, 0.7, 0.9)), ("truck", (0.0, 0.0, 0.2, 0.2))])
        add("inc-fp", "kerb-c", [("car", (0.3, 0.3, 0.4, 0.4))])
        add("inc-nosnap", "kerb-d", [("car", (0.6, 0.1, 0.8, 0.3))], upload=False)
        add("inc-old", "kerb-e", [("bus", (0.2, 0.2, 0.5, 0.5))])
        add("inc-pending", "kerb-f", [("car", (0.1, 0.6, 0.2, 0.8))])
        add("inc-m1", "kerb-g", [("car", (0.7, 0.6, 0.9, 0.9))])
        # The same parked car (same track) found again a minute later: merged into inc-m1's case.
        add("inc-m2", "kerb-g", [("car", (0.7, 0.6, 0.9, 0.9))], started=hub.clock.now.replace(minute=1))
        add("inc-bike", "kerb-h", [("bicycle", (0.45, 0.05, 0.55, 0.25))], track_base=50)
        assert self.case["inc-m1"] == self.case["inc-m2"]
        assert len(set(self.case.values())) == 8

        hub.decide(self.case["inc-car"], "confirmed", at=CONFIRM_AT, reason="parked on the kerb")
        hub.decide(self.case["inc-two"], "confirmed", at=CONFIRM_AT)
        hub.decide(self.case["inc-fp"], "rejected", at=REJECT_AT, actor="bob", reason="shadow, no car")
        hub.decide(self.case["inc-nosnap"], "confirmed", at=CONFIRM_AT)
        hub.decide(self.case["inc-old"], "confirmed", at=EARLY)
        hub.decide(self.case["inc-m1"], "confirmed", at=CONFIRM_AT)
        hub.decide(self.case["inc-bike"], "confirmed", at=CONFIRM_AT)
        hub.clock.now = CONFIRM_AT
        hub.cases.transition(self.case["inc-pending"], "in_review", actor="alice")
        # Later life-cycle steps do not change what the decision was.
        hub.cases.transition(self.case["inc-car"], "dispatched", actor="alice")
        hub.cases.transition(self.case["inc-fp"], "closed", actor="bob")

    def stem(self, name: str) -> str:
        return f"{self.case[name]}_{name}"


@pytest.fixture
def scenario(hub: Hub, car_frames: list[bytes]) -> Scenario:
    return Scenario(hub, car_frames)


def _export(hub: Hub, out: Path, **kw: object):  # type: ignore[no-untyped-def]
    return export_dataset(hub.db, hub.store.root, out, **{"since": SINCE, **kw})  # type: ignore[arg-type]


def _find(out: Path, kind: str, stem: str) -> Path:
    ext = "jpg" if kind == "images" else "txt"
    hits = [out / kind / split / f"{stem}.{ext}" for split in ("train", "val")]
    found = [p for p in hits if p.exists()]
    assert len(found) == 1, f"{stem}: expected in exactly one split, found {found}"
    return found[0]


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- the dataset


def test_export_writes_images_labels_yaml_and_manifest(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = _export(hub, out)

    assert report.names == ("bicycle", "car", "truck")
    assert (report.positives, report.negatives, report.exported) == (5, 1, 6)
    assert report.boxes == 6
    assert report.skipped == {SKIP_SNAPSHOT_MISSING: 1}

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": ["bicycle", "car", "truck"],
    }

    # The image is the CLEAN snapshot, byte for byte, and a real decodable frame of the clip.
    for name in ("inc-car", "inc-two", "inc-fp", "inc-m1", "inc-m2", "inc-bike"):
        image = _find(out, "images", scenario.stem(name))
        assert image.read_bytes() == scenario.jpeg[name]
        assert cv2.imread(str(image)).shape == (432, 768, 3)
        label = _find(out, "labels", scenario.stem(name))
        assert label.parent.name == image.parent.name
    for name in ("inc-nosnap", "inc-old", "inc-pending"):
        assert not list(out.rglob(f"*_{name}.*"))

    # Box math, from the event that carried the snapshot (not the later, moved box).
    car = read_labels(_find(out, "labels", scenario.stem("inc-car")))
    np.testing.assert_allclose(car, [[1, 0.2, 0.35, 0.2, 0.3]], atol=1e-6)
    two = read_labels(_find(out, "labels", scenario.stem("inc-two")))
    np.testing.assert_allclose(two, [[1, 0.6, 0.7, 0.2, 0.4], [2, 0.1, 0.1, 0.2, 0.2]], atol=1e-6)
    bike = read_labels(_find(out, "labels", scenario.stem("inc-bike")))
    np.testing.assert_allclose(bike, [[0, 0.5, 0.15, 0.1, 0.2]], atol=1e-6)

    # A rejected case is a hard negative: an EMPTY label file beside its image.
    assert _find(out, "labels", scenario.stem("inc-fp")).read_bytes() == b""

    rows = {r["incident_id"]: r for r in _manifest(out)}
    assert set(rows) == {"inc-car", "inc-two", "inc-fp", "inc-m1", "inc-m2", "inc-bike"}
    fp = rows["inc-fp"]
    assert fp["state"] == "rejected" and fp["decided_by"] == "bob" and fp["reason"] == "shadow, no car"
    assert datetime.fromisoformat(fp["decided_at"]) == REJECT_AT
    assert fp["boxes"] == "0"
    assert rows["inc-car"]["state"] == "confirmed" and rows["inc-car"]["reason"] == "parked on the kerb"
    assert datetime.fromisoformat(rows["inc-car"]["decided_at"]) == CONFIRM_AT
    for r in rows.values():
        assert int(r["case_id"]) == scenario.case[r["incident_id"]]
        assert (out / r["file"]).is_file() and r["file"].startswith(f"images/{r['split']}/")
    assert len(list(out.rglob("*.jpg"))) == len(list(out.rglob("*.txt"))) == 6


def test_since_filters_on_the_decision_time(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    everything = _export(hub, tmp_path / "all", since=EARLY)
    assert "bus" in everything.names and everything.positives == 6  # inc-old now included
    at_reject = _export(hub, tmp_path / "late", since=REJECT_AT)  # inclusive bound
    assert (at_reject.positives, at_reject.negatives) == (0, 1)
    after = _export(hub, tmp_path / "none", since=parse_since("2025-03-11T14:30:01Z"))
    assert after.exported == 0 and not list((tmp_path / "none").rglob("*.jpg"))
    assert yaml.safe_load((tmp_path / "none" / "data.yaml").read_text())["names"] == []


def test_split_is_by_case_deterministic_and_disjoint(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    first = _export(hub, tmp_path / "a", val_fraction=0.5)
    second = _export(hub, tmp_path / "b", val_fraction=0.5)
    assert first.images == second.images
    rows_a = [{k: v for k, v in r.items()} for r in _manifest(tmp_path / "a")]
    assert rows_a == _manifest(tmp_path / "b")
    by_case: dict[str, set[str]] = {}
    for r in rows_a:
        by_case.setdefault(r["case_id"], set()).add(r["split"])
        assert r["split"] == split_for_case(int(r["case_id"]), 0.5)
    assert all(len(splits) == 1 for splits in by_case.values())  # the merged case too
    train = {p.stem for p in (tmp_path / "a" / "images" / "train").iterdir()}
    val = {p.stem for p in (tmp_path / "a" / "images" / "val").iterdir()}
    assert not train & val and len(train | val) == 6

    splits = [split_for_case(i, 0.2) for i in range(1, 4001)]
    assert 0.17 < splits.count("val") / len(splits) < 0.23
    assert splits == [split_for_case(i, 0.2) for i in range(1, 4001)]
    assert all(split_for_case(i, 0.0) == "train" for i in range(1, 200))
    # Raising the fraction only moves cases from train to val, never the other way.
    assert all(split_for_case(i, 0.3) == "val" for i in range(1, 4001) if splits[i - 1] == "val")


def test_non_empty_output_is_refused_unless_overwrite(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DatasetExportError, match="not empty"):
        _export(hub, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written

    _export(hub, out, overwrite=True)
    stale = out / "images" / "train" / "999_stale.jpg"
    stale.write_bytes(b"old")
    report = _export(hub, out, overwrite=True, classes="car")
    assert not stale.exists()  # the old dataset was replaced, not mixed with the new one
    assert (out / "notes.txt").read_text() == "mine"  # what the export does not own stays
    assert len(list(out.rglob("*.jpg"))) == report.exported
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_dry_run_counts_and_writes_nothing(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = _export(hub, out, dry_run=True)
    assert (report.positives, report.negatives, report.skipped[SKIP_SNAPSHOT_MISSING]) == (5, 1, 1)
    assert not out.exists()


def test_classes_restrict_and_remap(scenario: Scenario, hub: Hub, tmp_path: Path) -> None:
    grouped = _export(hub, tmp_path / "g", classes="vehicle")
    assert grouped.names == ("vehicle",)
    two = read_labels(_find(tmp_path / "g", "labels", scenario.stem("inc-two")))
    assert two[:, 0].tolist() == [0, 0]
    assert (grouped.positives, grouped.negatives) == (5, 1)

    only_cars = _export(hub, tmp_path / "c", classes="car")
    assert only_cars.names == ("car",)
    assert read_labels(_find(tmp_path / "c", "labels", scenario.stem("inc-two"))).shape == (1, 5)
    assert only_cars.skipped == {SKIP_SNAPSHOT_MISSING: 1, SKIP_NO_CHOSEN_CLASS: 1}  # the bicycle
    assert not list((tmp_path / "c").rglob("*inc-bike*"))

    explicit = _export(hub, tmp_path / "e", classes="big=truck, small=car+bicycle")
    assert explicit.names == ("big", "small")
    np.testing.assert_array_equal(
        read_labels(_find(tmp_path / "e", "labels", scenario.stem("inc-two")))[:, 0], [1, 0]
    )

    # A person model: no positives, and the rejected car is not a negative for it either.
    people = _export(hub, tmp_path / "p", classes="person")
    assert (people.exported, people.skipped[SKIP_NO_CHOSEN_CLASS]) == (0, 6)

    for bad, named in (
        ("carr", "'carr'"),
        ("x=car+plane", "'plane'"),
        ("car,vehicle", "'car'"),
        ("", "empty"),
    ):
        with pytest.raises(DatasetExportError, match=named):
            _export(hub, tmp_path / "bad", classes=bad)
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- pure pieces


def test_yolo_label_lines_box_math() -> None:
    lines = yolo_label_lines(
        [[0.1, 0.2, 0.3, 0.6], [0.9, 0.9, 0.7, 0.5], [-0.1, 0.5, 0.3, 1.2], [0.4, 0.4, 0.4, 0.5]],
        [0, 3, 1, 2],
    )
    assert lines == [
        "0 0.200000 0.400000 0.200000 0.400000",
        "3 0.800000 0.700000 0.200000 0.400000",  # corners given swapped
        "1 0.150000 0.750000 0.300000 0.500000",  # clipped to the image
    ]  # the zero-width box is dropped
    assert yolo_label_lines([], []) == []


def test_parse_since() -> None:
    assert parse_since("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("2025-03-01T10:00:00+02:00") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert parse_since("2025-03-01T10:00:00Z") == datetime(2025, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(DatasetExportError, match="'yesterday' is not an ISO date"):
        parse_since("yesterday")


def test_class_map_from_data_is_sorted_and_normalised() -> None:
    cm = ClassMap.from_data(["truck", "car", "Car", "cell phone"])
    assert cm.names == ("car", "cell_phone", "truck")
    assert cm.class_id("cell_phone") == cm.class_id("Cell Phone") == 1
    assert cm.class_id("bus") is None


# --------------------------------------------------------------------------- command line


def _cli(*args: str) -> list[str]:
    return [*args, "--no-progress"]


def test_cli_exports_and_reports(
    scenario: Scenario, hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    argv = _cli(str(out), "--since", "2025-03-10", "--db", hub.url, "--evidence-dir", str(hub.store.root))
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "exported 6 images (5 positives with 6 boxes, 1 hard negatives)" in printed
    assert "skipped 1: snapshot missing" in printed
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == ["bicycle", "car", "truck"]

    assert main(argv) == 2  # OUT is not empty now
    assert "is not empty" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--classes", "vehicle", "--val-fraction", "0.5"]) == 0
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == ["vehicle"]

    dry = tmp_path / "dry"
    assert (
        main(
            _cli(
                str(dry),
                "--since",
                "2025-03-10",
                "--db",
                hub.url,
                "--evidence-dir",
                str(hub.store.root),
                "--dry-run",
            )
        )
        == 0
    )
    assert "would export 6 images" in capsys.readouterr().out and not dry.exists()


def test_cli_errors_name_what_is_wrong(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = str(hub.store.root)
    out = str(tmp_path / "ds")
    cases = [
        (["--since", "03/10/2025", "--db", hub.url, "--evidence-dir", ev], "'03/10/2025' is not an ISO date"),
        (["--since", "2025-03-10", "--db", f"sqlite:///{tmp_path}/nope.db", "--evidence-dir", ev], "nope.db"),
        (
            [
                "--since",
                "2025-03-10",
                "--db",
                f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/hub",
                "--evidence-dir",
                ev,
            ],
            "cannot reach the hub database at postgresql+psycopg://postgres@127.0.0.1",
        ),
        (
            ["--since", "2025-03-10", "--db", hub.url, "--evidence-dir", str(tmp_path / "noev")],
            "noev does not exist",
        ),
        (
            ["--since", "2025-03-10", "--db", hub.url, "--evidence-dir", ev, "--classes", "lorry"],
            "unknown class 'lorry'",
        ),
        (
            ["--since", "2025-03-10", "--db", hub.url, "--evidence-dir", ev, "--val-fraction", "1.5"],
            "--val-fraction",
        ),
    ]
    for args, message in cases:
        assert main(_cli(out, *args)) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (args, err)
    assert not (tmp_path / "nope.db").exists()  # never created by a failed export
    assert not Path(out).exists()

    not_hub = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(not_hub).close()
    assert main(_cli(out, "--since", "2025-03-10", "--db", f"sqlite:///{not_hub}", "--evidence-dir", ev)) == 2
    assert "is not a hub database" in capsys.readouterr().err


def test_register_cli_adds_export_dataset_under_hub() -> None:
    parser = argparse.ArgumentParser(prog="gridwarden")
    sub = parser.add_subparsers(dest="command", required=True)
    register_hub_cli(sub)
    register_cli(sub)
    args = parser.parse_args(["hub", "export-dataset", "out", "--since", "2025-03-01", "--dry-run"])
    assert args.hub_command == "export-dataset" and args.dry_run and args.out == "out"
    assert parser.parse_args(["hub", "serve"]).hub_command == "serve"  # the existing command still works


def test_module_entry_point_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gridwarden.hub.dataset_export", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert proc.returncode == 0 and "--val-fraction" in proc.stdout and "--classes" in proc.stdout
