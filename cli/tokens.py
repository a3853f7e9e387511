"""`syncd token create|list|revoke`: bearer tokens for the SCIM endpoint, one directory each.

The secret is printed once, at creation, and only its SHA-256 is stored; `list` shows the
non-secret prefix (`syncd_ab12cd`) that `revoke` also accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.output import Column, console, day, emit, note, print_json, safe, when
from syncd.config import DIRECTORY_NAME, parse_duration
from syncd.service import tokens as service
from syncd.service.errors import InvalidValue, NotFound
from syncd.store.engine import session_scope
from syncd.store.models import ScimToken

token = typer.Typer(name="token", help="Bearer tokens for IdPs pushing through SCIM.", no_args_is_help=True)

COLUMNS = (
    Column("id", "id", style="bold", wrap=False),
    Column("kind", "kind", wrap=False),
    Column("directory", "directory", fmt=lambda v: v or "—"),
    Column("name", "name"),
    Column("status", "status", wrap=False),
    Column("expires_at", "expires", fmt=lambda v: day(v) if v else "never", wrap=False),
    Column("last_used_at", "last used", fmt=lambda v: day(v) if v else "never", wrap=False),
)


def register(app: typer.Typer) -> None:
    app.add_typer(token)


def tenant_url(public_url: str) -> str:
    return public_url.rstrip("/") + "/scim/v2"


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _row(t: ScimToken, now: datetime) -> dict[str, Any]:
    expires, revoked = _utc(t.expires_at), _utc(t.revoked_at)
    status = "revoked" if revoked else "expired" if expires and expires <= now else "active"
    return {
        "id": t.id,
        "prefix": t.prefix,
        "kind": t.kind,
        "directory": t.directory,
        "name": t.name,
        "status": status,
        "created_at": _utc(t.created_at),
        "expires_at": expires,
        "revoked_at": revoked,
        "last_used_at": _utc(t.last_used_at),
    }


def _expiry(value: str | None) -> timedelta | None:
    if value is None or value.strip().lower() in ("", "never"):
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    if seconds <= 0:
        raise typer.BadParameter("must be longer than 0s (or 'never')", param_hint="--expires")
    return timedelta(seconds=seconds)


@token.command("create")
def create_cmd(
    ctx: typer.Context,
    directory: Annotated[
        str | None,
        typer.Option("--directory", "-d", metavar="NAME", help="The directory this token writes."),
    ] = None,
    name: Annotated[str, typer.Option("--name", metavar="LABEL", help="A label, e.g. 'entra prod'.")] = "",
    expires: Annotated[
        str | None,
        typer.Option("--expires", metavar="DURATION", help="Lifetime like 90d or 12h (default: never)."),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="An admin API token (the daemon's /v1 API) instead.")
    ] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Create a SCIM token for one directory (or with --admin an admin API token); prints the
    token once."""
    st = state(ctx, config=config, json=json)
    if admin:
        if directory is not None:
            raise typer.BadParameter("an admin token has no directory", param_hint="--directory")
        _create_admin(st, name, _expiry(expires))
        return
    if directory is None:
        raise typer.BadParameter("give --directory NAME (or --admin)", param_hint="--directory")
    if not DIRECTORY_NAME.fullmatch(directory):
        raise typer.BadParameter(
            "use 1-64 of a-z 0-9 . _ -, starting with a letter or digit", param_hint="--directory"
        )
    lifetime = _expiry(expires)
    s = settings(st)
    _check_directory(s, directory)
    url = tenant_url(s.server.public_url)
    with open_store(st) as engine, session_scope(engine) as session:
        row, secret = service.create_token(
            session, directory=directory, kind="scim", name=name, expires_in=lifetime
        )
        info = _row(row, datetime.now(UTC))
    if st.json:
        print_json({"tenant_url": url, "token": secret, **info})
    else:
        typer.echo(f"Tenant URL:    {url}")
        typer.echo(f"Secret token:  {secret}")
        expiry = when(info["expires_at"]) if info["expires_at"] else "never"
        note(f"token {row.id} for directory {directory}, expires {expiry}")
        note("copy the token now: it is not stored and cannot be shown again")


def _check_directory(s: Any, directory: str) -> None:
    """A SCIM token writes one configured directory: refuse a name the config lacks, and warn
    (stderr) when it is a pull directory, which an IdP should push into only if it also
    provisions through SCIM (e.g. Okta's SCIM app next to the Okta API pull)."""
    where = s.source or "the config (no config file found)"
    d = s.directories.get(directory)
    if d is None:
        fail(
            f"no directory named {directory!r} in {where}",
            f'add a [directories.{directory}] table (kind = "scim" for an IdP that pushes) and rerun; '
            f"configured: {', '.join(s.directories) or 'none'}",
        )
    if d.kind != "scim":
        typer.echo(
            f"syncd: warning: {directory} is a pull directory (kind {d.kind}): with this token its IdP "
            "can also push through /scim/v2, and pulls and pushes then write the same rows; that is "
            'intended only if the IdP provisions this directory by SCIM too, else use a kind = "scim" '
            "directory",
            err=True,
        )


def _create_admin(st: Any, name: str, lifetime: timedelta | None) -> None:
    with open_store(st) as engine, session_scope(engine) as session:
        row, secret = service.create_token(
            session, directory=None, kind="admin", name=name, expires_in=lifetime
        )
        info = _row(row, datetime.now(UTC))
    if st.json:
        print_json({"token": secret, **info, "kind": "admin"})
    else:
        typer.echo(f"Admin token:  {secret}")
        note(f"admin token {row.id} for the daemon's /v1 API (Authorization: Bearer <token>)")
        note("copy the token now: it is not stored and cannot be shown again")


@token.command("list")
def list_cmd(
    ctx: typer.Context,
    directory: Annotated[
        str | None, typer.Option("--directory", "-d", metavar="NAME", help="Only this directory's tokens.")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List SCIM and admin tokens (never their secrets), oldest first; with --directory, only
    that directory's SCIM tokens. --json adds the prefix and the exact times."""
    st = state(ctx, config=config, json=json)
    now = datetime.now(UTC)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        rows = [_row(t, now) for t in service.list_tokens(session, directory=directory)]
    expiring = any(r["expires_at"] for r in rows)
    columns = [c for c in COLUMNS if expiring or c.key != "expires_at"]
    emit(rows, columns, as_json=st.json, title="tokens", empty="no tokens")


@token.command("revoke")
def revoke_cmd(
    ctx: typer.Context,
    token_ref: Annotated[str, typer.Argument(metavar="TOKEN", help="The token's id or printed prefix.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a token at once (idempotent); requests with it get 401 from then on."""
    st = state(ctx, config=config, json=json)
    with open_store(st) as engine:
        try:
            with session_scope(engine) as session:
                row = service.revoke_token(session, token=token_ref)
                info = _row(row, datetime.now(UTC))
        except NotFound:
            fail(f"no token {token_ref!r}", "`syncd token list` shows the ids and prefixes")
        except InvalidValue as exc:
            fail(exc.detail)
    if st.json:
        print_json(info)
    else:
        console().print(Text(revoked_text(info)))


def revoked_text(info: dict[str, Any]) -> str:
    """`revoked SCIM token ID (PREFIX…) of directory D`, or `revoked admin token ID (PREFIX…)`."""
    what = "admin token" if info["kind"] == "admin" else "SCIM token"
    where = f" of directory {safe(info['directory'])}" if info["directory"] else ""
    return f"revoked {what} {info['id']} ({info['prefix']}…){where}"
