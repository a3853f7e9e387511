"""The one interface every pull connector implements, and the connector error tree.

Connectors read one directory through the vendor's official SDK and return values from
`syncd.reconcile.snapshot`; they never touch the store.

Error tree (each connector maps SDK and HTTP errors onto it at exactly one boundary)::

    ConnectorError
    ├── TransientError            retrying later may succeed
    │   ├── ThrottledError        429 / rate limit, retries and time budget exhausted
    │   ├── UnavailableError      5xx, timeouts, connection refused or reset
    │   │   └── CircuitOpen       the run's breaker is open: the IdP stopped answering
    │   └── BudgetExceeded        the caller's time budget ran out
    └── PermanentError            retrying the same request will fail the same way
        ├── AuthError             bad or revoked credentials, missing permission (401/403)
        ├── NotFoundError         the object asked for does not exist (404)
        ├── CursorExpired         the saved incremental cursor is no longer accepted (410)
        ├── BadDataError          the IdP answered something that cannot be parsed
        └── ConfigError           the connector's settings cannot work (bad URL, key)
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import urlsplit

from syncd.reconcile.snapshot import Snapshot, UserGroups


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    transient: ClassVar[bool] = False


class TransientError(ConnectorError):
    transient = True


class ThrottledError(TransientError):
    pass


class UnavailableError(TransientError):
    pass


class CircuitOpen(UnavailableError):
    """Not sent: the run's `Breaker` saw too many connection failures in a row."""


class BudgetExceeded(TransientError):
    pass


class PermanentError(ConnectorError):
    transient = False


class AuthError(PermanentError):
    pass


class NotFoundError(PermanentError):
    pass


class CursorExpired(PermanentError):
    pass


class BadDataError(PermanentError):
    pass


class ConfigError(PermanentError):
    pass


#: Called with a short phase name ("groups", "members", "users") and a count of objects read
#: so far in that phase; used by the CLI for progress bars. Must not raise.
ProgressCallback = Callable[[str, int], None]


class Connector(abc.ABC):
    """Reads one directory. Instances are used from one event loop and closed with `aclose`."""

    kind: ClassVar[str]

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @abc.abstractmethod
    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        """Read the directory.

        With `cursor` None: a full snapshot. With a cursor saved from an earlier snapshot: a delta
        snapshot if the connector supports it, else a full one; an expired cursor falls back to a
        full read (never raises `CursorExpired` to the caller). Failed reads after retries mark
        the snapshot incomplete instead of raising; only errors that make the whole read
        meaningless (auth, config, the first page failing) raise. Every request goes through
        one `connectors.breaker.Breaker` per snapshot: once the IdP stopped answering, the
        read stops within seconds, incomplete (or raises `CircuitOpen` if nothing was read).
        Changes in how the read went that do not make it incomplete (a fall back to a full
        read) are said in `Snapshot.notes`.
        """

    @abc.abstractmethod
    async def user_groups(self, user: str) -> UserGroups:
        """One user's current transitive groups; `user` is an IdP id, userName or email.

        The result must say truthfully what the lookup can see (`UserGroups.reports`): a group
        whose membership the vendor's per-user call cannot return goes in `unseen` (or the
        result is marked not `complete`), so that an on-login sync never removes a membership
        its own lookup could not have reported. Group membership means the same as in
        `snapshot` (nested groups expanded, the same treatment of special members).
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release sessions and sockets."""

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_REGISTRY: dict[str, type[Connector]] = {}
BUILT_IN = ("graph", "okta", "google", "onelogin", "keycloak", "auth0")


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector available by its `kind`."""
    _REGISTRY[cls.kind] = cls
    return cls


def connector_class(kind: str) -> type[Connector]:
    """The connector class for `kind` (`graph`, `okta`, `google`, `auth0`); imports its SDK on first use."""
    import importlib

    if kind not in _REGISTRY and kind in BUILT_IN:
        package = importlib.import_module(f"connectors.{kind}")
        for name in package.__all__:
            getattr(package, name)  # imports (and so registers) a lazily loaded connector
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ConfigError(f"unknown connector kind {kind!r}; known: {sorted(_REGISTRY)}") from None


def check_base_url(url: str) -> str:
    """Return `url` without a trailing slash; refuse plain http except to loopback hosts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"plain http is allowed only for loopback hosts, not {parts.hostname!r}")
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
