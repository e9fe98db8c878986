"""On-demand mutation check of the critical guarantees, hub and edge (issue 12 item 14).

Each mutation is one small edit that breaks a guarantee (ack before commit, a prefix-match
signature check, no quota, ...). For each, the tracked files of this repository are copied to a
temporary folder, the edit is applied to the copy (never to your tree), and the tests that claim
the guarantee run against the copy. A mutation the tests do not notice SURVIVED: a test is
missing. Exit status 1 if any survived (or a mutation no longer applies: the code moved).

    .venv/bin/python bench/mutation_check.py               # all (several minutes on 2 cores)
    .venv/bin/python bench/mutation_check.py --list
    .venv/bin/python bench/mutation_check.py ingest auth   # those whose name starts so

Not part of the test suite (it runs the suite's tests many times); run it after changing one of
the mutated modules, and add a mutation here with each new guarantee.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments


MUTATIONS = [
    Mutation(
        "auth: prefix-match signature",
        "gridwarden/hub/auth.py",
        "if not signature.isascii() or not hmac.compare_digest(expected, signature):",
        "if not expected.startswith(signature):",
        ("tests/console/test_sessions_and_throttle.py", "-k", "sqlite and damaged"),
    ),
    Mutation(
        "auth: sign-out not checked",
        "gridwarden/hub/auth.py",
        "            if sid and session.get(RevokedSession, sid) is not None:",
        "            if False:",
        ("tests/console/test_sessions_and_throttle.py", "-k", "sqlite and sign_out"),
    ),
    Mutation(
        "auth: token rotation keeps sessions",
        "gridwarden/hub/auth.py",
        "            if user.session_key is not None:\n                user.session_key = secrets.token_hex(32)",
        "            pass",
        ("tests/console/test_sessions_and_throttle.py", "-k", "sqlite and rotating"),
    ),
    Mutation(
        "auth: login never throttled",
        "gridwarden/hub/login_throttle.py",
        "        if longest <= 0:",
        "        if True:",
        ("tests/console/test_sessions_and_throttle.py", "-k", "sqlite and guessing"),
    ),
    Mutation(
        "ingest: ack before commit",
        "gridwarden/hub/ingest/consumer.py",
        "            try:\n                results = self._store(batch)",
        "            try:\n                self._ack(batch)\n                results = self._store(batch)",
        ("tests/hub/test_ack_after_commit.py", "-k", "sqlite"),
    ),
    Mutation(
        "ingest: no ack after a retried commit",
        "gridwarden/hub/ingest/consumer.py",
        "                self._stats.add(results, commit_s=time.monotonic() - started)\n                self._ack(batch)",
        "                self._stats.add(results, commit_s=time.monotonic() - started)",
        ("tests/hub/test_ack_after_commit.py", "-k", "sqlite and storage_fails"),
    ),
    Mutation(
        "ingest: only database errors isolated",
        "gridwarden/hub/ingest/consumer.py",
        "                if attempt >= 3 or not isinstance(exc, DBAPIError):",
        "                if not isinstance(exc, DBAPIError):\n                    raise\n                if attempt >= 3:",
        ("tests/hub/test_poison_messages.py", "-k", "sqlite and storage_raise"),
    ),
    Mutation(
        "ingest: NUL accepted",
        "gridwarden/hub/ingest/validation.py",
        '    if "\\\\u0000" in text:',
        "    if False:",
        ("tests/hub/test_poison_messages.py", "-k", "sqlite and nul"),
    ),
    Mutation(
        "contract: media_time unbounded",
        "gridwarden/contract.py",
        '        ge=0.0, le=MAX_MEDIA_TIME_S, description="Seconds from the stream',
        '        description="Seconds from the stream',
        ("tests/hub/test_poison_messages.py", "-k", "sqlite and 1e20"),
    ),
    Mutation(
        "health: dead writer ignored",
        "gridwarden/hub/api/health.py",
        "    if problems:",
        "    if False:",
        ("tests/hub/test_poison_messages.py", "-k", "sqlite and dead_writer"),
    ),
    Mutation(
        "ingest: gap expanded per number",
        "gridwarden/hub/ingest/storage.py",
        "            gap = ((row.highest_seen_seq + 1, seq - 1),)",
        "            gap = tuple((s, s) for s in range(row.highest_seen_seq + 1, seq))",
        ("tests/hub/test_ingest.py", "-k", "sqlite and huge_jump"),
    ),
    Mutation(
        "outbox: eviction by seq",
        "gridwarden/edge/transport/outbox.py",
        "WHERE acked_at IS NOT NULL ORDER BY acked_at, seq LIMIT 1",
        "WHERE acked_at IS NOT NULL ORDER BY seq LIMIT 1",
        ("tests/outbox/test_outbox_eviction_order.py",),
    ),
    Mutation(
        "uploads: edge may write for another edge",
        "gridwarden/hub/api/snapshots.py",
        "if who.role is Role.EDGE and who.username != edge_id:",
        "if False:",
        ("tests/evidence/test_upload_hardening.py",),
    ),
    Mutation(
        "uploads: content not checked",
        "gridwarden/hub/evidence_store.py",
        "                check_media_file(self._tmp, self.content_type)",
        "                pass",
        ("tests/evidence/test_upload_hardening.py",),
    ),
    Mutation(
        "uploads: no quota",
        "gridwarden/hub/evidence_store.py",
        "if owner is None or self.quota_bytes_per_edge is None:",
        "if True:",
        ("tests/evidence/test_upload_hardening.py", "-k", "quota"),
    ),
    Mutation(
        "api: case id unbounded",
        "gridwarden/hub/api/cases.py",
        "Path(ge=1, le=MAX_DB_INT,",
        "Path(ge=1,",
        ("tests/hub_api/test_input_bounds.py", "-k", "sqlite and clear_4xx"),
    ),
    Mutation(
        "headers: no security headers",
        "gridwarden/hub/app.py",
        "    app.add_middleware(SecurityHeaders)\n",
        "",
        ("tests/hub_api/test_security_headers.py", "-k", "sqlite"),
    ),
    Mutation(
        "broker: subscribe allowed by default",
        "gridwarden/hub/broker_security.py",
        '"subscribe": False,',
        '"subscribe": True,',
        ("tests/hub_api/test_broker_acl.py", "-k", "share"),
    ),
    Mutation(
        "tracking: low score revives a lost track",
        "gridwarden/edge/analytics/tracking.py",
        "if i not in matched and not t.lost and t.confirmed]",
        "if i not in matched and t.confirmed]",
        ("tests/analytics/test_tracking_guarantees.py", "-k", "revived"),
    ),
    Mutation(
        "tracking: prediction horizon uncapped",
        "gridwarden/edge/analytics/tracking.py",
        "dt = min(max(media_time - self.last_seen, 0.0), _MAX_PREDICT_S)",
        "dt = max(media_time - self.last_seen, 0.0)",
        ("tests/analytics/test_tracking_guarantees.py", "-k", "horizon"),
    ),
    Mutation(
        "rules: places not rescaled",
        "gridwarden/edge/analytics/rules/base.py",
        "if self._frame_size is not None and frame_size != self._frame_size:",
        "if False:",
        ("tests/analytics/test_rule_guarantees.py", "-k", "resolution"),
    ),
    Mutation(
        "rules: media time going back not handled",
        "gridwarden/edge/analytics/rules/base.py",
        "        if ctx.media_time < last:",
        "        if False:",
        ("tests/analytics/test_rule_guarantees.py", "-k", "backwards"),
    ),
    Mutation(
        "rules: ties by input order",
        "gridwarden/edge/analytics/rules/base.py",
        "greedy_match(iou + same_id, valid)",
        "greedy_match(iou, valid)",
        ("tests/analytics/test_rule_guarantees.py", "-k", "tie"),
    ),
    Mutation(
        "static: absorbed at the background rate",
        "gridwarden/edge/analytics/rules/static_objects.py",
        "rate_fg = 1.0 - math.exp(-dt / self._absorb_s)",
        "rate_fg = 1.0 - math.exp(-dt / self._long_s)",
        ("tests/lookers/test_static_object_guarantees.py", "-k", "hour"),
    ),
    Mutation(
        "static: no global brightness offset",
        "gridwarden/edge/analytics/rules/static_objects.py",
        "current = small - offset.astype(np.float32)",
        "current = small",
        ("tests/lookers/test_static_object_guarantees.py", "-k", "brightness"),
    ),
    Mutation(
        "static: stillness not required",
        "gridwarden/edge/analytics/rules/static_objects.py",
        "(self._age >= self._min_static_s) & (still | self._static)",
        "(self._age >= self._min_static_s)",
        ("tests/lookers/test_static_object_guarantees.py", "-k", "changing"),
    ),
    Mutation(
        "static: gap counted as age",
        "gridwarden/edge/analytics/rules/static_objects.py",
        "self._age + min(dt, _MAX_STEP_S)",
        "self._age + dt",
        ("tests/lookers/test_static_object_guarantees.py", "-k", "gap"),
    ),
]


def copy_tree(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def run(mutation: Mutation, timeout_s: float, *, mutate: bool = True) -> tuple[str, float]:
    with tempfile.TemporaryDirectory(prefix="gw-mutant-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        target = copy / mutation.path
        text = target.read_text()
        if mutation.old not in text:
            return "NOT APPLICABLE (code moved: update the mutation)", 0.0
        if mutate:
            target.write_text(text.replace(mutation.old, mutation.new, 1))
        env = {**os.environ, "PYTHONPATH": str(copy)}
        env.setdefault("GRIDWARDEN_SHARED", str(REPO_ROOT.parent / "shared"))
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
                cwd=copy, env=env, capture_output=True, timeout=timeout_s,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "killed (timeout)", time.monotonic() - started
        elapsed = time.monotonic() - started
        if done.returncode == 5:
            return "NO TESTS RAN (selection matches nothing)", elapsed
        return ("killed" if done.returncode != 0 else "SURVIVED"), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run the mutations whose name starts with one of these")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip checking that each test selection passes unmutated"
    )
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or any(m.name.startswith(n) for n in args.names)]
    if args.list:
        for m in chosen:
            print(f"{m.name:45s} {m.path}")
        return 0
    bad = 0
    baseline: dict[tuple[str, ...], str] = {}
    for m in chosen:
        if not args.no_baseline and m.tests not in baseline:
            # A selection that fails without any mutation would make every mutant look killed.
            baseline[m.tests], _ = run(m, args.timeout_s, mutate=False)
        if not args.no_baseline and baseline[m.tests] != "SURVIVED":
            bad += 1
            print(f"BASELINE FAILS ({baseline[m.tests]}) {m.name}: fix the tests first", flush=True)
            continue
        verdict, elapsed = run(m, args.timeout_s)
        bad += verdict != "killed" and not verdict.startswith("killed")
        print(f"{verdict:10s} {m.name:45s} ({elapsed:.0f} s)", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
