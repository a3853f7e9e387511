"""The head of a linear migration history, read from the version files' text.

Standard library only: the CLI's fast read path (cli/fastread.py) checks the store's schema
with it without importing alembic or SQLAlchemy; `syncd.store.engine.head_revision` asks
alembic itself only when this answers None.
"""

from __future__ import annotations

import re
from pathlib import Path

_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*$", re.MULTILINE)


def linear_head(versions: Path) -> str | None:
    """The one revision no other file in `versions` revises, or None when the files are not
    one linear history (a merge, a tuple `down_revision`, two heads, or no files)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        found = {k: v.strip("\"'") for k, v in _REVISION_LINE.findall(path.read_text())}
        if not found.get("revision") or any(c in found.get("down_revision", "") for c in "([,"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision", "None") != "None":
            revised.add(found["down_revision"])
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
