"""SQLModel tables.

Invariants:
- `directory` NULL means a local row (made by hand); no sync ever changes it. Uniqueness of
  `user_name_key`, `display_name_key` and `external_id` is per directory, with local rows
  forming their own scope (`coalesce(directory, '')` in the unique indexes).
- `*_key` columns hold the casefolded form of a case-insensitive attribute; they are derived
  by the service layer on every write and are what filters and uniqueness use.
- `data` holds the resource's full SCIM attributes (everything but id, meta, members, groups);
  the other columns are projections of it kept for querying.
- `version` grows by one on every real change of the row or (for teams) of its member set.
- `Membership` is flat (team, user); it carries the team's directory and its source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, func
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kw)
    )


def _dir_fk(nullable: bool = True) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            String(128),
            ForeignKey("directories.name", ondelete="CASCADE"),
            nullable=nullable,
            index=False,
        ),
    )


class Directory(SQLModel, table=True):
    __tablename__ = "directories"

    name: str = Field(primary_key=True, max_length=128)
    kind: str = Field(max_length=32)
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "users"
    # Each per-directory unique index leads with its own key, so a lookup by one key can never
    # be planned on the other's index (migration 0008 says why).
    __table_args__ = (
        Index(
            "ux_users_user_name",
            "user_name_key",
            func.coalesce(Column("directory"), ""),
            unique=True,
        ),
        Index(
            "ux_users_external_id",
            "external_id",
            func.coalesce(Column("directory"), ""),
            unique=True,
        ),
        Index("ix_users_directory_id", "directory", "id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    directory: str | None = _dir_fk()
    external_id: str | None = Field(default=None, max_length=512)
    user_name: str = Field(max_length=512)
    user_name_key: str = Field(max_length=512)
    display_name: str | None = Field(default=None, max_length=512)
    given_name: str | None = Field(default=None, max_length=512)
    family_name: str | None = Field(default=None, max_length=512)
    active: bool = True
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class UserEmail(SQLModel, table=True):
    """One entry of a user's `emails`, kept for filtering (`emails.value`, `emails[type eq ..]`)."""

    __tablename__ = "user_emails"
    __table_args__ = (Index("ix_user_emails_value_key", "value_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(
        sa_column=Column(
            String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    value: str = Field(max_length=512)
    value_key: str = Field(max_length=512)
    type: str | None = Field(default=None, max_length=64)
    primary: bool = False


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    __table_args__ = (
        Index(
            "ux_teams_display_name",
            "display_name_key",
            func.coalesce(Column("directory"), ""),
            unique=True,
        ),
        Index(
            "ux_teams_external_id",
            "external_id",
            func.coalesce(Column("directory"), ""),
            unique=True,
        ),
        Index("ix_teams_directory_id", "directory", "id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    directory: str | None = _dir_fk()
    external_id: str | None = Field(default=None, max_length=512)
    display_name: str = Field(max_length=512)
    display_name_key: str = Field(max_length=512)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    member_count: int = 0
    archived: bool = False
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    #: SQLite: clustered on (team_id, user_id), see migration 0006
    __table_args__ = (Index("ix_memberships_user", "user_id", "team_id"), {"sqlite_with_rowid": False})

    team_id: str = Field(
        sa_column=Column(String(64), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: str = Field(
        sa_column=Column(String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    directory: str | None = Field(default=None, max_length=128)
    source: str = Field(max_length=16)  # scim | pull | login | manual
    created_at: datetime = _ts()
    #: the member's `display` as a SCIM client set it when adding the member (RFC 7643 §2.4:
    #: immutable); None: rendered as the user's userName
    display: str | None = Field(default=None, max_length=512)


class ScimToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 hash is stored. `directory` NULL only for admin tokens."""

    __tablename__ = "tokens"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(default="scim", max_length=16)  # scim | admin
    directory: str | None = _dir_fk()
    name: str = Field(default="", max_length=256)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = _ts()
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_directory_started", "directory", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    directory: str = Field(max_length=128)
    trigger: str = Field(max_length=32)  # schedule | cli | api | login | demo
    mode: str = Field(default="full", max_length=16)
    started_at: datetime = _ts()
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    outcome: str = Field(default="running", max_length=32)
    error: str | None = None
    dry_run: bool = False
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    api_calls: int = 0
    throttles: int = 0
    plan: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_resource", "resource_type", "resource_id"),
        Index("ix_audit_directory", "directory", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    directory: str | None = Field(default=None, max_length=128)
    actor: str = Field(max_length=256)  # e.g. "scim:token:<id>", "pull:entra-contoso", "cli"
    action: str = Field(max_length=64)  # e.g. "user.create", "team.members.add"
    resource_type: str = Field(max_length=16)  # user | team
    resource_id: str = Field(max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    sync_run_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True)
    )


class ConnectorCursor(SQLModel, table=True):
    """An incremental-read cursor (e.g. a Graph deltaLink) saved per directory."""

    __tablename__ = "connector_cursors"

    directory: str = Field(
        sa_column=Column(
            String(128), ForeignKey("directories.name", ondelete="CASCADE"), primary_key=True
        )
    )
    name: str = Field(default="default", primary_key=True, max_length=64)
    value: str
    updated_at: datetime = _ts()


class TargetObject(SQLModel, table=True):
    """The id map of a delivery target: a local user or team and the target's id for it.

    `remote_id` NULL means a create was sent and not yet acknowledged (the next attempt looks
    the object up before creating again). `digest` is the hash of the attributes last
    acknowledged by the target, and `active` the last acknowledged `active` (targets such as
    LiteLLM never read it back). `left` marks a user delivered as gone (deactivated) because
    it left the target's desired state.
    """

    __tablename__ = "target_objects"
    __table_args__ = (Index("ix_target_objects_remote", "target", "kind", "remote_id"),)

    target: str = Field(primary_key=True, max_length=128)
    kind: str = Field(primary_key=True, max_length=8)  # user | team
    local_id: str = Field(primary_key=True, max_length=64)
    remote_id: str | None = Field(default=None, max_length=512)
    digest: str | None = Field(default=None, max_length=64)
    active: bool | None = None
    left: bool = False
    updated_at: datetime = _ts()


class TargetState(SQLModel, table=True):
    """Delivery state of one target: its change-feed cursor and what happened last."""

    __tablename__ = "target_state"

    target: str = Field(primary_key=True, max_length=128)
    position: str | None = Field(default=None, max_length=64)
    last_delivery_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_full_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_error: str | None = None
    last_error_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    delivered: int = 0
    updated_at: datetime = _ts()


# -- change feed (syncd.feed) and its readers ------------------------------------------------

#: 64-bit ids; INTEGER on SQLite so that the primary key is the rowid (autoincrementing).
_BIGID = BigInteger().with_variant(Integer(), "sqlite")


class Change(SQLModel, table=True):
    """One committed change, written in the transaction of the change itself (see syncd.feed).

    Feed order is (xid, id): `xid` is the writing transaction's id on PostgreSQL
    (`pg_current_xact_id()`, 64 bits, never wraps) and 0 on SQLite, where writers are
    serialised so that `id` order is commit order.
    """

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_position", "xid", "id"),
        Index("ix_changes_at", "at"),
        {"sqlite_autoincrement": True},  # ids are never reused, even after a prune empties the table
    )

    id: int | None = Field(default=None, sa_column=Column(_BIGID, primary_key=True, autoincrement=True))
    xid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    at: datetime = _ts()
    directory: str | None = Field(default=None, max_length=128)
    kind: str = Field(max_length=32)  # e.g. user.created, team.members_added
    resource_type: str = Field(max_length=16)  # user | team
    resource_id: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=512)  # userName | displayName
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    actor: str = Field(default="", max_length=256)


class FeedHorizon(SQLModel, table=True):
    """The last position pruned from the feed (one row, id 1): a reader behind it is gone."""

    __tablename__ = "feed_horizon"

    id: int = Field(default=1, primary_key=True)
    xid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    change_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    pruned_at: datetime = _ts()


class FeedCursor(SQLModel, table=True):
    """A feed reader's saved position (e.g. consumer "webhook:alerts") and delivery state."""

    __tablename__ = "feed_cursors"

    consumer: str = Field(primary_key=True, max_length=200)
    position: str = Field(max_length=64)
    updated_at: datetime = _ts()
    attempts: int = 0  # failed attempts of the change after `position`
    last_error: str | None = None
    last_success_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    delivered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class WebhookDeadLetter(SQLModel, table=True):
    """An event a webhook gave up on after its last attempt; kept for review and replay."""

    __tablename__ = "webhook_dead_letters"
    __table_args__ = (Index("ix_webhook_dead_letters_webhook", "webhook", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook: str = Field(max_length=128)
    event_id: str = Field(max_length=64)
    position: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    resource_type: str = Field(max_length=16)
    resource_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    error: str = ""
    created_at: datetime = _ts()
