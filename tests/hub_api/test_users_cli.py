"""``gridwarden users create|list|revoke|rotate`` against a real database (both backends)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.users_cli import ROLE_NAMES, main, register_cli


def run(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--db", db_url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_token_once_and_it_authenticates(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    code, out, err = run(capsys, db_url, "create", "alice", "--role", "staff")
    assert code == 0
    token = out.strip()
    assert token.startswith("gw_") and "\n" not in token
    assert "shown only once" in err
    db = Database(db_url)
    try:
        principal = UserStore(db).authenticate(token)
        assert principal is not None and (principal.username, principal.role) == ("alice", Role.STAFF)

        code, out, _ = run(capsys, db_url, "create", "bob", "--role", "admin")
        assert code == 0
        code, out, _ = run(capsys, db_url, "list")
        rows = [line.split() for line in out.strip().splitlines()]
        assert rows[0] == ["NAME", "ROLE", "TOKEN", "CREATED"]
        assert [r[:3] for r in rows[1:]] == [["alice", "staff", "active"], ["bob", "admin", "active"]]
        assert token not in out

        code, out, _ = run(capsys, db_url, "revoke", "alice")
        assert code == 0 and "alice" in out
        assert UserStore(db).authenticate(token) is None
        _, out, _ = run(capsys, db_url, "list")
        assert out.strip().splitlines()[1].split()[:3] == ["alice", "staff", "revoked"]

        code, out, _ = run(capsys, db_url, "rotate", "alice")
        assert code == 0
        assert UserStore(db).authenticate(out.strip()) is not None
    finally:
        db.dispose()


def test_errors_are_reported_not_raised(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    assert run(capsys, db_url, "create", "alice", "--role", "staff")[0] == 0
    code, out, err = run(capsys, db_url, "create", "alice", "--role", "admin")
    assert (code, out) == (2, "") and "already exists" in err
    code, _, err = run(capsys, db_url, "revoke", "nobody")
    assert code == 2 and "no user named 'nobody'" in err
    code, _, err = run(capsys, db_url, "create", "bad name", "--role", "staff")
    assert code == 2 and "invalid user name" in err
    with pytest.raises(SystemExit) as exc:
        main(["--db", db_url, "create", "carol", "--role", "root"])
    assert exc.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_register_cli_adds_users_to_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["users", "--db", "sqlite:///x.db", "create", "dan", "--role", "integrator"])
    assert (args.command, args.users_command, args.name, args.role, args.db) == (
        "users", "create", "dan", "integrator", "sqlite:///x.db",
    )  # fmt: skip
    assert tuple(r.value for r in Role) == ROLE_NAMES


def test_db_may_follow_the_subcommand(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    code = main(["create", "erin", "--role", "staff", "--db", db_url])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("gw_"), err
    assert main(["list", "--db", db_url]) == 0
    assert "erin" in capsys.readouterr().out


def test_a_database_from_the_environment_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDWARDEN_HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["list"]) == 0
    err = capsys.readouterr().err
    assert f"using the hub database sqlite:///{tmp_path / 'env.db'}" in err
    assert "(from $GRIDWARDEN_HUB_DATABASE_URL)" in err


def test_without_db_it_finds_the_demos_database_and_never_creates_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridwarden.hub import users_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRIDWARDEN_HUB_DATABASE_URL", raising=False)
    demo_db = tmp_path / "demo" / "hub.db"
    monkeypatch.setattr(users_cli, "demo_database_path", lambda: demo_db)
    # Nothing to find: a clear error, and no var/ folder appears in the working directory.
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "no hub database found" in err and "--db" in err and str(demo_db) in err
    assert not (tmp_path / "var").exists()
    # The demo's database exists: it is used, and the command says so.
    demo_db.parent.mkdir()
    assert main(["--db", f"sqlite:///{demo_db}", "create", "erin", "--role", "staff"]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "erin" in out and f"using the hub database {demo_db}" in err
    assert not (tmp_path / "var").exists()
