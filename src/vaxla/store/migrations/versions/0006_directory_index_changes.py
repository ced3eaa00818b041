"""directory: change log of search rows, for in-memory search indexes (issue 4)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from vaxla.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dir_index_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("dir_index_changes", schema=None) as batch_op:
        batch_op.create_index("ix_dir_index_changes_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dir_index_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_dir_index_changes_at")
    op.drop_table("dir_index_changes")
