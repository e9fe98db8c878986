"""Review console: per-user password hash, session signing key and interface language.

Revision ID: 0003_console
Revises: 0001
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_console"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("session_key", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default="zh-CN")
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("session_key")
        batch_op.drop_column("password_hash")
