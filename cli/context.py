"""What every command shares: the global options, the config and store they name, and the
one-line error with its fix (exit code 2) for every way those can be missing or broken.

Known failures never reach the user as a traceback: `fail` prints one line on stderr and exits
with code 2; `open_store` turns store and SQL errors raised inside its block into `fail`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cli.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # imported inside the functions: `syncd --version` must not load them
    from sqlalchemy import Engine

    from syncd.config import Settings
    from syncd.service.rows import DirectoryScope

PG_CONNECT_TIMEOUT_S = 10

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        show_default=False,
        help="Config file (default: $SYNCD_CONFIG, ./config.toml, /etc/syncd/config.toml).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


@dataclass
class CliState:
    """Global options, merged with the same options given after a command."""

    config: Path | None = None
    json: bool = False
    settings: Settings | None = None
    #: the directory a listing is filtered by (`directory_scope`); `open_store` checks it exists
    directory: str | None = None


#: the state of the command running in this thread (set by `state`, read by `directory_scope`)
_current: ContextVar[CliState | None] = ContextVar("cli_state", default=None)


def state(ctx: typer.Context, *, config: Path | None = None, json: bool = False) -> CliState:
    st = ctx.ensure_object(CliState)
    _current.set(st)
    if config is not None:
        st.config, st.settings = config, None
    st.json = st.json or json
    return st


def fail(problem: str, fix: str | None = None, *, code: int = EXIT_USAGE) -> NoReturn:
    """Print `syncd: error: PROBLEM; FIX` as one line on stderr and exit with `code` (default 2).
    Control characters in it (a name, an IdP's or a store's message) are shown as escapes."""
    from cli.output import safe

    line = safe(" ".join(f"{problem}; {fix}".split() if fix else problem.split()))
    typer.echo(f"syncd: error: {line}", err=True)
    raise typer.Exit(code)


def settings(st: CliState) -> Settings:
    from syncd.config import ConfigError, ConfigNotFound, load_config

    if st.settings is None:
        try:
            st.settings = load_config(st.config)
        except ConfigNotFound as exc:
            fail(str(exc), "create it (see config.example.toml) or name an existing file")
        except ConfigError as exc:
            fail(str(exc), "fix the file; `syncd config check` lists every problem")
    return st.settings


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, None for other backends and in-memory databases."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    db = u.database or ""
    if u.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser()


def _where(s: Settings) -> str:
    return f"check [store] url in {s.source}" if s.source else "set [store] url in a config file"


@contextmanager
def open_store(st: CliState, *, need_schema: bool = True) -> Iterator[Engine]:
    """An engine for the configured store, disposed afterwards.

    With `need_schema`, the store must exist and be at the code's schema revision (no command
    but `db upgrade` migrates implicitly). Store errors inside the block become `fail`.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from syncd.store.engine import StoreError, make_engine, schema_status

    s = settings(st)
    shown = s.store.display_url
    db_file = sqlite_file(s.store.url)
    if need_schema and db_file is not None and not db_file.exists():
        fail(f"the store {db_file} does not exist yet", "run `syncd db upgrade` to create it")
    fast = sys.modules.get("cli.fastread")
    failed = fast.connect_failure(s.store.url) if fast is not None else None
    if failed is not None:  # the listings' fast path just waited for this store in vain
        fail(f"cannot reach the store {shown}: {failed}", f"{_where(s)} and that the database is up")
    u = make_url(s.store.url)
    if u.get_backend_name() == "postgresql" and "connect_timeout" not in u.query:
        u = u.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
    try:
        engine = make_engine(u.render_as_string(hide_password=False))
    except StoreError:
        fail(f"cannot use the store URL {shown}", _where(s))
    try:
        if need_schema:
            current, head = schema_status(engine)
            if current is None:
                fail(f"the store {shown} has no schema", "run `syncd db upgrade`")
            if current != head:
                fail(f"the store schema is at {current}, this syncd needs {head}", "run `syncd db upgrade`")
            if st.directory is not None:
                _check_directory(engine, s, st.directory)
        yield engine
    except StoreError as exc:
        fail(f"{exc} ({shown})", f"{_where(s)} and that the database is up")
    except OperationalError as exc:
        fail(f"cannot reach the store {shown}: {exc.orig}", f"{_where(s)} and that the database is up")
    except SQLAlchemyError as exc:
        fail(
            f"store error on {shown}: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}",
            "run `syncd db status` to check the schema",
        )
    finally:
        engine.dispose()


def directory_scope(directory: str | None, local: bool) -> DirectoryScope:
    """The scope of `--directory NAME` / `--local`; a NAME is checked by the next `open_store`
    (exit 2 when neither the config nor the store knows it, instead of an empty listing)."""
    from syncd.service.rows import ALL, LOCAL

    if directory is not None and local:
        raise typer.BadParameter("give --directory NAME or --local, not both", param_hint="--local")
    current = _current.get()
    if directory is not None and current is not None:
        current.directory = directory
    return LOCAL if local else (directory if directory is not None else ALL)


def _check_directory(engine: Engine, s: Settings, name: str) -> None:
    """`fail` unless `name` is a configured directory or one the store has rows for."""
    from sqlalchemy import text

    if name in s.directories:
        return
    with engine.connect() as conn:
        stored = list(conn.execute(text("SELECT name FROM directories ORDER BY name")).scalars())
    if name not in stored:
        known = sorted({*s.directories, *stored})
        fail(f"unknown directory {name!r}", f"known directories: {', '.join(known) or 'none'}")
