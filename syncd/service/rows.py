"""The rows listings return, and the directory scope they take: plain frozen dataclasses with
no store import, so a command that reads the store without SQLAlchemy (cli/fastread.py)
returns the very same types as `syncd.service.views`.

Timestamps are timezone-aware, in UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Scope(enum.Enum):
    """Directory scope that is not one named directory."""

    ALL = "all"
    LOCAL = "local"


ALL = Scope.ALL
LOCAL = Scope.LOCAL
DirectoryScope = str | Scope


@dataclass(frozen=True)
class UserRow:
    id: str
    user_name: str
    display_name: str | None
    directory: str | None
    external_id: str | None
    active: bool
    email: str | None  # the primary email, else the first one
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TeamRow:
    id: str
    display_name: str
    directory: str | None
    external_id: str | None
    member_count: int
    members: tuple[str, ...] | None  # user names, sorted; None unless asked for
    version: int
    updated_at: datetime
