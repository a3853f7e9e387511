"""A real HTTP webhook receiver on 127.0.0.1 that verifies every message with the
`standardwebhooks` library, records it, and answers as scripted."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Received:
    msg_id: str
    payload: dict[str, Any]
    status: int  # what the receiver answered


@dataclass
class Receiver:
    url: str
    secret: str
    #: (msg_id, payload) → (status, headers); default 200
    answer: Callable[[str, dict[str, Any]], tuple[int, dict[str, str]]] = lambda _i, _p: (200, {})
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # bad signatures
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        """Messages answered 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.delivered()]


@contextmanager
def receiver(secret: str | None = None) -> Iterator[Receiver]:
    secret = secret or new_secret()
    verifier = Webhook(secret)
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = box["r"]
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                payload = verifier.verify(body, dict(self.headers.items()))
            except WebhookVerificationError as exc:
                with rec.lock:
                    rec.rejected.append(str(exc))
                self._reply(401, {})
                return
            msg_id = self.headers["webhook-id"]
            status, headers = rec.answer(msg_id, payload)
            with rec.lock:
                rec.received.append(Received(msg_id, payload, status))
            self._reply(status, headers)

        def _reply(self, status: int, headers: dict[str, str]) -> None:
            data = json.dumps({"status": status}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/syncd", secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box["r"]
    finally:
        server.shutdown()
        server.server_close()
