"""`GoogleConnector`: Google Workspace users and groups over the Admin SDK Directory API.

Reads through google-api-python-client (sync, httplib2) in a pool of worker threads, one
Directory service per thread (see `connectors.google.client`). The Directory API has no delta
reads: every snapshot is full and a cursor is ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Literal

from connectors.base import (
    ConfigError,
    Connector,
    ProgressCallback,
    check_base_url,
    register,
)
from connectors.breaker import DEFAULT_THRESHOLD, Breaker, record
from connectors.google.client import (
    DEFAULT_BASE_URL,
    CallContext,
    ServicePool,
    ServiceSettings,
    load_credentials,
)
from connectors.google.customer import CustomerGroups, Groups, discover
from connectors.google.reader import ReadSettings, SnapshotReader, read_user_groups, to_group
from syncd.reconcile.snapshot import Snapshot, UserGroups

MAX_USERS_PAGE = 500  # users.list maxResults cap
MAX_GROUPS_PAGE = 200  # groups.list and members.list maxResults cap
#: seconds of a login's budget kept back when it waits for the whole-customer groups
DISCOVERY_MARGIN = 0.5


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    if (integer and not isinstance(value, int)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive {'integer' if integer else 'number'}")


@register
class GoogleConnector(Connector):
    """One Google Workspace customer (or one of its domains) as a directory.

    Credentials: a service-account key (`service_account_info` dict or `service_account_file`
    path) with domain-wide delegation for the read-only directory scopes, acting as
    `admin_email`. `token_url` overrides the key's ``token_uri``.

    Units: `time_budget` and `request_timeout` in seconds (the budget bounds a whole snapshot
    or login lookup, retries and their waits included); `max_backoff` caps one retry wait in
    seconds; `page_size` is capped per method at Google's maxima (500 users, 200 groups or
    members); `concurrency` is the number of worker threads (requests in flight).
    `max_connection_failures` in a row stop a snapshot (see `connectors.breaker`).
    `customer_groups_ttl` (seconds) how long the login path trusts its list of whole-customer
    groups, `customer_groups_budget` (seconds) how long reading that list may take.
    `customer_members`: what a member of type CUSTOMER (the whole customer) means: ``"expand"``
    to every user, or ``"refuse"`` (the group gets no such members; the snapshot is incomplete).
    """

    kind: ClassVar[str] = "google"

    def __init__(
        self,
        directory: str,
        *,
        admin_email: str = "",
        service_account_info: Mapping[str, Any] | None = None,
        service_account_file: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        token_url: str | None = None,
        customer: str = "my_customer",
        domain: str | None = None,
        customer_members: Literal["expand", "refuse"] = "expand",
        page_size: int = MAX_USERS_PAGE,
        concurrency: int = 8,
        max_retries: int = 5,
        time_budget: float = 900.0,
        request_timeout: float = 30.0,
        max_backoff: float = 32.0,
        max_connection_failures: int = DEFAULT_THRESHOLD,
        customer_groups_ttl: float = 900.0,
        customer_groups_budget: float = 300.0,
    ) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        _positive("page_size", page_size, integer=True)
        _positive("concurrency", concurrency, integer=True)
        _positive("time_budget", time_budget)
        _positive("request_timeout", request_timeout)
        _positive("max_backoff", max_backoff)
        _positive("customer_groups_ttl", customer_groups_ttl)
        _positive("customer_groups_budget", customer_groups_budget)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError("max_retries must be an integer >= 0")
        if customer_members not in ("expand", "refuse"):
            raise ConfigError("customer_members must be 'expand' or 'refuse'")
        if not (customer or domain):
            raise ConfigError("give a customer id ('my_customer' for the admin's own) or a domain")
        base = check_base_url(base_url)
        if token_url is not None:
            check_base_url(token_url)
        credentials = load_credentials(info=service_account_info, file=service_account_file,
                                       admin_email=admin_email, token_url=token_url)
        self.time_budget, self.max_backoff = float(time_budget), float(max_backoff)
        self.settings = ReadSettings(
            customer=customer, domain=domain, users_page=min(page_size, MAX_USERS_PAGE),
            groups_page=min(page_size, MAX_GROUPS_PAGE), num_retries=max_retries,
            customer_members=customer_members)
        self._pool = ServicePool(ServiceSettings(credentials, base, float(request_timeout)),
                                 concurrency)
        self._customer = CustomerGroups(float(customer_groups_ttl))
        self._customer_budget = float(customer_groups_budget)
        self._discovery_threads = min(concurrency, 4)
        self._discovery_pool: ServicePool | None = None

    def _context(self, breaker: Breaker | None = None) -> CallContext:
        return CallContext(time.monotonic() + self.time_budget, self.max_backoff, breaker=breaker)

    async def snapshot(self, *, cursor: str | None = None,
                       progress: ProgressCallback | None = None) -> Snapshot:
        """A full snapshot (the Directory API has no delta reads; `cursor` is ignored)."""
        breaker = Breaker(self.max_connection_failures)
        reader = SnapshotReader(self._pool, self._context(breaker), self.settings,
                                self.directory, progress)
        snap = await reader.read()
        record(snap, breaker)
        return snap

    async def user_groups(self, user: str) -> UserGroups:
        """`user` (Google id, primary email or alias) and its transitive groups.

        ``groups.list(userKey)`` cannot see groups the user is in through a member of type
        CUSTOMER. With ``customer_members="expand"`` those groups (found by
        `connectors.google.customer`, cached) are added; while they are not known the result
        is not `complete` (an on-login sync then adds and never removes). With ``"refuse"``
        the direct memberships the lookup returns are exactly what a snapshot lists."""
        ctx = self._context()
        ug = await read_user_groups(self._pool, ctx, self.settings, self.directory, user)
        if ug.user is None or self.settings.customer_members != "expand":
            return ug
        known = await self._customer.get(self._discover, wait=ctx.remaining() - DISCOVERY_MARGIN)
        if known is None:
            why = self._customer.error or "still being read"
            return replace(ug, complete=False, notes=(
                f"the groups that have the whole customer as a member are not known yet "
                f"({why}): memberships were added, none removed",))
        have = {g.external_id for g in ug.groups}
        extra = [to_group(d) for gid, d in known.items() if gid not in have]
        return replace(ug, groups=tuple(sorted((*ug.groups, *extra), key=lambda g: g.external_id)))

    async def _discover(self) -> Groups:
        if self._discovery_pool is None:
            self._discovery_pool = ServicePool(self._pool.settings, self._discovery_threads)
        ctx = CallContext(time.monotonic() + self._customer_budget, self.max_backoff)
        return await discover(self._discovery_pool, ctx, self.settings)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._pool.close)
        if self._discovery_pool is not None:
            await asyncio.to_thread(self._discovery_pool.close)
