"""The project's scenario set through ``gridwarden eval``: real footage, written ground truth.

The set (tests/support/scenario_set.py) is built from ../shared once per session and evaluated by
one ``gridwarden eval --json`` run; each test below reads its scenario's part of that run, so a
failure names the situation that broke. Every scenario's truth has a 2 s tolerance on start and
end, and an incident that matches no expectation is counted as false.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.support.paths import REPO_ROOT
from tests.support.scenario_set import build_scenario_set, specs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("scenario-set")
    build_scenario_set(folder)
    res = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", "eval", str(folder), "--json", "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=900,
    )
    report = json.loads(res.stdout)
    report["returncode"] = res.returncode
    report["stderr"] = res.stderr
    return report


def scenario(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in report["scenarios"] if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in report["scenarios"]]
    return found[0]


def zone(s: dict[str, Any], zone_id: str) -> dict[str, Any]:
    return next(z for z in s["zones"] if z["zone"] == zone_id)


@pytest.mark.parametrize("name", [s.name for s in specs()])
def test_scenario_meets_its_ground_truth(evaluation: dict[str, Any], name: str) -> None:
    s = scenario(evaluation, name)
    assert s["error"] is None
    assert s["passed"], json.dumps(s["zones"], indent=1)


def test_the_whole_set_passes_and_the_command_says_so(evaluation: dict[str, Any]) -> None:
    assert evaluation["returncode"] == 0, evaluation["stderr"]
    total = evaluation["total"]
    assert total["scenarios"] == len(specs()) == total["scenarios_passed"]
    assert total["found"] == total["expected"] > 0 and total["missed"] == total["false"] == 0
    assert total["max_abs_start_error_s"] <= 2.0 and total["max_abs_end_error_s"] <= 2.0
    assert total["detector_cpu_s"] > 0


def test_parked_car_hidden_twice_is_one_incident(evaluation: dict[str, Any]) -> None:
    """Hidden 25 s before its dwell and 25 s after its incident started: one incident id."""
    z = zone(scenario(evaluation, "parked-hidden-twice"), "no-parking")
    assert (z["expected"], z["found"], z["false"]) == (1, 1, 0)
    assert z["matches"][0]["end_ok"]


def test_leaving_and_replaced_while_hidden_are_told_apart(evaluation: dict[str, Any]) -> None:
    left = zone(scenario(evaluation, "car-leaves-while-hidden"), "no-parking")
    replaced = zone(scenario(evaluation, "other-car-while-hidden"), "no-parking")
    assert [m["end_ok"] for m in left["matches"]] == [True]
    assert len(replaced["matches"]) == 2 and replaced["false"] == 0
    assert replaced["matches"][0]["incident_id"] != replaced["matches"][1]["incident_id"]


def test_goods_fire_dwell_after_they_are_put_down(evaluation: dict[str, Any]) -> None:
    z = zone(scenario(evaluation, "goods-placed"), "pavement")
    assert [m["rule"] for m in z["matches"]] == ["static_object"]
    assert abs(z["matches"][0]["start_error_s"]) <= 2.0


@pytest.mark.parametrize("name", ["dusk-parked", "dusk-headlights", "shadow-sweep"])
def test_dusk_headlights_and_shadows_keep_the_car_and_add_no_static_object(
    evaluation: dict[str, Any], name: str
) -> None:
    s = scenario(evaluation, name)
    assert zone(s, "no-parking")["found"] == 1
    pavement = zone(s, "pavement")
    assert pavement["false"] == 0, pavement["false_incidents"]
