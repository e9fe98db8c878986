"""Places: a case's location (lat/lon) and area; the areas (patrol beats, estate grids).

Revision ID: 0008_places
Revises: 0009_residents
Create Date: 2026-11-30 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_places"
down_revision: str | None = "0009_residents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("area_id", sa.String(length=64), nullable=True))
    op.create_index("ix_cases_area_id", "cases", ["area_id"])
    op.create_table(
        "areas",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("geometry", JSON, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_areas_bbox", "areas", ["min_lat", "max_lat", "min_lon", "max_lon"])


def downgrade() -> None:
    op.drop_index("ix_areas_bbox", table_name="areas")
    op.drop_table("areas")
    op.drop_index("ix_cases_area_id", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("area_id")
        batch_op.drop_column("lon")
        batch_op.drop_column("lat")
