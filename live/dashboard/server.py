"""The token and the server: uvicorn on 127.0.0.1 only."""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["TOKEN_ENV", "LOOPBACK", "dashboard_token", "free_port", "serve"]

TOKEN_ENV = "NAVALE_DASHBOARD_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dashboard_token() -> tuple[str, bool]:
    """``$NAVALE_DASHBOARD_TOKEN`` when set (True), else a new random one (False)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    return (env, True) if env else (secrets.token_urlsafe(24), False)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(app, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted; ``host`` must be a loopback address."""
    import uvicorn

    if host not in LOOPBACK:
        raise ValueError(f"--host {host}: the dashboard serves on 127.0.0.1 only (its token is its only "
                         "protection; reach it from elsewhere through an SSH tunnel)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
