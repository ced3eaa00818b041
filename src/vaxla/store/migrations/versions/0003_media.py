"""media engine: recordings and per-leg media quality (issue 3)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vaxla.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("callee", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("media_recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_recordings_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_media_recordings_started_at"), ["started_at"], unique=False
        )
    op.create_table(
        "media_quality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("leg", sa.String(length=10), nullable=False),
        sa.Column("packets_received", sa.Integer(), nullable=False),
        sa.Column("packets_lost", sa.Integer(), nullable=False),
        sa.Column("loss_percent", sa.Float(), nullable=False),
        sa.Column("jitter_ms", sa.Float(), nullable=False),
        sa.Column("packets_sent", sa.Integer(), nullable=False),
        sa.Column("remote_loss_percent", sa.Float(), nullable=True),
        sa.Column("remote_jitter_ms", sa.Float(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("media_quality", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_quality_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_quality", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_quality_call_id"))
    op.drop_table("media_quality")
    with op.batch_alter_table("media_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_recordings_started_at"))
        batch_op.drop_index(batch_op.f("ix_media_recordings_call_id"))
    op.drop_table("media_recordings")
