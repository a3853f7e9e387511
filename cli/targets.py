"""`syncd targets`: each delivery target's lag, last delivery, last full reconcile, last error."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import typer

from cli.context import ConfigOption, JsonOption, open_store, settings, state
from cli.output import Column, emit, when


def register(app: typer.Typer) -> None:
    app.command("targets")(targets_cmd)


COLUMNS = (
    Column("target", "target", style="bold"),
    Column("url", "url"),
    Column("lag_changes", "lag (changes)"),
    Column("lag_seconds", "lag (s)"),
    Column("last_delivery_at", "last delivery", fmt=when),
    Column("last_full_at", "last full reconcile", fmt=when),
    Column("last_error", "last error"),
)


def _utc(ts: Any) -> Any:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def targets_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """One row per configured target: how far it is behind the change feed and what happened last."""
    from syncd import feed
    from syncd.targets import state as tstate

    st = state(ctx, config=config, json=json)
    s = settings(st)
    rows = []
    with open_store(st) as engine:
        for name, t in s.targets.items():
            ts = tstate.get_state(engine, name)
            if ts.position is None:
                lag_n, lag_s = None, None
            else:
                try:
                    lag = feed.lag(
                        engine, after=ts.position, directories=set(t.sources) if t.sources else None
                    )
                    lag_n, lag_s = lag.changes, round(lag.seconds, 1) if lag.seconds is not None else 0.0
                except feed.FeedGone:
                    lag_n, lag_s = None, None
            err = ts.last_error
            if err and ts.last_error_at:
                err = f"{when(_utc(ts.last_error_at))}: {err}"
            rows.append(
                {
                    "target": name,
                    "url": t.url,
                    "connected": ts.position is not None,
                    "lag_changes": lag_n if ts.position is not None else "not connected yet",
                    "lag_seconds": lag_s,
                    "last_delivery_at": _utc(ts.last_delivery_at),
                    "last_full_at": _utc(ts.last_full_at),
                    "delivered": ts.delivered,
                    "last_error": err,
                }
            )
    emit(
        rows,
        COLUMNS,
        as_json=st.json,
        title="delivery targets",
        empty="no targets configured (add a [targets.NAME] table)",
    )
