"""Hardening: revoked console sessions, the sign-in audit, and dead letters of ingestion.

Revision ID: 0010_hardening
Revises: 0008_officers
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_hardening"
down_revision: str | None = "0008_officers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_revoked_sessions_user_id", "revoked_sessions", ["user_id"])
    op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])
    op.create_table(
        "auth_events",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_events_username_at", "auth_events", ["username", "at"])
    op.create_index("ix_auth_events_client_at", "auth_events", ["client", "at"])
    op.create_table(
        "dead_letters",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_index("ix_dead_letters_edge_id", "dead_letters", ["edge_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("auth_events")
    op.drop_table("revoked_sessions")
