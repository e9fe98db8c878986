"""``gridwarden qr import FILE`` and ``gridwarden qr sheet OUT_DIR``: QR points from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridwarden.hub.db.engine import Database

EXIT_USAGE = 2


def _database(args: argparse.Namespace) -> Database | None:
    from gridwarden.hub.db.engine import Database
    from gridwarden.hub.users_cli import NoDatabase, find_database_url

    try:
        url, note = find_database_url(args.db)
    except NoDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if note:
        print(note, file=sys.stderr)
    return Database.open(url)


def _cmd_import(args: argparse.Namespace) -> int:
    from gridwarden.hub.reports.points import PointImportError, PointStore, parse_points

    path = Path(args.file)
    try:
        points = parse_points(path.read_text(encoding="utf-8-sig"), filename=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PointImportError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    db = _database(args)
    if db is None:
        return EXIT_USAGE
    try:
        created, updated = PointStore(db).upsert(points, replace_all=args.replace)
    finally:
        db.dispose()
    print(f"{len(points)} points: {created} new, {updated} updated")
    return 0


def _cmd_sheet(args: argparse.Namespace) -> int:
    from gridwarden.hub.reports.points import PointStore
    from gridwarden.hub.reports.qr_sheet import PointLabel, render_sheets

    db = _database(args)
    if db is None:
        return EXIT_USAGE
    try:
        points = [p for p in PointStore(db).all() if args.area is None or p.area_id == args.area]
    finally:
        db.dispose()
    if args.point:
        wanted = set(args.point)
        missing = wanted - {p.id for p in points}
        if missing:
            print(f"error: no QR point {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
        points = [p for p in points if p.id in wanted]
    if not points:
        print("error: no QR points to print (import some with 'gridwarden qr import FILE')", file=sys.stderr)
        return 1
    try:
        pages = render_sheets(
            [PointLabel(p.id, p.description) for p in points], base_url=args.base_url, per_page=args.per_page
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, page in enumerate(pages, start=1):
        (out / f"qr-sheet-{i:03d}.svg").write_text(page, encoding="utf-8")
    print(f"{len(points)} QR codes on {len(pages)} page(s) in {out}/qr-sheet-*.svg")
    return 0


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``qr`` command to the ``gridwarden`` parser's sub-commands."""
    qr = subparsers.add_parser(
        "qr",
        help="QR points residents report from: import them, print their sheets",
        description=(
            "QR points are patrol points with a posted QR code; scanning it opens the hub's public "
            "report page for that point (/r/POINT)."
        ),
    )
    qr.add_argument(
        "--db",
        help="hub database URL (default: $GRIDWARDEN_HUB_DATABASE_URL, else ./var/hub.db or the demo's)",
    )
    sub = qr.add_subparsers(dest="qr_command", metavar="SUBCOMMAND", required=True)
    imp = sub.add_parser(
        "import",
        help="add or update points from CSV (id,lat,lon,description,area_id) or GeoJSON Point features",
        description="All or nothing: a file with any bad row changes nothing, and every problem is listed.",
    )
    imp.add_argument("file", help="a .csv or .geojson file")
    imp.add_argument("--replace", action="store_true", help="also remove the points the file does not list")
    imp.set_defaults(func=_cmd_import)
    sheet = sub.add_parser(
        "sheet",
        help="write A4 SVG pages of QR codes to print and post",
        description=(
            "Each code holds BASE_URL/r/POINT, printed with the point id, a short instruction in Chinese "
            "and the URL. Open the SVG files in a browser and print at 100%%."
        ),
    )
    sheet.add_argument("out", help="folder for qr-sheet-001.svg, qr-sheet-002.svg, ...")
    sheet.add_argument(
        "--base-url", required=True, help="the hub's public address, e.g. https://report.district.gov.cn"
    )
    sheet.add_argument(
        "--per-page", type=int, default=1, choices=(1, 2, 4, 6, 8, 12), help="codes per A4 page"
    )
    sheet.add_argument("--area", help="only the points of this area")
    sheet.add_argument("--point", action="append", help="only this point (repeat for several)")
    sheet.set_defaults(func=_cmd_sheet)
