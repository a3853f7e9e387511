"""PostgreSQL: the JSON columns that hold large values (an audit event's `before`/`after`, a
change-feed row's `data`: a team's member list is kilobytes) are compressed with lz4 instead
of pglz where the server has lz4 (PostgreSQL 14+ built with it, as the Debian, Red Hat and
official images are). pglz took ~5% of the server's time of a large first pull; lz4 compresses
the same values several times faster. Values already stored keep their compression (they
are read either way); only new values are written with lz4. Without lz4 nothing changes.
SQLite has no such setting: nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) written with lz4
COLUMNS = (("audit_events", "before"), ("audit_events", "after"), ("changes", "data"))
_HAS_LZ4 = sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")


def _set(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not bind.execute(_HAS_LZ4).scalar():
        return
    for table, column in COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION {method}')


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("default")
