"""Output: Rich tables for people, JSON for scripts (`--json`: an array of objects for lists)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    fmt: Callable[[Any], str] | None = None
    style: str | None = None


def jsonable(obj: Any) -> Any:
    """Dataclasses, datetimes and paths as plain JSON values (datetimes ISO 8601)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def print_json(data: Any) -> None:
    typer.echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def console(*, err: bool = False) -> Console:
    return Console(stderr=err, highlight=False)


def table(
    rows: Sequence[Any], columns: Sequence[Column], *, title: str | None = None, empty: str = "none"
) -> None:
    """Rows (dataclasses or mappings) as one Rich table; `empty` is printed when there are none."""
    out = console()
    if not rows:
        out.print(f"[dim]{empty}[/dim]")
        return
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c.title, style=c.style, overflow="fold")
    for row in rows:
        get = row.get if isinstance(row, Mapping) else lambda k, r=row: getattr(r, k)
        t.add_row(*[(c.fmt or text)(get(c.key)) for c in columns])
    out.print(t)


def emit(rows: Sequence[Any], columns: Sequence[Column], *, as_json: bool, **kw: Any) -> None:
    if as_json:
        print_json(list(rows))
    else:
        table(rows, columns, **kw)


def note(message: str) -> None:
    """A remark for people (stderr, so `--json` output stays clean)."""
    console(err=True).print(f"[dim]{message}[/dim]")
