"""The dashboard's web app (FastAPI): the page, its live panels over server-sent events, alert acknowledgement,
the emergency stop and the Prometheus ``/metrics``, behind one token.

Every request but ``/healthz`` needs the token: ``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` once, which
sets an HttpOnly, SameSite=Strict cookie and redirects to the same URL without it. Forms (acknowledge, stop) carry
a per-process nonce as well, so a page of another origin cannot post them. The journals are read on a worker
thread with read-only connections opened per read: a slow page never holds a lock the trader waits on.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.templating import Jinja2Templates
from sse_starlette.sse import EventSourceResponse

from .snapshot import Sources, read_snapshot
from .svg import equity_svg

__all__ = ["create_app", "PANELS", "COOKIE"]

COOKIE = "navale_dashboard"
PANELS = (("trader", "Trader"), ("kill", "Kill switches"), ("orders", "Open orders"), ("equity", "Equity"),
          ("bars", "Last bars and their signals"), ("trades", "Last trades"), ("alerts", "Alerts"),
          ("collector", "Collector"), ("errors", "Problems reading the journals"))
TEMPLATES = Path(__file__).with_name("templates")


def _utc(ns: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ns) / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


def create_app(sources: Sources, token: str, *, stop: Callable[[Path, str], dict[str, Any]] | None = None,
               refresh_s: float = 1.0, stop_timeout_s: float = 10.0) -> FastAPI:
    """The app for ``sources``; ``stop(state_dir, reason)`` is the emergency stop (what `navale stop` does)."""
    if not token:
        raise ValueError("the dashboard needs a token")
    app = FastAPI(title="navale dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["utc"] = _utc
    panels_tpl = templates.env.get_template("panels.html")
    nonce = secrets.token_urlsafe(24)
    reader = None

    def metrics_reader():
        nonlocal reader
        if reader is None:
            from live.metrics import MetricsReader

            reader = MetricsReader(state_dir=sources.state_dir, collect_dir=sources.collect_dir)
        return reader

    def authorized(request: Request) -> bool:
        got = request.headers.get("authorization", "")
        if got.lower().startswith("bearer ") and hmac.compare_digest(got[7:].strip().encode(), token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), token.encode())

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.url.path == "/healthz":
            return await call_next(request)
        qtok = request.query_params.get("token")
        if qtok is not None:
            if not hmac.compare_digest(qtok.encode(), token.encode()):
                return PlainTextResponse("401: wrong token", status_code=401)
            resp = RedirectResponse(str(request.url.remove_query_params("token")), status_code=303)
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return resp
        if not authorized(request):
            return PlainTextResponse("401: this dashboard needs its token (Authorization: Bearer TOKEN, or ?token=)",
                                     status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    def halt_text() -> str | None:
        if sources.state_dir is None:
            return None
        from live import control

        h = control.read_halt(sources.state_dir)
        return None if h is None else f"{h.get('reason')} ({h.get('time')})"

    def render_panels(snap: dict[str, Any]) -> dict[str, str]:
        mod = panels_tpl.make_module({"state_dir": sources.state_dir, "collect_dir": sources.collect_dir,
                                      "nonce": nonce, "halt": halt_text(),
                                      "equity_svg": equity_svg(snap["trader"]["equity"], snap["trader"].get("band"))
                                      if snap.get("trader") else ""})
        return {key: str(getattr(mod, key)(snap)) for key, _ in PANELS}

    async def snapshot() -> dict[str, Any]:
        return await asyncio.to_thread(read_snapshot, sources)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        snap = await snapshot()
        rendered = await asyncio.to_thread(render_panels, snap)
        return templates.TemplateResponse(request, "page.html", {"panels": PANELS, "rendered": rendered})

    @app.get("/api/snapshot")
    async def api_snapshot() -> Response:
        return Response(json.dumps(await snapshot(), default=str), media_type="application/json")

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        async def stream():
            seq = 0
            while not await request.is_disconnected():
                snap = await snapshot()
                seq += 1
                data = {"seq": seq, "updated": _utc(time.time_ns()), "panels": await asyncio.to_thread(render_panels, snap)}
                yield {"event": "panels", "data": json.dumps(data)}
                await asyncio.sleep(refresh_s)

        return EventSourceResponse(stream(), ping=15)

    @app.post("/alerts/{alert_id}/ack")
    async def ack(alert_id: int, nonce_: str = Form(alias="nonce")) -> Response:
        if not hmac.compare_digest(nonce_.encode(), nonce.encode()):
            return PlainTextResponse("403: stale form (reload the page)", status_code=403)
        path = sources.trader_journal()
        if path is None or not path.is_file():
            return PlainTextResponse("404: no trader journal", status_code=404)

        def write() -> dict[str, Any] | None:
            from live import control
            from live.journal import Journal

            with Journal(path) as j:
                return j.ack_alert(alert_id, f"dashboard ({control.who()})")

        row = await asyncio.to_thread(write)
        if row is None:
            return PlainTextResponse(f"404: no alert #{alert_id}", status_code=404)
        return RedirectResponse("../../", status_code=303)

    @app.get("/stop", response_class=HTMLResponse)
    async def stop_page(request: Request) -> Response:
        return templates.TemplateResponse(request, "stop.html", {"nonce": nonce, "state_dir": sources.state_dir,
                                                                  "timeout": stop_timeout_s, "result": None})

    @app.post("/stop", response_class=HTMLResponse)
    async def stop_now(request: Request, nonce_: str = Form(alias="nonce"), confirm: str = Form(""),
                       reason: str = Form("emergency stop from the dashboard")) -> Response:
        ctx = {"nonce": nonce, "state_dir": sources.state_dir, "timeout": stop_timeout_s, "result": None}
        if not hmac.compare_digest(nonce_.encode(), nonce.encode()):
            return PlainTextResponse("403: stale form (reload the page)", status_code=403)
        if confirm.strip() != "STOP":
            return templates.TemplateResponse(request, "stop.html", {**ctx, "error": "type STOP to confirm"},
                                              status_code=400)
        if stop is None or sources.state_dir is None:
            return templates.TemplateResponse(request, "stop.html", {**ctx, "error": "no trader state dir"},
                                              status_code=400)
        try:
            result = await asyncio.to_thread(stop, sources.state_dir, reason.strip() or "emergency stop")
        except Exception as exc:  # noqa: BLE001 - ControlError and any broker failure: said on the page
            return templates.TemplateResponse(request, "stop.html", {**ctx, "error": " ".join(str(exc).split())},
                                              status_code=500)
        return templates.TemplateResponse(request, "stop.html", {**ctx, "result": result},
                                          status_code=200 if result.get("flat") else 500)

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from live.metrics import render

        def scrape() -> bytes:
            r = metrics_reader()
            r.update()
            return render(r.metrics)

        return Response(await asyncio.to_thread(scrape), media_type=CONTENT_TYPE_LATEST)

    return app
