"""``gridwarden broker set-password|remove|show``: the broker's users and rights, in one file.

Mosquitto's classic ``acl_file`` checks rights only when it *delivers* a message, never when a
client *subscribes* (Mosquitto 2.0: every SUBSCRIBE is granted). With shared subscriptions that
is a hole: an edge that subscribes to ``$share/hub/gridwarden/v1/+/+/incidents`` joins the hubs'
group, the broker hands it its round-robin share of every edge's incidents, the read check then
drops them, and the hubs never see them. Mosquitto's dynamic-security plugin (shipped with the
Debian package) checks SUBSCRIBE too, so the broker refuses that subscription outright (MQTT 5:
SUBACK reason 135 *Not authorized*; MQTT 3.1.1: SUBACK 0x80 *Failure*).

The plugin in Mosquitto 2.0 has no ``%u`` substitution, so each edge gets its own role whose
topics name its edge id literally; this module writes that JSON document (salted PBKDF2-SHA512
password hashes, as the plugin stores them), so no running broker or admin account is needed.
The rights are:

* an edge (user name == its ``edge_id``) publishes only ``gridwarden/v1/<any site>/<edge_id>/``
  ``incidents``, ``status`` and ``cameras/<camera>/status``, and subscribes to and receives only
  its own ``config``, ``snapshot_request`` and ``replay`` topics;
* the user ``hub`` subscribes to (also through ``$share/<group>/``) and receives everything
  under ``gridwarden/v1/``, and publishes only ``config``, ``snapshot_request`` and ``replay``;
* an officer (``set-password NAME --officer``; NAME is the officer's hub user name) publishes
  only its own OwnTracks topics ``owntracks/<NAME>/<device>``, and nothing else;
* everything else is refused (the document's default access denies publish, receive and
  subscribe).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from gridwarden.contract import TOPIC_ROOT

HUB_USER = "hub"
PBKDF2_ITERATIONS = 101  # what mosquitto_ctrl writes; the plugin reads the count from the file
SALT_BYTES = 12
# The contract's Identifier: no '+', '#' or '/' can reach a topic filter through a user name.
_EDGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The hub's user names (auth.USERNAME_PATTERN): no '+', '#' or '/' either.
_OFFICER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
OWNTRACKS_ROOT = "owntracks"
EXIT_USAGE = 2


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def edge_role(edge_id: str) -> dict[str, Any]:
    """The role of one edge: its own topics under any site, nothing else."""
    if not _EDGE_ID.match(edge_id) or edge_id == HUB_USER:
        raise ValueError(f"{edge_id!r} is not a valid edge id (letters, digits, '_', '.', '-'; not 'hub')")
    base = f"{TOPIC_ROOT}/+/{edge_id}"
    acls = [
        _acl("publishClientSend", f"{base}/{leaf}") for leaf in ("incidents", "status", "cameras/+/status")
    ]
    for leaf in ("config", "snapshot_request", "replay"):
        acls += [_acl("subscribePattern", f"{base}/{leaf}"), _acl("publishClientReceive", f"{base}/{leaf}")]
    return {"rolename": f"edge:{edge_id}", "acls": acls}


def officer_role(username: str) -> dict[str, Any]:
    """An officer's phone: publish its own OwnTracks location topics, nothing else."""
    if not _OFFICER.match(username) or username == HUB_USER:
        raise ValueError(f"{username!r} is not a valid officer user name")
    return {
        "rolename": f"officer:{username}",
        "acls": [_acl("publishClientSend", f"{OWNTRACKS_ROOT}/{username}/+")],
    }


def hub_role() -> dict[str, Any]:
    """The hub reads everything (plain or shared subscription) and writes the edges' command topics."""
    everything = f"{TOPIC_ROOT}/#"
    acls = [
        _acl("subscribePattern", everything),
        _acl("subscribePattern", f"$share/+/{everything}"),
        _acl("publishClientReceive", everything),
        # Officers' positions (OwnTracks), split between hub processes like the incidents.
        _acl("subscribePattern", f"{OWNTRACKS_ROOT}/+/+"),
        _acl("subscribePattern", f"$share/+/{OWNTRACKS_ROOT}/+/+"),
        _acl("publishClientReceive", f"{OWNTRACKS_ROOT}/#"),
    ]
    acls += [
        _acl("publishClientSend", f"{TOPIC_ROOT}/+/+/{leaf}")
        for leaf in ("config", "snapshot_request", "replay")
    ]
    return {"rolename": "hub", "acls": acls}


def role_for(username: str, *, officer: bool = False) -> dict[str, Any]:
    if officer:
        return officer_role(username)
    return hub_role() if username == HUB_USER else edge_role(username)


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's stored form: base64 PBKDF2-HMAC-SHA512 of the password with a random salt."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
    }


def empty_document() -> dict[str, Any]:
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [],
        "groups": [],
        "roles": [],
    }


def set_password(doc: dict[str, Any], username: str, password: str, *, officer: bool = False) -> None:
    """Create or update ``username`` with its role (``hub``, an edge id, or an officer)."""
    if not password:
        raise ValueError("empty password")
    role = role_for(username, officer=officer)
    doc["roles"] = [r for r in doc["roles"] if r["rolename"] != role["rolename"]] + [role]
    client = {"username": username, "roles": [{"rolename": role["rolename"]}], **hash_password(password)}
    doc["clients"] = [c for c in doc["clients"] if c["username"] != username] + [client]


def remove(doc: dict[str, Any], username: str) -> bool:
    before = len(doc["clients"])
    rolenames = {r["rolename"] for c in doc["clients"] if c["username"] == username for r in c["roles"]}
    doc["clients"] = [c for c in doc["clients"] if c["username"] != username]
    doc["roles"] = [r for r in doc["roles"] if r["rolename"] not in rolenames]
    return len(doc["clients"]) < before


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return empty_document()
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def save(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically; readable by the broker's group only (it holds password hashes)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def write_document(path: Path, passwords: dict[str, str], officers: dict[str, str] | None = None) -> None:
    """A whole document for ``passwords`` (user -> password) and ``officers`` (officer user ->
    password): for tests and scripted installs."""
    doc = empty_document()
    for user, password in passwords.items():
        set_password(doc, user, password)
    for user, password in (officers or {}).items():
        set_password(doc, user, password, officer=True)
    save(path, doc)


def _read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("broker password: ")
        if first != getpass.getpass("again: "):
            raise ValueError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def _cmd_set_password(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        doc = load(path)
        set_password(doc, args.name, _read_password(sys.stdin), officer=args.officer)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    save(path, doc)
    print(f"{path}: user {args.name!r} set; restart the broker to apply", file=sys.stderr)
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    path = Path(args.file)
    doc = load(path)
    if not remove(doc, args.name):
        print(f"error: {path} has no user {args.name!r}", file=sys.stderr)
        return EXIT_USAGE
    save(path, doc)
    print(f"{path}: user {args.name!r} removed; restart the broker to apply", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    for client in load(Path(args.file))["clients"]:
        print(client["username"], ",".join(r["rolename"] for r in client["roles"]))
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    broker = sub.add_parser(
        "broker",
        help="manage the MQTT broker's users and their rights (Mosquitto dynamic-security file)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    broker_sub = broker.add_subparsers(dest="broker_command", metavar="SUBCOMMAND", required=True)
    file_help = "the plugin's JSON file (plugin_opt_config_file in mosquitto.conf); created when missing"
    sp = broker_sub.add_parser(
        "set-password",
        help="add a user (an edge id, or 'hub') or change its password; read from a prompt or stdin",
    )
    sp.add_argument("name", help="the edge's edge_id, 'hub', or an officer's user name with --officer")
    sp.add_argument(
        "--officer",
        action="store_true",
        help="an officer's phone: may publish only owntracks/NAME/<device> (OwnTracks positions)",
    )
    sp.add_argument("--file", required=True, help=file_help)
    sp.set_defaults(func=_cmd_set_password)
    rm = broker_sub.add_parser("remove", help="remove a user and its rights")
    rm.add_argument("name")
    rm.add_argument("--file", required=True, help=file_help)
    rm.set_defaults(func=_cmd_remove)
    sh = broker_sub.add_parser("show", help="list the users and their roles")
    sh.add_argument("--file", required=True, help=file_help)
    sh.set_defaults(func=_cmd_show)
