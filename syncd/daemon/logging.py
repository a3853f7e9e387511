"""The daemon's log: one line per event on stderr, with the run id and request id on every line.

Format: JSON objects (one per line, journald- and collector-friendly) when stderr is not a
TTY or `[log] format = "json"`; a short human line on a TTY. Every line carries `run_id` and
`request_id` (null when the event belongs to no run or request), taken from context variables
that the run and request code set (`bind`).

Secrets: nothing here logs settings, headers or bodies, and `Redact` masks what looks like a
syncd token or a bearer credential in any message as a last line of defence (DESIGN.md rule 6).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO


@dataclass
class LogContext:
    """Mutable on purpose: a run learns its id after it started, and tasks and threads that
    copied the context see the update."""

    run_id: int | None = None
    request_id: str | None = None
    directory: str | None = None


_CTX: ContextVar[LogContext | None] = ContextVar("syncd_log_context", default=None)


def current() -> LogContext:
    return _CTX.get() or LogContext()


@contextmanager
def bind(**fields: Any) -> Iterator[LogContext]:
    """A fresh LogContext for the block (inheriting unset fields from the enclosing one)."""
    outer = current()
    ctx = LogContext(
        fields.get("run_id", outer.run_id),
        fields.get("request_id", outer.request_id),
        fields.get("directory", outer.directory),
    )
    token = _CTX.set(ctx)
    try:
        yield ctx
    finally:
        _CTX.reset(token)


_SECRET = re.compile(r"(syncd_[A-Za-z0-9_-]{8,})|((?i:bearer|ssws)\s*[A-Za-z0-9._~+/=-]{8,})")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(0)[:12] + "…") if m.group(1) else "Bearer ********", text)


#: (logger, message start) of lines that are no event of ours: library set-up chatter.
NOISE = (
    ("alembic.runtime.plugins", ""),
    ("alembic.runtime.migration", "Context impl "),
    ("alembic.runtime.migration", "Will assume "),
)
#: Console hints uvicorn appends for an interactive user; a service log has no keyboard.
_HINT = " (Press CTRL+C to quit)"


class ContextFilter(logging.Filter):
    """Adds `run_id`, `request_id` and `directory` to every record, redacts the message, and
    drops `NOISE`, uvicorn's ANSI `color_message` duplicate and its console hint."""

    def filter(self, record: logging.LogRecord) -> bool:
        if any(record.name == name and str(record.msg).startswith(start) for name, start in NOISE):
            return False
        if record.name.startswith("uvicorn"):
            record.__dict__.pop("color_message", None)
            if isinstance(record.msg, str) and _HINT in record.msg:
                record.msg = record.msg.replace(_HINT, "")
        ctx = current()
        for name in ("run_id", "request_id", "directory"):
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(ctx, name))
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
            "request_id": getattr(record, "request_id", None),
        }
        for k, v in _extra(record).items():
            if k not in out and v is not None:
                out[k] = v
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        # JSON escapes C0 but keeps DEL, C1 and bidi controls raw: as \\uXXXX they stay valid JSON
        return _CONTROL.sub(
            lambda m: f"\\u{ord(m.group()):04x}", json.dumps(out, default=str, ensure_ascii=False)
        )


#: C0/C1 controls, DEL and the bidirectional overrides (IdP names are hostile, DESIGN.md rule 8)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\u202e`)."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


class HumanFormatter(logging.Formatter):
    """One line per record for a TTY; control characters in it (from names) are made visible."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        ids = f"run={getattr(record, 'run_id', None) or '-'} req={getattr(record, 'request_id', None) or '-'}"
        extra = " ".join(
            f"{k}={v}"
            for k, v in _extra(record).items()
            if k not in ("run_id", "request_id") and v is not None
        )
        line = f"{ts} {record.levelname:<7} {record.name} [{ids}] {record.getMessage()}"
        if extra:
            line += f"  {extra}"
        line = visible(line)
        if record.exc_info:
            trace = redact(self.formatException(record.exc_info))
            line += "\n" + "\n".join(visible(t) for t in trace.split("\n"))
        return line


def use_json(stream: TextIO, configured: str) -> bool:
    """JSON unless the stream is a TTY and the config asks for text."""
    isatty = getattr(stream, "isatty", lambda: False)
    return configured == "json" or not isatty()


def setup(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Route every logger (syncd's, uvicorn's, the SDKs') through one stderr handler."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json(stream, fmt) else HumanFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # Chatty libraries: their per-request lines are not events of ours.
    for name in ("httpx", "httpcore", "azure", "urllib3", "googleapiclient", "okta", "apscheduler.executors"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
