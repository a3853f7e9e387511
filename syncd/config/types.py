"""Value types of the configuration: secrets, durations, schedules, URLs, names.

Validators that read the environment or files take them from the validation context
(`{"environ": ..., "base_dir": ...}`), so tests inject both instead of patching `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import core_schema

from syncd.config.problems import toml_type

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_ADMIN_LISTEN = "127.0.0.1:8081"
DIRECTORY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class _Ctx:
    environ: Mapping[str, str]
    base_dir: Path

    def path(self, raw: str) -> Path:
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def credential(self, raw: str) -> Path:
        creds = self.environ.get("CREDENTIALS_DIRECTORY")
        p = Path(raw).expanduser()
        if creds and not p.is_absolute() and (Path(creds) / p).exists():
            return Path(creds) / p
        return self.path(raw)


def context_of(info: ValidationInfo) -> _Ctx:
    ctx = info.context or {}
    return _Ctx(ctx.get("environ", os.environ), Path(ctx.get("base_dir") or Path.cwd()))


def need_str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {toml_type(v)}")
    if not v.strip():
        raise ValueError("must not be empty")
    return v


class Secret:
    """A secret value and where it came from; never shown by repr, str or serialisation."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "value") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value='********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, _src: Any, _h: GetCoreSchemaHandler) -> Any:
        def check(v: Any) -> Secret:
            return v if isinstance(v, Secret) else Secret(need_str(v))

        return core_schema.no_info_plain_validator_function(
            check, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


def _secret_from_env(v: Any, info: ValidationInfo) -> Secret:
    name = need_str(v)
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    value = context_of(info).environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set")
    if not value.strip():
        raise ValueError(f"environment variable {name} is empty")
    return Secret(value, f"env {name}")


def existing_file(v: Any, info: ValidationInfo) -> Path:
    path = context_of(info).credential(need_str(v))
    if not path.is_file():
        raise ValueError(f"file {path} does not exist")
    return path


def _secret_from_file(v: Any, info: ValidationInfo) -> Secret:
    path = existing_file(v, info)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not value:
        raise ValueError(f"file {path} is empty")
    return Secret(value, f"file {path}")


def parse_duration(v: Any) -> int:
    """Seconds from `"90s"`, `"30m"`, `"1h30m"`, `"2d"` or a non-negative integer of seconds."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    m = _DURATION.fullmatch(v.strip()) if isinstance(v, str) and v.strip() else None
    if not m:
        raise ValueError(f"expected a duration like '90s', '30m', '1h30m', '2d', got {v!r}")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


@dataclass(frozen=True)
class Schedule:
    """When a pull runs: every `interval` seconds, or on a 5-field `cron` expression (UTC)."""

    text: str
    interval: int | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, v: Any) -> Schedule:
        if isinstance(v, Schedule):
            return v
        text = " ".join(need_str(v).split())
        if len(text.split()) == 5:
            from apscheduler.triggers.cron import CronTrigger  # the parser the scheduler uses

            try:
                CronTrigger.from_crontab(text, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"bad cron expression {text!r}: {exc}") from None
            return cls(text, cron=text)
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ValueError(
                f"expected an interval like '30m' or '1h', or a 5-field cron expression, got {text!r}"
            ) from None
        if seconds <= 0:
            raise ValueError("the interval must be longer than 0s")
        return cls(text, interval=seconds)

    def __str__(self) -> str:
        return self.text


def check_url(v: str) -> str:
    if not re.fullmatch(r"https?://[^/\s:]+(:\d+)?(/\S*)?", v):
        raise ValueError(f"expected an http(s) URL, got {v!r}")
    return v.rstrip("/")


def check_store_url(v: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(v).get_backend_name()
    except (ArgumentError, ValueError):
        backend = None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError("expected sqlite:///PATH or postgresql+psycopg://USER@HOST[:PORT]/DATABASE")
    return v


def secret_store_url(v: Secret) -> Secret:
    """A store URL read from the environment or a file; the error names its source, never
    the value (it may hold a password)."""
    try:
        check_store_url(v.reveal().strip())
    except ValueError as exc:
        raise ValueError(f"{v.source} holds no database URL: {exc}") from None
    return Secret(v.reveal().strip(), v.source)


def check_listen(v: str) -> str:
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})", v)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. {DEFAULT_LISTEN}), got {v!r}")
    return v


def check_dir_name(v: str) -> str:
    if not DIRECTORY_NAME.fullmatch(v):
        raise ValueError(
            f"bad directory name {v!r}: use 1-64 of a-z 0-9 . _ -, starting with a letter or digit"
        )
    return v


Text = Annotated[str, BeforeValidator(need_str)]
Url = Annotated[str, BeforeValidator(need_str), AfterValidator(check_url)]
Duration = Annotated[int, BeforeValidator(parse_duration)]
EnvSecret = Annotated[Secret, BeforeValidator(_secret_from_env)]
FileSecret = Annotated[Secret, BeforeValidator(_secret_from_file)]
ExistingFile = Annotated[Path, BeforeValidator(existing_file)]
DirectoryName = Annotated[str, AfterValidator(check_dir_name)]
StoreUrl = Annotated[str, BeforeValidator(need_str), AfterValidator(check_store_url)]
Listen = Annotated[str, BeforeValidator(need_str), AfterValidator(check_listen)]
StoreUrlEnv = Annotated[Secret, BeforeValidator(_secret_from_env), AfterValidator(secret_store_url)]
StoreUrlFile = Annotated[Secret, BeforeValidator(_secret_from_file), AfterValidator(secret_store_url)]
