"""Plan lines for people: one per change, grouped per object, names first, then ids."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cli.planview import lines, show_plan, summary

PLAN = {
    "format": 2,
    "counts": {
        "create_team": 1,
        "update_user": 1,
        "deactivate_user": 1,
        "remove_members": 1,
        "add_members": 1,
    },
    "notes": ["user u9 not written: userName 'x' is held by user u8"],
    "users": [
        {
            "kind": "update_user",
            "external_id": "u-a",
            "store_id": "id-a",
            "user_name": "alice@x",
            "fields": ["displayName"],
            "changes": {"displayName": ["A", "Alice"]},
        },
        {"kind": "deactivate_user", "external_id": "u-c", "store_id": "id-c", "user_name": "carol@x"},
        {"kind": "create_user", "external_id": "u-d", "user_name": "dan@x", "user": {"display_name": "Dan"}},
        {"kind": "reactivate_user", "external_id": "u-e", "store_id": "id-e", "user_name": "erin@x"},
    ],
    "teams": [
        {"kind": "create_team", "external_id": "g-p", "display_name": "Production LLM Evals"},
        {"kind": "rename_team", "external_id": "g-e", "display_name": "eng", "previous_name": "Eng"},
        {"kind": "archive_team", "external_id": "g-o", "display_name": "Old", "store_id": "id-o"},
    ],
    "members": [
        {
            "kind": "remove_members",
            "team_external_id": "g-e",
            "team_name": "eng",
            "users": [{"external_id": "u-b", "store_id": "id-b", "user_name": "bob@x"}],
        },
        {
            "kind": "add_members",
            "team_external_id": "g-p",
            "team_name": "Production LLM Evals",
            "users": [{"external_id": "u-d", "store_id": None, "user_name": "dan@x"}],
        },
    ],
}


def test_each_kind_of_change_reads_like_a_terraform_line_grouped_per_object() -> None:
    got = [t.plain for t in lines(PLAN)]
    assert got == [
        '~ team "Eng" → "eng"  ext g-e',
        '- member bob@x from "eng"  ext u-b · id id-b',
        '! archive team "Old"  ext g-o · id id-o',
        '+ team "Production LLM Evals"  ext g-p',
        '+ member dan@x to "Production LLM Evals"  ext u-d',
        '~ user alice@x displayName "A" → "Alice"  ext u-a · id id-a',
        "! deactivate carol@x  ext u-c · id id-c",
        '+ user dan@x "Dan"  ext u-d',
        "+ reactivate erin@x  ext u-e · id id-e",
    ]


def test_a_plan_kept_by_an_older_syncd_still_renders_by_id() -> None:
    old = {
        "users": [{"kind": "deactivate_user", "external_id": "u-c", "store_id": "id-c", "fields": []}],
        "teams": [],
        "members": [{"kind": "remove_members", "team_external_id": "g-e", "user_external_ids": ["u-b"]}],
    }
    assert [t.plain for t in lines(old)] == [
        '- member u-b from "g-e"  ext u-b',
        "! deactivate u-c  ext u-c · id id-c",
    ]


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ({}, "no changes"),
        ({"create_user": 1}, "1 user to create"),
        (
            {"create_user": 3, "deactivate_user": 1328, "remove_members": 2},
            "3 users to create, 1,328 to deactivate; 2 memberships to remove",
        ),
    ],
)
def test_summary(counts: dict[str, int], text: str) -> None:
    assert summary(counts) == text


def _render(plan: dict, limit: int | None) -> str:
    buf = io.StringIO()
    show_plan(plan, limit=limit, out=Console(file=buf, width=80, force_terminal=False))
    return buf.getvalue()


def test_long_plans_stop_with_and_n_more_and_all_shows_every_line() -> None:
    paged = _render(PLAN, 3)
    assert paged.count("\n    ") == 3 + 1 and "… and 6 more (--all shows every change)" in paged
    every = _render(PLAN, None)
    assert "more (--all" not in every and "+ reactivate erin@x" in every
    assert "note: user u9 not written" in every
