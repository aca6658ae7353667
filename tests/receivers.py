"""Real notification receivers on free loopback ports: an HTTP server taking webhooks (apprise's
json://) and an SMTP server (aiosmtpd) taking email, each recording what arrived and when."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tower.broker import free_port


class WebhookReceiver:
    """POSTed JSON bodies with their arrival time; answers `status` (set 500 to make deliveries fail)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:  # a sender killed mid-request leaves a truncated one: refused, as a real receiver would
                    received = json.loads(body) if body and len(body) == length else None
                except ValueError:
                    received = None
                if not isinstance(received, dict):
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.received.append((time.time(), self.path, received))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str | None = None) -> list[dict]:
        return [body for _, at, body in self.received if path is None or at == path]

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """Every email's recipients and text."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's naming
                receiver.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=tower@example.com&to={to}&mode=insecure"

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
