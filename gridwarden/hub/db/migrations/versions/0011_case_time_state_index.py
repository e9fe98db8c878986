"""A covering index for the console search's per-state counts over a time range.

The review queue counts the matches of its filters per state (``GROUP BY state``) before it shows
a page. With only a time range (the queue's default, "the last few days") PostgreSQL had to read
every matching row from the table (a bitmap heap scan: ~250 ms for 50,000 cases of a
1,000,000-case database, bench/bench_scale_out.py); ``(detected_at, state)`` lets it answer from
the index alone (~12 ms).

Revision ID: 0011_case_time_state_index
Revises: 0010_hardening
Create Date: 2026-11-30 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_case_time_state_index"
down_revision: str | None = "0010_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_detected_at_state", "cases", ["detected_at", "state"])


def downgrade() -> None:
    op.drop_index("ix_cases_detected_at_state", table_name="cases")
