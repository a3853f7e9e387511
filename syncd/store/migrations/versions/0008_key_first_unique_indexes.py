"""The per-directory unique indexes lead with their key: (user_name_key, coalesce(directory,
'')) instead of (coalesce(directory, ''), user_name_key), and so for the users' and teams'
external ids and the teams' display names.

Both unique indexes of a table used to start with the same column, the directory. A lookup by
one key (`userName eq "x"`: directory and key) could then also be served by the other key's
index, reading every row of the directory and filtering them; PostgreSQL chose that plan on a
new, not yet analysed table (the two plans cost the same there), and a pooled connection kept
it as its prepared statement's plan while the table grew. A first SCIM provisioning cycle then
cost O(users) per lookup: measured 46 million index tuples read for 9,600 `userName` lookups
(about 2,400 a lookup) where it is one. With the key first, a lookup by a key can only use that
key's index. Uniqueness is the same (the same two columns).

What it costs: a list of a whole directory without a key filter (`GET /Users?startIndex=...`,
`service.common.list_scoped`) could read the directory through these indexes' prefix and now
reads the table; with one directory that is the same rows, with several it reads the others'
too. A directory-led index for it would bring back the tie above. On PostgreSQL the rebuild
locks `users` and `teams` while it runs (`db upgrade` runs before syncd starts).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (index, table, key column)
INDEXES = (
    ("ux_users_user_name", "users", "user_name_key"),
    ("ux_users_external_id", "users", "external_id"),
    ("ux_teams_display_name", "teams", "display_name_key"),
    ("ux_teams_external_id", "teams", "external_id"),
)


def _rebuild(key_first: bool) -> None:
    scope = sa.text("coalesce(directory, '')")
    for name, table, key in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [key, scope] if key_first else [scope, key], unique=True)


def upgrade() -> None:
    _rebuild(key_first=True)


def downgrade() -> None:
    _rebuild(key_first=False)
