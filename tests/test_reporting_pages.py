"""Report API pages (CMS-5): keyset pages (``limit``, ``after``, the ``next`` link) and the
streamed CSV, on SQLite and PostgreSQL.

Stored rows of three days, queues and agents whose names sort differently in byte order and
in a language's order (``Zeta`` < ``alpha`` < ``beta`` < ``éclair``), with holes, so pages
end inside a period and between periods.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS
from reporting.report_api import _csv_cell, make_cursor, report_routes
from reporting.service import ReportingSettings
from softswitch.store import Store
from softswitch.store.base import ReportRow

TZ = "Asia/Jakarta"
DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")
QUEUES = ("Zeta", "alpha", "beta", "éclair")
AGENTS = ("a1", "a2", "a3")


def settings() -> ReportingSettings:
    return ReportingSettings(interval_s=900, timezone=TZ, queues=QUEUES)


def seed_rows() -> list[ReportRow]:
    rows = []
    n = 0
    for day in DAYS:
        t8 = datetime.fromisoformat(f"{day}T08:00").replace(tzinfo=ZoneInfo(TZ)).timestamp()
        for k in range(4):
            start = t8 + 900 * k
            for i, q in enumerate(QUEUES):
                n += 1
                if (n * 7) % 5 == 0:
                    continue  # a hole
                counts = dict.fromkeys(QUEUE_COUNTS, 0.0)
                counts.update(offered=3.0 + i + k, queued=3.0 + i, answered=2.0 + k,
                              answered_in_t=1.0 + (k % 2), abandoned=1.0,
                              short_abandoned=float(i % 2), wait_sum=13.5 * (k + 1),
                              max_wait=7.25 * (i + 1), handled=2.0, talk=301.5 + n,
                              acw=20.0 / 3)
                rows.append(ReportRow("queue", q, day, start, 900.0, counts))
            for j, a in enumerate(AGENTS):
                if (n + j) % 4 == 0:
                    continue
                counts = dict.fromkeys(AGENT_COUNTS, 0.0)
                counts.update(staffed=900.0, available=500.0 - 10 * j, talk=300.0 + 10 * j,
                              acw=40.0, aux=60.0, handled=1.0 + j, offered=2.0)
                aux = {"lunch": 45.0, "break": 15.0} if (k + j) % 2 else {"meeting": 60.0}
                rows.append(ReportRow("agent", a, day, start, 900.0, counts, aux,
                                      start + 5 if k == 0 else None,
                                      start + 800 if k == 3 else None))
    return rows


def allow_all(request: Request) -> tuple[Response | None, str | None]:
    return None, None


def only_a2(request: Request) -> tuple[Response | None, str | None]:
    return None, "a2"


def client(store: Store, authorize=allow_all, **kw: int) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    app = Starlette(routes=report_routes(lambda: store, settings, authorize, **kw))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def walk(http: httpx.AsyncClient, url: str, params: dict[str, str],
               limit: int) -> tuple[list[dict], int]:
    r = await http.get(url, params={**params, "limit": str(limit)})
    assert r.status_code == 200, r.text
    rows, pages = [], 0
    while True:
        body = r.json()
        pages += 1
        assert body["limit"] == limit
        rows += body["rows"]
        if body["next"] is None:
            assert len(body["rows"]) <= limit
            return rows, pages
        assert len(body["rows"]) == limit
        r = await http.get(body["next"])
        assert r.status_code == 200, r.text


CASES = [
    ("queues", {"group": "interval"}),
    ("queues", {"group": "interval", "by": "all"}),
    ("queues", {"group": "day"}),
    ("queues", {"group": "day", "by": "all"}),
    ("queues", {"group": "total"}),
    ("queues", {"group": "day", "from": "2026-11-23T08:15", "to": "2026-11-25T08:45"}),
    ("queues", {"group": "interval", "queues": "beta,Zeta", "metrics": "offered,max_wait"}),
    ("agents", {"group": "interval"}),
    ("agents", {"group": "day", "metrics": "aux_by_reason,login,logoff,occupancy"}),
    ("agents", {"group": "total", "by": "all"}),
    ("agents", {"group": "total"}),
]


async def test_pages_walked_give_exactly_the_unpaged_rows(store: Store) -> None:
    await store.write_report_rows(seed_rows())
    async with client(store) as http:
        for kind, extra in CASES:
            params = {"from": DAYS[0], "to": DAYS[-1], **extra}
            url = f"/api/reports/{kind}"
            r = await http.get(url, params=params)
            whole = r.json()
            assert whole["next"] is None and whole["limit"] == 5000
            assert whole["rows"], (kind, extra)
            keys = [(x.get("start"), x[kind[:-1]]) for x in whole["rows"]]
            # Stable order: period, then name in byte order.
            assert keys == sorted(keys, key=lambda k: (k[0], k[1].encode())), (kind, extra)
            for limit in (1, 2, 5, len(whole["rows"]), len(whole["rows"]) + 1):
                rows, pages = await walk(http, url, params, limit)
                assert rows == whole["rows"], (kind, extra, limit)
                assert pages == max(1, -(-len(rows) // limit)), (kind, extra, limit)


async def test_csv_stream_equals_the_json_rows(store: Store) -> None:
    await store.write_report_rows(seed_rows())
    async with client(store, csv_batch=3) as http:
        for kind, extra in CASES:
            params = {"from": DAYS[0], "to": DAYS[-1], **extra}
            url = f"/api/reports/{kind}"
            whole = (await http.get(url, params=params)).json()
            r = await http.get(url, params={**params, "format": "csv"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert "content-length" not in r.headers  # streamed
            lines = list(csv.reader(io.StringIO(r.text)))
            key = kind[:-1]
            assert lines[0] == [key, "period", "start", *whole["metrics"]]
            expect = [[x[key], x["period"], x["start"],
                       *(str(_csv_cell(x[m])) for m in whole["metrics"])]
                      for x in whole["rows"]]
            assert lines[1:] == expect, (kind, extra)
            # A CSV page: the same rows, the next page linked.
            r = await http.get(url, params={**params, "format": "csv", "limit": "2"})
            assert list(csv.reader(io.StringIO(r.text)))[1:] == expect[:2]
            if len(expect) > 2:
                link = r.headers["link"]
                assert link.startswith("</api/reports/") and link.endswith('>; rel="next"')
                r = await http.get(link[1:link.index(">")])
                assert list(csv.reader(io.StringIO(r.text)))[1:] == expect[2:4]


async def test_agent_restriction_holds_on_every_page(store: Store) -> None:
    await store.write_report_rows(seed_rows())
    async with client(store, only_a2) as http:
        params = {"from": DAYS[0], "to": DAYS[-1], "group": "interval", "agents": "a1,a3"}
        rows, pages = await walk(http, "/api/reports/agents", params, 2)
        assert pages > 3 and rows and {x["agent"] for x in rows} == {"a2"}
        # A cursor made up to start before everything still gives only a2's rows.
        first = make_cursor("interval", (0.0, ""))
        r = await http.get("/api/reports/agents", params={**params, "after": first})
        assert {x["agent"] for x in r.json()["rows"]} == {"a2"}
        r = await http.get("/api/reports/agents", params={**params, "format": "csv"})
        assert {line[0] for line in list(csv.reader(io.StringIO(r.text)))[1:]} == {"a2"}
        assert (await http.get("/api/reports/queues", params={"limit": "1"})).status_code == 403


@pytest.mark.parametrize(("extra", "fault"), [
    ({"limit": "0"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": ""}, "limit"),
    ({"after": "not-a-cursor!"}, "after"),
    ({"after": make_cursor("day", ("2026-11-23", "alpha"))}, "group=day"),
    ({"after": make_cursor("interval", ("08:00", "alpha"))}, "after"),
    ({"after": make_cursor("interval", (1.0,))}, "after"),
    ({"after": make_cursor("interval", (1.0, 7))}, "after"),
    ({"group": "total", "by": "all", "after": make_cursor("total", ())}, "one row"),
])
async def test_bad_pages_are_refused_naming_the_fault(store: Store, extra: dict[str, str],
                                                      fault: str) -> None:
    async with client(store) as http:
        params = {"from": DAYS[0], "group": "interval", **extra}
        for fmt in ("json", "csv"):
            r = await http.get("/api/reports/queues", params={**params, "format": fmt})
            assert r.status_code == 400 and fault in r.json()["error"], (extra, r.text)


async def test_limit_is_clamped_to_the_most_a_page_holds(store: Store) -> None:
    await store.write_report_rows(seed_rows())
    async with client(store, max_limit=4, default_limit=3) as http:
        params = {"from": DAYS[0], "to": DAYS[-1], "group": "interval"}
        body = (await http.get("/api/reports/queues", params=params)).json()
        assert (body["limit"], len(body["rows"])) == (3, 3)
        body = (await http.get("/api/reports/queues",
                               params={**params, "limit": "1000"})).json()
        assert (body["limit"], len(body["rows"])) == (4, 4)
        assert "limit=4" in body["next"]


async def test_csv_streams_at_once_are_bounded() -> None:
    """A CSV stream holds a database connection while it runs: beyond `max_streams` at once
    the next one is refused (503, Retry-After) and a slot frees when a stream ends."""
    import asyncio

    release = asyncio.Event()
    started = asyncio.Event()

    class SlowStore:
        async def stream_report_rows(self, *args: object, **kw: object):  # type: ignore[no-untyped-def]
            started.set()
            await release.wait()
            yield [ReportRow("queue", "alpha", DAYS[0], 1.0e9, 900.0,
                             dict.fromkeys(QUEUE_COUNTS, 0.0))]

    store = SlowStore()
    app = Starlette(routes=report_routes(lambda: store, settings, allow_all, max_streams=1))
    params = {"from": DAYS[0], "group": "interval", "format": "csv"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        first = asyncio.create_task(http.get("/api/reports/queues", params=params))
        await asyncio.wait_for(started.wait(), 5)
        busy = await http.get("/api/reports/queues", params=params)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        assert "exports are running" in busy.json()["error"]
        release.set()
        r = await asyncio.wait_for(first, 5)
        assert r.status_code == 200 and r.text.count("\n") == 2
        again = await http.get("/api/reports/queues", params=params)
        assert again.status_code == 200  # the slot came back
