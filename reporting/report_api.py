"""The report API (CMS-5): stored interval and day rows as JSON or CSV.

``GET /api/reports/queues`` and ``GET /api/reports/agents``, parameters:

- ``from``, ``to``: ``YYYY-MM-DD`` (whole local days, `to` inclusive) or ``YYYY-MM-DDTHH:MM``
  (local time, `to` exclusive); default today;
- ``group``: ``interval`` | ``day`` | ``total`` (default ``day``);
- ``queues=a,b`` / ``agents=a,b``: only these;
- ``by``: ``queue`` / ``agent`` (default: a row per queue or agent) | ``all`` (the selected
  queues or agents summed into one row per period, named ``*``);
- ``metrics=offered,service_level,...`` (default: all of the kind, `METRICS`);
- ``format``: ``json`` (default) | ``csv``;
- ``limit`` (rows of a page: JSON default `DEFAULT_LIMIT`, at most `MAX_LIMIT`, clamped) and
  ``after`` (the opaque cursor of the previous page's last row, from its ``next`` link).

Rows are ordered by period, then name (byte order); pages are keyset ranges on that order
(no OFFSET, no total). JSON carries ``limit`` and ``next`` (None on the last page). A CSV
without ``limit`` streams every row in batches (`Store.stream_report_rows`); with ``limit`` it
is one page, the next one in a ``Link`` header.

Ratios are recomputed from the summed counts of the period (never averaged) with the
formulas of docs/metrics.md; ``max_wait`` is a maximum, ``login`` the first and ``logoff``
the last of the period. An agent-restricted caller (see `authorize`) gets 403 on queues and
only their own rows on agents. Faults are 400 with ``{"error": ...}`` naming them.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS, SL_FORMULAS, service_level
from reporting.service import ReportingSettings, day_bounds
from softswitch.store.base import ReportRow, report_key

__all__ = ["METRICS", "ReportError", "ReportQuery", "make_cursor", "parse_report",
           "report_page", "report_routes", "run_report"]

QUEUE_DERIVED = ("service_level", "abandon_rate", "asa_s", "aht_s", "avg_acw_s", "avg_talk_s")
AGENT_DERIVED = ("occupancy", "aht_s")
METRICS: dict[str, tuple[str, ...]] = {
    "queue": (*QUEUE_COUNTS, *QUEUE_DERIVED),
    "agent": (*AGENT_COUNTS, "login", "logoff", "aux_by_reason", *AGENT_DERIVED),
}
GROUPS = ("interval", "day", "total")
MAX_DAYS = 400
DEFAULT_LIMIT = 5000  # rows of a JSON page unless `limit` asks otherwise
MAX_LIMIT = 50_000  # the most `limit` gives (larger asks are clamped)
CSV_BATCH = 2000  # rows read (and sent) at a time by a CSV stream
MAX_STREAMS = 4  # CSV streams at once (each holds a PostgreSQL pool connection); more: 503
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MINUTE_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

Authorize = Callable[[Request], tuple[Response | None, str | None]]


class ReportError(ValueError):
    """A request the report API refuses (400), the message naming the fault."""


def _parse_bound(value: str, name: str, tz: ZoneInfo, *, is_to: bool) -> tuple[float, bool]:
    """(epoch seconds, whole day?) of a from/to parameter."""
    try:
        if _DAY_RE.fullmatch(value):
            d = date.fromisoformat(value)
            start, end = day_bounds(d, tz.key)
            return (end if is_to else start), True
        if _MINUTE_RE.fullmatch(value):
            return datetime.fromisoformat(value).replace(tzinfo=tz).timestamp(), False
    except ValueError:
        pass
    raise ReportError(f"{name}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (local time), "
                      f"got {value!r}")


def _names(value: str | None) -> list[str] | None:
    if value is None or value.strip() == "":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _iso(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


@dataclass(slots=True)
class ReportQuery:
    """A parsed report request: what to read (`source`, bounds, names) and how to show it."""

    kind: str
    group: str
    by_all: bool
    metrics: list[str]
    p_from: str
    p_to: str
    tz: ZoneInfo
    source: str  # "day" (whole days: the rollups) or "interval"
    bounds: dict[str, Any]  # start/end or first_day/last_day for the store
    names: list[str] | None
    start: float  # the range's start (the label of a total)
    limit: int | None  # rows of this page; None: all (CSV)
    after: tuple[Any, ...] | None  # keyset of the previous page's last row
    params: dict[str, str]  # the query as given (less after/limit/format), for next links

    def read_args(self) -> dict[str, Any]:
        return {**self.bounds, "names": self.names, "combine": self.by_all,
                "after": self.after}


def parse_report(settings: ReportingSettings, kind: str, params: dict[str, str],
                 restrict_to: str | None = None, *, paged: bool = True,
                 default_limit: int = DEFAULT_LIMIT,
                 max_limit: int = MAX_LIMIT) -> ReportQuery:
    """The request `params` (the API's query parameters but ``format``) or ReportError.
    `paged`: a limit applies by default (JSON); else only when given (CSV)."""
    tz = ZoneInfo(settings.timezone)
    names_param = "queues" if kind == "queue" else "agents"
    unknown = set(params) - {"from", "to", "group", "metrics", names_param, "by", "limit",
                             "after"}
    if unknown:
        raise ReportError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    group = params.get("group", "day")
    if group not in GROUPS:
        raise ReportError(f"group: must be one of {', '.join(GROUPS)}, got {group!r}")
    all_metrics = METRICS[kind]
    asked = _names(params.get("metrics"))
    if asked is None:
        metrics = list(all_metrics)
    else:
        bad = [m for m in asked if m not in all_metrics]
        if bad:
            raise ReportError(f"metrics: unknown {kind} metric(s) {', '.join(bad)}; "
                              f"known: {', '.join(all_metrics)}")
        metrics = asked
    today = datetime.now(tz).date().isoformat()
    p_from, p_to = params.get("from", today), params.get("to", params.get("from", today))
    start, whole_from = _parse_bound(p_from, "from", tz, is_to=False)
    end, whole_to = _parse_bound(p_to, "to", tz, is_to=True)
    if end <= start:
        raise ReportError(f"to ({p_to}) must be after from ({p_from})")
    if end - start > MAX_DAYS * 86400 + 7200:
        raise ReportError(f"range too long: at most {MAX_DAYS} days")
    names = _names(params.get(names_param))
    if restrict_to is not None:
        names = [restrict_to]
    by = params.get("by", kind)
    if by not in (kind, "all"):
        raise ReportError(f"by: must be {kind} or all, got {by!r}")
    if settings.sl_formula not in SL_FORMULAS:
        raise ReportError(f"unknown service level formula {settings.sl_formula!r}")
    limit: int | None = default_limit if paged else None
    if "limit" in params:
        text = params["limit"]
        if not text.isdigit() or int(text) < 1:
            raise ReportError(f"limit: must be a whole number from 1 to {max_limit}, "
                              f"got {text!r}")
        limit = int(text)
    if limit is not None:
        limit = min(limit, max_limit)
    after = _parse_cursor(params["after"], kind, group, by == "all") \
        if "after" in params else None
    # Whole days come from the day rollups; a time range (or intervals) from interval rows.
    # The store sums (SQL), so only the report's own rows reach Python.
    if group != "interval" and whole_from and whole_to:
        source = "day"
        bounds: dict[str, Any] = {
            "first_day": datetime.fromtimestamp(start, tz).date().isoformat(),
            "last_day": datetime.fromtimestamp(end - 1, tz).date().isoformat()}
    else:
        source, bounds = "interval", {"start": start, "end": end}
    kept = {k: v for k, v in params.items() if k not in ("after", "limit")}
    return ReportQuery(kind, group, by == "all", metrics, p_from, p_to, tz, source, bounds,
                       names, start, limit, after, kept)


def _keyset_len(group: str, by_all: bool) -> int:
    return (group != "total") + (not by_all)


def make_cursor(group: str, key: tuple[Any, ...]) -> str:
    """The opaque ``after=`` token of a page's last row (its keyset `key`)."""
    raw = json.dumps([group, *key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_cursor(token: str, kind: str, group: str, by_all: bool) -> tuple[Any, ...]:
    fault = ReportError("after: not a cursor of this report (pass the next link's as given)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        raise fault from None
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise fault
    if value[0] != group:
        raise ReportError(f"after: a cursor of a group={value[0]} report, this one is "
                          f"group={group}")
    key = value[1:]
    if _keyset_len(group, by_all) == 0:
        raise ReportError("after: a total of everything (by=all) is one row; no pages")
    if len(key) != _keyset_len(group, by_all):
        raise fault
    if group == "interval" and not (isinstance(key[0], int | float)
                                    and not isinstance(key[0], bool)
                                    and math.isfinite(key[0])):
        raise fault
    if group == "day" and not (isinstance(key[0], str) and _DAY_RE.fullmatch(key[0])):
        raise fault
    if not by_all and not isinstance(key[-1], str):
        raise fault
    if group == "interval":
        key[0] = float(key[0])
    return tuple(key)


class _Rows:
    """Stored report rows → the API's rows (dicts, or CSV lines) with the ratios of
    docs/metrics.md computed from the sums; only the asked metrics are computed."""

    def __init__(self, q: ReportQuery, formula: str) -> None:
        self.q, self.formula = q, formula
        self.kind, self.group, self.metrics = q.kind, q.group, q.metrics
        self.local = _LocalTime(q.tz)
        self.starts: dict[Any, tuple[str, str]] = {}  # period key → (period, ISO start)
        asked = set(q.metrics)
        self.ratios = bool(asked & set(QUEUE_DERIVED)) if q.kind == "queue" else False
        self.agent_extra = q.kind == "agent" and bool(asked & {*AGENT_DERIVED, "login",
                                                               "logoff", "aux_by_reason"})
        self.pick = itemgetter(*q.metrics) if q.metrics else (lambda c: ())
        self.single = len(q.metrics) == 1
        self.cells = _Cells()

    def _shown(self, r: ReportRow) -> tuple[str, str]:
        group = self.group
        key = r.start if group == "interval" else (r.day if group == "day" else "total")
        shown = self.starts.get(key)
        if shown is None:
            if len(self.starts) >= 4096:  # rows come in period order: old ones are done
                self.starts.clear()
            tz = self.q.tz
            if group == "interval":
                assert r.start is not None
                shown = self.local.minute_and_iso(r.start)
            elif group == "day":
                shown = (r.day, _iso(day_bounds(r.day, tz.key)[0], tz))
            else:
                shown = ("total", _iso(self.q.start, tz))
            self.starts[key] = shown
        return shown

    def _values(self, r: ReportRow) -> tuple[Any, ...]:
        c: dict[str, Any] = r.counts
        if self.ratios:
            _queue_ratios(c, self.formula)
        elif self.agent_extra:
            tz = self.q.tz
            busy = c["talk"] + c["hold"] + c["acw"]
            den = c["staffed"] - c["aux"]
            c["occupancy"] = busy / den if den else None
            c["aht_s"] = busy / c["handled"] if c["handled"] else None
            c["login"] = None if r.login is None else _iso(r.login, tz)
            c["logoff"] = None if r.logoff is None else _iso(r.logoff, tz)
            c["aux_by_reason"] = r.aux
        values = self.pick(c)
        return (values,) if self.single else values

    def dicts(self, rows: list[ReportRow]) -> list[dict[str, Any]]:
        kind, metrics = self.kind, self.metrics
        out = []
        for r in rows:
            period, start = self._shown(r)
            row: dict[str, Any] = {kind: r.name, "period": period, "start": start}
            row.update(zip(metrics, self._values(r), strict=True))
            out.append(row)
        return out

    def header(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(
            [self.kind, "period", "start", *self.metrics])
        return buf.getvalue()

    def csv(self, rows: list[ReportRow]) -> str:
        buf = io.StringIO()
        # Counts repeat (a few hundred distinct values in a big report): each is formatted
        # once; aux by reason (a dict) the slow way.
        cell = _csv_cell if "aux_by_reason" in self.metrics else self.cells.__getitem__
        shown, values = self._shown, self._values
        out = []
        for r in rows:
            period, start = shown(r)
            out.append([r.name, period, start, *map(cell, values(r))])
        csv.writer(buf, lineterminator="\r\n").writerows(out)
        return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    if v.__class__ is float:
        return f"{int(v)}" if v.is_integer() else f"{v:.6g}"
    if v is None:
        return ""
    if isinstance(v, dict):
        return ";".join(f"{k}={s:g}" for k, s in v.items())
    return v


class _Cells(dict[Any, Any]):
    """`_csv_cell` of hashable values; whole numbers (the counts, which repeat) remembered,
    at most `MAX` of them (a stream's memory stays bounded)."""

    MAX = 20_000

    def __missing__(self, v: Any) -> Any:
        text = _csv_cell(v)
        if v.__class__ is float and v.is_integer() and len(self) < self.MAX:
            self[v] = text
        return text


async def report_page(store: Any, settings: ReportingSettings, q: ReportQuery,
                      path: str) -> tuple[dict[str, Any], list[ReportRow], str | None]:
    """One page of `q` (`q.limit` rows, all when None): the JSON document less its rows,
    the stored rows, and the ``after=`` token of the next page (None: the last page)."""
    limit = q.limit
    rows = await store.sum_report_rows(q.kind, q.source, q.group, **q.read_args(),
                                       limit=None if limit is None else limit + 1)
    cursor = None
    if limit is not None and len(rows) > limit:
        del rows[limit:]
        cursor = make_cursor(q.group, report_key(rows[-1], q.group, q.by_all))
    doc = {"kind": q.kind, "group": q.group, "from": q.p_from, "to": q.p_to,
           "timezone": settings.timezone, "metrics": q.metrics, "limit": limit,
           "next": None if cursor is None else
           f"{path}?{urlencode({**q.params, 'limit': limit, 'after': cursor})}"}
    return doc, rows, cursor


async def run_report(store: Any, settings: ReportingSettings, kind: str,
                     params: dict[str, str], restrict_to: str | None = None, *,
                     max_limit: int = MAX_LIMIT) -> dict[str, Any]:
    """One page of the report `params` ask for (the API's query parameters), as the JSON
    document: ``rows`` and the ``next`` link (None on the last page)."""
    q = parse_report(settings, kind, params, restrict_to, max_limit=max_limit)
    doc, rows, _ = await report_page(store, settings, q, f"/api/reports/{kind}s")
    doc["rows"] = _Rows(q, settings.sl_formula).dicts(rows)
    return doc


def _queue_ratios(c: dict[str, Any], formula: str) -> None:
    """Add the queue ratios of docs/metrics.md to the summed counts `c` (None: undefined)."""
    answered, abandoned, short = c["answered"], c["abandoned"], c["short_abandoned"]
    c["service_level"] = service_level(formula, answered, c["answered_in_t"], abandoned, short,
                                       c["abandoned_in_t"])
    offered = c["offered"] - short
    c["abandon_rate"] = (abandoned - short) / offered if offered else None
    c["asa_s"] = c["wait_sum"] / answered if answered else None
    handled = c["handled"]
    if handled:
        c["aht_s"] = (c["talk"] + c["hold"] + c["acw"]) / handled
        c["avg_acw_s"] = c["acw"] / handled
        c["avg_talk_s"] = c["talk"] / handled
    else:
        c["aht_s"] = c["avg_acw_s"] = c["avg_talk_s"] = None


class _LocalTime:
    """Epoch seconds → local ``YYYY-MM-DDTHH:MM`` and ISO 8601, with the zone's offset looked
    up once per hour (intervals start on whole minutes; offsets change on the hour)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._hours: dict[int, tuple[int, str]] = {}
        self._days: dict[int, str] = {}

    def minute_and_iso(self, ts: float) -> tuple[str, str]:
        hour = int(ts // 3600)
        off = self._hours.get(hour)
        if off is None:
            at = datetime.fromtimestamp(hour * 3600, self.tz)
            seconds = int(at.utcoffset().total_seconds())  # type: ignore[union-attr]
            off = self._hours[hour] = (seconds, at.isoformat()[19:])
        local = int(ts) + off[0]
        if local % 60 or ts != int(ts):  # not on a whole minute: the slow, exact way
            at = datetime.fromtimestamp(ts, self.tz)
            return at.strftime("%Y-%m-%dT%H:%M"), at.isoformat()
        day, rest = divmod(local, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
        minute = prefix + _HHMM[rest // 60]
        return minute, f"{minute}:00{off[1]}"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]


class _Export(StreamingResponse):
    """A streamed report that calls `done()` when it ends, however it ends (sent, client
    gone, error): Starlette always calls a response the endpoint returned."""

    def __init__(self, content: AsyncIterator[str], *, done: Callable[[], None],
                 **kw: Any) -> None:
        super().__init__(content, **kw)
        self._done = done

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._done()


def report_routes(get_store: Callable[[], Any], get_settings: Callable[[], ReportingSettings],
                  authorize: Authorize, *, default_limit: int = DEFAULT_LIMIT,
                  max_limit: int = MAX_LIMIT, csv_batch: int = CSV_BATCH,
                  max_streams: int = MAX_STREAMS) -> list[Route]:
    """Routes of the report API; `authorize(request)` → (denial, agent restricted to).
    JSON pages hold `default_limit` rows unless ``limit`` asks for more (at most
    `max_limit`); a CSV without ``limit`` streams every row, read `csv_batch` at a time, at
    most `max_streams` at once (the next one is refused, 503 with Retry-After: a stream holds
    a database connection the switch's own writes share)."""
    streams = [0]  # CSV streams running

    def handler(kind: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            denied, restrict = authorize(request)
            if denied is not None:
                return denied
            if restrict is not None and kind == "queue":
                return JSONResponse({"error": "queue reports are for supervisors"},
                                    status_code=403)
            params = dict(request.query_params)
            fmt = params.pop("format", "json")
            if fmt not in ("json", "csv"):
                return JSONResponse({"error": f"format: must be json or csv, got {fmt!r}"},
                                    status_code=400)
            store = get_store()
            if store is None:
                return JSONResponse({"error": "store not open"}, status_code=503)
            settings = get_settings()
            try:
                q = parse_report(settings, kind, params, restrict, paged=fmt == "json",
                                 default_limit=default_limit, max_limit=max_limit)
                if fmt == "json" or q.limit is not None:
                    doc, rows, _ = await report_page(store, settings, q, request.url.path)
            except ReportError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            fmt_rows = _Rows(q, settings.sl_formula)
            if fmt == "json":
                doc["rows"] = fmt_rows.dicts(rows)
                body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                return Response(body, media_type="application/json")
            name = f"{kind}-{q.group}-{q.p_from}-{q.p_to}.csv".replace(":", "")
            headers = {"Content-Disposition": f'attachment; filename="{name}"'}
            if q.limit is not None:  # one page, the next one linked
                if doc["next"]:
                    headers["Link"] = f'<{doc["next"]}&format=csv>; rel="next"'
                return Response(fmt_rows.header() + fmt_rows.csv(rows),
                                media_type="text/csv; charset=utf-8", headers=headers)

            async def stream() -> AsyncIterator[str]:
                # Bounded memory: one batch of rows at a time, from a server-side cursor
                # (PostgreSQL) or keyset pages (SQLite); the header goes out at once.
                yield fmt_rows.header()
                batches = store.stream_report_rows(kind, q.source, q.group, **q.read_args(),
                                                   batch=csv_batch)
                async with aclosing(batches):
                    async for rows in batches:
                        yield fmt_rows.csv(rows)

            if streams[0] >= max_streams:
                return JSONResponse({"error": f"{streams[0]} report exports are running; "
                                              "try again shortly (or ask for pages: limit=)"},
                                    status_code=503, headers={"Retry-After": "5"})
            streams[0] += 1
            return _Export(stream(), media_type="text/csv; charset=utf-8", headers=headers,
                           done=lambda: streams.__setitem__(0, streams[0] - 1))

        return endpoint

    return [Route("/api/reports/queues", handler("queue")),
            Route("/api/reports/agents", handler("agent"))]
