"""Reporting service benchmarks (issue 5): live ingest rate and the 90-day report query.

    .venv/bin/python benchmarks/bench_reporting.py [--pg postgresql://postgres@127.0.0.1:5432/test]

1. Ingest: the ~80,000 ACD events of a simulated hour (300 agents, two queues; the events of
   benchmarks/bench_aggregate.py) through `ReportingService.on_events` in bus-sized batches of
   100, with the demo's four threshold rules in the alert engine (no store). Target: >= 50,000
   events/s. The `tick` (clock closes, alert evaluation) runs every simulated second between
   the batches and is timed apart: it runs once a wall-clock second in the service.
2. Query: 90 days x 20 queues of 15-minute interval rows (172,800 rows) and their day rollups
   seeded into a fresh PostgreSQL schema with COPY, then the report API
   (``GET /api/reports/queues``, in-process through the ASGI app, JSON, all metrics) for the 90
   days grouped by interval (all queues summed; one queue), by day and in total (``limit``
   10,000: one page each), 5 runs each. Target: < 500 ms.
3. The per-queue interval report (every stored row): its first JSON page (default limit
   5,000), every page walked through the ``next`` links (limit 5,000 and 50,000; total and
   per page, 3 walks), and the whole report as one CSV stream over real HTTP (uvicorn on a
   loopback port in this process, httpx reading as bytes arrive; time to first byte, total,
   MB/s; 3 runs). The client shares the process and its core with the server.

    --skip-ingest / --skip-query run one part only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_aggregate import hour_events  # noqa: E402
from reporting.aggregate import QUEUE_COUNTS  # noqa: E402
from reporting.service import ReportingService, ReportingSettings, day_bounds  # noqa: E402

TZ = "Asia/Jakarta"
RULES = [
    SimpleNamespace(name="service_level_low", metric="service_level", op="<", value=0.8,
                    window_s=1800, for_s=0, queues=(), severity="critical"),
    SimpleNamespace(name="abandon_rate_high", metric="abandon_rate", op=">", value=0.05,
                    window_s=1800, for_s=0, queues=(), severity="warning"),
    SimpleNamespace(name="calls_waiting_high", metric="calls_waiting", op=">", value=10,
                    window_s=1800, for_s=0, queues=(), severity="warning"),
    SimpleNamespace(name="longest_wait_high", metric="longest_wait_s", op=">", value=60,
                    window_s=1800, for_s=0, queues=(), severity="critical"),
]


async def bench_ingest() -> None:
    events = hour_events()
    best = 0.0
    alerts = 0
    tick_ms: list[float] = []
    for _ in range(5):
        published: list[object] = []
        service = ReportingService(None, ReportingSettings(
            timezone=TZ, thresholds=RULES, queues=("main", "help")),
            publish=published.extend)
        assert service.alerts is not None, "alert engine missing"
        next_tick = 1.0
        ingest = 0.0
        ticks: list[float] = []
        for i in range(0, len(events), 100):
            batch = events[i:i + 100]
            t0 = time.perf_counter()
            await service.on_events(batch)
            ingest += time.perf_counter() - t0
            # The service ticks once a second of its clock: here every simulated second,
            # timed apart (a real second holds ~22 of these events, not thousands).
            while batch[-1].ts >= next_tick:
                t0 = time.perf_counter()
                await service.tick(next_tick)
                ticks.append(time.perf_counter() - t0)
                next_tick += 1.0
        await service.tick(next_tick + 3600)
        best = max(best, len(events) / ingest)
        tick_ms = [t * 1000 for t in ticks]
        alerts = len(published)
    print(f"ingest: {len(events):,} events of a simulated hour through "
          f"ReportingService.on_events in batches of 100 (aggregator + alert engine with 4 "
          f"rules; interval closes by event time) — best of 5: {best:,.0f} events/s")
    print(f"tick (close by clock, alert evaluation: {alerts} alert events over the hour): "
          f"median {statistics.median(tick_ms):.2f} ms, p99 "
          f"{sorted(tick_ms)[int(len(tick_ms) * 0.99)]:.2f} ms, max {max(tick_ms):.2f} ms "
          f"per tick (one tick a second)")


async def bench_query(pg_url: str) -> None:
    import asyncpg
    import httpx
    from starlette.applications import Starlette

    from reporting.report_api import report_routes
    from softswitch.store import open_store

    schema = f"bench_rep_{secrets.token_hex(4)}"
    sep = "&" if "?" in pg_url else "?"
    store = open_store(f"{pg_url}{sep}schema={schema}")
    await store.open()
    try:
        days = 90
        queues = [f"q{i:02d}" for i in range(20)]
        first = date(2026, 8, 1)
        rng = random.Random(1)
        records = []
        for d in range(days):
            day = first + timedelta(days=d)
            start = day_bounds(day, TZ)[0]
            for k in range(96):
                for q in queues:
                    offered = rng.randint(0, 40)
                    answered = max(0, offered - rng.randint(0, 3))
                    counts = dict.fromkeys(QUEUE_COUNTS, 0.0)
                    counts.update(offered=offered, queued=offered, answered=answered,
                                  answered_in_t=answered * 0.8, wait_sum=answered * 12.0,
                                  max_wait=rng.uniform(0, 90), abandoned=offered - answered,
                                  handled=answered, talk=answered * 180.0,
                                  acw=answered * 20.0)
                    records.append((q, start + k * 900, 900.0, day.isoformat(),
                                    *(float(counts[c]) for c in QUEUE_COUNTS)))
        t0 = time.perf_counter()
        conn = await asyncpg.connect(pg_url, server_settings={"search_path": schema})
        try:
            await conn.copy_records_to_table(
                "report_queue_intervals", records=records,
                columns=["queue", "start_ts", "interval_s", "day", *QUEUE_COUNTS])
            cols = ", ".join(QUEUE_COUNTS)
            aggs = ", ".join("max(max_wait)" if c == "max_wait" else f"sum({c})"
                             for c in QUEUE_COUNTS)
            await conn.execute(f"INSERT INTO report_queue_days (queue, day, {cols}) "
                               f"SELECT queue, day, {aggs} FROM report_queue_intervals "
                               "GROUP BY queue, day")
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        print(f"seeded {len(records):,} interval rows (90 days x 20 queues x 96) and their "
              f"day rollups with COPY in {time.perf_counter() - t0:.1f} s")
        settings = ReportingSettings(timezone=TZ)
        app = Starlette(routes=report_routes(lambda: store, lambda: settings,
                                             lambda request: (None, None)))
        last = (first + timedelta(days=days - 1)).isoformat()
        span = {"from": first.isoformat(), "to": last}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench", timeout=60) as http:
            # limit=10000: these reports fit one page (the default page is 5,000 rows).
            cases: list[tuple[str, dict[str, str]]] = [
                ("interval, every queue summed (by=all)", {"group": "interval", "by": "all"}),
                ("interval, one queue", {"group": "interval", "queues": "q07"}),
                ("day, per queue", {"group": "day"}),
                ("day, every queue summed", {"group": "day", "by": "all"}),
                ("total, per queue", {"group": "total"}),
            ]
            for label, extra in cases:
                params = {**span, **extra, "limit": "10000"}
                r, times = await timed_report(http, params)
                assert r.json()["next"] is None
                rows = len(r.json()["rows"])
                print(f"query 90 days x 20 queues, group={label}, all 24 metrics: "
                      f"{rows:,} rows, {len(r.content) / 1e6:.1f} MB JSON — "
                      f"median {statistics.median(times) * 1000:.0f} ms, "
                      f"best {min(times) * 1000:.0f} ms")
            await bench_pages(http, span)
        await bench_csv(app, span, len(records))
    finally:
        await store.close()
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


async def timed_report(http: Any, params: dict[str, str],
                       runs: int = 5) -> tuple[Any, list[float]]:
    """GET /api/reports/queues `runs` times; the last answer (each must be 200) and the
    seconds each took."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = await http.get("/api/reports/queues", params=params)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return r, times


async def bench_pages(http: object, span: dict[str, str]) -> None:
    """The per-queue interval report (every stored row): the first page, then every page
    through the next links, at the default limit (5,000) and the largest (50,000)."""
    import httpx

    assert isinstance(http, httpx.AsyncClient)
    params = {**span, "group": "interval"}
    r, times = await timed_report(http, params)
    body = r.json()
    print(f"query 90 days x 20 queues, group=interval per queue (172,800 rows), first JSON "
          f"page (default limit {body['limit']:,}, {len(r.content) / 1e6:.1f} MB): median "
          f"{statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")
    for limit in (5000, 50000):
        walks = []
        for _ in range(3):
            pages: list[float] = []
            rows = 0
            size = 0
            url: str | None = "/api/reports/queues"
            query: dict[str, str] | None = {**params, "limit": str(limit)}
            t_all = time.perf_counter()
            while url is not None:
                t0 = time.perf_counter()
                r = await http.get(url, params=query)
                pages.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                data = r.json()
                rows += len(data["rows"])
                size += len(r.content)
                url, query = data["next"], None
            walks.append((time.perf_counter() - t_all, pages, rows, size))
        total, pages, rows, size = sorted(walks, key=lambda w: w[0])[len(walks) // 2]
        assert rows == 172_800, rows
        ms = sorted(p * 1000 for p in pages)
        print(f"  walk every page, limit={limit:,}: {len(pages)} pages, {rows:,} rows, "
              f"{size / 1e6:.0f} MB JSON — total {total:.2f} s (median of 3 walks; runs "
              f"{', '.join(f'{w[0]:.2f}' for w in walks)} s), per page median "
              f"{statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, first {pages[0] * 1000:.0f} "
              f"ms, last {pages[-1] * 1000:.0f} ms")


async def bench_csv(app: object, span: dict[str, str], expect_rows: int) -> None:
    """The same report as one CSV stream over real HTTP (uvicorn on a loopback port, httpx
    reading as it arrives): time to the first byte, total, MB/s."""
    import socket

    import httpx
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,  # type: ignore[arg-type]
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        params = {**span, "group": "interval", "format": "csv"}
        runs = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            for _ in range(3):
                size = 0
                lines = 0
                t0 = time.perf_counter()
                first = None
                async with http.stream("GET", "/api/reports/queues", params=params) as r:
                    assert r.status_code == 200
                    async for chunk in r.aiter_bytes():
                        if first is None:
                            first = time.perf_counter() - t0
                        size += len(chunk)
                        lines += chunk.count(b"\n")
                total = time.perf_counter() - t0
                assert lines == expect_rows + 1, lines
                runs.append((total, first or 0.0, size))
        total, first, size = sorted(runs)[len(runs) // 2]
        print(f"  CSV stream (format=csv, no limit), real HTTP on loopback: {expect_rows:,} rows, "
              f"{size / 1e6:.1f} MB — first byte {first * 1000:.0f} ms, total {total:.2f} s, "
              f"{size / 1e6 / total:.1f} MB/s (median of 3; totals "
              f"{', '.join(f'{r[0]:.2f}' for r in runs)} s)")
    finally:
        server.should_exit = True
        await task


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--skip-query", action="store_true")
    p.add_argument("--skip-ingest", action="store_true")
    args = p.parse_args()
    if not args.skip_ingest:
        asyncio.run(bench_ingest())
    if not args.skip_query:
        asyncio.run(bench_query(args.pg))


if __name__ == "__main__":
    main()
