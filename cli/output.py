"""Output: Rich tables for people, JSON for scripts (`--json`: an array of objects for lists).

Names come from IdPs and SCIM clients and are hostile input (DESIGN.md rule 8). Invariant: no
stored string reaches the terminal as Rich markup or as a control character.
- Table cells and plan lines are `rich.text.Text` objects, which Rich never parses as markup;
  text that is interpolated into a markup string goes through `esc`.
- `safe` shows every control character (C0, DEL, C1, bidirectional overrides and isolates) as a
  visible escape (`\\x1b`, `\\u202e`), so an ESC sequence cannot recolour, move the cursor or
  hide text, and a name that contains one never looks like a name that doesn't.
JSON output carries the stored values unchanged (`json.dumps` escapes control characters).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.table import Table
from rich.text import Text

#: C0 controls, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates that
#: can make text read differently from what it is (Trojan Source, CVE-2021-42574)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: Any) -> str:
    """`value` as a single line of plain text with every control character made visible."""
    return _CONTROL.sub(_visible, str(value))


def esc(value: Any) -> str:
    """`value` for interpolation into a Rich markup string: `safe`, then markup-escaped."""
    return _markup_escape(safe(value))


#: widest a name column grows before it wraps (80-column terminals keep room for the rest)
NAME_WIDTH = 40


@dataclass(frozen=True)
class Column:
    """A table column, laid out by `cli.layout` at the terminal's width.

    `wrap=False` marks a fixed column (ids, timestamps, counts, short words): always its full
    width, on one line. Other columns, and a `wrap=False` one given `max_width` (a name that
    should stay on one line up to that width), share the remaining width and break between
    words, or inside a long word after `.`, `-`, `@`, `_`, `/` or `:`; nothing is cut
    short with "…". `hide` > 0: left out, highest first, when the table cannot fit otherwise.
    """

    key: str
    title: str
    fmt: Callable[[Any], str] | None = None
    style: str | None = None
    wrap: bool = True
    max_width: int | None = None
    hide: int = 0

    @property
    def fixed(self) -> bool:
        return not self.wrap and self.max_width is None


def jsonable(obj: Any) -> Any:
    """Dataclasses, datetimes and paths as plain JSON values (datetimes ISO 8601, in UTC with
    an explicit offset; a naive datetime is UTC, as the store keeps them)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return utc(obj).isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def print_json(data: Any) -> None:
    from typer import echo  # as every other command prints (stream encoding handled alike)

    echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def when(ts: datetime | None) -> str:
    return utc(ts).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def day(ts: datetime | None) -> str:
    """The UTC date of `ts`, for columns where the time does not fit."""
    return utc(ts).strftime("%Y-%m-%d") if ts else ""


def text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def console(*, err: bool = False) -> Console:
    return Console(stderr=err, highlight=False, emoji=False)


def cell(value: Any, style: str | None = None) -> Text:
    """A table cell that is never parsed as markup, with control characters made visible."""
    return Text(safe(value), style=style or "")


def table(
    rows: Sequence[Any], columns: Sequence[Column], *, title: str | None = None, empty: str = "none"
) -> None:
    """Rows (dataclasses or mappings) as one Rich table at the terminal's width (see
    `cli.layout`); `empty` is printed when there are none."""
    from cli import layout

    out = console()
    if not rows:
        out.print(Text(empty, style="dim"))
        return
    cells = []
    for row in rows:
        get = row.get if isinstance(row, Mapping) else lambda k, r=row: getattr(r, k)
        cells.append([safe((c.fmt or text)(get(c.key))) for c in columns])
    shown = list(range(len(columns)))
    while True:
        col_cells = [[r[i] for r in cells] for i in shown]
        sized = layout.widths(
            [layout.natural(cc, columns[i].title) for i, cc in zip(shown, col_cells, strict=True)],
            [layout.longest_word(cc, columns[i].title) for i, cc in zip(shown, col_cells, strict=True)],
            [layout.minimum(cc, columns[i].title) for i, cc in zip(shown, col_cells, strict=True)],
            [columns[i].fixed for i in shown],
            [columns[i].max_width for i in shown],
            out.width - layout.overhead(len(shown)),
        )
        hideable = [i for i in shown if columns[i].hide]
        if sized is not None or not hideable:
            break
        shown.remove(max(hideable, key=lambda i: columns[i].hide))
    t = Table(
        title=Text(safe(title)) if title else None,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for n, i in enumerate(shown):
        c = columns[i]
        w = sized[n] if sized else None
        header = Text("\n".join(layout.wrap(c.title, w)) if w else c.title)
        t.add_column(header, style=c.style, no_wrap=sized is not None, overflow="fold", width=w)
    for r in cells:
        t.add_row(
            *[Text("\n".join(layout.wrap(r[i], sized[n])) if sized else r[i]) for n, i in enumerate(shown)]
        )
    out.print(t)
    if len(shown) < len(columns):
        left_out = ", ".join(c.title for i, c in enumerate(columns) if i not in shown)
        note(f"{left_out} left out to fit {out.width} columns; a wider terminal or --json shows them")


def kv(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """Key/value lines (no header row): one record for people; a long value wraps as a table
    cell does (`cli.layout`), never inside a word that fits."""
    from cli import layout

    out = console()
    rows = [(key, safe(text(value))) for key, value in pairs]
    room = out.width - max((len(k) for k, _ in rows), default=0) - 2
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for key, value in rows:
        t.add_row(Text(key), Text("\n".join(layout.wrap(value, room)) if room >= layout.MIN_FLEX else value))
    if title:
        out.print(Text(safe(title), style="bold underline"))
    out.print(t)


def emit(rows: Sequence[Any], columns: Sequence[Column], *, as_json: bool, **kw: Any) -> None:
    if as_json:
        print_json(list(rows))
    else:
        table(rows, columns, **kw)


def note(message: str) -> None:
    """A remark for people (stderr, so `--json` output stays clean); never parsed as markup."""
    console(err=True).print(Text(safe(message), style="dim"))


def shown_of(shown: int, total: int, what: str, *, more: str = "--all shows every one") -> None:
    """The note a listing cut at `--limit` prints: `showing 100 of 2,345 users; --all …`."""
    if total > shown:
        note(f"showing {shown} of {total:,} {what}; {more}")


def plain_flags() -> None:
    """Typer 0.29's rich help labels every flag `<bool>` as if it took a value; a flag takes
    none, so its type column is left empty (`--json`, not `--json <bool>`)."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_syncd_plain", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else original(self, ctx)

    display_type_rich._syncd_plain = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
