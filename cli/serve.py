"""`syncd serve`: the SCIM 2.0 endpoint (and `/healthz`) under uvicorn, until SIGINT/SIGTERM
(exit 0).

uvicorn and the app are imported inside the command, so other commands never load them.
"""

from __future__ import annotations

import errno
import socket
from typing import Annotated, Any

import typer

from cli.context import ConfigOption, fail, open_store, settings, state

#: Idle keep-alive (seconds): longer than the 60 s idle timeout of common load balancers, so
#: the balancer, not syncd, closes idle connections (no request lost on a race).
KEEP_ALIVE_S = 75
#: Time in-flight requests get to finish on SIGTERM (seconds).
GRACEFUL_S = 10


def _server_class() -> type:
    import signal
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that SIGINT/SIGTERM end it normally (exit 0) once in-flight
        requests finished; uvicorn would re-raise the signal after the graceful shutdown, so the
        process would die of it (status -15) instead of exiting 0."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def listen_socket(listen: str, *, option: str = "[server] listen") -> socket.socket:
    """A socket bound to `listen` (HOST:PORT) as uvicorn binds it, or `fail` (exit 2) with the
    reason: an address in use or not on this machine is a usage problem, not a crash."""
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the address is already in use",
            errno.EADDRNOTAVAIL: "the address is not on this machine",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        fail(
            f"cannot listen on {listen}: {reason}",
            f"stop the process using it (`ss -ltnp 'sport = :{port}'`) or choose another address "
            f"with {option}",
        )
    sock.set_inheritable(True)
    return sock


def serve_cmd(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option("--listen", "-l", metavar="HOST:PORT", help="Address to bind (default: server.listen)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the SCIM 2.0 endpoint at <public_url>/scim/v2 (store schema must be current)."""
    import uvicorn

    from syncd.config.types import check_listen
    from syncd.daemon.health import with_healthz
    from syncd.scim import create_app

    st = state(ctx, config=config)
    s = settings(st)
    if listen is not None:
        try:
            check_listen(listen)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--listen") from None
    bind = listen or s.server.listen
    public_url = s.server.public_url
    if listen is not None and public_url.rstrip("/") == f"http://{s.server.listen}":
        public_url = f"http://{listen}"  # the default public URL follows the listen address
    host, port = split_listen(bind)
    with open_store(st) as engine:
        sock = listen_socket(bind, option="--listen or [server] listen")
        app = with_healthz(create_app(engine, public_url=public_url, max_body_bytes=s.server.max_body_bytes))
        server: Any = _server_class()(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level=s.log.level,
                timeout_keep_alive=KEEP_ALIVE_S,
                timeout_graceful_shutdown=GRACEFUL_S,
                server_header=False,
                proxy_headers=True,
                lifespan="off",
            )
        )
        typer.echo(f"syncd: SCIM endpoint {public_url.rstrip('/')}/scim/v2 on {bind}", err=True)
        with sock:
            server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(1)
