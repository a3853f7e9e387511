"""Tables at 80 columns: no word split inside, no name cut short with "…", nothing wider than
the terminal (cli/layout.py), for the listings people read most, with long and hostile names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cli.layout import widths, wrap
from syncd.store.engine import session_scope
from syncd.store.models import AuditEvent, Directory, Membership, SyncRun, Team, User
from tests.cli.conftest import Cli

LONG_DIR = "entra-contoso-production-emea-west-europe"
LONG_USER = "maximilian.alexander.von-hohenzollern@research-division.example-corporation.com"
LONG_DISPLAY = "Maximilian Alexander von Hohenzollern-Sigmaringen"
LONG_TEAM = "Production LLM Evaluations and Red Teaming (EMEA, APAC, Americas)"
HOSTILE = "[/x] [link=https://evil.example]click[/link]"


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("Production LLM Evaluations", 15, ["Production LLM", "Evaluations"]),
        ("alice.anderson@corp.example.com", 16, ["alice.anderson@", "corp.example.com"]),
        ("entra-contoso-production", 15, ["entra-contoso-", "production"]),
        ("+1,234\u00a0users, -4\u00a0members", 20, ["+1,234 users,", "-4 members"]),
        ("a" * 25, 10, ["a" * 10, "a" * 10, "a" * 5]),  # no break at all: only then cut
        ("short", 10, ["short"]),
        ("", 10, [""]),
    ],
)
def test_wrap_breaks_between_words_then_after_punctuation(text: str, width: int, lines: list[str]) -> None:
    assert wrap(text, width) == lines


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        (93, [40, 33, 20]),  # everything fits
        (80, [40, 20, 20]),  # every longest word fits: the rest shared out
        (70, [32, 18, 20]),  # not every longest word fits: the narrow one first
        (30, None),  # not even the minimums beside the fixed column
    ],
)
def test_widths_keep_fixed_columns_and_give_whole_words_room_first(
    room: int, expected: list[int] | None
) -> None:
    # a user name (longest word 40, capped at 40), a display name (longest word 18), a timestamp
    assert (
        widths([40, 33, 20], [40, 18, 20], [10, 12, 20], [False, False, True], [40, None, None], room)
        == expected
    )


@pytest.fixture
def hostile(engine: Engine) -> Engine:
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        s.add(Directory(name=LONG_DIR, kind="graph"))
        s.flush()
        for uid, name, display in (
            ("h1", LONG_USER, LONG_DISPLAY),
            ("h2", HOSTILE, HOSTILE),
            ("h3", "bob@example.com", "Bob \x1b[31mRed"),
        ):
            s.add(
                User(
                    id=uid,
                    directory=LONG_DIR,
                    external_id=f"x{uid}",
                    user_name=name,
                    user_name_key=name.casefold(),
                    display_name=display,
                )
            )
        s.add(Team(id="ht", directory=LONG_DIR, display_name=LONG_TEAM, display_name_key="t", member_count=2))
        s.flush()
        s.add_all(
            [Membership(team_id="ht", user_id=u, directory=LONG_DIR, source="pull") for u in ("h1", "h2")]
        )
        run = SyncRun(
            directory=LONG_DIR,
            trigger="schedule",
            mode="apply",
            outcome="stopped",
            started_at=now,
            ended_at=now + timedelta(seconds=3),
            counts={"create_user": 1234, "deactivate_user": 300, "add_members": 4567, "remove_members": 89},
        )
        s.add(run)
        s.flush()
        for i, (kind, rid) in enumerate((("user", "h1"), ("team", "ht"), ("user", "h2"))):
            s.add(
                AuditEvent(
                    at=now - timedelta(minutes=i),
                    directory=LONG_DIR,
                    actor=f"pull:{LONG_DIR}",
                    action="team.members.add" if kind == "team" else "user.create",
                    resource_type=kind,
                    resource_id=rid,
                    sync_run_id=run.id,
                )
            )
    return engine


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("users", "list"), [*LONG_DISPLAY.split(), "[/x]", "bob@example.com", "\\x1b[31mRed"]),
        (("teams", "list", "--members"), LONG_TEAM.split()),
        (("runs",), ["+1,234", "users,", "!300", "deactivated,", "+4,567", "members,", "-89", "schedule"]),
        (("audit",), ["user.create", "team.members.add", *LONG_TEAM.split(), "[/x]"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_a_listing_at_80_columns_splits_no_word_and_cuts_no_name(
    hostile: Engine, store_cli: Cli, args: tuple[str, ...], words: list[str]
) -> None:
    result = store_cli(*args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    tokens = set(out.split())
    for word in words:
        assert word in tokens, (word, out)
    if args == ("users", "list"):  # the long name, first column, reads back whole down its lines
        firsts = "".join(line.split()[0] for line in out.splitlines() if line.strip())
        assert LONG_USER in firsts
        assert "\x1b" not in out and "\\x1b" in out
        assert "[link=" in out  # shown as typed, not made a link
    for line in out.splitlines():
        assert not re.search(r"\[link=https://evil\.example\]click\[/link\]\S", line)
