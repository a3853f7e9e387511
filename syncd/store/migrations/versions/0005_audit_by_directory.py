"""An index on audit_events(directory, id): the console's audit page, `syncd audit -d X` and a
kept plan's approval check read a directory's newest events, which without it scan the whole
table on PostgreSQL (where the audit of every directory shares one table).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_directory", "audit_events", ["directory", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_directory", table_name="audit_events")
