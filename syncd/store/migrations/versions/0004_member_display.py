"""memberships.display (RFC 7643 §2.4: a member's display is immutable, set by the client when
it adds the member); and U+0000 scrubbed from stored JSON attributes.

Before the service refused control characters, a User or Group attribute holding U+0000 was
stored; on PostgreSQL one such value made every JSON filter of its directory fail ("\\u0000
cannot be converted to text"). Such characters are removed from `users.data` and `teams.data`
(on both stores, so that a later PATCH of the row is not refused for a value nobody sent).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _scrub_table(table: str) -> None:
    bind = op.get_bind()
    text_of = "CAST(data AS TEXT)"
    find = (
        f"strpos({text_of}, :nul) > 0" if bind.dialect.name == "postgresql" else f"instr({text_of}, :nul) > 0"
    )
    rows = bind.execute(sa.text(f"SELECT id, {text_of} FROM {table} WHERE {find}"), {"nul": "\\u0000"}).all()
    for row_id, raw in rows:
        data = json.loads(raw)
        clean = _scrub(data)
        if clean != data:
            value = "CAST(:data AS json)" if bind.dialect.name == "postgresql" else ":data"
            bind.execute(
                sa.text(f"UPDATE {table} SET data = {value} WHERE id = :id"),
                {"data": json.dumps(clean), "id": row_id},
            )


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True))
    for table in ("users", "teams"):
        _scrub_table(table)


def downgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("display")
