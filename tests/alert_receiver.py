"""An HTTP server on 127.0.0.1 receiving apprise ``json://`` notifications, for the alert tests."""

from __future__ import annotations

import http.server
import json
import threading
import time

__all__ = ["Receiver", "wait_for"]


class Receiver:
    """An HTTP server on 127.0.0.1 taking apprise json:// posts. ``hold`` makes the next request wait (the
    endpoint blackholed: connection accepted, no answer) until ``release``; ``fail_held`` answers it 503."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []
        self.hold = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.answered_held = 0
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if rec.hold.is_set():
                    rec.hold.clear()
                    rec.entered.set()
                    rec.release.wait(60)
                    rec.answered_held += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                rec.payloads.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/{path}?rto=30&cto=5"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(pred, timeout=30.0):
    """Poll until ``pred()`` (a wait for a background thread, not a timed assertion)."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
