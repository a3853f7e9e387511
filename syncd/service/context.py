"""Who is calling the service layer, and which directory they act for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Feed = Literal["scim", "pull", "login", "manual"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a service operation.

    Invariant: every read and write of an operation is limited to rows whose directory equals
    `directory` (None: local rows only). A feed other than "manual" never removes a membership
    whose source is "manual".
    """

    feed: Feed
    directory: str | None
    name: str = ""
    sync_run_id: int | None = None

    @property
    def label(self) -> str:
        """Audit label, e.g. "scim:token:ab12" or "pull:entra-contoso"."""
        return f"{self.feed}:{self.name}" if self.name else self.feed

    @property
    def source(self) -> str:
        """The membership source this actor writes."""
        return self.feed
