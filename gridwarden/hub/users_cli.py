"""``gridwarden users create|list|revoke|rotate|set-password``: manage who may call the hub's API.

``create`` and ``rotate`` print the token once, on stdout alone (so ``TOKEN=$(gridwarden users
create ...)`` works); a note goes to stderr. The hub keeps only the token's hash, so a lost
token cannot be shown again: rotate it.

The database is ``--db URL`` (before or after the sub-command) or ``GRIDWARDEN_HUB_DATABASE_URL``;
without either, an existing ``./var/hub.db`` or the demo's database. The command always says on
stderr which database it opened (unless named with ``--db``), and never creates one by guess. It
is migrated first, so the command works on a fresh install before the hub ever ran (name it with
``--db``).

``set-password NAME`` sets the password for the review console. The password is read from a
prompt (asked twice) or, when stdin is not a terminal, from the first line of stdin -- never from
the command line, where every local user could read it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the real imports happen when a command runs, to keep `gridwarden --help` fast
    from gridwarden.hub.auth import UserStore

EXIT_USAGE = 2
# The values of gridwarden.hub.auth.Role, repeated so that building the parser imports no database code.
ROLE_NAMES = ("staff", "integrator", "admin", "edge", "officer")


class NoDatabase(Exception):
    """No ``--db``, no ``GRIDWARDEN_HUB_DATABASE_URL`` and no hub database where one is usual."""


def demo_database_path() -> Path:
    """Where ``gridwarden demo`` keeps its hub database by default."""
    return Path(tempfile.gettempdir()) / "gridwarden-demo" / "hub.db"


def find_database_url(db: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(database URL, a note saying where it was found or ``None`` when it was given).

    Without ``--db`` or the environment variable, an existing ``./var/hub.db`` (the hub's default)
    or else the demo's database is used, and the command says which. Nothing is created by guess:
    a new file in the working directory would be a database no hub reads.
    """
    env = os.environ if environ is None else environ
    if db:
        return db, None
    if env.get("GRIDWARDEN_HUB_DATABASE_URL"):
        return env["GRIDWARDEN_HUB_DATABASE_URL"], None
    for candidate in (Path("var") / "hub.db", demo_database_path()):
        if candidate.is_file():
            return (
                f"sqlite:///{candidate.resolve()}",
                f"using the hub database {candidate.resolve()} (--db to choose another)",
            )
    raise NoDatabase(
        f"no hub database found (looked for ./var/hub.db and the demo's {demo_database_path()}); "
        "give --db URL (e.g. --db sqlite:///var/hub.db to create one here) or set GRIDWARDEN_HUB_DATABASE_URL"
    )


def _open(args: argparse.Namespace) -> UserStore:
    from sqlalchemy.engine import make_url

    from gridwarden.hub.auth import UserStore
    from gridwarden.hub.db.engine import Database

    url, note = find_database_url(args.db)
    if note:
        print(note, file=sys.stderr)
    elif not args.db:
        shown = make_url(url).render_as_string(hide_password=True)
        print(f"using the hub database {shown} (from $GRIDWARDEN_HUB_DATABASE_URL)", file=sys.stderr)
    return UserStore(Database.open(url))


def _run(args: argparse.Namespace, action: Callable[[UserStore], int]) -> int:
    from gridwarden.hub.auth import UserError

    try:
        store = _open(args)
    except NoDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(action(store))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.db.dispose()


def _cmd_create(args: argparse.Namespace) -> int:
    def action(store: UserStore) -> int:
        info, token = store.create(args.name, args.role)
        print(token, flush=True)
        print(
            f"created {info.role.value} user {info.username!r}; this token is shown only once",
            file=sys.stderr,
        )
        return 0

    return _run(args, action)


def _cmd_rotate(args: argparse.Namespace) -> int:
    def action(store: UserStore) -> int:
        info, token = store.rotate(args.name)
        print(token, flush=True)
        print(f"new token for {info.username!r}; the previous one no longer works", file=sys.stderr)
        return 0

    return _run(args, action)


def _cmd_revoke(args: argparse.Namespace) -> int:
    def action(store: UserStore) -> int:
        info = store.revoke(args.name)
        print(f"revoked the token of {info.username!r}")
        return 0

    return _run(args, action)


def read_password(stdin: TextIO | None = None) -> str:
    """The new password: from a prompt (twice) on a terminal, else the first line of stdin."""
    stream = stdin or sys.stdin
    if stream.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("repeat it: ") != first:
            raise ValueError("the two passwords differ")
        return first
    line = stream.readline()
    if not line:
        raise ValueError("no password on stdin")
    return line.rstrip("\r\n")


def _cmd_set_password(args: argparse.Namespace) -> int:
    try:
        password = read_password()
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"error: {exc or 'cancelled'}", file=sys.stderr)
        return EXIT_USAGE

    def action(store: UserStore) -> int:
        info = store.set_password(args.name, password)
        print(f"password set for {info.username!r}; earlier console sessions have ended", file=sys.stderr)
        return 0

    return _run(args, action)


def _cmd_list(args: argparse.Namespace) -> int:
    def action(store: UserStore) -> int:
        users = store.list()
        width = max([len("NAME"), *(len(u.username) for u in users)])
        print(f"{'NAME':<{width}}  {'ROLE':<10}  {'TOKEN':<7}  CREATED")
        for u in users:
            state = "active" if u.active else "revoked"
            print(
                f"{u.username:<{width}}  {u.role.value:<10}  {state:<7}  {u.created_at.isoformat(timespec='seconds')}"
            )
        return 0

    return _run(args, action)


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``users`` command to the ``gridwarden`` parser's sub-commands."""
    users = subparsers.add_parser(
        "users",
        help="manage hub API users and their tokens",
        description=(
            "Create users with a role (staff, integrator, admin) and bearer tokens for the hub's API. "
            "A token is printed once, alone on stdout; the hub stores only its hash."
        ),
    )
    db_help = (
        "hub database URL, before or after the sub-command (default: $GRIDWARDEN_HUB_DATABASE_URL, "
        "else an existing ./var/hub.db or the demo's database)"
    )
    users.add_argument("--db", help=db_help)
    sub = users.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)

    create = sub.add_parser("create", help="create a user and print its token (once)")
    create.add_argument("name", help="user name (letters, digits, _ . @ -)")
    create.add_argument("--role", required=True, choices=ROLE_NAMES, help="what the user may do")
    create.set_defaults(func=_cmd_create)

    lst = sub.add_parser("list", help="list users, their roles and whether their token is active")
    lst.set_defaults(func=_cmd_list)

    revoke = sub.add_parser("revoke", help="revoke a user's token at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=_cmd_revoke)

    rotate = sub.add_parser("rotate", help="issue a new token for a user (the old one stops working)")
    rotate.add_argument("name")
    rotate.set_defaults(func=_cmd_rotate)

    set_password = sub.add_parser(
        "set-password",
        help="set a user's review-console password (prompted, or the first line of stdin)",
        description=(
            "Set the password a user logs in to the review console with. It is asked for twice on a "
            "terminal, or read from the first line of stdin; never pass it as an argument. Setting it "
            "ends the user's existing console sessions."
        ),
    )
    set_password.add_argument("name")
    set_password.set_defaults(func=_cmd_set_password)
    for command in (create, lst, revoke, rotate, set_password):
        # SUPPRESS: given here it sets args.db; absent, it leaves a --db given before the command.
        command.add_argument("--db", default=argparse.SUPPRESS, help=db_help)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gridwarden.hub.users_cli ...`` — the same as ``gridwarden users ...``."""
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["users", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
