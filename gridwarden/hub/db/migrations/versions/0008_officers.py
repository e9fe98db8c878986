"""Officers, positions, dispatch tasks and queue, idempotent field actions; history events.

Revision ID: 0008_officers
Revises: 0008_places
Create Date: 2026-11-30 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_officers"
down_revision: str | None = "0008_places"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event", sa.String(length=32), nullable=True))
    op.create_table(
        "officers",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(length=128), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=16), nullable=False),
        sa.Column("areas", JSON, nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("shifts", JSON, nullable=False),
        sa.Column("in_shift", sa.Boolean(), nullable=True),
        sa.Column("tracker_id", sa.String(length=128), nullable=True, unique=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("fix_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_officers_duty_state", "officers", ["on_duty", "state"])
    op.create_table(
        "officer_positions",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("officer_id", PK, sa.ForeignKey("officers.id"), nullable=False),
        sa.Column("fix_at", TS, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("officer_id", "source", "fix_at", name="uq_officer_positions_fix"),
    )
    op.create_index("ix_officer_positions_officer_fix", "officer_positions", ["officer_id", "fix_at"])
    op.create_index("ix_officer_positions_fix_at", "officer_positions", ["fix_at"])
    op.create_table(
        "dispatch_tasks",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("case_id", PK, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("officer_id", PK, sa.ForeignKey("officers.id"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("offered_by", sa.String(length=128), nullable=False),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("offered_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("responded_at", TS, nullable=True),
        sa.Column("arrived_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("photo", sa.String(length=256), nullable=True),
    )
    op.create_index("ix_dispatch_tasks_case", "dispatch_tasks", ["case_id"])
    op.create_index("ix_dispatch_tasks_officer_state", "dispatch_tasks", ["officer_id", "state"])
    op.create_index("ix_dispatch_tasks_state_expires", "dispatch_tasks", ["state", "expires_at"])
    op.create_table(
        "case_dispatch",
        sa.Column("case_id", PK, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("tried", JSON, nullable=False),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("escalation_reason", sa.Text(), nullable=True),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("verify_due_at", TS, nullable=True),
        sa.Column("verified_by", sa.String(length=16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_case_dispatch_status_due", "case_dispatch", ["status", "due_at"])
    op.create_table(
        "field_actions",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("officer_id", PK, sa.ForeignKey("officers.id"), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("officer_id", "key", name="uq_field_actions_officer_key"),
    )


def downgrade() -> None:
    for table in ("field_actions", "case_dispatch", "dispatch_tasks", "officer_positions", "officers"):
        op.drop_table(table)
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.drop_column("event")
