"""``gridwarden areas import FILE | list``: load patrol beats and estate grids from GeoJSON.

The database is found as for ``gridwarden users`` (``--db``, ``GRIDWARDEN_HUB_DATABASE_URL``, an
existing ``./var/hub.db`` or the demo's). A bad file is refused whole, with the feature index
and field that is wrong; nothing is half-imported.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridwarden.hub.places.areas import AreaStore

EXIT_USAGE = 2


def _store(args: argparse.Namespace) -> AreaStore:
    from gridwarden.hub.db.engine import Database
    from gridwarden.hub.places.areas import AreaStore
    from gridwarden.hub.users_cli import find_database_url

    url, note = find_database_url(args.db)
    if note:
        print(note, file=sys.stderr)
    return AreaStore(Database.open(url))


def _cmd_import(args: argparse.Namespace) -> int:
    from gridwarden.hub.places.areas import AreaError, load_geojson_file
    from gridwarden.hub.users_cli import NoDatabase

    try:
        areas = load_geojson_file(args.file)
    except (AreaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = _store(args)
    except NoDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        created, replaced = store.import_areas(areas)
    finally:
        store.db.dispose()
    print(f"{args.file}: {created} areas created, {replaced} replaced")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from gridwarden.hub.users_cli import NoDatabase

    try:
        store = _store(args)
    except NoDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        for a in store.list_areas():
            print(f"{a.id}\t{a.kind}\t{a.name}")
    finally:
        store.db.dispose()
    return 0


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    areas = subparsers.add_parser(
        "areas",
        help="patrol beats and estate grids (GeoJSON polygons) that cases and officers belong to",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    areas.add_argument("--db", help="hub database URL (default: as for 'gridwarden users')")
    sub = areas.add_subparsers(dest="areas_command", metavar="SUBCOMMAND", required=True)
    imp = sub.add_parser(
        "import",
        help="add or replace areas from a GeoJSON FeatureCollection",
        description="Each feature: a Polygon or MultiPolygon in [lon, lat], an id (feature id or "
        "properties.id), optional properties.name and properties.kind (beat or grid).",
    )
    imp.add_argument("file", help="a .geojson file")
    imp.set_defaults(func=_cmd_import)
    lst = sub.add_parser("list", help="list the areas (id, kind, name)")
    lst.set_defaults(func=_cmd_list)
