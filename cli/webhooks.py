"""`syncd webhooks`: the configured webhooks and their delivery state; `test NAME` sends a
signed test event; `dead NAME` lists dead letters, `replay NAME` re-sends them; `secret`
makes a new signing secret."""

from __future__ import annotations

import base64
import os
import time
from typing import Annotated

import typer
from rich.markup import escape

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_UNREACHABLE
from cli.output import Column, emit, note, print_json, when
from syncd.config.delivery import WebhookSettings
from syncd.store.engine import session_scope
from syncd.store.models import WebhookDeadLetter
from syncd.webhooks.events import test_event
from syncd.webhooks.sender import Sender
from syncd.webhooks.status import dead_letters, statuses

webhooks = typer.Typer(
    name="webhooks",
    help="Signed webhooks that receive the change feed (\\[webhooks.NAME] in the config).",
    invoke_without_command=True,
)

NameArg = Annotated[str, typer.Argument(help="The webhook's name (\\[webhooks.NAME]).")]


def _esc(v: object) -> str:
    return escape(str(v)) if v not in (None, "") else "—"


COLUMNS = (
    Column("name", "webhook", style="bold", fmt=_esc),
    Column("url", "url", fmt=_esc),
    Column("events", "events", fmt=lambda v: ", ".join(v)),
    Column("lag_changes", "lag (changes)"),
    Column("lag_seconds", "lag (s)"),
    Column("delivered", "delivered"),
    Column("dead_letters", "dead letters"),
    Column("last_success_at", "last delivery", fmt=when),
    Column("last_error", "last error", fmt=_esc),
)
DEAD = (
    Column("id", "id"),
    Column("event_id", "event id", fmt=_esc),
    Column("kind", "kind"),
    Column("resource_id", "resource", fmt=_esc),
    Column("attempts", "attempts"),
    Column("created_at", "dead since", fmt=when),
    Column("error", "error", fmt=_esc),
)


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks)


def _hook(ctx: typer.Context, name: str) -> WebhookSettings:
    hooks = settings(state(ctx)).webhooks
    if name not in hooks:
        known = ", ".join(sorted(hooks)) or "none configured"
        fail(f"no webhook named {name!r} ({known})", "add [webhooks.NAME] to the config")
    return hooks[name]


def _sender(w: WebhookSettings) -> Sender:
    return Sender(w.url, w.signing_secret.reveal(), timeout=float(w.timeout))


@webhooks.callback()
def list_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Each webhook: its lag behind the feed, deliveries, dead letters and last error."""
    st = state(ctx, config=config, json=json)
    if ctx.invoked_subcommand is not None:
        return
    hooks = dict(settings(st).webhooks)
    if not hooks:
        if st.json:
            print_json([])
        else:
            note("no webhooks configured; add [webhooks.NAME] (see config.example.toml)")
        return
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        rows = statuses(s, hooks)
    emit([r.to_dict() if st.json else r for r in rows], COLUMNS, as_json=st.json, title="webhooks")


@webhooks.command("test")
def test_cmd(
    ctx: typer.Context, name: NameArg, config: ConfigOption = None, json: JsonOption = False
) -> None:
    """Send one signed test event (type "syncd.test") to the webhook; exit 4 if it is refused."""
    st = state(ctx, config=config, json=json)
    w = _hook(ctx, name)
    msg_id, body = test_event(name)
    sender = _sender(w)
    t0 = time.perf_counter()
    try:
        out = sender.send(msg_id, body)
    finally:
        sender.close()
    ms = round((time.perf_counter() - t0) * 1000, 1)
    url = w.url.split("?", 1)[0]
    if st.json:
        print_json(
            {"webhook": name, "ok": out.ok, "status": out.status, "error": out.error, "ms": ms, "id": msg_id}
        )
    elif out.ok:
        typer.echo(f"ok: {url} answered HTTP {out.status} in {ms} ms (webhook-id {msg_id})")
    else:
        typer.echo(f"syncd: error: {url} did not accept the test event: {out.error}", err=True)
    if not out.ok:
        raise typer.Exit(EXIT_UNREACHABLE)


@webhooks.command("dead")
def dead_cmd(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many, newest first.")] = 50,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """The webhook's dead letters: events it gave up on after max_attempts."""
    st = state(ctx, config=config, json=json)
    _hook(ctx, name)
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        rows = dead_letters(s, name, limit=limit)
        data = [
            {
                k: getattr(r, k)
                for k in ("id", "event_id", "kind", "resource_id", "attempts", "created_at", "error")
            }
            | ({"payload": r.payload, "position": r.position} if st.json else {})
            for r in rows
        ]
    emit(data, DEAD, as_json=st.json, title=f"dead letters of {name}", empty="no dead letters")


@webhooks.command("replay")
def replay_cmd(
    ctx: typer.Context, name: NameArg, config: ConfigOption = None, json: JsonOption = False
) -> None:
    """Send the webhook's dead letters again, oldest first (same webhook-id); each one the
    receiver accepts is removed. Exit 4 if any is refused again."""
    st = state(ctx, config=config, json=json)
    w = _hook(ctx, name)
    sent = failed = 0
    sender = _sender(w)
    try:
        with open_store(st) as engine:
            with session_scope(engine, write=False) as s:
                ids = [r.id for r in reversed(dead_letters(s, name, limit=100_000))]
            for dl_id in ids:
                with session_scope(engine) as s:
                    row = s.get(WebhookDeadLetter, dl_id)
                    if row is None:
                        continue
                    out = sender.send(row.event_id, row.payload)
                    if out.ok:
                        s.delete(row)
                        sent += 1
                    else:
                        row.error, row.attempts = out.error or "", row.attempts + 1
                        s.add(row)
                        failed += 1
    finally:
        sender.close()
    if st.json:
        print_json({"webhook": name, "replayed": sent, "failed": failed})
    else:
        typer.echo(f"{name}: {sent} replayed, {failed} refused again")
    if failed:
        raise typer.Exit(EXIT_UNREACHABLE)


@webhooks.command("secret")
def secret_cmd() -> None:
    """Print a new Standard Webhooks signing secret (whsec_ + 32 random bytes, base64)."""
    typer.echo("whsec_" + base64.b64encode(os.urandom(32)).decode())


@webhooks.command("deliver")
def deliver_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this webhook (default: all).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is pending, then exit.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Deliver the feed's pending changes to webhooks now, then exit (for `syncd run --once`
    setups without the daemon). Retries wait as configured; exit 4 if any event was
    dead-lettered, 2 if the daemon (or another deliver) holds a webhook."""
    from syncd import feed
    from syncd.store.locks import LockBusy, directory_lock
    from syncd.webhooks.worker import WebhookWorker

    st = state(ctx, config=config, json=json)
    if not once:
        fail("`syncd webhooks deliver` needs --once", "the daemon (`syncd run`) delivers continuously")
    hooks = {name: _hook(ctx, name)} if name else dict(settings(st).webhooks)
    results: list[dict[str, object]] = []
    with open_store(st) as engine:
        signal = feed.ChangeSignal()
        for hook_name, w in hooks.items():
            worker = WebhookWorker(engine, hook_name, w, signal=signal)
            sent = dead = 0
            try:
                with directory_lock(engine, worker.consumer):
                    target = feed.Position.parse(feed.head(engine))
                    while feed.Position.parse(worker.position()) < target:
                        done = worker.step()
                        sent, dead = sent + done.sent, dead + done.dead
            except LockBusy:
                fail(f"webhook {hook_name!r} is being delivered by a running daemon", "let it deliver")
            finally:
                worker.sender.close()
            results.append({"webhook": hook_name, "delivered": sent, "dead_lettered": dead})
    if st.json:
        print_json(results)
    else:
        for r in results:
            typer.echo(f"{r['webhook']}: {r['delivered']} delivered, {r['dead_lettered']} dead-lettered")
    if any(r["dead_lettered"] for r in results):
        raise typer.Exit(EXIT_UNREACHABLE)
