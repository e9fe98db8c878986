"""``gridwarden eval SCENARIOS_DIR``: how well the edge finds what a recorded street shows.

Registered on the ``gridwarden`` parser by :func:`register_cli`. Exit status: 0 when every
expectation of every scenario holds, 1 when any fails (missed, false, a start or end outside its
tolerance), 2 when the folder holds no scenario or a scenario cannot be run (bad file, missing
clip or configuration, unknown zone).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

_DESCRIPTION = """\
Replay every scenario found under SCENARIOS_DIR through the edge pipeline (the same code as
'gridwarden edge replay') and compare the incidents raised with the ground truth written in the
scenario file. A scenario is a file NAME.scenario.yaml (paths relative to it):

  clip: parked.mp4                 # any video FFmpeg reads
  config: parked.edge.yaml         # an edge configuration (zones, rules, model)
  camera: cam-lot                  # optional; default: the configuration's first camera
  tolerance_s: 2                   # allowed start/end error, seconds of media time
  zones:
    no-parking:                    # expected incidents of this zone, by media time
      - {start: 46.1, end: 90.7}   # end: null = still open when the clip ends
    pavement: []                   # no incident expected (zones left out expect none too)

An observed incident finds an expected one of its zone when its start is within the tolerance;
it must then also end within the tolerance. Expected incidents not found are 'missed'; raised
ones that match nothing are 'false'. The table shows, per scenario and zone and in total:
expected / found / missed / false, and the start and end errors as 'mean of |error| (worst,
signed; + = late)'.

The project's own scenario set is built from the shared test footage by
'python scripts/build_scenarios.py OUT_DIR' (see that script).

Exit status: 0 all expectations hold; 1 some failed; 2 no scenario found, or one could not be run.
"""


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gridwarden.evaluation.report import format_table, to_json
    from gridwarden.evaluation.runner import ScenarioRunner
    from gridwarden.evaluation.truth import SCENARIO_SUFFIX, find_scenarios

    folder = Path(args.scenarios_dir)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return EXIT_BAD_INPUT
    paths = find_scenarios(folder)
    if args.only:
        paths = [p for p in paths if any(k in p.name for k in args.only)]
    if not paths:
        print(f"error: no *{SCENARIO_SUFFIX} under {folder}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def progress(name: str) -> None:
        if not args.quiet:
            print(f"eval: {name}", file=sys.stderr, flush=True)

    runner = ScenarioRunner(on_progress=progress)
    results = [runner.run(p) for p in paths]
    if args.json:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(format_table(results))
    if any(r.error is not None for r in results):
        for r in results:
            if r.error is not None:
                print(f"error: {r.error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the ``gridwarden`` parser."""
    ev = subparsers.add_parser(
        "eval",
        help="measure detection quality: replay scenarios with ground truth and score the incidents",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("scenarios_dir", metavar="SCENARIOS_DIR", help="folder searched for *.scenario.yaml")
    ev.add_argument("--json", action="store_true", help="print the results as JSON (for machines)")
    ev.add_argument(
        "--only", nargs="+", metavar="TEXT", help="run only scenarios whose file name contains one of these"
    )
    ev.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ev.set_defaults(func=_cmd_eval)
