"""The dashboard served for the tests: the real app on a real uvicorn in a thread, on a free 127.0.0.1 port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from live.dashboard.app import create_app
from live.dashboard.server import free_port
from live.dashboard.snapshot import Sources
from research.cli.stop_cmd import emergency_stop

TOKEN = "test-token-0123456789"


@contextmanager
def served(state_dir: Path | None, collect_dir: Path | None = None, refresh_s: float = 0.3) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/``) while the server runs."""
    app = create_app(Sources(state_dir, collect_dir), TOKEN, stop=lambda d, r: emergency_stop(d, r, 10.0),
                     refresh_s=refresh_s)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started and th.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the dashboard server did not start")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        th.join(10)
