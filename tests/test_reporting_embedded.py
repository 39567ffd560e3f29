"""The reporting service inside the switch (``[reporting] embedded = true``, the default):
events on the switch's bus become stored intervals served by its report API; a restart
recovers from the event log without rewriting what is stored, and a rebuild equals it.

The scripted morning of test_reporting_scenario.py is moved to tomorrow (intervals close by
the events' time); SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

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


async def test_reload_names_the_reporting_keys_that_wait_for_a_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A reload changing interval_min, T, S, the SL formula or [web] timezone is applied for
    the rest, and its result, the log and `softswitch reload` say which keys wait for a
    restart (the running values stay)."""
    import argparse
    import logging

    from softswitch.cli import _reload
    from tests.switchkit import http_post, running_switch

    files = write_config(tmp_path)
    files.rewrite(reporting={"refresh_s": 2}, web={"timezone": "Asia/Jakarta"})
    async with running_switch(files) as switch:
        assert switch.reporting is not None
        before = switch.reporting.settings
        files.rewrite(reporting={"refresh_s": 3, "interval_min": 30, "sl_threshold_s": 15,
                                 "sl_thresholds": {"support": 40}, "short_abandon_s": 3,
                                 "sl_formula": "abandons_against"},
                      web={"timezone": "Europe/Berlin"})
        with caplog.at_level(logging.WARNING, logger="softswitch"):
            r = await http_post(files, "/api/admin/reload")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["applied"] is True
        assert body["restart_required"] == [
            "[reporting] interval_min", "[reporting] sl_threshold_s",
            "[reporting] sl_thresholds", "[reporting] short_abandon_s",
            "[reporting] sl_formula", "[web] timezone"]
        assert len(body["warnings"]) == 6
        assert all("next restart" in w for w in body["warnings"])
        assert "(15)" in body["warnings"][0] and "Asia/Jakarta" in body["warnings"][-1]
        assert body["warnings"][0].startswith("[reporting] interval_min changed")
        logged = [rec.getMessage() for rec in caplog.records
                  if rec.levelno == logging.WARNING and "next restart" in rec.getMessage()]
        assert len(logged) == 6 and "[web] timezone" in logged[-1]
        # Applied for the rest; the shaping values stay until the restart.
        now = switch.reporting.settings
        assert now.refresh_s == 3
        assert (now.interval_s, now.sl_threshold_s, now.sl_thresholds, now.short_abandon_s,
                now.sl_formula, now.timezone) == (
            before.interval_s, before.sl_threshold_s, before.sl_thresholds,
            before.short_abandon_s, before.sl_formula, "Asia/Jakarta")

        # `softswitch reload` prints them as warnings (exit 0) as long as the file differs
        # from what runs (here: a later reload of something else); back as it runs: none.
        args = argparse.Namespace(url=files.http, token=None, config=str(files.path))
        capsys.readouterr()
        files.rewrite(reporting={"refresh_s": 4})
        assert await asyncio.to_thread(_reload, args) == 0
        out, err = capsys.readouterr()
        assert out.startswith("reload applied")
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert [w.split(" changed")[0] for w in warnings] == [
            "warning: [reporting] interval_min", "warning: [reporting] sl_threshold_s",
            "warning: [reporting] sl_thresholds", "warning: [reporting] short_abandon_s",
            "warning: [reporting] sl_formula", "warning: [web] timezone"]
        files.rewrite(reporting={"interval_min": 15, "sl_threshold_s": 20,
                                 "sl_thresholds": {}, "short_abandon_s": 5,
                                 "sl_formula": "default"}, web={"timezone": "Asia/Jakarta"})
        r = await http_post(files, "/api/admin/reload")
        assert (r.json()["restart_required"], r.json()["warnings"]) == ([], [])
