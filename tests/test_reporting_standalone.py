"""Acceptance (issue 5): events through NATS JetStream to a separate `softswitch reporting`
process, killed mid-stream and restarted, with no event lost or counted twice; then
`softswitch reports rebuild --check` finds the stored rows equal to the event log.

The scripted morning of test_reporting_scenario.py is moved to tomorrow 08:00 (Asia/Jakarta):
the process closes intervals by the events' time as they pass, and its clock (today) never
closes an interval of tomorrow early. The test plays the switch: it publishes on the bus and
appends the same events to the store's event log. Needs NATS at 127.0.0.1:4222 (skipped when
unreachable, failed when CI=true) and runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from reporting import events as rep
from reporting.bus import NatsBus
from softswitch.store import open_store
from softswitch.store.base import ReportRow
from tests import test_reporting_scenario as scenario
from tests.conftest import free_port
from tests.switchkit import wait_for

NATS_URL = os.environ.get("SOFTSWITCH_TEST_NATS", "nats://127.0.0.1:4222")
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".venv" / "bin" / "softswitch"
TZ = ZoneInfo(scenario.TZ)
_tomorrow = datetime.now(TZ).date() + timedelta(days=1)
T0 = datetime(_tomorrow.year, _tomorrow.month, _tomorrow.day, 8, 0, tzinfo=TZ).timestamp()
DAY = _tomorrow.isoformat()
SHIFT = T0 - scenario.T0  # whole days: Jakarta has no DST


def moved(row: ReportRow) -> ReportRow:
    def at(ts: float | None) -> float | None:
        return None if ts is None else ts + SHIFT

    return dataclasses.replace(row, day=DAY, start=at(row.start), login=at(row.login),
                               logoff=at(row.logoff))


def by_start_name(rows: list[ReportRow]) -> list[ReportRow]:
    return sorted(rows, key=lambda r: (r.start or 0, r.name))


@pytest_asyncio.fixture
async def nats_names() -> AsyncIterator[dict[str, str]]:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0,
                                allow_reconnect=False)
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"NATS at {NATS_URL} unreachable: {exc}")
        pytest.skip(f"NATS at {NATS_URL} unreachable: {exc}")
    token = secrets.token_hex(4)
    names = {"stream": f"TEST_REPORTING_{token}", "prefix": f"test.reporting.{token}",
             "durable": f"reporting-{token}"}
    try:
        yield names
    finally:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(names["stream"])
        await nc.close()


def morning() -> list[rep.ReportEvent]:
    """The scenario moved to tomorrow, with 3,000 events that count nothing (config
    versions) in the first twenty minutes, so that a kill lands in the middle of a stream."""
    events = [dataclasses.replace(e, ts=e.ts + SHIFT) for e in scenario.morning()]
    noise = [rep.ConfigApplied(ts=T0 + i * 0.4, component="test", version=i)
             for i in range(3000)]
    closing = rep.ConfigApplied(ts=T0 + 2760, component="test", version=3000)  # 08:46
    return sorted([*events, *noise], key=lambda e: e.ts) + [closing]


async def start_reporting(config: Path, log_path: Path,
                          base: str) -> asyncio.subprocess.Process:
    """`softswitch reporting --config config` (output in `log_path`, run in its folder),
    once it answers /healthz 200 at `base`; failed at once if it exits, killed if it never
    answers."""
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT), "reporting", "--config", str(config), cwd=log_path.parent,
            stdout=log, stderr=asyncio.subprocess.STDOUT)

    async def healthy() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"reporting exited {proc.returncode}: {log_path.read_text()}")
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                return (await http.get(f"{base}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await wait_for(healthy, timeout=30, what=f"{log_path.name}: /healthz 200")
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc


def reporting_config(tmp_path: Path, store_url: str, nats_names: dict[str, str], port: int,
                     *, reporting: str = "", web: str = "") -> Path:
    """The config of a `softswitch reporting` process on this test's own NATS stream, subject
    prefix and durable, serving on `port`; `reporting`/`web`: extra lines of those tables."""
    config = tmp_path / "reporting.toml"
    config.write_text(f"""
[store]
url = "{store_url}"
[events]
bus = "nats"
nats_url = "{NATS_URL}"
nats_stream = "{nats_names['stream']}"
nats_subject_prefix = "{nats_names['prefix']}"
[reporting]
embedded = false
listen = "127.0.0.1:{port}"
durable = "{nats_names['durable']}"
{reporting}
[web]
timezone = "{scenario.TZ}"
{web}
""")
    return config


async def test_reporting_process_survives_a_kill_without_losing_events(
        nats_names: dict[str, str], store_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = reporting_config(tmp_path, store_url, nats_names, port,
                              reporting="sl_thresholds = { support = 30 }")
    base = f"http://127.0.0.1:{port}"
    store = open_store(store_url)
    await store.open()  # migrated here first: the process and this test share it
    switch_bus = NatsBus(NATS_URL, stream=nats_names["stream"],
                         subject_prefix=nats_names["prefix"])
    await switch_bus.start()
    procs: list[asyncio.subprocess.Process] = []

    async def start_process(name: str) -> asyncio.subprocess.Process:
        proc = await start_reporting(config, tmp_path / f"{name}.log", base)
        procs.append(proc)
        return proc

    async def health() -> dict[str, int]:
        async with httpx.AsyncClient(timeout=2) as http:
            body: dict[str, int] = (await http.get(f"{base}/healthz")).json()
            return body

    async def publish(events: list[rep.ReportEvent]) -> None:
        for i in range(0, len(events), 200):  # the switch publishes in small batches
            batch = events[i:i + 200]
            await store.append_events(batch)
            switch_bus.publish(batch)
        await switch_bus.flush()

    events = morning()
    phase1 = [e for e in events if e.ts < T0 + 1200]
    phase2 = [e for e in events if T0 + 1200 <= e.ts < T0 + 2200]
    phase3 = [e for e in events if e.ts >= T0 + 2200]
    assert len(phase1) > 3000 and phase2 and phase3
    try:
        first = await start_process("first")
        sending = asyncio.create_task(publish(phase1))
        # Killed (no goodbye) while the stream is flowing into it.
        await wait_for(lambda: _at_least(health, 500), timeout=30,
                       what="first process took 500 events")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        await sending
        await publish(phase2)  # while nobody consumes
        second = await start_process("second")
        # What the first process had counted before it died came back by the replay.
        assert (await health())["replayed"] == len(phase1) + len(phase2)
        await publish(phase3)

        async def all_closed() -> bool:
            queues = await store.read_report_rows("queue", "interval")
            agents = await store.read_report_rows("agent", "interval")
            return len(queues) >= len(scenario.QUEUE_INTERVALS) and len(agents) >= len(
                scenario.AGENT_INTERVALS)

        await wait_for(all_closed, timeout=30, what="every interval stored")
        assert by_start_name(await store.read_report_rows("queue", "interval")) == \
            by_start_name([moved(r) for r in scenario.QUEUE_INTERVALS])
        assert by_start_name(await store.read_report_rows("agent", "interval")) == \
            by_start_name([moved(r) for r in scenario.AGENT_INTERVALS])
        assert await store.read_report_rows("queue", "day") == [
            moved(r) for r in scenario.QUEUE_DAYS]
        assert await store.read_report_rows("agent", "day") == [
            moved(r) for r in scenario.AGENT_DAYS]
        assert (await health())["events"] == len(events)  # replay + live, none twice

        # The process's own report API.
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"{base}/api/reports/queues", params={
                "from": DAY, "metrics": "offered,answered,service_level,abandon_rate"})
        assert r.status_code == 200, r.text
        assert [(x["queue"], x["offered"], x["answered"], x["service_level"],
                 x["abandon_rate"]) for x in r.json()["rows"]] == [
            ("sales", 5.0, 3.0, 2 / 3, 0.0), ("support", 4.0, 2.0, 2 / 3, 0.25)]

        # Its /metrics (reporting/prometheus.py) and live snapshot (reporting/web.py).
        async with httpx.AsyncClient(timeout=5) as http:
            metrics = (await http.get(f"{base}/metrics")).text
            live = (await http.get(f"{base}/api/live")).json()
        assert 'softswitch_queue_calls_offered_total{queue="sales"} 5.0' in metrics
        assert live["totals"]["queues"]["support"]["offered"] == 4.0

        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await switch_bus.close()
        await store.close()

    # The stored rows equal what the event log gives.
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "reports", "rebuild", "--config", str(config), "--from", DAY, "--to", DAY,
        "--check", cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out.decode(), err.decode())
    assert f"checked 13 interval rows of {DAY}..{DAY}" in out.decode()
    assert "0 changed, 0 not stored before, 0 stored but not rebuilt" in out.decode()


async def _at_least(health: object, n: int) -> bool:
    try:
        body = await health()  # type: ignore[operator]
    except (httpx.TransportError, ValueError):
        return False
    return int(body.get("events", 0)) >= n


@pytest.mark.parametrize("args", [["reporting"], ["reports"], ["reports", "rebuild"]])
async def test_help_texts(args: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, "--help", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert out.decode().startswith(f"usage: softswitch {' '.join(args)}")


async def test_reporting_refuses_a_local_bus_and_rebuild_a_bad_day(tmp_path: Path) -> None:
    config = tmp_path / "local.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/r.db"\n')
    for args, code, text in ((["reporting"], 1, 'bus = "nats"'),
                             (["reports", "rebuild", "--from", "2026-13-01"], 2,
                              "not a day")):
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT), *args, "--config", str(config), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == code and text in err.decode(), err.decode()


async def test_reporting_process_serves_cdr_and_stops_with_a_live_stream_open(
        nats_names: dict[str, str], store_url: str, tmp_path: Path) -> None:
    """`softswitch reporting` serves /cdr and /api/cdr from the shared store (loopback, no
    [[web.users]]: allowed as on the switch), and SIGTERM ends it promptly (exit 0) while a
    wallboard's SSE stream is open: the stream ends as the process stops."""
    from softswitch.store.base import Cdr

    port = free_port()
    config = reporting_config(tmp_path, store_url, nats_names, port, web='language = "en"')
    base = f"http://127.0.0.1:{port}"
    store = open_store(store_url)
    await store.open()
    wall = T0 - 86400
    await store.write_cdr(Cdr("cdr-rep@test", "1001", "1002", wall, wall + 3, wall + 30, 30.0,
                              27.0, "answered", "bye", "caller"))
    # The stream the process creates is not the other test's; make sure it exists for it.
    switch_bus = NatsBus(NATS_URL, stream=nats_names["stream"],
                         subject_prefix=nats_names["prefix"])
    await switch_bus.start()
    log_path = tmp_path / "reporting.log"
    proc = await start_reporting(config, log_path, base)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            api = await http.get("/api/cdr")
            page = await http.get("/cdr")
            page_id = await http.get("/cdr", params={"lang": "id"})
        assert api.status_code == 200, api.text
        assert [c["call_id"] for c in api.json()["cdrs"]] == ["cdr-rep@test"]
        assert page.status_code == 200 and "<h1>Calls</h1>" in page.text  # [web] language
        assert 'data-call-id="cdr-rep@test"' in page.text
        assert "<h1>Panggilan</h1>" in page_id.text

        async with httpx.AsyncClient(base_url=base, timeout=10) as http, \
                http.stream("GET", "/api/live/stream") as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            while not (await asyncio.wait_for(anext(lines), 5)).startswith("event: snapshot"):
                pass
            proc.send_signal(signal.SIGTERM)
            t0 = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(proc.wait(), 10) == 0, log_path.read_text()
            took = asyncio.get_running_loop().time() - t0
            # The stream ended with the process (its end, not an error).
            with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):
                async for _ in lines:
                    pass
        assert took < 5, (took, log_path.read_text())
        assert "Traceback" not in log_path.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await switch_bus.close()
        await store.close()
