"""SQLite: `memberships` becomes a WITHOUT ROWID table, clustered on its primary key
(team_id, user_id). A rowid table keeps each membership twice, as a row under its rowid and as
an entry of the primary key's own index; clustered, the row is the index entry: one B-tree
fewer to write per membership (a pull's initial load writes a million or more) and about a
quarter less space. Columns, keys, foreign keys and the (user_id, team_id) index are as
before. PostgreSQL has no rowid tables: nothing to do there.

The table is rebuilt in the migration's transaction (create, copy in key order, drop, rename,
index): a crash leaves the old table or the new one, never neither.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "team_id, user_id, directory, source, created_at, display"
_TABLE = """CREATE TABLE {name} (
	team_id VARCHAR(64) NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	directory VARCHAR(128),
	source VARCHAR(16) NOT NULL,
	created_at DATETIME NOT NULL,
	display VARCHAR(512),
	PRIMARY KEY (team_id, user_id),
	FOREIGN KEY(team_id) REFERENCES teams (id) ON DELETE CASCADE,
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
){options}"""


def _rebuild(options: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(_TABLE.format(name="memberships_rebuilt", options=options))
    op.execute(
        f"INSERT INTO memberships_rebuilt ({_COLUMNS}) "
        f"SELECT {_COLUMNS} FROM memberships ORDER BY team_id, user_id"
    )
    op.execute("DROP TABLE memberships")
    op.execute("ALTER TABLE memberships_rebuilt RENAME TO memberships")
    op.execute("CREATE INDEX ix_memberships_user ON memberships (user_id, team_id)")


def upgrade() -> None:
    _rebuild(" WITHOUT ROWID")


def downgrade() -> None:
    _rebuild("")
