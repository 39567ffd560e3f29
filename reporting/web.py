"""The contact centre on the web (CMS-3, CMS-4, CMS-6): wallboard, supervisor view, reports.

Pages are rendered on the server (English or Indonesian: ``?lang=en|id``, else ``[web]
language``) with small vanilla scripts from ``reporting/static/`` (no build step):

- ``/wallboard`` — for a TV: large figures per queue (waiting, longest wait, service level,
  abandoned, ASA, answered today, agents available / on call); a figure whose threshold rule
  is raised turns red (critical) or amber (warning). No interaction. Read-only: it opens with
  ``?token=`` a kiosk token, for a logged-in user, or for anyone where ``wallboard_open``.
- ``/supervisor`` — queues, agents with state, reason and time in state, raised alerts.
- ``/reports`` — a form over the report API (``/api/reports/queues|agents``): table, bar
  chart (inline SVG) and a CSV link.
- ``/api/live`` — the reporting service's snapshot (JSON); ``/api/live/stream`` — the same as
  Server-Sent Events: one as soon as the snapshot changes (`wait_changed`) and at least every
  ``[reporting] refresh_s``.
- ``/login``, ``/logout`` — see `reporting.webauth` for sessions and roles.

What each viewer gets of the snapshot: supervisors, managers and ``local`` all of it; a kiosk
(TV) the queues and alerts but no agent rows; an agent its own agent row only.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from reporting.cdr_web import page_language
from reporting.webauth import LoginThrottled, Viewer, WebAuth, client_address

__all__ = ["LANGUAGES", "TEXT", "guard_routes", "live_view", "web_routes"]

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# A burst of events (a campaign of calls arriving) gives one snapshot per this many seconds.
MIN_GAP_S = 0.1
MAX_FORM_BYTES = 4096
CLOSE_POLL_S = 0.5  # how soon open live streams notice the server is stopping

_METRICS_EN = {
    "offered": "Offered", "queued": "Queued", "answered": "Answered",
    "answered_in_t": "Answered in T", "abandoned": "Abandoned",
    "short_abandoned": "Short abandons", "overflowed": "Overflowed", "dropped": "Dropped",
    "handled": "Handled", "transfers": "Transfers", "ring_no_answer": "Ring no answer",
    "service_level": "Service level", "abandon_rate": "Abandon rate", "asa": "ASA (s)",
    "asa_s": "ASA (s)", "aht_s": "AHT (s)", "avg_talk_s": "Avg talk (s)",
    "avg_acw_s": "Avg ACW (s)", "abandoned_in_t": "Abandoned in T",
    "abandon_wait_sum": "Abandon wait (s)", "login": "Login", "logoff": "Logoff",
    "aux_by_reason": "Aux by reason (s)", "aht": "AHT (s)", "max_wait": "Max wait (s)",
    "talk": "Talk (s)",
    "acw": "ACW (s)", "hold": "Hold (s)", "staffed": "Staffed (s)",
    "available": "Available (s)", "ringing": "Ringing (s)", "aux": "Aux (s)",
    "occupancy": "Occupancy", "avg_talk": "Avg talk (s)", "avg_acw": "Avg ACW (s)",
    "wait_sum": "Total wait (s)", "calls_waiting": "Waiting", "longest_wait_s": "Longest wait",
    "agents_available": "Agents available",
}
_METRICS_ID = {
    "offered": "Ditawarkan", "queued": "Antre", "answered": "Dijawab",
    "answered_in_t": "Dijawab dlm T", "abandoned": "Ditinggalkan",
    "short_abandoned": "Tinggal singkat", "overflowed": "Dialihkan", "dropped": "Diputus",
    "handled": "Ditangani", "transfers": "Transfer", "ring_no_answer": "Dering tak dijawab",
    "service_level": "Tingkat layanan", "abandon_rate": "Tingkat tinggal", "asa": "ASA (dtk)",
    "asa_s": "ASA (dtk)", "aht_s": "AHT (dtk)", "avg_talk_s": "Rata bicara (dtk)",
    "avg_acw_s": "Rata ACW (dtk)", "abandoned_in_t": "Tinggal dlm T",
    "abandon_wait_sum": "Tunggu sblm tinggal (dtk)", "login": "Masuk", "logoff": "Keluar",
    "aux_by_reason": "Aux per alasan (dtk)", "aht": "AHT (dtk)", "max_wait": "Tunggu maks (dtk)",
    "talk": "Bicara (dtk)", "acw": "ACW (dtk)", "hold": "Tahan (dtk)",
    "staffed": "Bertugas (dtk)", "available": "Siap (dtk)", "ringing": "Berdering (dtk)",
    "aux": "Aux (dtk)", "occupancy": "Okupansi", "avg_talk": "Rata bicara (dtk)",
    "avg_acw": "Rata ACW (dtk)", "wait_sum": "Total tunggu (dtk)", "calls_waiting": "Menunggu",
    "longest_wait_s": "Tunggu terlama", "agents_available": "Agen siap",
}
_STATES = ("logged_out", "available", "ringing", "on_call", "hold", "acw", "aux")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "wallboard": "Wallboard", "supervisor": "Supervisor", "reports": "Reports",
        "cdr": "Calls", "login": "Log in", "logout": "Log out", "name": "User name",
        "password": "Password", "bad_login": "Wrong user name or password.",
        "throttled": "Too many failed logins. Try again later.",
        "waiting": "Waiting", "longest_wait": "Longest wait", "sl_today": "Service level today",
        "abandoned_today": "Abandoned today", "asa_today": "ASA today",
        "answered_today": "Answered today", "agents_available": "Agents available",
        "agents_on_call": "Agents on call", "refresh": "Refresh every", "seconds": "s",
        "updated": "updated", "no_queues": "No queues configured.", "alerts": "Alerts",
        "queues": "Queues", "agents": "Agents", "queue": "Queue", "agent": "Agent",
        "offered": "Offered", "answered": "Answered", "abandoned": "Abandoned",
        "service_level": "SL", "asa": "ASA", "aht": "AHT", "staffed": "Staffed",
        "available": "Available", "on_call": "On call", "acw": "ACW", "aux": "Aux",
        "state": "State", "reason": "Reason", "time_in_state": "Time in state",
        "on_queue": "Call from", "member_of": "Queues", "handled": "Handled",
        "talk": "Talk", "occupancy": "Occupancy", "agent_name": "Name",
        "conn_connecting": "connecting", "conn_live": "live", "conn_lost": "reconnecting",
        "kind": "Report", "kind_queues": "Queues", "kind_agents": "Agents", "from": "From",
        "to": "To (incl.)", "group": "Grouping", "group_interval": "Interval",
        "group_day": "Day", "group_total": "Total", "metrics": "Metrics (none ticked: all)",
        "names": "Queues/agents (comma separated, empty: all)", "show": "Show",
        "chart_metric": "Chart", "csv": "Download CSV", "period": "Period",
        "no_rows": "No data for this range.", "rows": "rows", "times_in": "times in",
        "loading": "loading…", "no_service": "The reporting service is not running.",
        "my_figures": "My figures", "time_zone": "Time zone",
        "more": "Show more rows", "partial": "more rows follow; the CSV has them all",
        **{f"state_{s}": s.replace("_", " ") for s in _STATES},
        **{f"metric_{k}": v for k, v in _METRICS_EN.items()},
    },
    "id": {
        "wallboard": "Papan pantau", "supervisor": "Supervisor", "reports": "Laporan",
        "cdr": "Panggilan", "login": "Masuk", "logout": "Keluar", "name": "Nama pengguna",
        "password": "Kata sandi", "bad_login": "Nama pengguna atau kata sandi salah.",
        "throttled": "Terlalu banyak percobaan gagal. Coba lagi nanti.",
        "waiting": "Menunggu", "longest_wait": "Tunggu terlama",
        "sl_today": "Tingkat layanan hari ini", "abandoned_today": "Ditinggalkan hari ini",
        "asa_today": "ASA hari ini", "answered_today": "Dijawab hari ini",
        "agents_available": "Agen siap", "agents_on_call": "Agen sedang bicara",
        "refresh": "Diperbarui tiap", "seconds": "dtk", "updated": "diperbarui",
        "no_queues": "Belum ada antrean.", "alerts": "Peringatan", "queues": "Antrean",
        "agents": "Agen", "queue": "Antrean", "agent": "Agen", "offered": "Ditawarkan",
        "answered": "Dijawab", "abandoned": "Ditinggalkan", "service_level": "TL",
        "asa": "ASA", "aht": "AHT", "staffed": "Bertugas", "available": "Siap",
        "on_call": "Bicara", "acw": "ACW", "aux": "Aux", "state": "Status",
        "reason": "Alasan", "time_in_state": "Lama status", "on_queue": "Panggilan dari",
        "member_of": "Antrean", "handled": "Ditangani", "talk": "Bicara",
        "occupancy": "Okupansi", "agent_name": "Nama",
        "conn_connecting": "menyambung", "conn_live": "langsung",
        "conn_lost": "menyambung ulang",
        "kind": "Laporan", "kind_queues": "Antrean", "kind_agents": "Agen", "from": "Dari",
        "to": "Sampai (termasuk)", "group": "Pengelompokan", "group_interval": "Interval",
        "group_day": "Hari", "group_total": "Total",
        "metrics": "Metrik (tanpa centang: semua)",
        "names": "Antrean/agen (pisahkan dengan koma, kosong: semua)", "show": "Tampilkan",
        "chart_metric": "Grafik", "csv": "Unduh CSV", "period": "Periode",
        "no_rows": "Tidak ada data untuk rentang ini.", "rows": "baris",
        "times_in": "waktu dalam", "loading": "memuat…",
        "no_service": "Layanan pelaporan tidak berjalan.", "my_figures": "Angka saya",
        "time_zone": "Zona waktu",
        "more": "Tampilkan baris lagi", "partial": "masih ada baris lagi; CSV memuat semuanya",
        "state_logged_out": "keluar", "state_available": "siap", "state_ringing": "berdering",
        "state_on_call": "bicara", "state_hold": "tahan", "state_acw": "ACW",
        "state_aux": "aux",
        **{f"metric_{k}": v for k, v in _METRICS_ID.items()},
    },
}
LANGUAGES = tuple(TEXT)

# Rows the reports page asks for at a time (a table and a chart can show this many; the
# CSV link downloads all).
REPORT_PAGE_ROWS = 1000

# The report form's metric boxes (the API accepts more; the JSON says which it returned).
QUEUE_METRICS = ("offered", "queued", "answered", "answered_in_t", "abandoned",
                 "short_abandoned", "overflowed", "dropped", "handled", "service_level",
                 "abandon_rate", "asa_s", "aht_s", "max_wait", "ring_no_answer")
AGENT_METRICS = ("handled", "offered", "ring_no_answer", "staffed", "available", "talk",
                 "acw", "aux", "occupancy", "aht_s", "login", "logoff", "aux_by_reason")


def live_view(snapshot: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """The part of a snapshot `viewer` may see (module docstring)."""
    if viewer.sees_all:
        return snapshot
    if viewer.role == "kiosk":
        return {**snapshot, "agents": [], "totals": {"queues": snapshot.get("totals", {})
                                                     .get("queues", {}), "agents": {}}}
    own = [a for a in snapshot.get("agents", []) if a.get("agent") == viewer.agent]
    totals = snapshot.get("totals", {}).get("agents", {})
    return {**snapshot, "queues": [], "alerts": [], "agents": own,
            "totals": {"queues": {}, "agents": {k: v for k, v in totals.items()
                                                if k == viewer.agent}}}


def web_routes(get_service: Callable[[], Any], get_store: Callable[[], Any],
               get_config: Callable[[], Any], *, auth: WebAuth | None = None,
               clock: Callable[[], float] = time.time,
               closing: Callable[[], bool] = lambda: False) -> list[Route]:
    """The pages, live API and static files; `auth` is shared with the report API.

    `closing()` true ends every live stream within `CLOSE_POLL_S` (an open stream would
    otherwise hold the HTTP server's graceful shutdown for ever)."""
    auth = auth if auth is not None else WebAuth(lambda: get_config().web)
    assets = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in _TYPES}

    def language(request: Request) -> str:
        return page_language(request, str(get_config().web.language))

    def snapshot(viewer: Viewer) -> dict[str, Any] | None:
        service = get_service()
        if service is None:
            return None
        return live_view(service.snapshot(clock()), viewer)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        body = assets.get(name)
        if body is None:
            return Response("not found", 404, media_type="text/plain")
        return Response(body, media_type=_TYPES[Path(name).suffix],
                        headers={"Cache-Control": "no-cache"})

    # -- login / logout ---------------------------------------------------------------------

    async def login(request: Request) -> Response:
        lang = language(request)
        target = _safe_next(request.query_params.get("next", ""))
        if request.method == "GET":
            return _html(_login_page(lang, target, ""), lang)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return Response("form too large", 413, media_type="text/plain")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        target = _safe_next(form.get("next", target))
        try:
            session = await auth.login(form.get("name", ""), form.get("password", ""),
                                       client_address(request))
        except LoginThrottled as exc:
            return _html(_login_page(lang, target, TEXT[lang]["throttled"]), lang, 429,
                         {"Retry-After": str(int(exc.retry_after) + 1)})
        if session is None:
            return _html(_login_page(lang, target, TEXT[lang]["bad_login"]), lang, 401)
        response = RedirectResponse(target or f"/supervisor?lang={lang}", 303)
        auth.set_cookie(response, session, request)
        return response

    async def logout(request: Request) -> Response:
        auth.logout(request)
        response = RedirectResponse(f"/login?lang={language(request)}", 303)
        auth.clear_cookie(response)
        return response

    # -- pages ------------------------------------------------------------------------------

    def live_config(request: Request, lang: str, viewer: Viewer) -> dict[str, Any]:
        token = request.query_params.get("token", "")
        stream = "/api/live/stream" + (f"?{urlencode({'token': token})}" if token else "")
        return {"lang": lang, "text": TEXT[lang], "stream": stream,
                "refresh_s": get_config().reporting.refresh_s, "snapshot": snapshot(viewer)}

    async def wallboard(request: Request) -> Response:
        lang = language(request)
        viewer = auth.wallboard_viewer(request)
        if viewer is None:
            return Response("wallboard: a kiosk token (?token=) or a login is required", 403,
                            media_type="text/plain")
        cfg = live_config(request, lang, viewer)
        return _html(_wallboard_page(lang, cfg, request, viewer), lang)

    async def supervisor(request: Request) -> Response:
        lang = language(request)
        denied, viewer = auth.page_guard(request)
        if denied is not None or viewer is None:
            return denied or Response(status_code=500)
        cfg = live_config(request, lang, viewer)
        return _html(_supervisor_page(lang, cfg, request, viewer), lang)

    async def reports(request: Request) -> Response:
        lang = language(request)
        denied, viewer = auth.page_guard(request)
        if denied is not None or viewer is None:
            return denied or Response(status_code=500)
        config = get_config()
        return _html(_reports_page(lang, request, viewer, config), lang)

    # -- live data --------------------------------------------------------------------------

    async def live(request: Request) -> Response:
        viewer = auth.wallboard_viewer(request)
        if viewer is None:
            return JSONResponse({"error": "login or kiosk token required"}, status_code=401)
        snap = snapshot(viewer)
        if snap is None:
            return JSONResponse({"error": "reporting service not running"}, status_code=503)
        return JSONResponse(snap, headers={"Cache-Control": "no-store"})

    async def stream(request: Request) -> Response:
        viewer = auth.wallboard_viewer(request)
        if viewer is None:
            return JSONResponse({"error": "login or kiosk token required"}, status_code=401)

        async def events() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            refresh = float(get_config().reporting.refresh_s)
            yield f"retry: {int(refresh * 1000)}\n\n"
            while not closing():
                # A session that expired (or a kiosk token removed by a reload) ends the stream.
                now_viewer = auth.wallboard_viewer(request)
                if now_viewer is None or await request.is_disconnected():
                    return
                refresh = float(get_config().reporting.refresh_s)
                service = get_service()
                if service is None:
                    yield ": reporting service not running\n\n"
                    await asyncio.sleep(min(refresh, CLOSE_POLL_S))
                    continue
                version = service.version
                data = json.dumps(live_view(service.snapshot(clock()), now_viewer),
                                  separators=(",", ":"))
                yield f"id: {version}\nevent: snapshot\ndata: {data}\n\n"
                # The next one as soon as the snapshot changes, at the latest after refresh_s.
                due = loop.time() + refresh
                while (left := due - loop.time()) > 0 and not closing():
                    if await service.wait_changed(version, min(left, CLOSE_POLL_S)) != version:
                        await asyncio.sleep(MIN_GAP_S)  # let a burst of events settle
                        break

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/wallboard", wallboard),
        Route("/supervisor", supervisor),
        Route("/reports", reports),
        Route("/api/live", live),
        Route("/api/live/stream", stream),
        Route("/static/web/{name}", static),
    ]


def guard_routes(routes: list[Route], auth: WebAuth) -> list[Route]:
    """`routes` behind a login for supervisors and managers (the CDR page and API):
    paths under /api/ answer 401/403 JSON, pages redirect to /login."""
    out = []
    for route in routes:
        api = route.path.startswith("/api/")

        def wrap(endpoint: Any, api: bool = api) -> Callable[[Request], Any]:
            async def guarded(request: Request) -> Response:
                guard = auth.api_guard if api else auth.page_guard
                denied, _ = guard(request, agents=False)
                if denied is not None:
                    return denied
                response: Response = await endpoint(request)
                return response
            return guarded

        out.append(Route(route.path, wrap(route.endpoint), methods=route.methods,
                         name=route.name))
    return out


# -- rendering -----------------------------------------------------------------------------

esc = html.escape


def _safe_next(target: str) -> str:
    # Only a path on this site (no //host, no scheme): a login never sends you elsewhere.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


def _html(body: str, lang: str, status: int = 200,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status, headers={"Content-Language": lang,
                                               "Cache-Control": "no-store", **(headers or {})})


def _json_script(data: dict[str, Any]) -> str:
    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" id="page-config">{text}</script>'


def _lang_links(request: Request, lang: str) -> str:
    out = []
    for code in LANGUAGES:
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        query["lang"] = code
        href = esc(f"{request.url.path}?{urlencode(query)}")
        cls = ' class="here"' if code == lang else ""
        out.append(f'<a{cls} hreflang="{code}" href="{href}">{code.upper()}</a>')
    return " ".join(out)


def _nav(request: Request, lang: str, viewer: Viewer | None, here: str) -> str:
    t = TEXT[lang]
    links = []
    pages = ["wallboard", "supervisor", "reports", "cdr"]
    if viewer is not None and not viewer.sees_all:
        pages = ["supervisor", "reports"] if viewer.role == "agent" else []
    for page in pages:
        cls = ' class="here"' if page == here else ""
        label = t["my_figures"] if page == "supervisor" and viewer is not None \
            and viewer.role == "agent" else t[page]
        links.append(f'<a{cls} href="/{page}?lang={lang}">{esc(label)}</a>')
    right = [_lang_links(request, lang)]
    if viewer is not None and viewer.role not in ("kiosk", "local"):
        right.append(f'<span class="who">{esc(viewer.name)}</span>'
                     f'<form method="post" action="/logout?lang={lang}">'
                     f'<button type="submit">{esc(t["logout"])}</button></form>')
    return (f'<header class="bar">{"".join(links)}'
            f'<span class="right">{"".join(right)}</span></header>')


def _page(lang: str, title: str, nav: str, main: str, *, body_class: str = "",
          scripts: tuple[str, ...] = (), config: dict[str, Any] | None = None) -> str:
    tags = "".join(f'<script src="/static/web/{s}"></script>' for s in scripts)
    cfg = _json_script(config) if config is not None else ""
    cls = f' class="{body_class}"' if body_class else ""
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="stylesheet" href="/static/web/web.css"></head>
<body{cls}>{nav}<main>{main}</main>{cfg}{tags}</body></html>
"""


def _login_page(lang: str, target: str, error: str) -> str:
    t = TEXT[lang]
    err = f'<p class="error" id="login-error">{esc(error)}</p>' if error else ""
    main = f"""<form class="login" method="post" action="/login?lang={lang}">
<h1>{esc(t["login"])}</h1>{err}
<input type="hidden" name="next" value="{esc(target)}">
<label>{esc(t["name"])}<input name="name" autocomplete="username" required autofocus></label>
<label>{esc(t["password"])}<input name="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit">{esc(t["login"])}</button></form>"""
    return _page(lang, t["login"], "", main)


def _status_line(t: dict[str, str], cfg: dict[str, Any]) -> str:
    return (f'{esc(t["refresh"])} <span id="refresh">{esc(str(cfg["refresh_s"]))}</span> '
            f'{esc(t["seconds"])} &middot; {esc(t["updated"])} <span id="updated"></span> '
            f'<span id="conn" class="conn">{esc(t["conn_connecting"])}</span>')


def _wallboard_page(lang: str, cfg: dict[str, Any], request: Request, viewer: Viewer) -> str:
    t = TEXT[lang]
    service = "" if cfg["snapshot"] is not None else f'<p class="error">{esc(t["no_service"])}</p>'
    main = f"""<div class="wb-head"><span class="clock" id="clock"></span>
<span class="meta">{_status_line(t, cfg)}</span></div>{service}
<ul class="alert-list" id="alerts"></ul>
<p id="empty" hidden>{esc(t["no_queues"])}</p>
<div class="board" id="board"></div>"""
    nav = _nav(request, lang, viewer, "wallboard") if viewer.role != "kiosk" else ""
    return _page(lang, t["wallboard"], nav, main, body_class="wallboard",
                 scripts=("live.js", "wallboard.js"), config=cfg)


def _supervisor_page(lang: str, cfg: dict[str, Any], request: Request, viewer: Viewer) -> str:
    t = TEXT[lang]
    title = t["my_figures"] if viewer.role == "agent" else t["supervisor"]
    service = "" if cfg["snapshot"] is not None else f'<p class="error">{esc(t["no_service"])}</p>'
    qhead = "".join(f'<th class="{"num" if k != "queue" else ""}">{esc(t[k])}</th>' for k in (
        "queue", "waiting", "longest_wait", "offered", "answered", "abandoned",
        "service_level", "asa", "aht", "staffed", "available", "on_call", "acw", "aux"))
    ahead = "".join(f"<th>{esc(t[k])}</th>" for k in (
        "agent", "agent_name", "state", "reason", "time_in_state", "on_queue", "member_of",
        "handled", "talk", "aht", "occupancy"))
    main = f"""<h1>{esc(title)}</h1>
<p class="meta">{_status_line(t, cfg)}</p>{service}
<ul class="alert-list" id="alerts"></ul>
<section id="queues"><h2>{esc(t["queues"])}</h2>
<table><thead><tr>{qhead}</tr></thead><tbody id="queue-rows"></tbody></table></section>
<section id="agents"><h2>{esc(t["agents"])}</h2>
<table><thead><tr>{ahead}</tr></thead><tbody id="agent-rows"></tbody></table></section>"""
    return _page(lang, title, _nav(request, lang, viewer, "supervisor"), main,
                 scripts=("live.js", "supervisor.js"), config=cfg)


def _reports_page(lang: str, request: Request, viewer: Viewer, config: Any) -> str:
    t = TEXT[lang]
    q = request.query_params
    agent_only = not viewer.sees_all
    kind = "agents" if agent_only or q.get("kind") == "agents" else "queues"
    kinds = ("agents",) if agent_only else ("queues", "agents")
    kind_opts = "".join(f'<option value="{k}"{" selected" if k == kind else ""}>'
                        f'{esc(t["kind_" + k])}</option>' for k in kinds)
    group = q.get("group", "day")
    group_opts = "".join(f'<option value="{g}"{" selected" if g == group else ""}>'
                         f'{esc(t["group_" + g])}</option>'
                         for g in ("interval", "day", "total"))
    chosen = set(filter(None, q.get("metrics", "").split(",")))
    metrics = AGENT_METRICS if kind == "agents" else QUEUE_METRICS
    boxes = "".join(
        f'<label><input type="checkbox" name="metrics" value="{m}"'
        f'{" checked" if m in chosen else ""}>{esc(t.get("metric_" + m, m))}</label>'
        for m in metrics)
    names = q.get(kind, "")
    if agent_only:
        names = viewer.agent or ""
    today = _today(config.web.timezone)
    readonly = " readonly" if agent_only else ""
    main = f"""<h1>{esc(t["reports"])}</h1>
<form class="report" id="report-form">
<label>{esc(t["kind"])}<select name="kind">{kind_opts}</select></label>
<label>{esc(t["from"])}<input type="date" name="from" value="{esc(q.get("from", today))}"></label>
<label>{esc(t["to"])}<input type="date" name="to" value="{esc(q.get("to", today))}"></label>
<label>{esc(t["group"])}<select name="group">{group_opts}</select></label>
<label>{esc(t["names"])}<input name="names" value="{esc(names)}"{readonly}></label>
<fieldset><legend>{esc(t["metrics"])}</legend>{boxes}</fieldset>
<button type="submit">{esc(t["show"])}</button>
<a id="csv" hidden download>{esc(t["csv"])}</a>
</form>
<p id="report-status" class="meta">{esc(t["time_zone"])} {esc(config.web.timezone)}</p>
<section id="report">
<label>{esc(t["chart_metric"])} <select id="chart-metric"></select></label>
<div class="chart" id="chart"></div>
<table><thead id="report-head"></thead><tbody id="report-rows"></tbody></table>
<button type="button" id="more" hidden>{esc(t["more"])}</button></section>"""
    cfg = {"lang": lang, "text": t, "autorun": True, "page_rows": REPORT_PAGE_ROWS}
    return _page(lang, t["reports"], _nav(request, lang, viewer, "reports"), main,
                 scripts=("reports.js",), config=cfg)


def _today(timezone: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(timezone)).date().isoformat()
