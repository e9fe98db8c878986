"""The systemd units: accepted by systemd-analyze, hardened, and calling real CLI commands.

Why the units are copied and their ExecStart rewritten before ``systemd-analyze verify``: verify
fails a unit whose ExecStart binary does not exist, and /opt/gridwarden/.venv/bin/gridwarden only
exists on an installed appliance. The copy points ExecStart at ``true`` and changes nothing else.
``verify`` exits 0 even for unknown directives or unparsable values (it only warns), so the
tests also require its output to be free of warnings about our files.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from gridwarden.cli import build_parser
from gridwarden.hub.settings import ENV_PREFIX, HubSettings
from gridwarden.observability.http import LISTEN_ENV, listen_address
from tests.support.paths import REPO_ROOT

SYSTEMD_DIR = REPO_ROOT / "systemd"
UNITS = ("gridwarden-edge.service", "gridwarden-hub.service")
INSTALLED_BINARY = "/opt/gridwarden/.venv/bin/gridwarden"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value given (systemd allows a key many times)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a KEY=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= given {len(values)} times: {values}"
    return values[0]


def staged_units(tmp_path: Path) -> Path:
    """Copies of systemd/ whose ExecStart runs an existing binary (see the module docstring)."""
    stage = tmp_path / "units"
    shutil.copytree(SYSTEMD_DIR, stage)
    true = shutil.which("true")
    assert true is not None
    for unit in stage.glob("*.service"):
        unit.write_text(unit.read_text().replace(INSTALLED_BINARY, true))
    # A stand-in for Debian's mosquitto.service, so verify also loads our drop-in beside it.
    (stage / "mosquitto.service").write_text(f"[Unit]\nDescription=stand-in\n[Service]\nExecStart={true}\n")
    return stage


def verify(stage: Path, *units: str) -> list[str]:
    """Problems systemd-analyze reports about the staged files (exit status and warnings)."""
    assert SYSTEMD_ANALYZE, "systemd-analyze is missing: apt-get install systemd"
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *(str(stage / u) for u in units)],
        capture_output=True, text=True, timeout=60, cwd=stage,
    )  # fmt: skip
    problems = [
        line for line in (done.stdout + done.stderr).splitlines() if str(stage) in line or ".service" in line
    ]
    if done.returncode != 0:
        problems.append(f"exit status {done.returncode}: {done.stderr.strip()}")
    return problems


def test_units_and_dropin_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    stage = staged_units(tmp_path)
    assert verify(stage, "mosquitto.service", *UNITS) == []


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    """Guards the guard: a misspelt directive and a bad value must show up as problems."""
    stage = staged_units(tmp_path)
    unit = stage / "gridwarden-edge.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=30", "WatchdogSec=thirty\nRestartt=always"))
    problems = verify(stage, "gridwarden-edge.service")
    assert any("WatchdogSec" in p or "sec value" in p for p in problems), problems
    assert any("Restartt" in p for p in problems), problems


@pytest.mark.parametrize("name", UNITS)
def test_unit_has_the_required_directives(name: str) -> None:
    unit = parse_unit(SYSTEMD_DIR / name)
    service = unit["Service"]
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "User": "gridwarden",
        "Group": "gridwarden",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/gridwarden",
        "StateDirectory": "gridwarden",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {key: one(unit, "Service", key) for key in expected} == expected
    for limit in ("MemoryMax", "TasksMax", "LimitNOFILE"):
        assert one(unit, "Service", limit)
    assert "CPUQuota" in service or "Nice" in service
    assert "DynamicUser" not in service  # see the unit's comment on why a static user
    assert any(f.lstrip("-").startswith("/etc/gridwarden/") for f in service["EnvironmentFile"])
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert one(unit, "Service", "ExecStart").startswith(INSTALLED_BINARY + " ")


def _exec_argv(name: str) -> list[str]:
    """ExecStart as systemd would run it: ${VAR} from the unit's Environment=, %d a path."""
    unit = parse_unit(SYSTEMD_DIR / name)
    env: dict[str, str] = {}
    for line in unit["Service"].get("Environment", []):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    command = one(unit, "Service", "ExecStart").replace("%d", "/run/credentials/" + name)
    command = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command)
    return shlex.split(command)


def test_exec_start_commands_parse_with_the_real_cli() -> None:
    edge = build_parser().parse_args(_exec_argv("gridwarden-edge.service")[1:])
    assert (edge.command, edge.edge_command, edge.config) == ("edge", "run", "/etc/gridwarden/edge.yaml")
    hub = build_parser().parse_args(_exec_argv("gridwarden-hub.service")[1:])
    assert (hub.command, hub.hub_command, hub.port) == ("hub", "serve", 8080)
    assert hub.mqtt_password_file == "/run/credentials/gridwarden-hub.service/hub-mqtt.pw"


def test_environment_examples_name_only_known_settings() -> None:
    def assignments(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            line = line.strip().lstrip("#").strip()
            if re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", line):
                key, _, value = line.partition("=")
                out[key] = value
        return out

    hub = assignments(SYSTEMD_DIR / "hub.env.example")
    unit_vars = set(re.findall(r"\$\{(\w+)\}", (SYSTEMD_DIR / "gridwarden-hub.service").read_text()))
    settings = {ENV_PREFIX + name.upper() for name in HubSettings.model_fields}
    unknown = {k for k in hub if k.startswith(ENV_PREFIX)} - settings - unit_vars
    assert unknown == set()
    HubSettings.from_env(hub)  # the example values validate
    edge = assignments(SYSTEMD_DIR / "edge.env.example")
    assert listen_address(edge) == ("127.0.0.1", 9464)
    assert LISTEN_ENV in edge


@pytest.mark.parametrize("name", UNITS)
def test_security_exposure_stays_low(name: str, tmp_path: Path) -> None:
    """systemd's own hardening score (0 = locked down, 10 = none); fails if a change loosens it."""
    assert SYSTEMD_ANALYZE
    stage = staged_units(tmp_path)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(stage / name)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.5
