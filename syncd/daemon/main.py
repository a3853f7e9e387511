"""`syncd run`: one process that schedules pulls and serves, until SIGTERM/SIGINT, two
listeners: SCIM and health on `server.listen`; the console, the admin API, metrics and health
on `server.admin_listen` (one listener serves all when the two are equal, with a warning).

The two listeners are two uvicorn servers on one event loop (`serve_listeners`), not one
server with two sockets routed by the local address: an accepted connection reports its
local address, not the listening socket's, so a wildcard bind (`0.0.0.0:8080`) could not be
told apart from `127.0.0.1:8081` reliably, and one server would serve the same app (and its
paths) on both. Each server owns its app, its connections and its graceful shutdown; the
admin server alone handles the signals and runs the lifespan (the event-loop heartbeat), and
a stop or a failed start of either stops both.

Lifecycle:
1. logging set up; the store must be reachable and at the code's schema (else exit 2); both
   addresses are bound before anything starts (a busy address exits 1 with its reason);
2. uvicorn starts (main thread); once both listen, the scheduler starts (each pull directory
   runs at once, then on its schedule) and systemd gets READY=1 (and WATCHDOG=1 pings while
   the event loop beats);
3. SIGHUP: the config file is read again; on success the jobs follow it (new directories run
   at once, removed ones stop), on error the running config stays and the error is logged.
   Store URL and listen address changes need a restart (logged);
4. SIGTERM/SIGINT: no job fires any more, readiness turns 503, in-flight requests finish,
   running syncs stop at their next safe point (a fetch is cancelled; an apply stops between
   two batch transactions), then the process exits 0. A sync that is still writing after
   `STOP_TIMEOUT_S` is left to the database to roll back (its batch is one transaction).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from syncd.config import ConfigError, Settings, load_config
from syncd.daemon import logging as dlog
from syncd.daemon.app import BEAT_S, DaemonState, build_apps, build_shared_app
from syncd.daemon.feed_workers import FeedWorkers
from syncd.daemon.login import LoginService
from syncd.daemon.metrics import Metrics
from syncd.daemon.notify import Watchdog, notify, watchdog_interval
from syncd.daemon.runner import Runner
from syncd.daemon.scheduler import Scheduler
from syncd.heap import freeze_startup_heap
from syncd.store.engine import StoreError, make_engine, schema_status

log = logging.getLogger("syncd.daemon")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Seconds running syncs get to reach a safe point on SIGTERM (systemd's TimeoutStopSec is 90).
STOP_TIMEOUT_S = 30.0
#: Idle keep-alive, seconds: longer than common load balancers' 60 s idle timeout.
KEEP_ALIVE_S = 75
#: Seconds in-flight requests get to finish on SIGTERM.
GRACEFUL_S = 10


class Config:
    """The settings in force; replaced as a whole on SIGHUP (readers never see a mix)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def get(self) -> Settings:
        return self._settings

    def set(self, settings: Settings) -> None:
        self._settings = settings


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class DaemonServer(uvicorn.Server):
    """uvicorn, with the daemon's signals: TERM/INT stop (exit 0, not re-raised), HUP reloads;
    and READY=1 to systemd once the sockets listen."""

    def __init__(self, config: uvicorn.Config, daemon: Daemon) -> None:
        super().__init__(config)
        self.daemon = daemon
        self.peers: list[uvicorn.Server] = []

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handlers = {signal.SIGINT: self._stop, signal.SIGTERM: self._stop, signal.SIGHUP: self._hup}
        previous = {sig: signal.signal(sig, h) for sig, h in handlers.items()}
        try:
            yield
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)

    def _stop(self, sig: int, frame: Any) -> None:
        self.handle_exit(sig, frame)
        for peer in self.peers:
            peer.handle_exit(sig, frame)
        self.daemon.begin_stop(signal.Signals(sig).name)

    def _hup(self, _sig: int, _frame: Any) -> None:
        threading.Thread(target=self.daemon.reload, name="reload", daemon=True).start()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        while self.started and not self.should_exit and not all(p.started for p in self.peers):
            if any(p.should_exit for p in self.peers):
                return
            await asyncio.sleep(0.01)
        if self.started and not self.should_exit:
            self.daemon.ready()


class PeerServer(uvicorn.Server):
    """A second listener on the daemon server's loop: its signals are the daemon server's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_listeners(
    main: DaemonServer, peers: list[tuple[uvicorn.Server, socket.socket]], main_socket: socket.socket
) -> None:
    """Serve `main` and its peers on this loop until all stop; one ending stops the others."""
    main.peers = [p for p, _ in peers]
    tasks = [asyncio.create_task(main.serve(sockets=[main_socket]), name="admin-listener")]
    tasks += [asyncio.create_task(p.serve(sockets=[sock]), name="scim-listener") for p, sock in peers]
    try:
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                for server in (main, *main.peers):
                    server.should_exit = True
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
    finally:
        for t in tasks:
            t.cancel()


class Daemon:
    def __init__(self, settings: Settings, engine: Any) -> None:
        self.config = Config(settings)
        self.engine = engine
        self.metrics = Metrics(engine, self._pull_names)
        self.runner = Runner(engine, self.config.get, self.metrics)
        self.login = LoginService(engine, self.config.get, metrics=self.metrics)
        self.scheduler = Scheduler(self.runner.scheduled)
        self.state = DaemonState(
            engine, self.config.get, self.metrics, self.runner, self.scheduler, self.login
        )
        self.feed_workers = FeedWorkers(engine, self.config.get, self.metrics.registry)
        self.watchdog: Watchdog | None = None
        self._reload_lock = threading.Lock()
        from syncd.targets.worker import TargetWorkers

        self.targets = TargetWorkers(engine, self.config.get, self.metrics.registry)

    def _pull_names(self) -> list[str]:
        return [n for n, d in self.config.get().directories.items() if d.kind != "scim"]

    def ready(self) -> None:
        s = self.config.get()
        self.runner.warm(s.directories)  # SDK imports and clients, before the first slot needs them
        freeze_startup_heap()  # before the scheduler's first run and the first SCIM request
        self.scheduler.apply(s.directories)
        self.scheduler.start()
        self.targets.start()
        self.feed_workers.start()
        pulls = self._pull_names()
        log.info(
            "syncd ready",
            extra={
                "listen": s.server.listen,
                "admin_listen": s.server.admin_listen,
                "pull_directories": pulls,
            },
        )
        notify(
            f"READY=1\nSTATUS=SCIM on {s.server.listen}, console on {s.server.admin_listen}; "
            f"{len(pulls)} pull directories scheduled"
        )
        interval = watchdog_interval()
        if interval:
            self.watchdog = Watchdog(
                interval, lambda: self.state.loop_alive(max(3 * BEAT_S, 2 * interval))
            ).start()

    def begin_stop(self, why: str) -> None:
        if self.state.stopping:
            return
        self.state.stopping = True
        notify("STOPPING=1")
        self.scheduler.pause()
        self.runner.stop.set()
        log.info("stopping", extra={"signal": why})

    def reload(self) -> None:
        with self._reload_lock:
            old = self.config.get()
            notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
            try:
                new = load_config(old.source)
            except ConfigError as exc:
                log.error("config reload failed; the running config stays", extra={"problems": str(exc)})
                notify("READY=1")
                return
            if new.store.url != old.store.url:
                log.warning("the store URL changed; restart syncd to use the new store")
            if new.server != old.server:
                log.warning("server settings changed; restart syncd to apply them")
            self.config.set(new)
            self.login.reset()
            self.runner.reload(new.directories)
            if not self.state.stopping:
                self.scheduler.apply(new.directories)
                self.targets.apply()
                self.feed_workers.reload()
            log.info("config reloaded", extra={"pull_directories": self._pull_names()})
            notify("READY=1")

    def finish(self) -> bool:
        self.begin_stop("server stopped")
        self.scheduler.shutdown()
        clean = self.runner.shutdown(STOP_TIMEOUT_S)
        self.targets.shutdown(STOP_TIMEOUT_S)
        if not clean:
            log.warning("a sync did not reach a safe point in time; its open batch is rolled back")
        if self.watchdog is not None:
            self.watchdog.stop()
        self.runner.close()
        self.login.close()
        self.feed_workers.stop()
        return clean


def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the exit code (0 after a clean stop)."""
    dlog.setup(settings.log.level, settings.log.format)
    try:
        engine = make_engine(settings.store.url)
        current, head = schema_status(engine)
    except StoreError as exc:
        log.error("cannot use the store", extra={"store": settings.store.display_url, "error": str(exc)})
        return EXIT_USAGE
    if current != head:
        log.error(
            "the store schema is not current; run `syncd db upgrade`",
            extra={"store": settings.store.display_url, "current": current, "head": head},
        )
        engine.dispose()
        return EXIT_USAGE
    try:
        sockets = _bind(settings)
    except OSError as exc:
        log.error("cannot listen", extra={"error": str(exc)})
        engine.dispose()
        return EXIT_FAILED
    daemon = Daemon(settings, engine)
    srv = settings.server
    if srv.workers > 1:
        log.warning(
            "[server] workers applies to `syncd serve`; this daemon serves SCIM in one process "
            "(run `syncd serve` beside it on the same store for more)",
            extra={"workers": srv.workers},
        )
    if srv.shared_listener:
        log.warning(
            "SCIM and the admin console share one listener; expose only /scim/v2 to the internet, "
            "or set [server] admin_listen to a private address",
            extra={"listen": srv.listen},
        )
        apps = None
        main_app = build_shared_app(
            daemon.state, public_url=srv.public_url, max_body_bytes=srv.max_body_bytes
        )
    else:
        apps = build_apps(daemon.state, public_url=srv.public_url, max_body_bytes=srv.max_body_bytes)
        main_app = apps.admin
    server = DaemonServer(_uvicorn_config(main_app, lifespan="on"), daemon)
    peers: list[tuple[uvicorn.Server, socket.socket]] = []
    if apps is not None:
        peers.append((PeerServer(_uvicorn_config(apps.scim, lifespan="off")), sockets[1]))
    try:
        asyncio.run(serve_listeners(server, peers, sockets[0]))
    except SystemExit as exc:  # uvicorn could not start (a lifespan failure)
        log.error("the server did not start", extra={"listen": srv.admin_listen, "code": exc.code})
        return EXIT_FAILED
    finally:
        for sock in sockets:
            sock.close()
        daemon.finish()
        engine.dispose()
    log.info("syncd stopped")
    return EXIT_OK if server.started else EXIT_FAILED


def _uvicorn_config(app: Any, *, lifespan: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_S,
        server_header=False,
        proxy_headers=True,
        lifespan=lifespan,
    )


_REASONS = {
    errno.EADDRINUSE: "the address is already in use",
    errno.EADDRNOTAVAIL: "the address is not on this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def _bind(settings: Settings) -> list[socket.socket]:
    """Bound sockets: [admin listener, SCIM listener] (one socket when the two are equal).
    An OSError's message names the address and the option that set it."""
    srv = settings.server
    wanted = [("[server] admin_listen", srv.admin_listen)]
    if not srv.shared_listener:
        wanted.append(("[server] listen", srv.listen))
    out: list[socket.socket] = []
    for option, listen in wanted:
        host, port = split_listen(listen)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            for s in out:
                s.close()
            reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
            raise OSError(f"cannot listen on {listen} ({option}): {reason}") from None
        out.append(sock)
    return out
