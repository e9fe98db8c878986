"""Command-centre review: who marked a case reviewed and when; indexes for the console's search.

``reviewed_at``/``reviewed_by`` record that an operator has looked at a case ("mark all reviewed"
for a camera), separately from the decision (the state). The indexes serve the search filters
that the existing ``(edge_id, camera, zone, state)`` index does not lead with: time order within
a state or a camera, zone, rule, and the unreviewed cases of a camera.

Revision ID: 0006_console_review
Revises: 0004_edge_configs
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_console_review"
down_revision: str | None = "0004_edge_configs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_at", TS, nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=128), nullable=True))
    op.create_index("ix_cases_state_detected_at", "cases", ["state", "detected_at"])
    op.create_index("ix_cases_camera_detected_at", "cases", ["camera", "detected_at"])
    op.create_index("ix_cases_zone_detected_at", "cases", ["zone", "detected_at"])
    op.create_index("ix_cases_rule_detected_at", "cases", ["rule", "detected_at"])
    op.create_index("ix_cases_detected_at", "cases", ["detected_at"])
    op.create_index("ix_cases_camera_reviewed_at", "cases", ["camera", "reviewed_at"])


def downgrade() -> None:
    for name in (
        "ix_cases_camera_reviewed_at",
        "ix_cases_detected_at",
        "ix_cases_rule_detected_at",
        "ix_cases_zone_detected_at",
        "ix_cases_camera_detected_at",
        "ix_cases_state_detected_at",
    ):
        op.drop_index(name, table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
