"""storage reconcile: files whose bytes are gone

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-05 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("files", sa.Column("missing_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_files_live_storage_key",
        "files",
        [sa.text('storage_key COLLATE "C"')],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_files_live_storage_key", table_name="files")
    op.drop_column("files", "missing_at")
