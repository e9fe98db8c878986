#!/usr/bin/env python3
"""Build the project's ``gridwarden eval`` scenario set from the shared footage.

    python scripts/build_scenarios.py var/scenarios      # then: gridwarden eval var/scenarios

Clips are made from real frames of ../shared/media/car-detection.mp4 (or $GRIDWARDEN_SHARED):
a car hidden by a lorry, a car leaving or replaced while hidden, goods put on the pavement, dusk
with sensor noise, headlights, a sweeping shadow. Each comes with its edge configuration and its
ground truth (see tests/support/scenario_set.py). Existing clips are kept; footage is never
committed (write into an ignored folder such as var/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scenario_set import build_scenario_set, specs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder to write the scenarios into (e.g. var/scenarios)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[s.name for s in specs()])
    args = parser.parse_args()
    for path in build_scenario_set(args.out, args.only):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
