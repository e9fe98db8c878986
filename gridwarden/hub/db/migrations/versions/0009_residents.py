"""Residents and the city: case source and event category, QR points, people's reports.

* ``cases.source`` (camera | resident | open311) and ``cases.category`` (the city's event code,
  数字城管); existing cases are camera cases and get their code from the built-in table.
* ``cases.report_point_id``: the QR point of a resident case; with category and state it finds
  the open case a second report at the same point joins.
* ``qr_points``, ``case_reports`` and ``open311_forwards`` (see the ORM docstrings).

Revision ID: 0009_residents
Revises: 0006_console_review
Create Date: 2026-11-30 13:20:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_residents"
down_revision: str | None = "0006_console_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="camera", nullable=False)
        )
        batch_op.add_column(
            sa.Column("category", sa.String(length=8), server_default="other", nullable=False)
        )
        batch_op.add_column(sa.Column("report_point_id", sa.String(length=64), nullable=True))
    op.create_index("ix_cases_category_detected_at", "cases", ["category", "detected_at"])
    op.create_index("ix_cases_source_detected_at", "cases", ["source", "detected_at"])
    op.create_index("ix_cases_point_category_state", "cases", ["report_point_id", "category", "state"])
    _classify_existing_cases()

    op.create_table(
        "qr_points",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("area_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_qr_points_area_id", "qr_points", ["area_id"])
    op.create_table(
        "case_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("point_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=128), nullable=True),
        sa.Column("photo_sha256", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("area_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("token", sa.String(length=64), nullable=False, unique=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("submitted_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )  # fmt: skip
    op.create_index("ix_case_reports_case_id", "case_reports", ["case_id"])
    op.create_index("ix_case_reports_created_at", "case_reports", ["created_at"])
    op.create_table(
        "open311_forwards",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("cases.id"), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("remote_request_id", sa.String(length=128), nullable=True),
        sa.Column("remote_token", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )  # fmt: skip
    op.create_index("ix_open311_forwards_pending", "open311_forwards", ["delivered_at", "next_attempt_at"])


def _classify_existing_cases() -> None:
    """Give the cases that exist already their code from the built-in table."""
    from gridwarden.hub.reports.categories import default_table

    table = default_table()
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, rule, classes FROM cases")).all()
    for case_id, rule, classes in rows:
        names = json.loads(classes) if isinstance(classes, str) else (classes or [])
        code = table.classify(rule, names)
        if code != "other":
            bind.execute(sa.text("UPDATE cases SET category = :c WHERE id = :i"), {"c": code, "i": case_id})


def downgrade() -> None:
    op.drop_index("ix_open311_forwards_pending", table_name="open311_forwards")
    op.drop_table("open311_forwards")
    op.drop_index("ix_case_reports_created_at", table_name="case_reports")
    op.drop_index("ix_case_reports_case_id", table_name="case_reports")
    op.drop_table("case_reports")
    op.drop_index("ix_qr_points_area_id", table_name="qr_points")
    op.drop_table("qr_points")
    for name in (
        "ix_cases_point_category_state",
        "ix_cases_source_detected_at",
        "ix_cases_category_detected_at",
    ):
        op.drop_index(name, table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("report_point_id")
        batch_op.drop_column("category")
        batch_op.drop_column("source")
