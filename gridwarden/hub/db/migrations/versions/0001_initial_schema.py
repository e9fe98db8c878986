"""Initial schema: events, incidents, cases and their audit, edges, cameras, sequences, users, webhooks.

The migration spells its column types out instead of importing the ORM models, so that later
changes to models.py cannot change what this revision creates.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:49:15.633626
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every timestamp is timezone-aware; JSON is JSONB on PostgreSQL; SQLite needs INTEGER for rowid keys.
TS = sa.DateTime(timezone=True)
JSONT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status", JSONT, nullable=False),
        sa.Column("status_wall_time", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("edge_id", "camera_id"),
    )
    op.create_table(
        "cases",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("classes", JSONT, nullable=False),
        sa.Column("incident_count", sa.Integer(), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("in_review_at", TS, nullable=True),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.Column("rejected_at", TS, nullable=True),
        sa.Column("dispatched_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_camera_zone_state", ["edge_id", "camera", "zone", "state"], unique=False
        )
        batch_op.create_index("ix_cases_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_cases_state", ["state"], unique=False)

    op.create_table(
        "edge_sequence",
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("highest_contiguous_seq", sa.BigInteger(), nullable=False),
        sa.Column("highest_seen_seq", sa.BigInteger(), nullable=False),
        sa.Column("missing", JSONT, nullable=False),
        sa.Column("gaps_seen", sa.Integer(), nullable=False),
        sa.Column("missing_total", sa.BigInteger(), nullable=False),
        sa.Column("late_filled", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("edge_id"),
    )
    op.create_table(
        "edges",
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status", JSONT, nullable=False),
        sa.Column("status_wall_time", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("edge_id"),
    )
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("classes", JSONT, nullable=False),
        sa.Column("objects", JSONT, nullable=False),
        sa.Column("evidence", JSONT, nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("dwell_s", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=True),
        sa.Column("started_media_time", sa.Float(), nullable=False),
        sa.Column("last_media_time", sa.Float(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("first_event_seq", sa.BigInteger(), nullable=False),
        sa.Column("first_event_at", TS, nullable=False),
        sa.Column("last_event_at", TS, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_camera_zone", ["edge_id", "camera", "zone"], unique=False)

    op.create_table(
        "received_events",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("payload", JSONT, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("received_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("edge_id", "seq", name="uq_received_events_edge_seq"),
    )
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_received_events_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "rejected_messages",
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("last_topic", sa.Text(), nullable=False),
        sa.Column("last_detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("reason"),
    )
    op.create_table(
        "users",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "case_history",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("case_id", BIGID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_history_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_incidents",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("case_id", BIGID, nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id"),
    )
    with op.batch_alter_table("case_incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_incidents_case_id"), ["case_id"], unique=False)

    op.create_table(
        "webhook_outbox",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("case_id", BIGID, nullable=False),
        sa.Column("payload", JSONT, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_webhook_outbox_pending", ["delivered_at", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_case_id"))

    op.drop_table("webhook_outbox")
    with op.batch_alter_table("case_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_incidents_case_id"))

    op.drop_table("case_incidents")
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_history_case_id"))

    op.drop_table("case_history")
    op.drop_table("users")
    op.drop_table("rejected_messages")
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_received_events_incident_id"))

    op.drop_table("received_events")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_camera_zone")

    op.drop_table("incidents")
    op.drop_table("edges")
    op.drop_table("edge_sequence")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_state")
        batch_op.drop_index("ix_cases_created_at")
        batch_op.drop_index("ix_cases_camera_zone_state")

    op.drop_table("cases")
    op.drop_table("cameras")
