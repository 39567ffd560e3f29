"""HTTP side of the switch (starlette): health, Prometheus metrics, status and admin API.

Admin calls (``/api/admin/*``) change the running switch, so they are allowed from loopback
only, unless ``[http] admin_token`` is set, in which case a matching
``Authorization: Bearer <token>`` is required from anywhere.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reporting.cdr_web import cdr_routes
from reporting.report_api import report_routes
from reporting.web import guard_routes, web_routes
from reporting.webauth import WebAuth
from softswitch.agents_api import agents_routes
from softswitch.metrics import make_registry

if TYPE_CHECKING:
    from softswitch.app import Switch

__all__ = ["make_http_app"]


def make_http_app(switch: Switch) -> Starlette:
    registry = make_registry(lambda: switch)
    # Web logins and sessions (reporting/webauth.py): pages, the CDR page/API, reports.
    web_auth = WebAuth(lambda: switch.config.web)

    async def healthz(request: Request) -> Response:
        if not switch.running:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "uptime_s": round(switch.uptime(), 3)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> Response:
        return JSONResponse(switch.status())

    async def registrations(request: Request) -> Response:
        return JSONResponse(switch.registrations())

    async def reload(request: Request) -> Response:
        if (denied := _admin_denied(request, switch)) is not None:
            return denied
        result = await switch.reload()
        return JSONResponse(result, status_code=200 if result["applied"] else 422)

    async def trace(request: Request) -> Response:
        if (denied := _admin_denied(request, switch)) is not None:
            return denied
        if request.method == "POST":
            try:
                body: Any = await request.json()
            except ValueError:
                return JSONResponse({"error": "body must be JSON"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            for target in body.get("add", []) or []:
                switch.tracer.add(str(target))
            for target in body.get("remove", []) or []:
                switch.tracer.remove(str(target))
            if body.get("clear"):
                switch.tracer.set(())
        return JSONResponse({"targets": switch.tracer.targets()})

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/status", status),
        Route("/api/registrations", registrations),
        # GET /api/cdr (JSON: filters, total, next link) and the live /cdr page (PBX-6),
        # for supervisors and managers (loopback without [[web.users]]: the demo).
        *guard_routes(cdr_routes(lambda: switch.store, lambda: switch.config.web.timezone,
                                 lambda: switch.config.web.language), web_auth),
        # Wallboard, supervisor view, reports page, live snapshot + SSE, login (CMS-3/4/6).
        *web_routes(lambda: switch.reporting, lambda: switch.store, lambda: switch.config,
                    auth=web_auth, closing=lambda: not switch.running),
        # The report API (CMS-5): /api/reports/queues|agents, JSON or CSV; same logins.
        *report_routes(lambda: switch.store, switch.reporting_settings, web_auth.authorize),
        Route("/api/admin/reload", reload, methods=["POST"]),
        Route("/api/admin/trace", trace, methods=["GET", "POST"]),
        # The agents' REST API (issue 4): login/logout/aux/available/acw-end, agents, queues.
        *agents_routes(switch, lambda request: _admin_denied(request, switch)),
    ])


def _admin_denied(request: Request, switch: Switch) -> Response | None:
    token = switch.config.http.admin_token
    if token:
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        return JSONResponse({"error": "admin token required"}, status_code=401)
    client = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(client).is_loopback
    except ValueError:
        loopback = client in ("testclient", "localhost")
    if loopback:
        return None
    return JSONResponse({"error": "admin API is loopback-only without admin_token"},
                        status_code=403)
