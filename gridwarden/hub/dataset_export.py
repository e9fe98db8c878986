"""``gridwarden hub export-dataset``: reviewed cases out as a YOLO dataset for fine-tuning.

Operators' decisions are labels nobody had to draw: a *confirmed* case says "the model saw the
right thing here", a *rejected* one "it did not". This module turns them into the layout
ultralytics trains on::

    OUT/images/{train,val}/<case>_<incident>.jpg   the CLEAN snapshot (never the annotated one:
    OUT/labels/{train,val}/<case>_<incident>.txt    drawn boxes would teach the model to find boxes)
    OUT/data.yaml                                   path, train, val, names (a list, index order)
    OUT/manifest.csv                                who decided what, when and why, per image

Why these choices:

* **Positives** (confirmed) get one ``cls cx cy w h`` line per object, normalised. The boxes come
  from the very event that carried the snapshot (kept in ``received_events``), not from the
  incident's folded state, which later ``updated`` events overwrite with newer positions: a box
  must describe the pixels it is stored with.
* **Hard negatives** (rejected) get an EMPTY label file: that is how YOLO marks a background
  image. Caveat for whoever curates: an operator may reject a real car for a non-visual reason
  (a permit); with ``--classes`` only rejected cases of the chosen classes are exported.
* **Split by case, by hash**: ``sha256(case id)`` decides train or val, so a re-run puts every
  image where it was before, and the incidents of one case (one parked car seen twice) never
  straddle the split, which would leak near-identical frames from train into val.
* **Only cases whose clean snapshot is in the evidence store** are exported (retention may have
  pruned it); the others are counted and reported, never silently dropped.
* **Nothing half-written**: the dataset is built in a hidden sibling folder and moved into OUT at
  the end, so a crash leaves OUT as it was.

Class names: without ``--classes`` the names are the sorted class names of the exported
positives. ``--classes`` restricts and remaps, comma-separated, in the order of the ids:
``car,truck`` keeps two classes; ``vehicle`` (a class group of the edge, see
:data:`gridwarden.edge.analytics.detector.classes.DEFAULT_CLASS_GROUPS`) maps all its members to ONE class
named ``vehicle``; ``parked=car+truck`` maps explicitly. Objects of other classes are left out.

Importing this module is cheap (no database or image code) so registering the sub-command does
not slow ``gridwarden --help``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridwarden.hub.db.engine import Database

DECISIONS = ("confirmed", "rejected")
SPLITS = ("train", "val")
DEFAULT_VAL_FRACTION = 0.2
EVIDENCE_ROOT_ENV = "GRIDWARDEN_HUB_EVIDENCE_ROOT"
DEFAULT_EVIDENCE_ROOT = "var/evidence"
EXIT_USAGE = 2
MANIFEST_COLUMNS = (
    "case_id",
    "incident_id",
    "state",
    "decided_by",
    "decided_at",
    "reason",
    "split",
    "file",
    "boxes",
)
# What the export writes into OUT; ``--overwrite`` replaces exactly these and nothing else.
OUTPUT_ENTRIES = ("images", "labels", "data.yaml", "manifest.csv")

SKIP_SNAPSHOT_MISSING = "snapshot missing"
SKIP_NO_CHOSEN_CLASS = "no object of the chosen classes"
_QUERY_CHUNK = 500


class DatasetExportError(ValueError):
    """Bad input to the export (date, classes, output folder, database); the message says which."""


# --------------------------------------------------------------------------- small pure pieces


def parse_since(text: str) -> datetime:
    """``2025-03-01`` (midnight UTC) or an ISO datetime; a time without zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DatasetExportError(
            f"--since {text!r} is not an ISO date or datetime (e.g. 2025-03-01 or 2025-03-01T08:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def split_for_case(case_id: int, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for a case, from a hash of its id: stable across runs and machines
    (Python's ``hash`` is salted per process, so it would not be)."""
    digest = hashlib.sha256(f"gridwarden-case:{case_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if position < val_fraction else "train"


def yolo_label_lines(boxes_xyxy: Any, class_ids: Any) -> list[str]:
    """YOLO label lines ``cls cx cy w h`` from normalised ``x1 y1 x2 y2`` boxes, one array op for all.

    Boxes are clipped to the image; boxes with no area after clipping are dropped (ultralytics
    would reject the whole label file for a zero-size box).
    """
    import numpy as np

    xyxy = np.clip(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4), 0.0, 1.0)
    ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    x1 = np.minimum(xyxy[:, 0], xyxy[:, 2])
    x2 = np.maximum(xyxy[:, 0], xyxy[:, 2])
    y1 = np.minimum(xyxy[:, 1], xyxy[:, 3])
    y2 = np.maximum(xyxy[:, 1], xyxy[:, 3])
    cxcywh = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)
    keep = (cxcywh[:, 2] > 0) & (cxcywh[:, 3] > 0)
    return [
        f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
        for c, (cx, cy, w, h) in zip(ids[keep].tolist(), cxcywh[keep].tolist(), strict=True)
    ]


def _norm(name: str) -> str:
    """Class names are compared the way the edge compares them: case-insensitive, ``_`` == space."""
    return name.strip().lower().replace(" ", "_")


@dataclass(frozen=True)
class ClassMap:
    """Dataset class names (index = YOLO class id) and which source class names feed each id."""

    names: tuple[str, ...]
    source_to_id: Mapping[str, int]  # normalised source class name -> id
    restricted: bool  # built from --classes (so objects of other classes are left out)

    def class_id(self, source_name: str) -> int | None:
        return self.source_to_id.get(_norm(source_name))

    @classmethod
    def from_data(cls, seen: Iterable[str]) -> ClassMap:
        """Every class name seen in the positives, sorted, each its own class."""
        names = tuple(sorted({_norm(n) for n in seen}))
        return cls(names, {n: i for i, n in enumerate(names)}, restricted=False)

    @classmethod
    def parse(
        cls, spec: str, *, known: Iterable[str], groups: Mapping[str, Sequence[str]] | None = None
    ) -> ClassMap:
        """Parse ``--classes`` (see the module docstring). ``known`` is every class name that is
        valid as a source (the model's and the data's); anything else is an error naming it."""
        if groups is None:
            from gridwarden.edge.analytics.detector.classes import DEFAULT_CLASS_GROUPS

            groups = DEFAULT_CLASS_GROUPS
        known_set = {_norm(k) for k in known}
        norm_groups = {_norm(g): [_norm(m) for m in members] for g, members in groups.items()}
        items = [item.strip() for item in spec.split(",") if item.strip()]
        if not items:
            raise DatasetExportError("--classes is empty; give names like car,truck or vehicle")
        names: list[str] = []
        source_to_id: dict[str, int] = {}
        for item in items:
            target, sep, members_text = item.partition("=")
            target = _norm(target)
            if not target:
                raise DatasetExportError(f"--classes item {item!r} has no class name before '='")
            if sep:
                members = [_norm(m) for m in members_text.split("+") if m.strip()]
                if not members:
                    raise DatasetExportError(f"--classes item {item!r} maps no class (use name=a+b)")
            elif target in known_set:
                members = [target]
            elif target in norm_groups:
                members = norm_groups[target]
            else:
                raise DatasetExportError(_unknown_class_message(target, known_set, norm_groups))
            for member in members:
                if member not in known_set and not (sep and member in norm_groups):
                    raise DatasetExportError(_unknown_class_message(member, known_set, norm_groups))
            expanded = [
                m for member in members for m in (norm_groups.get(member, [member]) if sep else [member])
            ]
            if target in names:
                raise DatasetExportError(f"--classes names {target!r} twice")
            class_id = len(names)
            names.append(target)
            for member in expanded:
                if member in source_to_id and source_to_id[member] != class_id:
                    raise DatasetExportError(
                        f"--classes maps {member!r} to both {names[source_to_id[member]]!r} and {target!r}"
                    )
                source_to_id[member] = class_id
        return cls(tuple(names), source_to_id, restricted=True)


def _unknown_class_message(name: str, known: set[str], groups: Mapping[str, Any]) -> str:
    return (
        f"unknown class {name!r} in --classes; known classes: {', '.join(sorted(known))}; "
        f"class groups: {', '.join(sorted(groups))}"
    )


# --------------------------------------------------------------------------- reading the hub


@dataclass
class ReviewedImage:
    """One candidate image: an incident of a reviewed case, with the decision behind its label."""

    case_id: int
    incident_id: str
    decision: str  # confirmed | rejected
    decided_by: str
    decided_at: datetime
    reason: str | None
    snapshot_shas: list[str]  # clean snapshots of the incident, in arrival order
    objects: list[dict[str, Any]]  # the incident's folded objects (fallback for the boxes)
    snapshot_sha: str | None = None  # the one exported (first one present in the store)
    split: str = "train"

    @property
    def stem(self) -> str:
        return f"{self.case_id}_{self.incident_id}"


def load_reviewed_images(db: Database, since: datetime) -> list[ReviewedImage]:
    """Every incident of every case confirmed or rejected at/after ``since``, case by case."""
    from sqlalchemy import select

    from gridwarden.hub.db.models import CaseHistory, CaseIncident, Incident

    stmt = (
        select(
            CaseHistory.id,
            CaseHistory.case_id,
            CaseHistory.to_state,
            CaseHistory.actor,
            CaseHistory.at,
            CaseHistory.reason,
            Incident.incident_id,
            Incident.objects,
            Incident.evidence,
        )
        .join(CaseIncident, CaseIncident.case_id == CaseHistory.case_id)
        .join(Incident, Incident.incident_id == CaseIncident.incident_id)
        .where(CaseHistory.to_state.in_(DECISIONS), CaseHistory.at >= since)
        .order_by(CaseHistory.case_id, CaseIncident.id, CaseHistory.id)
    )
    by_key: dict[tuple[int, str], ReviewedImage] = {}
    with db.session() as session:
        for _hid, case_id, to_state, actor, at, reason, incident_id, objects, evidence in session.execute(
            stmt
        ):
            # The life cycle allows one decision per case; should history hold two, the later wins.
            by_key[(case_id, incident_id)] = ReviewedImage(
                case_id=case_id,
                incident_id=incident_id,
                decision=to_state,
                decided_by=actor,
                decided_at=at,
                reason=reason,
                snapshot_shas=[e["sha256"] for e in evidence or [] if e.get("kind") == "snapshot"],
                objects=list(objects or []),
            )
    return list(by_key.values())


def load_snapshot_objects(db: Database, images: Sequence[ReviewedImage]) -> dict[tuple[str, str], list[dict]]:
    """``(incident_id, snapshot sha) -> objects`` of the event that carried that snapshot."""
    from sqlalchemy import select

    from gridwarden.hub.db.models import ReceivedEvent

    wanted = {(im.incident_id, im.snapshot_sha) for im in images if im.snapshot_sha}
    incident_ids = sorted({i for i, _ in wanted})
    found: dict[tuple[str, str], list[dict]] = {}
    with db.session() as session:
        for start in range(0, len(incident_ids), _QUERY_CHUNK):
            chunk = incident_ids[start : start + _QUERY_CHUNK]
            stmt = (
                select(ReceivedEvent.incident_id, ReceivedEvent.payload)
                .where(ReceivedEvent.incident_id.in_(chunk))
                .order_by(ReceivedEvent.incident_id, ReceivedEvent.seq)
            )
            for incident_id, payload in session.execute(stmt):
                objects = payload.get("objects") or []
                for ref in payload.get("evidence") or []:
                    key = (incident_id, ref.get("sha256"))
                    if ref.get("kind") == "snapshot" and key in wanted and key not in found and objects:
                        found[key] = objects
    return found


def check_database(db: Database) -> None:
    """Fail with a clear message when the database cannot be reached or has no hub schema."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    where = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as conn:
            has_tables = all(inspect(conn).has_table(t) for t in ("cases", "case_history", "incidents"))
    except DBAPIError as exc:
        detail = (str(exc.orig or exc).strip().splitlines() or ["no detail"])[0]
        raise DatasetExportError(f"cannot reach the hub database at {where}: {detail}") from None
    if not has_tables:
        raise DatasetExportError(f"{where} is not a hub database (no cases tables); is --db right?")


# --------------------------------------------------------------------------- the export


@dataclass
class ExportReport:
    """What an export wrote (or, dry, would write) and what it left out, with why."""

    out: Path
    names: tuple[str, ...]
    dry_run: bool
    images: Counter[str] = field(default_factory=Counter)  # per split
    positives: int = 0
    negatives: int = 0
    boxes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # per reason

    @property
    def exported(self) -> int:
        return sum(self.images.values())

    def summary_lines(self) -> list[str]:
        verb = "would export" if self.dry_run else "exported"
        lines = [
            f"{verb} {self.exported} images ({self.positives} positives with {self.boxes} boxes, "
            f"{self.negatives} hard negatives): train {self.images['train']}, val {self.images['val']}"
            + ("" if self.dry_run else f" -> {self.out}"),
            f"classes: {', '.join(f'{i}={n}' for i, n in enumerate(self.names)) or '(none)'}",
        ]
        lines += [f"skipped {n}: {reason}" for reason, n in sorted(self.skipped.items())]
        return lines


def _check_out(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetExportError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DatasetExportError(f"output folder {out} is not empty; choose another or pass --overwrite")


def export_dataset(
    db: Database,
    evidence_root: Path,
    out: Path,
    *,
    since: datetime,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    classes: str | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> ExportReport:
    """Write the cases reviewed at/after ``since`` as a YOLO dataset in ``out``; return the counts.

    Raises :class:`DatasetExportError` for bad input, before anything is written.
    """
    from gridwarden.hub.evidence_store import SHA256_RE

    if since.tzinfo is None:
        raise DatasetExportError("since must be timezone-aware (use parse_since)")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetExportError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    evidence_root = Path(evidence_root)
    if not evidence_root.is_dir():
        raise DatasetExportError(f"evidence folder {evidence_root} does not exist; is --evidence-dir right?")
    out = Path(out).resolve()
    if not dry_run:
        _check_out(out, overwrite=overwrite)
    check_database(db)

    images = load_reviewed_images(db, since)
    class_map = _class_map(images, classes)
    report = ExportReport(out=out, names=class_map.names, dry_run=dry_run)

    # Which images can be exported: a clean snapshot in the store (the first present one).
    selected: list[ReviewedImage] = []
    for im in images:
        im.snapshot_sha = next(
            (
                s
                for s in im.snapshot_shas
                if SHA256_RE.fullmatch(s) and _store_path(evidence_root, s).is_file()
            ),
            None,
        )
        if im.snapshot_sha is None:
            report.skipped[SKIP_SNAPSHOT_MISSING] += 1
            continue
        im.split = split_for_case(im.case_id, val_fraction)
        selected.append(im)

    event_objects = load_snapshot_objects(db, selected)
    planned: list[tuple[ReviewedImage, list[str]]] = []
    for im in selected:
        assert im.snapshot_sha is not None
        objects = event_objects.get((im.incident_id, im.snapshot_sha), im.objects)
        labels = _labels(objects, class_map)
        if im.decision == "confirmed":
            if not labels:
                report.skipped[SKIP_NO_CHOSEN_CLASS] += 1
                continue
            report.positives += 1
            report.boxes += len(labels)
        else:
            if class_map.restricted and not any(
                class_map.class_id(o["class_name"]) is not None for o in objects
            ):
                report.skipped[SKIP_NO_CHOSEN_CLASS] += 1
                continue
            labels = []  # a hard negative: an empty label file marks a background image
            report.negatives += 1
        report.images[im.split] += 1
        planned.append((im, labels))

    if not dry_run:
        _write(out, evidence_root, planned, class_map.names, overwrite=overwrite, progress=progress)
    return report


def _class_map(images: Sequence[ReviewedImage], classes: str | None) -> ClassMap:
    """The class list: from ``--classes``, else every class the confirmed cases show. Known
    names for ``--classes`` are the COCO-80 labels plus whatever the reviewed incidents carry
    (a custom model's classes arrive through the data)."""
    if classes is None:
        return ClassMap.from_data(
            o["class_name"] for im in images if im.decision == "confirmed" for o in im.objects
        )
    from gridwarden.edge.analytics.detector.classes import COCO80

    seen = {o["class_name"] for im in images for o in im.objects}
    return ClassMap.parse(classes, known=[*COCO80, *seen])


def _labels(objects: Sequence[dict[str, Any]], class_map: ClassMap) -> list[str]:
    ids = [class_map.class_id(o["class_name"]) for o in objects]
    keep = [i for i, c in enumerate(ids) if c is not None]
    boxes = [[objects[i]["box"][k] for k in ("x1", "y1", "x2", "y2")] for i in keep]
    return yolo_label_lines(boxes, [ids[i] for i in keep])


def _store_path(root: Path, sha256: str) -> Path:
    # The evidence store's layout (EvidenceStore.path_for) without constructing a store, which
    # would create folders: an export only reads evidence.
    return root / sha256[:2] / sha256[2:4] / sha256


def _write(
    out: Path,
    evidence_root: Path,
    planned: Sequence[tuple[ReviewedImage, list[str]]],
    names: Sequence[str],
    *,
    overwrite: bool,
    progress: bool,
) -> None:
    """Build the dataset in a hidden sibling folder, then move it into ``out`` (see module doc)."""
    import yaml
    from tqdm import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        for kind in ("images", "labels"):
            for split in SPLITS:
                (staging / kind / split).mkdir(parents=True)
        rows = []
        for im, labels in tqdm(
            planned, desc="export-dataset", unit="img", file=sys.stderr, disable=None if progress else True
        ):
            assert im.snapshot_sha is not None
            image_rel = Path("images") / im.split / f"{im.stem}.jpg"
            shutil.copyfile(_store_path(evidence_root, im.snapshot_sha), staging / image_rel)
            label_text = "".join(f"{line}\n" for line in labels)
            (staging / "labels" / im.split / f"{im.stem}.txt").write_text(label_text)
            rows.append(
                {
                    "case_id": im.case_id,
                    "incident_id": im.incident_id,
                    "state": im.decision,
                    "decided_by": im.decided_by,
                    "decided_at": im.decided_at.isoformat(),
                    "reason": im.reason or "",
                    "split": im.split,
                    "file": image_rel.as_posix(),
                    "boxes": len(labels),
                }
            )
        with open(staging / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        data = {"path": str(out), "train": "images/train", "val": "images/val", "names": list(names)}
        (staging / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        out.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for entry in OUTPUT_ENTRIES:
                target = out / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
        for entry in OUTPUT_ENTRIES:
            os.replace(staging / entry, out / entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- command line


def _cmd_export(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from gridwarden.hub.db.engine import Database
    from gridwarden.hub.settings import HubSettings

    try:
        since = parse_since(args.since)
        url = args.db or HubSettings.from_env().database_url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DatasetExportError(f"--db {url!r} is not a database URL") from None
        if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
            # Opening it would create an empty database; an export never wants that.
            raise DatasetExportError(f"hub database file {parsed.database!r} does not exist; is --db right?")
        evidence_root = Path(args.evidence_dir or os.environ.get(EVIDENCE_ROOT_ENV) or DEFAULT_EVIDENCE_ROOT)
        try:
            db = Database(url)
        except ValueError as exc:
            raise DatasetExportError(str(exc)) from None
        try:
            report = export_dataset(
                db,
                evidence_root,
                Path(args.out),
                since=since,
                val_fraction=args.val_fraction,
                classes=args.classes,
                dry_run=args.dry_run,
                overwrite=args.overwrite,
                progress=not args.no_progress,
            )
        except DBAPIError as exc:
            where = db.engine.url.render_as_string(hide_password=True)
            raise DatasetExportError(
                f"reading the hub database at {where} failed: {exc.orig or exc}"
            ) from None
        finally:
            db.dispose()
    except DatasetExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.summary_lines():
        print(line)
    return 0


def add_export_dataset_parser(hub_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export-dataset`` to the ``hub`` command's sub-commands (call from ``register_hub_cli``)."""
    p = hub_subparsers.add_parser(
        "export-dataset",
        help="write reviewed cases as a YOLO dataset (confirmed: labelled, rejected: background)",
        description=(
            "Export the cases confirmed or rejected at/after --since as an ultralytics YOLO dataset in OUT: "
            "images/{train,val}, labels/{train,val}, data.yaml and manifest.csv. Confirmed cases give the "
            "clean snapshot with its boxes, rejected cases the snapshot with an empty label file (a hard "
            "negative). The split is decided per case by a hash of its id, so re-runs are stable. Cases "
            "whose snapshot is no longer in the evidence store are skipped and counted."
        ),
    )
    p.add_argument("out", metavar="OUT", help="output folder (must be empty unless --overwrite)")
    p.add_argument(
        "--since",
        required=True,
        metavar="DATE",
        help="decisions made at/after this ISO date or datetime (no zone = UTC), e.g. 2025-03-01",
    )
    p.add_argument(
        "--db", help="hub database URL (default: $GRIDWARDEN_HUB_DATABASE_URL or sqlite:///var/hub.db)"
    )
    p.add_argument(
        "--evidence-dir",
        help=f"the hub's evidence store folder (default: ${EVIDENCE_ROOT_ENV} or {DEFAULT_EVIDENCE_ROOT})",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help=f"share of cases in the val split (default {DEFAULT_VAL_FRACTION})",
    )
    p.add_argument(
        "--classes",
        help="restrict/remap classes, in id order: 'car,truck', a group 'vehicle' (one class), 'parked=car+truck'",
    )
    p.add_argument("--dry-run", action="store_true", help="print the counts only; write nothing")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_export)


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export-dataset`` under the ``hub`` command already registered on ``subparsers``
    (for wiring from ``gridwarden.cli`` after ``register_hub_cli``, without editing it)."""
    hub = subparsers.choices.get("hub")
    if hub is None:
        raise RuntimeError("register the hub command (register_hub_cli) before export-dataset")
    hub_sub = next(a for a in hub._actions if isinstance(a, argparse._SubParsersAction))
    add_export_dataset_parser(hub_sub)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gridwarden.hub.dataset_export ...`` — the same as ``gridwarden hub export-dataset ...``."""
    parser = argparse.ArgumentParser(prog="gridwarden")
    sub = parser.add_subparsers(dest="command", required=True)
    hub = sub.add_parser("hub")
    add_export_dataset_parser(hub.add_subparsers(dest="hub_command", required=True))
    args = parser.parse_args(["hub", "export-dataset", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
