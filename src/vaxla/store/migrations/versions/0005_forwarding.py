"""call forwarding: per-extension settings, forwarding in call records (issue 4, R83)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from vaxla.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_forwarding_settings",
        sa.Column("extension", sa.String(length=32), nullable=False),
        sa.Column("no_answer_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("extension"),
    )
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forwarded_from", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("forward_kind", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_column("forward_kind")
        batch_op.drop_column("forwarded_from")
    op.drop_table("call_forwarding_settings")
