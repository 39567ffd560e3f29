"""Call detail records on the web (PBX-6): ``GET /api/cdr`` (JSON) and the live ``/cdr`` page.

Both read the store only. Filters: ``number`` (caller or callee), ``caller``, ``callee``,
``disposition``, ``call_id``, and a date range ``since`` / ``until`` on the start time — Unix
seconds, or an ISO 8601 date or date-time (read in the configured time zone when it names
none; ``until`` of a bare date includes that whole day). Pages: ``limit`` (1-1000) and
``offset``; the answer carries ``total`` and a ``next`` link (None on the last page).

The page is rendered on the server (first page, in English or Indonesian: ``?lang=en|id``,
else ``[web] language`` — like the other web pages, whose links carry ``?lang=``; the
browser's Accept-Language is not consulted, so every page of one switch speaks the language
its operator configured until a link switches it) and a small script re-reads ``/api/cdr``
every 2 s, so a call that ends shows up without a reload. Times are shown in the configured
time zone (``[web] timezone``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from softswitch.store.base import Cdr, CdrFilter, Store

__all__ = ["CdrQuery", "cdr_routes", "page_language", "parse_query", "parse_time"]

MAX_LIMIT = 1000
POLL_MS = 2000
DISPOSITIONS = ("answered", "busy", "no_answer", "cancelled", "rejected", "not_found",
                "unavailable", "not_acceptable", "failed")
FILTER_KEYS = ("number", "caller", "callee", "disposition", "call_id", "since", "until")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Calls", "number": "Number", "since": "From", "until": "To",
        "disposition": "Disposition", "all": "all", "filter": "Filter", "started": "Start",
        "caller": "Caller", "callee": "Callee", "answered_at": "Answered", "ended": "End",
        "duration": "Duration (s)", "billable": "Billable (s)", "hangup": "Hangup",
        "times_in": "Times in", "total": "calls", "none": "No calls", "prev": "Newer",
        "next": "Older", "updated": "updated",
        "answered": "answered", "busy": "busy", "no_answer": "no answer",
        "cancelled": "cancelled", "rejected": "rejected", "not_found": "not found",
        "unavailable": "unavailable", "not_acceptable": "not acceptable", "failed": "failed",
        "side_caller": "caller", "side_callee": "callee", "side_switch": "switch",
        "wallboard": "Wallboard", "supervisor": "Supervisor", "reports": "Reports",
    },
    "id": {
        "title": "Panggilan", "number": "Nomor", "since": "Dari", "until": "Sampai",
        "disposition": "Status", "all": "semua", "filter": "Saring", "started": "Mulai",
        "caller": "Penelepon", "callee": "Penerima", "answered_at": "Dijawab",
        "ended": "Selesai", "duration": "Durasi (dtk)", "billable": "Ditagih (dtk)",
        "hangup": "Pemutusan", "times_in": "Waktu dalam", "total": "panggilan",
        "none": "Tidak ada panggilan", "prev": "Lebih baru", "next": "Lebih lama",
        "updated": "diperbarui",
        "answered": "dijawab", "busy": "sibuk", "no_answer": "tidak dijawab",
        "cancelled": "dibatalkan", "rejected": "ditolak", "not_found": "tidak ditemukan",
        "unavailable": "tidak tersedia", "not_acceptable": "tidak dapat diterima",
        "failed": "gagal",
        "side_caller": "penelepon", "side_callee": "penerima", "side_switch": "sentral",
        "wallboard": "Papan pantau", "supervisor": "Supervisor", "reports": "Laporan",
    },
}


class QueryError(ValueError):
    """A bad query parameter; the message names it."""


class CdrQuery:
    """A parsed ``/api/cdr`` query."""

    __slots__ = ("filters", "limit", "offset", "params")

    def __init__(self, filters: CdrFilter, limit: int, offset: int,
                 params: dict[str, str]) -> None:
        self.filters = filters
        self.limit = limit
        self.offset = offset
        self.params = params  # the filter parameters as given, for page links


def parse_time(text: str, tz: ZoneInfo, *, end_of_day: bool = False) -> float:
    """Unix seconds, or an ISO 8601 date / date-time (naive ones read in `tz`)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=tz)
            return (start + timedelta(days=1 if end_of_day else 0)).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"not a time: {text!r} (Unix seconds or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_query(q: Mapping[str, str], tz: ZoneInfo) -> CdrQuery:
    def integer(name: str, default: int) -> int:
        try:
            return int(q.get(name, str(default)))
        except ValueError:
            raise QueryError(f"{name} must be an integer") from None

    limit = min(max(integer("limit", 100), 1), MAX_LIMIT)
    offset = max(integer("offset", 0), 0)
    params = {k: q[k] for k in FILTER_KEYS if q.get(k)}
    since = parse_time(params["since"], tz) if "since" in params else None
    until = parse_time(params["until"], tz, end_of_day=True) if "until" in params else None
    filters = CdrFilter(caller=params.get("caller"), callee=params.get("callee"),
                        disposition=params.get("disposition"), call_id=params.get("call_id"),
                        since=since, until=until, number=params.get("number"))
    return CdrQuery(filters, limit, offset, params)


def page_language(request: Request, default: str = "en") -> str:
    """``?lang=id|en``, else `default` (``[web] language``), else English."""
    lang = request.query_params.get("lang", "").lower()
    if lang in TEXT:
        return lang
    return default if default in TEXT else "en"


def _local(wall: float | None, tz: ZoneInfo) -> str:
    if wall is None:
        return ""
    return datetime.fromtimestamp(wall, tz).strftime("%Y-%m-%d %H:%M:%S")


def cdr_json(row: Cdr, tz: ZoneInfo) -> dict[str, object]:
    out: dict[str, object] = asdict(row)
    out["started_local"] = _local(row.started_at, tz)
    out["answered_local"] = _local(row.answered_at, tz)
    out["ended_local"] = _local(row.ended_at, tz)
    return out


async def query_cdrs(store: Store, query: CdrQuery, tz: ZoneInfo,
                     path: str = "/api/cdr") -> dict[str, object]:
    rows = await store.list_cdrs(query.filters, query.limit, query.offset)
    total = await store.count_cdrs(query.filters)
    nxt = None
    if query.offset + len(rows) < total:
        nxt = path + "?" + urlencode({**query.params, "limit": query.limit,
                                       "offset": query.offset + query.limit})
    return {"cdrs": [cdr_json(r, tz) for r in rows], "total": total, "limit": query.limit,
            "offset": query.offset, "next": nxt, "timezone": tz.key}


def cdr_routes(get_store: Callable[[], Store | None], get_timezone: Callable[[], str],
               get_language: Callable[[], str] = lambda: "en") -> list[Route]:
    """``/api/cdr`` and ``/cdr``; the store, time zone and default language (``[web]
    language``) are read per request (reload)."""

    async def api(request: Request) -> Response:
        tz = ZoneInfo(get_timezone())
        try:
            query = parse_query(request.query_params, tz)
        except QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        store = get_store()
        if store is None:
            return JSONResponse({"error": "store not open"}, status_code=503)
        return JSONResponse(await query_cdrs(store, query, tz))

    async def page(request: Request) -> Response:
        tz = ZoneInfo(get_timezone())
        lang = page_language(request, get_language())
        try:
            query = parse_query(request.query_params, tz)
        except QueryError as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", status_code=400)
        store = get_store()
        if store is None:
            return HTMLResponse("<p>store not open</p>", status_code=503)
        data = await query_cdrs(store, query, tz)
        return HTMLResponse(render_page(data, query, lang, tz),
                            headers={"Content-Language": lang})

    return [Route("/api/cdr", api), Route("/cdr", page)]


# -- the page ------------------------------------------------------------------------------------

_COLUMNS = ("started", "caller", "callee", "answered_at", "ended", "duration", "billable",
            "disposition", "hangup")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;white-space:nowrap}
th{background:#f3f3f3}tr.answered td.disposition{color:#176117}
tr:not(.answered) td.disposition{color:#8a1c1c}td.num{text-align:right}
form{margin:.8em 0;display:flex;gap:.8em;flex-wrap:wrap;align-items:end}
label{display:flex;flex-direction:column;font-size:.85em}.meta{color:#666;font-size:.85em}
"""

# Rows are rebuilt with textContent only: nothing from the store is parsed as HTML.
_SCRIPT = """
(function(){
  const cfg = JSON.parse(document.getElementById('cdr-config').textContent);
  const T = cfg.text;
  function cell(tr, text, cls){const td=document.createElement('td');
    td.textContent = text; if(cls){td.className=cls;} tr.appendChild(td);}
  function render(data){
    const body = document.getElementById('cdr-rows'); body.replaceChildren();
    for(const c of data.cdrs){
      const tr = document.createElement('tr'); tr.className = c.disposition;
      tr.dataset.callId = c.call_id;
      cell(tr, c.started_local); cell(tr, c.caller); cell(tr, c.callee);
      cell(tr, c.answered_local); cell(tr, c.ended_local);
      cell(tr, c.duration.toFixed(1), 'num'); cell(tr, c.billable.toFixed(1), 'num');
      cell(tr, T[c.disposition] || c.disposition, 'disposition');
      cell(tr, (T['side_' + c.hangup_side] || c.hangup_side) + ' / ' + c.hangup_cause);
      body.appendChild(tr);
    }
    if(!data.cdrs.length){const tr=document.createElement('tr');
      const td=document.createElement('td'); td.colSpan=9; td.textContent=T.none;
      tr.appendChild(td); body.appendChild(tr);}
    document.getElementById('cdr-total').textContent = data.total;
    document.getElementById('cdr-updated').textContent = new Date().toLocaleTimeString();
  }
  async function poll(){
    try{const r = await fetch(cfg.api, {cache: 'no-store'});
      if(r.ok){render(await r.json());}}catch(e){}
  }
  setInterval(poll, cfg.poll_ms);
})();
"""


def _cells(c: dict[str, object], t: dict[str, str]) -> str:
    def td(value: object, cls: str = "") -> str:
        attr = f' class="{cls}"' if cls else ""
        return f"<td{attr}>{html.escape(str(value))}</td>"

    disposition = str(c["disposition"])
    side = str(c["hangup_side"])
    return "".join((
        td(c["started_local"]), td(c["caller"]), td(c["callee"]), td(c["answered_local"]),
        td(c["ended_local"]), td(f"{float(c['duration']):.1f}", "num"),  # type: ignore[arg-type]
        td(f"{float(c['billable']):.1f}", "num"),  # type: ignore[arg-type]
        td(t.get(disposition, disposition), "disposition"),
        td(f"{t.get('side_' + side, side)} / {c['hangup_cause']}"),
    ))


def render_page(data: dict[str, object], query: CdrQuery, lang: str, tz: ZoneInfo) -> str:
    t = TEXT[lang]
    esc = html.escape
    rows = data["cdrs"]
    assert isinstance(rows, list)
    body = "".join(
        f'<tr class="{esc(str(c["disposition"]))}" data-call-id="{esc(str(c["call_id"]))}">'
        f"{_cells(c, t)}</tr>" for c in rows
    ) or f'<tr><td colspan="{len(_COLUMNS)}">{esc(t["none"])}</td></tr>'
    p = query.params
    options = "".join(
        f'<option value="{d}"{" selected" if p.get("disposition") == d else ""}>'
        f"{esc(t[d])}</option>" for d in DISPOSITIONS)
    api = "/api/cdr?" + urlencode({**p, "limit": query.limit, "offset": query.offset})
    links = []
    if query.offset > 0:
        prev = urlencode({**p, "lang": lang, "limit": query.limit,
                          "offset": max(0, query.offset - query.limit)})
        links.append(f'<a rel="prev" href="/cdr?{esc(prev)}">{esc(t["prev"])}</a>')
    if data["next"]:
        nxt = urlencode({**p, "lang": lang, "limit": query.limit,
                         "offset": query.offset + query.limit})
        links.append(f'<a rel="next" href="/cdr?{esc(nxt)}">{esc(t["next"])}</a>')
    config = json.dumps({"api": api, "poll_ms": POLL_MS, "text": t}).replace("</", "<\\/")
    head = "".join(f"<th>{esc(t[c] if c != 'disposition' else t['disposition'])}</th>"
                   for c in _COLUMNS)

    # The other web pages (reporting/web.py), in the same language.
    nav = " &middot; ".join(f'<a href="/{page}?lang={lang}">{esc(t[page])}</a>'
                            for page in ("wallboard", "supervisor", "reports"))

    def field(name: str, kind: str = "text") -> str:
        return (f'<label>{esc(t[name])}<input type="{kind}" name="{name}" '
                f'value="{esc(p.get(name, ""))}"></label>')

    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t["title"])}</title><style>{_STYLE}</style></head>
<body>
<nav class="meta">{nav}</nav>
<h1>{esc(t["title"])}</h1>
<form method="get" action="/cdr">
<input type="hidden" name="lang" value="{lang}">
{field("number")}{field("since", "date")}{field("until", "date")}
<label>{esc(t["disposition"])}<select name="disposition">
<option value="">{esc(t["all"])}</option>{options}</select></label>
<button type="submit">{esc(t["filter"])}</button>
</form>
<p class="meta"><span id="cdr-total">{data["total"]}</span> {esc(t["total"])} &middot;
{esc(t["times_in"])} {esc(tz.key)} &middot; {esc(t["updated"])}
<span id="cdr-updated"></span></p>
<table id="cdr"><thead><tr>{head}</tr></thead>
<tbody id="cdr-rows">{body}</tbody></table>
<p>{" &middot; ".join(links)}</p>
<script type="application/json" id="cdr-config">{config}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
