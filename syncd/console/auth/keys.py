"""The console's session signing key: `[console] secret_env|secret_file`, or a key generated
once into STATE_DIR/console-session.key (mode 0600) so sessions survive restarts.

Several instances serving one store must share the key (give them `secret_file`); a changed key
signs every admin out.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from syncd.config import Settings

KEY_FILE = "console-session.key"


def session_key(settings: Settings) -> str:
    """The configured key, else the state directory's generated key (created on first use)."""
    given = settings.console.secret
    if given is not None:
        return given.reveal()
    path = Path(settings.state_dir) / KEY_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read(path)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 32:
        raise ValueError(f"{path} holds no session key (under 32 characters): delete it to generate one")
    return value
