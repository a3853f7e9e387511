"""A plan for people, like Terraform's but grouped per object: names first, then ids.

    + team "Production LLM Evals"                      ext 00g1 · id 6f2c…
    ~ team "eng" → "Engineering"
    + member bob@example.com to "Engineering"
    - member carol@example.com from "Engineering"
    + user alice@example.com "Alice Liddell"
    ~ user alice@example.com displayName "A" → "Alice"
    ! deactivate carol@example.com

Rendered from the serialised plan (`Plan.to_dict`, also what `SyncRun.plan` keeps), so
`syncd plan` and `syncd runs show` print the same lines. Lines of one team or user are
adjacent: teams by name, each followed by its member changes, then users by name. Every
name is `safe` text in a `Text` (never markup). Long plans stop after `limit` lines with
"… and N more".
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from rich.console import Console
from rich.text import Text

from cli.output import console, safe

#: lines of a plan shown unless --all
PLAN_LINES = 40
#: notes of a plan shown unless --all
NOTES = 20

_PHRASES = (
    ("create_user", "user", "to create"),
    ("update_user", "user", "to update"),
    ("reactivate_user", "user", "to reactivate"),
    ("deactivate_user", "user", "to deactivate"),
    ("create_team", "team", "to create"),
    ("rename_team", "team", "to rename"),
    ("restore_team", "team", "to restore"),
    ("archive_team", "team", "to archive"),
    ("add_members", "membership", "to add"),
    ("remove_members", "membership", "to remove"),
)
_STYLE = {"+": "green", "~": "yellow", "-": "red", "!": "bold red"}


def summary(counts: dict[str, int]) -> str:
    """`3 users to create, 328 to deactivate; 40 memberships to remove` (kinds with a count)."""
    groups: dict[str, list[str]] = {}
    for kind, noun, verb in _PHRASES:
        n = counts.get(kind, 0)
        if n:
            part = groups.setdefault(noun, [])
            part.append(f"{n:,} {noun}{'' if n == 1 else 's'} {verb}" if not part else f"{n:,} {verb}")
    return "; ".join(", ".join(parts) for parts in groups.values()) or "no changes"


def _q(name: Any) -> str:
    return f'"{safe(name)}"' if name is not None else "(none)"


def _ids(ext: Any, store_id: Any) -> str:
    parts = [f"ext {safe(ext)}" if ext else "", f"id {safe(store_id)}" if store_id else ""]
    return " · ".join(p for p in parts if p)


def _line(sign: str, words: str, ids: str = "") -> Text:
    t = Text()
    t.append(sign, style=_STYLE[sign])
    t.append(" " + words)
    if ids:
        t.append("  " + ids, style="dim")
    return t


def _user_label(u: dict[str, Any]) -> str:
    return safe(u.get("user_name") or u.get("external_id") or "?")


def count(plan: dict[str, Any]) -> int:
    """How many lines `lines` yields, without making them."""
    members = sum(len(m.get("users") or m.get("user_external_ids") or ()) for m in plan.get("members") or ())
    return len(plan.get("users") or ()) + len(plan.get("teams") or ()) + members


def lines(plan: dict[str, Any]) -> Iterator[Text]:
    """Every line of the plan, grouped per object (teams with their members, then users)."""
    teams: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for t in plan.get("teams") or ():
        teams.setdefault(t["external_id"], []).append(t)
        names[t["external_id"]] = t.get("display_name") or t["external_id"]
    members: dict[str, list[dict[str, Any]]] = {}
    for m in plan.get("members") or ():
        members.setdefault(m["team_external_id"], []).append(m)
        names.setdefault(m["team_external_id"], m.get("team_name") or m["team_external_id"])
    for ext in sorted(names, key=lambda e: (names[e].casefold(), e)):
        for t in teams.get(ext, ()):
            yield _team_line(t)
        for m in sorted(members.get(ext, ()), key=lambda m: m.get("kind") != "add_members"):
            yield from _member_lines(m, names[ext])
    users = sorted(
        plan.get("users") or (), key=lambda u: (_user_label(u).casefold(), u.get("external_id") or "")
    )
    for u in users:
        yield _user_line(u)


def _team_line(t: dict[str, Any]) -> Text:
    ids = _ids(t.get("external_id"), t.get("store_id"))
    name = _q(t.get("display_name"))
    kind = t.get("kind")
    if kind == "create_team":
        return _line("+", f"team {name}", ids)
    if kind == "rename_team":
        return _line("~", f"team {_q(t.get('previous_name'))} → {name}", ids)
    if kind == "restore_team":
        return _line("+", f"restore team {name}", ids)
    return _line("!", f"archive team {name}", ids)


def _member_lines(m: dict[str, Any], team: str) -> Iterator[Text]:
    users = m.get("users") or [{"external_id": e} for e in m.get("user_external_ids") or ()]
    users = sorted(users, key=lambda u: (_user_label(u).casefold(), u.get("external_id") or ""))
    add = m.get("kind") == "add_members"
    for u in users:
        where = f"to {_q(team)}" if add else f"from {_q(team)}"
        yield _line(
            "+" if add else "-",
            f"member {_user_label(u)} {where}",
            _ids(u.get("external_id"), u.get("store_id")),
        )


def _user_line(u: dict[str, Any]) -> Text:
    ids = _ids(u.get("external_id"), u.get("store_id"))
    name, kind = _user_label(u), u.get("kind")
    if kind == "create_user":
        shown = (u.get("user") or {}).get("display_name")
        return _line("+", f"user {name}" + (f" {_q(shown)}" if shown else ""), ids)
    if kind == "update_user":
        changes = u.get("changes") or {f: [None, None] for f in u.get("fields") or ()}
        what = ", ".join(f"{safe(attr)} {_q(old)} → {_q(new)}" for attr, (old, new) in changes.items())
        return _line("~", f"user {name} {what}", ids)
    if kind == "reactivate_user":
        return _line("+", f"reactivate {name}", ids)
    return _line("!", f"deactivate {name}", ids)


def _print_line(out: Console, line: Text) -> None:
    """One line per change: on a terminal cut at its width with "…" (names come first, so the
    ids go first); elsewhere (a file, a pipe) whole."""
    if out.is_terminal:
        out.print(line, no_wrap=True, overflow="ellipsis", crop=True)
    else:
        out.print(line, soft_wrap=True)


def show_plan(plan: dict[str, Any], *, limit: int | None = PLAN_LINES, out: Console | None = None) -> None:
    """The summary, then at most `limit` lines (None: all) and "… and N more"."""
    out = out or console()
    out.print(Text("  plan: " + summary(plan.get("counts") or {}), style="bold"))
    shown = 0
    for line in lines(plan) if limit is None else islice(lines(plan), limit):
        _print_line(out, Text("    ") + line)
        shown += 1
    extra = count(plan) - shown
    if extra > 0:
        out.print(Text(f"    … and {extra:,} more (--all shows every change)", style="dim"))
    notes = list(plan.get("notes") or ())
    for note in notes if limit is None else notes[:NOTES]:
        out.print(Text("  note: ", style="yellow") + Text(safe(note)))
    if limit is not None and len(notes) > NOTES:
        out.print(Text(f"  … and {len(notes) - NOTES:,} more notes (--all shows them)", style="dim"))
