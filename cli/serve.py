"""`syncd serve`: the SCIM 2.0 endpoint (and `/healthz`) under uvicorn, until SIGINT/SIGTERM
(exit 0), in `[server] workers` processes (see syncd.scim.serve).

uvicorn and the app are imported inside the command, so other commands never load them.
"""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from cli.context import ConfigOption, fail, open_store, settings, state


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
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it, Nagle holds a response's body behind its headers until the client's delayed
    # ACK (~40 ms per request). TCP_NODELAY on the listener is inherited by accepted sockets.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    from syncd.config.types import check_listen
    from syncd.daemon.health import with_healthz
    from syncd.scim import create_app
    from syncd.scim.serve import AppFactory, check_workers, serve

    st = state(ctx, config=config)
    s = settings(st)
    if listen is not None:
        try:
            check_listen(listen)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--listen") from None
    workers = s.server.workers
    problem = check_workers(workers, s.store.url)
    if problem:
        fail(f"config error: {problem}", "set [server] workers = 1, or store on disk")
    bind = listen or s.server.listen
    public_url = s.server.public_url
    if listen is not None and public_url.rstrip("/") == f"http://{s.server.listen}":
        public_url = f"http://{listen}"  # the default public URL follows the listen address
    with open_store(st) as engine:
        sock = listen_socket(bind, option="--listen or [server] listen")
        factory = AppFactory(s.store.url, public_url, s.server.max_body_bytes)
        app = (
            factory
            if workers > 1
            else with_healthz(
                create_app(engine, public_url=public_url, max_body_bytes=factory.max_body_bytes)
            )
        )
        if workers > 1:
            engine.dispose()  # the checked store stays unused here: each worker opens its own
        shown = f" ({workers} workers)" if workers > 1 else ""
        typer.echo(f"syncd: SCIM endpoint {public_url.rstrip('/')}/scim/v2 on {bind}{shown}", err=True)
        with sock:
            started = serve(app, sock, workers=workers, log_level=s.log.level)
    if not started:
        raise typer.Exit(1)
