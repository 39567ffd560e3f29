"""The CMS Prometheus collector (`reporting.prometheus.CmsCollector`) on a snapshot in the
contract's format: names, types, units, values, bounded labels; and its registration on the
switch's registry (softswitch/metrics.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reporting.prometheus import CmsCollector
from softswitch.metrics import make_registry

SNAPSHOT: dict[str, Any] = {
    "ts": 1764400000.0, "refresh_s": 2, "interval_s": 900, "timezone": "Asia/Jakarta",
    "day": "2026-11-29",
    "queues": [
        {"name": "general", "sl_threshold_s": 20, "waiting": 2, "longest_wait_s": 35.2,
         "agents": {"staffed": 3, "available": 1, "ringing": 0, "on_call": 1, "hold": 0,
                    "acw": 0, "aux": 1},
         "today": {"offered": 10, "answered": 8, "answered_in_t": 6, "abandoned": 2,
                   "short_abandoned": 1, "overflowed": 0, "dropped": 0, "handled": 7,
                   "transfers": 0, "service_level": 0.666, "abandon_rate": 0.111,
                   "asa_s": 12.5, "aht_s": 180.0, "avg_acw_s": 10.0, "max_wait_s": 50},
         "alerts": ["longest_wait_high"]},
        {"name": "sales", "sl_threshold_s": 30, "waiting": 0, "longest_wait_s": 0,
         "agents": {"staffed": 0, "available": 0, "ringing": 0, "on_call": 0, "hold": 0,
                    "acw": 0, "aux": 0},
         "today": {"offered": 0, "answered": 0, "answered_in_t": 0, "abandoned": 0,
                   "short_abandoned": 0, "overflowed": 0, "dropped": 0, "handled": 0,
                   "transfers": 0, "service_level": None, "abandon_rate": None,
                   "asa_s": None, "aht_s": None, "avg_acw_s": None, "max_wait_s": 0},
         "alerts": []},
    ],
    "agents": [
        {"agent": "2001", "name": "Ani", "state": "on_call", "reason": "", "since": 1764399000.0,
         "time_in_state_s": 12.5, "queue": "general", "call_id": "abc@x", "device": "1001",
         "queues": ["general"],
         "today": {"handled": 4, "offered": 5, "ring_no_answer": 1, "talk": 600, "acw_s": 40,
                   "aux_s": 0, "available_s": 300, "staffed_s": 1000, "occupancy": 0.64,
                   "aht_s": 160.0}},
        {"agent": "2002", "name": "", "state": "logged_out", "reason": "", "since": 0.0,
         "time_in_state_s": 0.0, "queue": "", "call_id": "", "device": "", "queues": ["general"],
         "today": {"handled": 0, "offered": 0, "ring_no_answer": 0, "talk_s": 0, "acw_s": 0,
                   "aux_s": 0, "available_s": 0, "staffed_s": 0, "occupancy": None,
                   "aht_s": None}},
    ],
    "alerts": [
        {"rule": "longest_wait_high", "queue": "general", "metric": "longest_wait_s", "op": ">",
         "threshold": 60, "value": 75.0, "severity": "critical", "since": 1764399990.0},
    ],
    "totals": {
        "queues": {
            "general": {"offered": 12, "answered": 9, "answered_in_t": 7, "abandoned": 3,
                        "short_abandoned": 1, "abandoned_in_t": 2, "overflowed": 0,
                        "dropped": 0, "handled": 8, "wait_sum": 110.5, "talk": 1500.0,
                        "acw": 90.0, "ring_no_answer": 2},
            "sales": dict.fromkeys(
                ("offered", "answered", "answered_in_t", "abandoned", "short_abandoned",
                 "abandoned_in_t", "overflowed", "dropped", "handled", "wait_sum", "talk",
                 "acw", "ring_no_answer"), 0),
        },
        "agents": {
            "2001": {"handled": 4, "offered": 5, "ring_no_answer": 1, "talk": 600.0,
                     "acw": 40.0, "aux": 0.0, "available": 300.0, "staffed": 1000.0},
            "2002": {"handled": 0, "offered": 0, "ring_no_answer": 0, "talk": 0, "acw": 0,
                     "aux": 0, "available": 0, "staffed": 0},
        },
    },
}

# Every label the CMS metrics may carry: bounded sets from the config, never a caller or a call.
ALLOWED_LABELS = {"queue", "agent", "state", "kind", "rule", "severity"}


def scrape(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CmsCollector(lambda: snapshot))
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families: dict[str, Any], sample: str, **labels: str) -> float | None:
    for f in families.values():
        for s in f.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return None


def test_queue_gauges_and_counters() -> None:
    f = scrape(SNAPSHOT)
    assert f["softswitch_queue_calls_waiting"].type == "gauge"
    assert value(f, "softswitch_queue_calls_waiting", queue="general") == 2
    assert value(f, "softswitch_queue_longest_wait_seconds", queue="general") == 35.2
    assert value(f, "softswitch_queue_agents_staffed", queue="general") == 3
    assert value(f, "softswitch_queue_agents", queue="general", state="available") == 1
    assert value(f, "softswitch_queue_agents", queue="general", state="aux") == 1
    # staffed is a total, not a state: summing the states must not count agents twice
    assert value(f, "softswitch_queue_agents", queue="general", state="staffed") is None
    assert value(f, "softswitch_queue_service_level_threshold_seconds", queue="sales") == 30
    assert value(f, "softswitch_queue_calls_today", queue="general", kind="offered") == 10
    assert f["softswitch_queue_calls_offered"].type == "counter"
    assert value(f, "softswitch_queue_calls_offered_total", queue="general") == 12
    assert value(f, "softswitch_queue_calls_answered_within_threshold_total",
                 queue="general") == 7
    assert value(f, "softswitch_queue_calls_abandoned_within_threshold_total",
                 queue="general") == 2
    assert value(f, "softswitch_queue_calls_short_abandoned_total", queue="general") == 1
    assert value(f, "softswitch_queue_offers_unanswered_total", queue="general") == 2
    assert value(f, "softswitch_queue_answer_wait_seconds_total", queue="general") == 110.5
    assert value(f, "softswitch_queue_talk_seconds_total", queue="general") == 1500
    assert value(f, "softswitch_queue_acw_seconds_total", queue="general") == 90
    assert value(f, "softswitch_queue_calls_offered_total", queue="sales") == 0


def test_today_ratios_are_0_to_1_and_absent_while_undefined() -> None:
    f = scrape(SNAPSHOT)
    assert value(f, "softswitch_queue_service_level_ratio", queue="general") == 0.666
    assert value(f, "softswitch_queue_abandon_ratio", queue="general") == 0.111
    assert value(f, "softswitch_queue_answer_speed_average_seconds", queue="general") == 12.5
    assert value(f, "softswitch_queue_handle_time_average_seconds", queue="general") == 180
    for name in ("softswitch_queue_service_level_ratio", "softswitch_queue_abandon_ratio",
                 "softswitch_queue_answer_speed_average_seconds"):
        assert value(f, name, queue="sales") is None  # undefined is not 0
    assert value(f, "softswitch_agent_occupancy_ratio", agent="2001") == 0.64
    assert value(f, "softswitch_agent_occupancy_ratio", agent="2002") is None


def test_agents_state_one_hot_counts_and_totals() -> None:
    f = scrape(SNAPSHOT)
    states = {s.labels["state"]: s.value for s in f["softswitch_agent_state"].samples
              if s.labels["agent"] == "2001"}
    assert states == {"logged_out": 0, "available": 0, "ringing": 0, "on_call": 1, "hold": 0,
                      "acw": 0, "aux": 0}
    assert value(f, "softswitch_agents", state="on_call") == 1
    assert value(f, "softswitch_agents", state="logged_out") == 1
    assert value(f, "softswitch_agents", state="available") == 0
    assert value(f, "softswitch_agent_state_duration_seconds", agent="2001") == 12.5
    assert value(f, "softswitch_agent_calls_handled_total", agent="2001") == 4
    assert value(f, "softswitch_agent_calls_offered_total", agent="2001") == 5
    assert value(f, "softswitch_agent_offers_unanswered_total", agent="2001") == 1
    assert value(f, "softswitch_agent_staffed_seconds_total", agent="2001") == 1000
    assert value(f, "softswitch_agent_state_seconds_total", agent="2001", state="on_call") == 600
    assert value(f, "softswitch_agent_state_seconds_total", agent="2001", state="acw") == 40
    assert value(f, "softswitch_agent_calls_handled_today", agent="2001") == 4


def test_alerts_active() -> None:
    f = scrape(SNAPSHOT)
    assert [(s.labels, s.value) for s in f["softswitch_alerts_active"].samples] == [
        ({"rule": "longest_wait_high", "queue": "general", "severity": "critical"}, 1.0)]
    quiet = copy.deepcopy(SNAPSHOT)
    quiet["alerts"] = []
    assert scrape(quiet)["softswitch_alerts_active"].samples == []


def test_naming_rules_and_bounded_labels() -> None:
    f = scrape(SNAPSHOT)
    assert len(f) > 20
    for name, family in f.items():
        assert name.startswith("softswitch_"), name
        for s in family.samples:
            assert set(s.labels) <= ALLOWED_LABELS, (name, s.labels)
            assert "abc@x" not in s.labels.values() and "1001" not in s.labels.values()
            if name.endswith("_ratio"):
                assert 0 <= s.value <= 1, (name, s.value)
        if family.type == "counter":
            assert all(s.name in (name + "_total", name + "_created") for s in family.samples)
        else:
            assert not name.endswith("_total"), name
        # base units: seconds, never milliseconds or minutes
        assert not any(u in name for u in ("_ms", "_milliseconds", "_minutes", "_percent"))


def test_no_snapshot_no_metrics_and_a_failing_one_does_not_break_the_scrape() -> None:
    assert scrape(None) == {}

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(CmsCollector(broken))
    assert generate_latest(registry) == b""


@pytest.mark.parametrize("has_reporting", [True, False])
def test_switch_registry_reads_the_reporting_snapshot(has_reporting: bool) -> None:
    calls: list[float] = []

    class Service:
        def snapshot(self, now: float) -> dict[str, Any]:
            calls.append(now)
            return SNAPSHOT

    switch = SimpleNamespace(core=None)  # the SIP collector has nothing to say
    if has_reporting:
        switch.reporting = Service()
    text = generate_latest(make_registry(lambda: switch)).decode()  # type: ignore[arg-type]
    if has_reporting:
        assert 'softswitch_queue_calls_waiting{queue="general"} 2.0' in text
        assert len(calls) == 1 and calls[0] > 1.7e9  # wall clock, seconds
    else:
        assert text == "" and calls == []


def test_every_metric_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    section = doc[doc.index("## Prometheus"):]
    f = scrape(SNAPSHOT)
    for name, family in f.items():
        series = name + "_total" if family.type == "counter" else name
        assert f"| `{series}` | {family.type} |" in section, series


# -- end to end: a rule of the config raised by the running switch ----------------------------

async def test_a_configured_rule_is_raised_on_metrics_and_the_bus(tmp_path: Path) -> None:
    from reporting import events as rep
    from tests.switchkit import running_switch, wait_for
    from tests.test_grafana import _contact_centre_config

    # Nobody is logged in, so no agent of "sales" is available: raised at the first tick.
    config = _contact_centre_config(tmp_path, (
        '\n[[reporting.thresholds]]\nname = "nobody_available"\nmetric = "agents_available"\n'
        'op = "<"\nvalue = 1\nqueues = ["sales"]\nseverity = "critical"\n'))
    async with running_switch(config) as switch:
        url = f"http://127.0.0.1:{switch.http_bound[1]}/metrics"

        async def scraped() -> str | None:
            async with httpx.AsyncClient(timeout=3) as client:
                text = (await client.get(url)).text
            return text if "softswitch_alerts_active{" in text else None

        async def logged() -> list[dict[str, Any]]:
            assert switch.store is not None
            return [e.data() for e in await switch.store.read_events(0, 10_000)
                    if e.type == rep.AlertRaised.type_name]

        text = await wait_for(scraped, 5, "alert not exported")
        # emitted as an event on the bus, so written to the event log
        [raised] = await wait_for(logged, 5, "AlertRaised not logged")
    f = {fam.name: fam for fam in text_string_to_metric_families(text)}
    assert [(s.labels, s.value) for s in f["softswitch_alerts_active"].samples] == [
        ({"rule": "nobody_available", "queue": "sales", "severity": "critical"}, 1.0)]
    assert (raised["rule"], raised["queue"], raised["metric"], raised["value"]) == (
        "nobody_available", "sales", "agents_available", 0.0)
