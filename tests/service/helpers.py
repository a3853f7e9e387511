"""Small builders for service-layer tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from syncd.service import tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import AuditEvent

ENTRA = Actor("scim", "entra", "token:t1")
OKTA = Actor("scim", "okta", "token:t2")
LOCAL = Actor("manual", None, "cli")


def setup_dirs(engine: Engine, *names: str) -> None:
    with session_scope(engine) as s:
        for n in names or ("entra", "okta"):
            tokens.ensure_directory(s, name=n, kind="scim")


def user_body(user_name: str, /, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": True,
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        **extra,
    }


def make_user(engine: Engine, user_name: str, /, actor: Actor = ENTRA, **extra: Any) -> str:
    with session_scope(engine) as s:
        return users.create_user(s, actor=actor, body=user_body(user_name, **extra)).id


def audit_count(engine: Engine, **where: Any) -> int:
    with session_scope(engine, write=False) as s:
        q = select(func.count()).select_from(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return s.execute(q).scalar_one()
