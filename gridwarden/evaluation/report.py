"""The evaluation as a table for people and as JSON for machines.

One row per scenario and zone: expected, found, missed, false, start and end errors (mean of the
absolute errors and the signed worst one, seconds; + is late), and ok / FAIL with the reason.
A TOTAL row sums the counts and averages the errors over every found incident.
"""

from __future__ import annotations

from typing import Any

from gridwarden.evaluation.runner import ScenarioResult
from gridwarden.evaluation.scoring import ZoneScore

_HEADER = ("scenario", "zone", "exp", "found", "missed", "false", "start err s", "end err s", "result")


def _errors(values: list[float]) -> str:
    if not values:
        return "-"
    worst = max(values, key=abs)
    mean = sum(abs(v) for v in values) / len(values)
    return f"{mean:.2f} ({worst:+.2f})"


def _zone_reason(z: ZoneScore) -> str:
    reasons = []
    for e in z.missed_incidents:
        reasons.append(f"missed {e.start:.1f}")
    for o in z.false_incidents:
        reasons.append(f"false {o.start:.1f}")
    for m in z.matches:
        if m.end_problem:
            reasons.append(m.end_problem)
    return "ok" if not reasons else "FAIL: " + "; ".join(reasons)


def _start_errors(zones: list[ZoneScore]) -> list[float]:
    return [m.start_error for z in zones for m in z.matches]


def _end_errors(zones: list[ZoneScore]) -> list[float]:
    return [e for z in zones for m in z.matches if (e := m.end_error) is not None]


def format_table(results: list[ScenarioResult]) -> str:
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.error is not None:
            rows.append((r.name, "-", "-", "-", "-", "-", "-", "-", f"ERROR: {r.error}"))
            continue
        for z in r.zones:
            rows.append(
                (
                    r.name,
                    z.zone,
                    str(z.expected),
                    str(z.found),
                    str(z.missed),
                    str(z.false),
                    _errors(_start_errors([z])),
                    _errors(_end_errors([z])),
                    _zone_reason(z),
                )
            )
    zones = [z for r in results for z in r.zones]
    passed = sum(1 for r in results if r.passed)
    rows.append(
        (
            "TOTAL",
            f"{len(zones)} zones",
            str(sum(z.expected for z in zones)),
            str(sum(z.found for z in zones)),
            str(sum(z.missed for z in zones)),
            str(sum(z.false for z in zones)),
            _errors(_start_errors(zones)),
            _errors(_end_errors(zones)),
            f"{passed}/{len(results)} scenarios ok",
        )
    )
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER) - 1)]
    table = [_HEADER, *rows]
    lines: list[str] = []
    for k, row in enumerate(table):
        if k == len(table) - 1:
            lines.append("-" * len(lines[0]))
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]))
        if k == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _zone_json(z: ZoneScore) -> dict[str, Any]:
    return {
        "zone": z.zone,
        "expected": z.expected,
        "found": z.found,
        "missed": z.missed,
        "false": z.false,
        "passed": z.passed,
        "matches": [
            {
                "incident_id": m.observed.incident_id,
                "rule": m.observed.rule,
                "expected_start": m.expected.start,
                "start": m.observed.start,
                "start_error_s": round(m.start_error, 3),
                "expected_end": m.expected.end,
                "end": m.observed.end,
                "end_error_s": None if m.end_error is None else round(m.end_error, 3),
                "end_ok": m.end_ok,
            }
            for m in z.matches
        ],
        "missed_incidents": [e.model_dump() for e in z.missed_incidents],
        "false_incidents": [
            {"incident_id": o.incident_id, "rule": o.rule, "start": o.start, "end": o.end}
            for o in z.false_incidents
        ],
    }


def to_json(results: list[ScenarioResult]) -> dict[str, Any]:
    zones = [z for r in results for z in r.zones]
    starts, ends = _start_errors(zones), _end_errors(zones)
    return {
        "passed": all(r.passed for r in results) and bool(results),
        "scenarios": [
            {
                "name": r.name,
                "path": str(r.path),
                "passed": r.passed,
                "error": r.error,
                "frames": r.frames,
                "detector_calls": r.detector_calls,
                "media_s": round(r.media_s, 3),
                "wall_s": round(r.wall_s, 3),
                "detector_cpu_s": round(r.detector_cpu_s, 3),
                "zones": [_zone_json(z) for z in r.zones],
            }
            for r in results
        ],
        "total": {
            "scenarios": len(results),
            "scenarios_passed": sum(1 for r in results if r.passed),
            "expected": sum(z.expected for z in zones),
            "found": sum(z.found for z in zones),
            "missed": sum(z.missed for z in zones),
            "false": sum(z.false for z in zones),
            "mean_abs_start_error_s": round(sum(abs(v) for v in starts) / len(starts), 3) if starts else None,
            "max_abs_start_error_s": round(max(abs(v) for v in starts), 3) if starts else None,
            "mean_abs_end_error_s": round(sum(abs(v) for v in ends) / len(ends), 3) if ends else None,
            "max_abs_end_error_s": round(max(abs(v) for v in ends), 3) if ends else None,
            "detector_cpu_s": round(sum(r.detector_cpu_s for r in results), 3),
        },
    }
