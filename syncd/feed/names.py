"""Name lookups by id for the feed: one statement per `LOOKUP` ids (a JSON parameter on
SQLite, an array on PostgreSQL), on a Session or a Connection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

#: ids per lookup statement
LOOKUP = 20_000


def names(bind: Session | Connection, table: str, column: str, ids: Iterable[str]) -> dict[str, str]:
    """id → `column` for those of `ids` that exist in `table` ("users" or "teams")."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    pg = dialect.name == "postgresql"
    out: dict[str, str] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), LOOKUP):
        part = ordered[i : i + LOOKUP]
        if pg:
            sql = (
                f"SELECT t.id, t.{column} FROM unnest(CAST(:ids AS varchar[])) AS x(id) "
                f"JOIN {table} AS t ON t.id = x.id"
            )
            params: dict[str, Any] = {"ids": part}
        else:
            sql = (
                f"SELECT t.id, t.{column} FROM json_each(:ids) AS x "
                f"CROSS JOIN {table} AS t WHERE t.id = x.value"
            )
            params = {"ids": json.dumps(part)}
        out.update((k, v) for k, v in bind.execute(text(sql), params).all())
    return out
