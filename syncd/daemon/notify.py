"""systemd's notify protocol over a plain datagram socket (no dependency): READY, WATCHDOG,
STOPPING, STATUS. Without $NOTIFY_SOCKET (not under systemd) every call is a no-op.

The watchdog pings only while the daemon's event loop is alive: `Watchdog` sends WATCHDOG=1
every half `WATCHDOG_USEC` if `alive()` says the loop beat recently, so a wedged loop stops
the pings and systemd restarts the service.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to $NOTIFY_SOCKET; False when there is none or it fails."""
    env = os.environ if environ is None else environ
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.setblocking(False)  # a reader that stopped reading must not stall the daemon
            s.connect(addr)
            s.sendall(state.encode())
        return True
    except OSError:
        return False


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog is asked for
    this process."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class Watchdog:
    """A thread that sends WATCHDOG=1 every `interval` seconds while `alive()` is true."""

    def __init__(self, interval: float, alive: Callable[[], bool]) -> None:
        self.interval, self.alive = interval, alive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.alive():
                notify("WATCHDOG=1")
