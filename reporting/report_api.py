"""The report API (CMS-5): stored interval and day rows as JSON or CSV.

``GET /api/reports/queues`` and ``GET /api/reports/agents``, parameters:

- ``from``, ``to``: ``YYYY-MM-DD`` (whole local days, `to` inclusive) or ``YYYY-MM-DDTHH:MM``
  (local time, `to` exclusive); default today;
- ``group``: ``interval`` | ``day`` | ``total`` (default ``day``);
- ``queues=a,b`` / ``agents=a,b``: only these;
- ``by``: ``queue`` / ``agent`` (default: a row per queue or agent) | ``all`` (the selected
  queues or agents summed into one row per period, named ``*``);
- ``metrics=offered,service_level,...`` (default: all of the kind, `METRICS`);
- ``format``: ``json`` (default) | ``csv``.

Ratios are recomputed from the summed counts of the period (never averaged) with the
formulas of docs/metrics.md; ``max_wait`` is a maximum, ``login`` the first and ``logoff``
the last of the period. An agent-restricted caller (see `authorize`) gets 403 on queues and
only their own rows on agents. Faults are 400 with ``{"error": ...}`` naming them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS, SL_FORMULAS
from reporting.service import ReportingSettings, day_bounds

__all__ = ["METRICS", "ReportError", "report_routes", "run_report"]

QUEUE_DERIVED = ("service_level", "abandon_rate", "asa_s", "aht_s", "avg_acw_s", "avg_talk_s")
AGENT_DERIVED = ("occupancy", "aht_s")
METRICS: dict[str, tuple[str, ...]] = {
    "queue": (*QUEUE_COUNTS, *QUEUE_DERIVED),
    "agent": (*AGENT_COUNTS, "login", "logoff", "aux_by_reason", *AGENT_DERIVED),
}
GROUPS = ("interval", "day", "total")
MAX_DAYS = 400
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


async def run_report(store: Any, settings: ReportingSettings, kind: str,
                     params: dict[str, str], restrict_to: str | None = None) -> dict[str, Any]:
    """The report `params` ask for (the API's query parameters), as the JSON document."""
    tz = ZoneInfo(settings.timezone)
    names_param = "queues" if kind == "queue" else "agents"
    unknown = set(params) - {"from", "to", "group", "metrics", "format", names_param, "by"}
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
    whole = whole_from and whole_to
    by = params.get("by", kind)
    if by not in (kind, "all"):
        raise ReportError(f"by: must be {kind} or all, got {by!r}")
    first_day = datetime.fromtimestamp(start, tz).date().isoformat()
    last_day = datetime.fromtimestamp(end - 1, tz).date().isoformat()
    # Whole days come from the day rollups; a time range (or intervals) from interval rows.
    # The store sums (SQL), so only the report's own rows reach Python.
    if group != "interval" and whole:
        rows = await store.sum_report_rows(kind, "day", group, first_day=first_day,
                                           last_day=last_day, names=names,
                                           combine=by == "all")
    else:
        rows = await store.sum_report_rows(kind, "interval", group, start=start, end=end,
                                           names=names, combine=by == "all")
    formula = settings.sl_formula
    if formula not in SL_FORMULAS:
        raise ReportError(f"unknown service level formula {formula!r}")
    local = _LocalTime(tz)
    starts: dict[Any, tuple[str, str]] = {}  # period key → (period, ISO start), formatted once
    out_rows = []
    for r in rows:
        key = r.start if group == "interval" else (r.day if group == "day" else "total")
        shown = starts.get(key)
        if shown is None:
            if group == "interval":
                assert r.start is not None
                shown = local.minute_and_iso(r.start)
            elif group == "day":
                shown = (r.day, _iso(day_bounds(r.day, tz.key)[0], tz))
            else:
                shown = ("total", _iso(start, tz))
            starts[key] = shown
        c: dict[str, Any] = r.counts
        if kind == "queue":
            _queue_ratios(c, formula)
        else:
            busy = c["talk"] + c["hold"] + c["acw"]
            den = c["staffed"] - c["aux"]
            c["occupancy"] = busy / den if den else None
            c["aht_s"] = busy / c["handled"] if c["handled"] else None
            c["login"] = None if r.login is None else _iso(r.login, tz)
            c["logoff"] = None if r.logoff is None else _iso(r.logoff, tz)
            c["aux_by_reason"] = r.aux
        row: dict[str, Any] = {kind: r.name, "period": shown[0], "start": shown[1]}
        for m in metrics:
            row[m] = c[m]
        out_rows.append(row)
    return {"kind": kind, "group": group, "from": p_from, "to": p_to,
            "timezone": settings.timezone, "metrics": metrics, "rows": out_rows}


def _queue_ratios(c: dict[str, Any], formula: str) -> None:
    """Add the queue ratios of docs/metrics.md to the summed counts `c` (None: undefined)."""
    answered, abandoned, short = c["answered"], c["abandoned"], c["short_abandoned"]
    within = c["answered_in_t"]
    if formula == "default":
        num, den = within, answered + abandoned - short
    elif formula == "ignore_abandons":
        num, den = within, answered
    elif formula == "abandons_against":
        num, den = within, answered + abandoned
    else:  # abandons_in_favour
        num, den = within + c["abandoned_in_t"], answered + abandoned
    c["service_level"] = num / den if den else None
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


def to_csv(report: dict[str, Any]) -> str:
    kind = report["kind"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([kind, "period", "start", *report["metrics"]])
    for row in report["rows"]:
        out = [row[kind], row["period"], row["start"]]
        for m in report["metrics"]:
            v = row[m]
            if v is None:
                out.append("")
            elif isinstance(v, dict):
                out.append(";".join(f"{k}={s:g}" for k, s in v.items()))
            elif isinstance(v, float):
                out.append(f"{v:.6g}" if not v.is_integer() else f"{int(v)}")
            else:
                out.append(v)
        w.writerow(out)
    return buf.getvalue()


def report_routes(get_store: Callable[[], Any], get_settings: Callable[[], ReportingSettings],
                  authorize: Authorize) -> list[Route]:
    """Routes of the report API; `authorize(request)` → (denial, agent restricted to)."""

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
            try:
                report = await run_report(store, get_settings(), kind, params, restrict)
            except ReportError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if fmt == "csv":
                name = f"{kind}-{report['group']}-{report['from']}-{report['to']}.csv"
                return Response(to_csv(report), media_type="text/csv; charset=utf-8",
                                headers={"Content-Disposition":
                                         f'attachment; filename="{name.replace(":", "")}"'})
            body = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
            return Response(body, media_type="application/json")

        return endpoint

    return [Route("/api/reports/queues", handler("queue")),
            Route("/api/reports/agents", handler("agent"))]
