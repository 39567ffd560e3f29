"""The HTTP app of the standalone reporting process (`softswitch reporting`).

``/healthz`` (503 while the service is still replaying), the report API (reporting/report_api.py),
and — when their modules are present — the web pages and live API (reporting/web.py, with the
logins of reporting/webauth.py), the call records ``/cdr`` and ``/api/cdr``
(reporting/cdr_web.py, from the shared store; supervisors and managers, as on the switch) and
the CMS figures on ``/metrics`` (reporting/prometheus.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reporting.report_api import report_routes

__all__ = ["make_reporting_app"]


def _loopback_only(request: Request) -> tuple[Response | None, str | None]:
    from ipaddress import ip_address

    host = request.client.host if request.client else ""
    try:
        ok = ip_address(host).is_loopback
    except ValueError:
        ok = host in ("testclient", "localhost")
    if ok:
        return None, None
    return JSONResponse({"error": "reports are loopback-only here"}, status_code=403), None


def make_reporting_app(get_service: Callable[[], Any], get_store: Callable[[], Any],
                       get_config: Callable[[], Any], *,
                       ready: Callable[[], bool] = lambda: True,
                       stats: Callable[[], dict[str, Any]] = dict,
                       clock: Callable[[], float] = time.time,
                       closing: Callable[[], bool] = lambda: False) -> Starlette:
    """`get_service()` the ReportingService (None before it exists), `get_config()` the
    softswitch Config (for the web pages), `ready()` false while replaying, `stats()` more
    figures for /healthz, `closing()` true once the process stops (open live streams end,
    so they cannot hold the HTTP server's graceful shutdown)."""

    def settings() -> Any:
        return get_service().settings

    async def healthz(request: Request) -> Response:
        service = get_service()
        if service is None or not ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "events": service.events_in,
                             "rows_written": service.rows_written,
                             "rows_pending": len(service.pending), **stats()})

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    authorize: Callable[[Request], tuple[Response | None, str | None]] = _loopback_only
    try:
        from reporting.cdr_web import cdr_routes
        from reporting.web import guard_routes, web_routes
        from reporting.webauth import WebAuth
    except ImportError:  # pragma: no cover - the web arrives separately
        pass
    else:
        auth = WebAuth(lambda: get_config().web)
        authorize = auth.authorize
        routes.extend(web_routes(get_service, get_store, get_config, auth=auth, clock=clock,
                                 closing=closing))
        # The call records, as on the switch (softswitch/http.py): same logins and roles.
        routes.extend(guard_routes(cdr_routes(get_store, lambda: get_config().web.timezone,
                                              lambda: get_config().web.language), auth))
    routes.extend(report_routes(get_store, settings, authorize))
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        from reporting.prometheus import CmsCollector
    except ImportError:  # pragma: no cover
        pass
    else:
        registry = CollectorRegistry(auto_describe=False)

        def snapshot() -> Any:
            service = get_service()
            return service.snapshot(clock()) if service is not None else None

        registry.register(CmsCollector(snapshot))

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

        routes.append(Route("/metrics", metrics))
    return Starlette(routes=routes)
