"""The reporting service inside the switch (``[reporting] embedded = true``, the default):
events on the switch's bus become stored intervals served by its report API; a restart
recovers from the event log without rewriting what is stored, and a rebuild equals it.

The scripted morning of test_reporting_scenario.py is moved to tomorrow (intervals close by
the events' time); SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from reporting.rebuild import rebuild
from reporting.service import settings_from_config
from softswitch.app import Switch
from softswitch.config import load_config
from softswitch.store import open_store
from tests import test_reporting_standalone as moved
from tests.switchkit import wait_for, write_config
from tests.test_reporting_standalone import nats_names  # noqa: F401 (a fixture)


async def test_embedded_service_stores_serves_and_recovers(store_url: str,
                                                           tmp_path: Path) -> None:
    await embedded(store_url, tmp_path, None)


async def test_embedded_service_on_nats(store_url: str, tmp_path: Path,
                                        nats_names: dict[str, str]) -> None:  # noqa: F811
    """The same with [events] bus = "nats": fed by the stream, replayed from it at the restart."""
    await embedded(store_url, tmp_path, nats_names)


async def embedded(store_url: str, tmp_path: Path, names: dict[str, str] | None) -> None:
    files = write_config(tmp_path, store_url=store_url)
    cfg = load_config(files.path)
    cfg = cfg.model_copy(update={"reporting": cfg.reporting.model_copy(
        update={"sl_thresholds": {"support": 30}})})
    if names is not None:
        cfg = cfg.model_copy(update={"events": cfg.events.model_copy(update={
            "bus": "nats", "nats_url": moved.NATS_URL, "nats_stream": names["stream"],
            "nats_subject_prefix": names["prefix"]})})
    events = [e for e in moved.morning() if e.type_name != "config_applied"]
    events.append(moved.rep.ConfigApplied(ts=moved.T0 + 2760, component="test", version=1))
    day = moved.DAY

    switch = Switch(files.path, cfg)
    try:
        await switch.start()
        assert switch.reporting is not None and switch.bus is not None
        for i in range(0, len(events), 7):  # as the contact centre publishes: small batches
            switch.bus.publish(events[i:i + 7])

        async def interval_rows() -> list[dict[str, object]] | None:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"{files.http}/api/reports/queues",
                                   params={"from": day, "group": "interval",
                                           "metrics": "offered,service_level"})
            assert r.status_code == 200, r.text
            rows: list[dict[str, object]] = r.json()["rows"]
            return rows if len(rows) == 5 else None

        rows = await wait_for(interval_rows, timeout=30, what="5 queue interval rows")
        assert [(x["queue"], x["period"][-5:], x["offered"], x["service_level"])
                for x in rows] == [
            ("sales", "08:00", 3.0, 0.5), ("support", "08:00", 2.0, 0.5),
            ("sales", "08:15", 2.0, 1.0), ("support", "08:15", 1.0, None),
            ("support", "08:30", 1.0, 1.0)]
    finally:
        await switch.stop()

    store = open_store(store_url)
    await store.open()
    try:
        before = await store.read_report_rows("agent", "interval")
        assert len(before) == 8

        async def logged() -> bool:  # NATS: the switch's event-log consumer writes it
            return len(await store.read_events(limit=1000)) >= len(events)

        await wait_for(logged, timeout=20, what="the event log written")
    finally:
        await store.close()

    again = Switch(files.path, cfg)
    try:
        await again.start()  # replays the log: nothing stored is written again
        assert again.reporting is not None
        assert again.reporting.events_in >= len(events)
        assert again.reporting.rows_written == 0
    finally:
        await again.stop()

    store = open_store(store_url)
    await store.open()
    try:
        assert await store.read_report_rows("agent", "interval") == before
        result = await rebuild(store, settings_from_config(cfg), day, day, write=False)
        assert (result.rows, result.changed, result.added, result.removed) == (13, 0, 0, 0)
    finally:
        await store.close()
