"""Human output: hostile names (from the store, SCIM and a connector) are shown, never obeyed;
tables fit 80 columns without splitting words; JSON carries real values; show commands."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cli.output import esc, safe
from syncd.scim import create_app
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Directory, Membership, SyncRun, Team, User, UserEmail
from tests.cli.conftest import Cli, Review

#: what must never reach a terminal raw: C0 (but newline), DEL, C1, bidi embeddings/overrides/isolates
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: names a hostile IdP or SCIM client can send and the service stores (bidirectional controls,
#: which are not C0/C1 controls, plus Rich markup; C0 and C1 are refused or cleaned by its limits)
HOSTILE = "[/x] [link=https://evil.example]click[/link] [bold]\u2067\u202egnp.exe"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("a\x00b\x7fc\x9bd", "a\\x00b\\x7fc\\x9bd"),
        ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
        ("\u202eevil\u2066", "\\u202eevil\\u2066"),
        ("[/x] [link=https://e]y[/link]", "[/x] [link=https://e]y[/link]"),  # not markup in a Text
        ("Zoë 日本", "Zoë 日本"),
    ],
)
def test_safe_makes_every_control_character_visible(raw: str, shown: str) -> None:
    assert safe(raw) == shown
    assert not RAW.search(safe(raw))


def test_esc_escapes_markup_for_markup_strings() -> None:
    assert esc("[/x]") == "\\[/x]" and esc("\x1b") == "\\x1b"


def clean(result: Result) -> str:
    """The output of a command that must have succeeded, with no raw control character."""
    assert result.exit_code == 0, result.output
    out = result.stdout + result.stderr
    assert not RAW.search(out), repr(RAW.search(out))
    return out


def _hostile_rows(engine: Engine) -> None:
    """Rows as an older syncd (or a store written around the service) could hold them."""
    with session_scope(engine) as s:
        s.add(Directory(name="evil", kind="graph"))
        s.flush()
        for uid, name, display in (
            ("h1", "[/x]", "\x1b[31mred\x1b[0m\x1b]8;;https://evil.example\x07link\x1b]8;;\x07"),
            ("h2", "[link=https://evil.example]click[/link]", "[/]\u202eevil"),
        ):
            s.add(
                User(
                    id=uid,
                    directory="evil",
                    user_name=name,
                    user_name_key=name.casefold(),
                    display_name=display,
                )
            )
        s.add(
            Team(
                id="ht",
                directory="evil",
                display_name="[/x]\x1b[2J",
                display_name_key="[/x]\x1b[2j",
                member_count=1,
            )
        )
        s.flush()
        s.add(Membership(team_id="ht", user_id="h1", directory="evil", source="pull"))
        s.add(
            AuditEvent(
                directory="evil",
                actor="pull:[/x]",
                action="user.create",
                resource_type="user",
                resource_id="h2",
            )
        )


def test_hostile_names_in_the_store_are_shown_not_obeyed(store_cli: Cli, engine: Engine) -> None:
    _hostile_rows(engine)
    out = clean(store_cli("users", "list"))
    assert "[/x]" in out and "[link=https://evil.example]click[/link]" in out and "\\x1b[31mred" in out
    assert "\\u202eevil" in out
    assert "[/x]\\x1b[2J" in clean(store_cli("teams", "list", "--members"))
    assert "\\x1b[31mred" in clean(store_cli("users", "show", "[/X]"))
    assert "[/x]" in clean(store_cli("teams", "show", "h" + "t"))
    assert "[link=https://evil.example]click[/link]" in clean(store_cli("audit"))
    # JSON keeps the stored values exactly (escaped by JSON itself)
    rows = store_cli.json("users", "list", "-d", "evil")
    assert {r["display_name"] for r in rows} >= {"[/]\u202eevil"}


def test_hostile_names_from_scim_are_shown_not_obeyed(store_cli: Cli, engine: Engine) -> None:
    with session_scope(engine) as s:
        _, secret = tokens.create_token(s, directory="push", name="[/x]")
    client = TestClient(create_app(engine, public_url="http://testserver"))
    auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
    user = client.post(
        "/scim/v2/Users",
        headers=auth,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "[/x]@e",
            "displayName": HOSTILE,
        },
    )
    assert user.status_code == 201, user.text
    group = client.post(
        "/scim/v2/Groups",
        headers=auth,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": HOSTILE,
            "members": [{"value": user.json()["id"]}],
        },
    )
    assert group.status_code == 201, group.text
    for args in (("users", "list"), ("teams", "list", "--members"), ("audit",), ("token", "list")):
        out = clean(store_cli(*args))
        assert "[/x]" in out, args
    out = clean(store_cli("teams", "show", HOSTILE))
    assert "[link=https://evil.example]click[/link]" in out and "\\u2067\\u202egnp.exe" in out
    assert "[/x]@e" in clean(store_cli("users", "show", "[/x]@e"))


def test_hostile_names_from_a_connector_are_shown_not_obeyed(review: Review) -> None:
    tenant = review.fake.tenant
    group = sorted(tenant.groups.values(), key=lambda g: g.name)[0]
    tenant.rename_group(group.id, HOSTILE)
    user = next(iter(tenant.transitive_user_ids(group.id)))
    tenant.update_user(user, given_name="[/x]", family_name="\u202e[link=https://evil.example]x[/link]")
    plan = clean(review.cli("plan"))
    assert f'+ team "{safe(HOSTILE)}"' in plan
    assert clean(review.cli("run", "--once"))
    for args in (("users", "list"), ("teams", "list"), ("audit",), ("runs", "show", "1")):
        assert "[/x]" in clean(review.cli(*args)), args
    shown = clean(review.cli("teams", "show", HOSTILE))
    assert tenant.users[user].user_name in shown
    login = clean(review.cli("login-sync", review.directory, tenant.users[user].user_name))
    assert f"  {safe(HOSTILE)}  pull" in login
    assert "\\u202e[link=https://evil.example]x[/link]" in clean(
        review.cli("users", "show", tenant.users[user].user_name)
    )


def test_tables_fit_80_columns_without_splitting_words(
    store_cli: Cli, engine: Engine, seeded: Engine
) -> None:
    with session_scope(engine) as s:
        for i, (name, display) in enumerate(
            (
                ("maximilian.featherstone@research.example", "Maximilian Featherstone-Haugh"),
                ("production-llm-evals-bot@example.com", "Production LLM Evaluation Service"),
            )
        ):
            s.add(
                User(id=f"w{i}", directory="entra", user_name=name, user_name_key=name, display_name=display)
            )
        s.add(
            Team(
                id="tw",
                directory="entra",
                display_name="Production LLM Evals",
                display_name_key="production llm evals",
            )
        )
    result = store_cli("users", "list", env={"COLUMNS": "80"})
    out = clean(result)
    assert max(len(line) for line in out.splitlines()) <= 80
    for word in (
        "maximilian.featherstone@research.example",
        "production-llm-evals-bot@example.com",
        "Featherstone-Haugh",
        "Evaluation",
        "Service",
        "alice@example.com",
    ):
        assert word in out, word
    teams = clean(store_cli("teams", "list", env={"COLUMNS": "80"}))
    assert "Production LLM Evals" in teams or all(w in teams for w in ("Production", "LLM", "Evals"))
    audit = clean(store_cli("audit", env={"COLUMNS": "80"}))
    assert "team.members.add" in audit and max(len(line) for line in audit.splitlines()) <= 80
    with session_scope(engine) as s:
        tokens.create_token(s, directory=None, kind="admin", name="gateway")
        tokens.create_token(s, directory="entra", name="entra production")
    for args, words in (
        (("token", "list"), ("gateway", "admin", "entra", "production", "never")),
        (("teams", "show", "Engineering"), ("alice@example.com", "Bob@example.com", "pull")),
        (("users", "show", "alice@example.com"), ("alice.old@example.com", "Engineering")),
    ):
        out = clean(store_cli(*args, env={"COLUMNS": "80"}))
        assert max(len(line) for line in out.splitlines()) <= 80, args
        for word in words:
            assert re.search(rf"(^|\s){re.escape(word)}(\s|$|,)", out, re.M), (args, word)


def test_users_list_has_few_columns_and_no_email_that_repeats_the_name(
    store_cli: Cli, seeded: Engine
) -> None:
    out = clean(store_cli("users", "list"))
    header = next(line for line in out.splitlines() if "user name" in line)
    assert header.split() == ["user", "name", "display", "name", "directory"]
    with session_scope(seeded) as s:
        s.add(User(id="e1", directory="entra", user_name="erin", user_name_key="erin"))
        s.flush()
        s.add(UserEmail(user_id="e1", value="erin@example.com", value_key="erin@example.com", primary=True))
    out = clean(store_cli("users", "list"))
    assert "email" in out and "erin@example.com" in out
    assert out.count("alice@example.com") == 1  # not repeated in the email column
    assert "u1" not in out.split() and "ext-u1" not in out  # ids are for `users show` and --json


def test_help_shows_flags_without_a_type(cli: Cli) -> None:
    for args in (["--help"], ["users", "list", "--help"], ["plan", "--help"], ["runs", "approve", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and "--json" in result.stdout
        assert "<bool>" not in result.stdout, args


def test_db_status_has_no_empty_header_row(store_cli: Cli, seeded: Engine) -> None:
    out = clean(store_cli("db", "status"))
    assert "┃" not in out and "━" not in out
    assert re.search(r"^up to date\s+yes\s*$", out, re.M)


def test_runs_json_has_utc_timestamps_and_counts_as_an_object(store_cli: Cli, seeded: Engine) -> None:
    with session_scope(seeded) as s:
        s.add(SyncRun(directory="entra", trigger="cli", outcome="applied", counts={"create_user": 2}))
    (run,) = store_cli.json("runs")
    assert run["started_at"].endswith("+00:00")
    assert run["counts"] == {"create_user": 2} and "changes" not in run
    table = clean(store_cli("runs"))
    assert "+2 users" in table


def test_runs_list_says_how_many_there_are(store_cli: Cli, seeded: Engine) -> None:
    with session_scope(seeded) as s:
        for _ in range(3):
            s.add(SyncRun(directory="entra", trigger="cli", outcome="applied"))
    result = store_cli("runs", "--limit", "2")
    assert "showing 2 of 3 runs; --all shows every one" in clean(result)
    assert len(store_cli.json("runs", "--limit", "2", "--all")) == 3


def test_token_list_shows_admin_tokens_and_revoke_says_what_it_revoked(
    store_cli: Cli, seeded: Engine
) -> None:
    with session_scope(seeded) as s:
        admin, _ = tokens.create_token(s, directory=None, kind="admin", name="gateway")
        scim, _ = tokens.create_token(s, directory="entra", name="entra prod")
        admin_id, scim_id = admin.id, scim.id
    listed = {t["id"]: t for t in store_cli.json("token", "list")}
    assert listed[admin_id]["kind"] == "admin" and listed[scim_id]["kind"] == "scim"
    table = clean(store_cli("token", "list"))
    assert "admin" in table and "gateway" in table
    revoked = clean(store_cli("token", "revoke", admin_id))
    assert f"revoked admin token {admin_id}" in revoked and "None" not in revoked
    assert "of directory entra" in clean(store_cli("token", "revoke", scim_id))


def test_users_show_gives_attributes_and_teams_with_their_source(store_cli: Cli, seeded: Engine) -> None:
    out = clean(store_cli("users", "show", "ALICE@example.com"))
    assert "alice.old@example.com" in out and "Engineering" in out and "pull" in out and "u1" in out
    data = store_cli.json("users", "show", "u2")
    assert data["user"]["user_name"] == "Bob@example.com"
    assert [(t["display_name"], t["source"]) for t in data["teams"]] == [("Engineering", "pull")]
    missing = store_cli("users", "show", "nobody")
    assert missing.exit_code == 2 and "no user 'nobody'" in missing.stderr


def test_users_show_asks_for_a_directory_when_a_name_is_in_several(store_cli: Cli, seeded: Engine) -> None:
    with session_scope(seeded) as s:
        s.add(
            User(id="dup", directory="okta", user_name="alice@example.com", user_name_key="alice@example.com")
        )
    r = store_cli("users", "show", "alice@example.com")
    assert r.exit_code == 2 and "entra, okta" in r.stderr and "--directory" in r.stderr
    assert store_cli.json("users", "show", "alice@example.com", "-d", "okta")["user"]["id"] == "dup"


def test_teams_show_pages_members_with_their_source(store_cli: Cli, seeded: Engine) -> None:
    out = clean(store_cli("teams", "show", "engineering"))
    assert "alice@example.com" in out and "Bob@example.com" in out and "pull 2" in out
    paged = store_cli("teams", "show", "Engineering", "--limit", "1")
    text = clean(paged)
    assert "alice@example.com" in text and "Bob@example.com" not in text
    assert "showing 1 of 2 members; --all shows every one" in text
    data = store_cli.json("teams", "show", "t1", "--limit", "1", "--all")
    assert [m["user_name"] for m in data["members"]] == ["alice@example.com", "Bob@example.com"]
    assert data["sources"] == {"pull": 2}


def test_audit_shows_names_and_json_keeps_ids(store_cli: Cli, seeded: Engine) -> None:
    with session_scope(seeded) as s:
        s.add(
            AuditEvent(
                directory="entra",
                actor="scim:t",
                action="user.delete",
                resource_type="user",
                resource_id="gone",
                before={"userName": "gone@example.com"},
            )
        )
    out = clean(store_cli("audit"))
    assert "alice@example.com" in out and "dave@example.com" in out and "gone@example.com" in out
    assert "u1" not in out.split() and "gone" not in out.split()  # names, not ids
    events = store_cli.json("audit")
    by_id = {e["resource_id"]: e for e in events}
    assert (
        by_id["u1"]["resource_name"] == "alice@example.com"
        and by_id["gone"]["resource_name"] == "gone@example.com"
    )
    assert json.dumps(events)  # plain JSON
