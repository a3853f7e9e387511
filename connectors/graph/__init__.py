"""Microsoft Graph (Entra ID) pull connector over msgraph-sdk and azure-identity.

`GraphConnector` reads users, groups in scope and their transitive user members into a
`Snapshot` (full, or incremental over Graph delta queries with the cursor it returns), and one
user's transitive groups for the login path. See `client` for which SDK layers are used and
why, `reader` / `delta` for what is read, `errors` for the error mapping.
"""

from __future__ import annotations

import asyncio
from typing import Any, get_args
from urllib.parse import urlsplit

from connectors.base import (
    ConfigError,
    Connector,
    CursorExpired,
    ProgressCallback,
    check_base_url,
    register,
)
from connectors.breaker import DEFAULT_THRESHOLD, Breaker, record
from connectors.graph.auth import build_credential
from connectors.graph.batch import MAX_BATCH
from connectors.graph.client import CURRENT_BREAKER, CURRENT_STATS, GraphApi
from connectors.graph.delta import DeltaReader, decode_cursor
from connectors.graph.errors import redact_url
from connectors.graph.reader import GraphReader, GroupSource, ReadSettings
from syncd.reconcile.snapshot import FetchStats, Snapshot, UserGroups

__all__ = ["GraphConnector"]

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
MAX_PAGE_SIZE = 999


@register
class GraphConnector(Connector):
    """Reads one Entra ID tenant through Microsoft Graph.

    Credentials: `client_secret` or `certificate_path` (azure-identity), or any async/sync
    `credential` with `get_token`. `token_url` is the token authority root (default
    `https://login.microsoftonline.com`; plain http only on loopback). Scope: `group_source`
    "all" | "security" | "app_assigned" (groups assigned to `service_principal_id`).
    Units: `time_budget` seconds per snapshot / user_groups call, `request_timeout` seconds
    per HTTP attempt; `page_size` objects per page (≤ 999); `concurrency` member reads at
    once; `batch_size` groups whose first member page is read in one JSON batch (1..20, 1: no
    batching; a server without `$batch` is read one group at a time anyway); `max_retries`
    retries per request (≤ 10, kiota's limit); `retry_delay` seconds kiota
    adds to each backoff when the server sends no `Retry-After`; `max_connection_failures`
    connection failures in a row stop a snapshot (see `connectors.breaker`). An injected `credential` is
    the caller's to close; one built here is closed by `aclose`.
    """

    kind = "graph"

    def __init__(self, directory: str, *, tenant_id: str, client_id: str,
                 client_secret: str | None = None, certificate_path: str | None = None,
                 credential: Any = None, base_url: str = DEFAULT_BASE_URL,
                 token_url: str | None = None, page_size: int = MAX_PAGE_SIZE,
                 concurrency: int = 8, max_retries: int = 3, time_budget: float = 900.0,
                 request_timeout: float = 30.0, group_source: GroupSource = "all",
                 service_principal_id: str | None = None, retry_delay: float = 0.0,
                 max_connection_failures: int = DEFAULT_THRESHOLD,
                 batch_size: int = MAX_BATCH) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        if not tenant_id or not client_id:
            raise ConfigError("graph: tenant_id and client_id are required")
        base = check_base_url(base_url)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"graph: page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
                or not 1 <= batch_size <= MAX_BATCH:
            raise ConfigError(f"graph: batch_size must be 1..{MAX_BATCH} (1: no batching), "
                              f"not {batch_size!r}")
        if concurrency < 1:
            raise ConfigError(f"graph: concurrency must be at least 1, not {concurrency}")
        if not 0 <= max_retries <= 10:
            raise ConfigError(f"graph: max_retries must be 0..10, not {max_retries}")
        if time_budget <= 0 or request_timeout <= 0:
            raise ConfigError("graph: time_budget and request_timeout must be positive seconds")
        if group_source not in get_args(GroupSource):
            raise ConfigError(f"graph: group_source must be one of {get_args(GroupSource)}, "
                              f"not {group_source!r}")
        if group_source == "app_assigned" and not service_principal_id:
            raise ConfigError("graph: group_source 'app_assigned' needs service_principal_id")
        self._owns_credential = credential is None
        if credential is None:
            credential = build_credential(tenant_id=tenant_id, client_id=client_id,
                                          client_secret=client_secret,
                                          certificate_path=certificate_path, token_url=token_url)
        elif not callable(getattr(credential, "get_token", None)):
            raise ConfigError("graph: credential must have a get_token method")
        parts = urlsplit(base)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        self.base_url = base
        self._credential = credential
        self._api = GraphApi(base_url=base, credential=credential,
                             scopes=[f"{parts.scheme}://{host}/.default"], max_retries=max_retries,
                             request_timeout=request_timeout, concurrency=concurrency,
                             retry_delay=retry_delay)
        self._settings = ReadSettings(directory=directory, group_source=group_source,
                                      service_principal_id=service_principal_id,
                                      page_size=page_size, concurrency=concurrency,
                                      time_budget=time_budget, batch_size=batch_size,
                                      max_retries=max_retries, retry_delay=retry_delay)
        self._reader = GraphReader(self._api, self._settings)
        self._delta = DeltaReader(self._reader)

    def __repr__(self) -> str:
        return (f"GraphConnector(directory={self.directory!r}, base_url={redact_url(self.base_url)!r}, "
                f"group_source={self._settings.group_source!r})")

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._settings.time_budget

    async def snapshot(self, *, cursor: str | None = None,
                       progress: ProgressCallback | None = None) -> Snapshot:
        """Full snapshot, or a delta one from `cursor` (falls back to full when the cursor is
        expired, foreign, or taken under another group scope)."""
        snap = Snapshot(directory=self.directory, stats=FetchStats())
        breaker = Breaker(self.max_connection_failures)
        token, btoken = CURRENT_STATS.set(snap.stats), CURRENT_BREAKER.set(breaker)
        try:
            snap = await self._snapshot(snap, cursor, progress)
            record(snap, breaker)
            return snap
        finally:
            CURRENT_STATS.reset(token)
            CURRENT_BREAKER.reset(btoken)

    async def _snapshot(self, snap: Snapshot, cursor: str | None,
                        progress: ProgressCallback | None) -> Snapshot:
        deadline = self._deadline()
        state = decode_cursor(cursor) if cursor else None
        if state is not None and state["s"] == self._settings.group_source \
                and self._settings.group_source != "app_assigned":
            try:
                await self._delta.snapshot(snap, state, progress, deadline)
                return snap
            except CursorExpired as exc:
                fresh = Snapshot(directory=self.directory, stats=snap.stats)
                fresh.notes.append(f"the delta token was refused ({exc}); read in full")
                snap = fresh
        await self._reader.full(snap, progress, deadline, lambda: self._delta.latest(deadline))
        return snap

    async def user_groups(self, user: str) -> UserGroups:
        """`user`'s transitive groups in scope; `user` is an object id, userPrincipalName or mail.

        ``/users/{id}/transitiveMemberOf`` lists every group the user is in, directly or through
        nested groups (directory roles and administrative units, also listed, are dropped): the
        same membership as a snapshot's ``transitiveMembers``, so the result reports every
        group (`UserGroups.complete`, nothing `unseen`)."""
        stats = FetchStats()
        token = CURRENT_STATS.set(stats)
        try:
            def result(**kw: Any) -> UserGroups:
                return UserGroups(directory=self.directory, stats=stats, **kw)

            return await self._reader.user_groups(user, result, self._deadline())
        finally:
            CURRENT_STATS.reset(token)

    async def aclose(self) -> None:
        await self._api.aclose()
        if self._owns_credential:
            close = getattr(self._credential, "close", None)
            if close is not None:
                res = close()
                if asyncio.iscoroutine(res):
                    await res
