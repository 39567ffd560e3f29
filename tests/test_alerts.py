"""CMS-4 threshold alerts: `reporting.alerts.AlertEngine` on virtual time.

Every test drives the engine with events stamped at chosen instants and `evaluate(now, live)`;
no clock is read. Rules are the config's own `ThresholdRule` (the engine duck-types them).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from reporting import events as rep
from reporting.alerts import AlertEngine
from softswitch.config import ThresholdRule

_ids = itertools.count(1)


def rule(name: str = "r", **kw: Any) -> ThresholdRule:
    return ThresholdRule(name=name, **kw)


def engine(*rules: ThresholdRule, formula: str = "default", queues: tuple[str, ...] = ("general",),
           t: dict[str, float] | None = None, short: float = 5) -> AlertEngine:
    per_queue = t or {}
    # Without a windowed rule the engine keeps no outcomes: give it one that never holds.
    rules = rules or (rule("never", metric="service_level", op="<", value=0),)
    return AlertEngine(rules, sl_threshold=lambda q: per_queue.get(q, 20.0),
                       short_abandon_s=short, sl_formula=formula, queues=queues)


def answered(e: AlertEngine, ts: float, wait: float, queue: str = "general") -> None:
    cid = f"c{next(_ids)}"
    e.ingest(rep.CallQueued(ts=ts - wait, call_id=cid, queue=queue, position=1))
    e.ingest(rep.CallAnswered(ts=ts, call_id=cid, queue=queue, agent="2001", wait=wait))


def abandoned(e: AlertEngine, ts: float, wait: float, queue: str = "general") -> None:
    cid = f"c{next(_ids)}"
    e.ingest(rep.CallQueued(ts=ts - wait, call_id=cid, queue=queue, position=1))
    e.ingest(rep.CallAbandoned(ts=ts, call_id=cid, queue=queue, wait=wait))


def overflowed(e: AlertEngine, ts: float, queue: str = "general",
               destination: str | None = "1500") -> None:
    cid = f"c{next(_ids)}"
    e.ingest(rep.CallQueued(ts=ts - 30, call_id=cid, queue=queue, position=1))
    e.ingest(rep.CallOverflowed(ts=ts, call_id=cid, queue=queue, destination=destination,
                                wait=30))


NO_LIVE: dict[str, dict[str, float]] = {}


# -- service level ---------------------------------------------------------------------------

def test_service_level_raises_once_then_clears_once() -> None:
    e = engine(rule("sl_low", metric="service_level", op="<", value=0.8, window_s=1800,
                    severity="critical"))
    for i in range(3):
        answered(e, 100 + i, wait=5)  # within T = 20
    answered(e, 110, wait=45)  # 3 / 4 = 0.75 < 0.8
    [raised] = e.evaluate(120, NO_LIVE)
    assert isinstance(raised, rep.AlertRaised)
    assert (raised.rule, raised.queue, raised.metric, raised.op, raised.threshold,
            raised.severity, raised.ts) == ("sl_low", "general", "service_level", "<", 0.8,
                                            "critical", 120)
    assert raised.value == pytest.approx(0.75)
    assert e.evaluate(121, NO_LIVE) == []  # still holding: no second raise
    assert e.active() == [{"rule": "sl_low", "queue": "general", "metric": "service_level",
                           "op": "<", "threshold": 0.8, "value": pytest.approx(0.75),
                           "severity": "critical", "since": 120}]
    answered(e, 130, wait=1)
    answered(e, 131, wait=1)  # 5 / 6 = 0.83
    [cleared] = e.evaluate(132, NO_LIVE)
    assert isinstance(cleared, rep.AlertCleared)
    assert cleared.value == pytest.approx(5 / 6) and cleared.ts == 132
    assert e.evaluate(133, NO_LIVE) == [] and e.active() == []


def test_service_level_uses_each_queues_threshold() -> None:
    e = engine(rule("sl_low", metric="service_level", op="<", value=0.5),
               queues=("general", "sales"), t={"sales": 30})
    answered(e, 100, wait=25, queue="general")  # over T = 20
    answered(e, 100, wait=25, queue="sales")  # within T = 30
    [raised] = e.evaluate(101, NO_LIVE)
    assert raised.queue == "general" and raised.value == 0.0
    assert [a["queue"] for a in e.active()] == ["general"]


@pytest.mark.parametrize(("formula", "expected"), [
    ("default", 2 / 4),  # A_T / (A + B - B_S)
    ("ignore_abandons", 2 / 3),  # A_T / A
    ("abandons_against", 2 / 5),  # A_T / (A + B)
    ("abandons_in_favour", 4 / 5),  # (A_T + B_T) / (A + B)
])
def test_service_level_formulas(formula: str, expected: float) -> None:
    e = engine(formula=formula)
    answered(e, 10, wait=3)
    answered(e, 11, wait=20)  # exactly T: within
    answered(e, 12, wait=21)
    abandoned(e, 13, wait=2)  # short (< 5) and within T
    abandoned(e, 14, wait=10)  # within T
    overflowed(e, 15)  # outside every service level formula
    got = e.window_figures("general", 20, 1800)
    assert got["service_level"] == pytest.approx(expected)


def test_window_without_calls_does_not_raise() -> None:
    e = engine(rule("sl_low", metric="service_level", op="<", value=0.8),
               rule("ab_high", metric="abandon_rate", op=">=", value=0.0),
               rule("asa_high", metric="asa_s", op=">=", value=0.0))
    assert e.evaluate(1000, NO_LIVE) == []
    abandoned(e, 1001, wait=1)  # only a short abandon: SL denominator 0, abandon rate 0/0
    assert e.evaluate(1002, NO_LIVE) == []
    assert e.window_figures("general", 1002, 1800) == {
        "service_level": None, "abandon_rate": None, "asa_s": None}


def test_window_expiry_clears_with_no_figure() -> None:
    e = engine(rule("sl_low", metric="service_level", op="<", value=0.8, window_s=600))
    answered(e, 0, wait=40)
    assert [type(x) for x in e.evaluate(599, NO_LIVE)] == [rep.AlertRaised]
    answered(e, 700, wait=1)  # the bad call left the window at 600: 1/1
    [cleared] = e.evaluate(700, NO_LIVE)
    assert isinstance(cleared, rep.AlertCleared) and cleared.value == 1.0
    answered(e, 800, wait=40)
    assert [type(x) for x in e.evaluate(800, NO_LIVE)] == [rep.AlertRaised]  # 1/2
    [cleared] = e.evaluate(1400, NO_LIVE)  # both calls out of the window: nothing to report
    assert isinstance(cleared, rep.AlertCleared) and cleared.value is None


def test_each_rule_has_its_own_window() -> None:
    e = engine(rule("short_window", metric="service_level", op="<", value=0.8, window_s=60),
               rule("long_window", metric="service_level", op="<", value=0.8, window_s=3600))
    answered(e, 0, wait=40)  # bad
    answered(e, 1000, wait=1)  # good
    # short window: 1/1; long window: 1/2
    assert [x.rule for x in e.evaluate(1001, NO_LIVE)] == ["long_window"]
    assert e.window_figures("general", 1001, 3600)["service_level"] == 0.5


# -- abandon rate, ASA -----------------------------------------------------------------------

def test_abandon_rate_excludes_short_abandons_and_counts_overflow_as_offered() -> None:
    e = engine(rule("ab_high", metric="abandon_rate", op=">", value=0.25))
    answered(e, 10, wait=3)
    abandoned(e, 11, wait=2)  # short: out of both
    abandoned(e, 12, wait=30)
    overflowed(e, 13)
    overflowed(e, 14, destination=None)  # dropped: offered too
    # (2 - 1) / (5 - 1) = 0.25: not > 0.25
    assert e.window_figures("general", 20, 1800)["abandon_rate"] == pytest.approx(0.25)
    assert e.evaluate(20, NO_LIVE) == []
    abandoned(e, 21, wait=40)  # (3 - 1) / (6 - 1) = 0.4
    [raised] = e.evaluate(22, NO_LIVE)
    assert raised.rule == "ab_high" and raised.value == pytest.approx(0.4)


def test_overflow_of_a_call_never_queued_is_not_offered() -> None:
    e = engine()
    abandoned(e, 10, wait=30)
    e.ingest(rep.CallOverflowed(ts=11, call_id="unknown", queue="general", destination=None))
    assert e.window_figures("general", 20, 1800)["abandon_rate"] == 1.0


def test_asa() -> None:
    e = engine(rule("asa_high", metric="asa_s", op=">", value=20))
    answered(e, 10, wait=10)
    answered(e, 11, wait=20)
    abandoned(e, 12, wait=100)  # abandons have no answer wait
    assert e.window_figures("general", 20, 1800)["asa_s"] == 15
    assert e.evaluate(20, NO_LIVE) == []
    answered(e, 21, wait=60)  # 90 / 3 = 30
    [raised] = e.evaluate(22, NO_LIVE)
    assert raised.metric == "asa_s" and raised.value == 30


# -- instantaneous metrics -------------------------------------------------------------------

@pytest.mark.parametrize(("metric", "key", "op", "value", "quiet", "loud"), [
    ("calls_waiting", "waiting", ">", 10, 10, 11),
    ("calls_waiting", "waiting", ">=", 10, 9, 10),
    ("longest_wait_s", "longest_wait_s", ">", 60, 60.0, 60.5),
    ("agents_available", "agents_available", "<", 1, 1, 0),
    ("agents_available", "agents_available", "<=", 1, 2, 1),
])
def test_instant_metrics_from_live(metric: str, key: str, op: str, value: float,
                                   quiet: float, loud: float) -> None:
    e = engine(rule("x", metric=metric, op=op, value=value))
    assert e.evaluate(1, {"general": {key: quiet}}) == []
    [raised] = e.evaluate(2, {"general": {key: loud}})
    assert isinstance(raised, rep.AlertRaised) and raised.value == loud
    [cleared] = e.evaluate(3, {"general": {key: quiet}})
    assert isinstance(cleared, rep.AlertCleared) and cleared.value == quiet


def test_instant_metric_missing_from_live_does_not_raise() -> None:
    e = engine(rule("none_available", metric="agents_available", op="<", value=1))
    assert e.evaluate(1, {}) == []
    assert e.evaluate(2, {"general": {"waiting": 3}}) == []


# -- for_s, queue filters --------------------------------------------------------------------

def test_for_s_hold_time_restarts_when_the_condition_breaks() -> None:
    e = engine(rule("waiting", metric="calls_waiting", op=">", value=2, for_s=60))
    busy = {"general": {"waiting": 5.0}}
    assert e.evaluate(0, busy) == []
    assert e.evaluate(30, busy) == []
    assert e.evaluate(31, {"general": {"waiting": 1.0}}) == []  # broke: starts again
    assert e.evaluate(40, busy) == []
    assert e.evaluate(99, busy) == []  # 59 s
    [raised] = e.evaluate(100, busy)  # 60 s
    assert raised.ts == 100 and e.active()[0]["since"] == 100
    assert e.evaluate(160, busy) == []


def test_rule_queue_filter_and_every_queue() -> None:
    e = engine(rule("sales_only", metric="calls_waiting", op=">", value=0, queues=("sales",)),
               rule("everywhere", metric="calls_waiting", op=">", value=0),
               queues=("general", "sales", "support"))
    live = {"general": {"waiting": 3.0}, "sales": {"waiting": 1.0}, "support": {"waiting": 0.0}}
    got = {(x.rule, x.queue) for x in e.evaluate(1, live)}
    assert got == {("sales_only", "sales"), ("everywhere", "general"), ("everywhere", "sales")}
    assert [(a["rule"], a["queue"]) for a in e.active()] == [
        ("sales_only", "sales"), ("everywhere", "general"), ("everywhere", "sales")]


def test_queues_apart_in_windows() -> None:
    e = engine(rule("sl_low", metric="service_level", op="<", value=0.8),
               queues=("general", "sales"))
    answered(e, 10, wait=60, queue="sales")
    answered(e, 10, wait=1, queue="general")
    assert [x.queue for x in e.evaluate(11, NO_LIVE)] == ["sales"]


def test_unknown_formula_or_op_is_refused() -> None:
    with pytest.raises(ValueError, match="sl_formula"):
        engine(formula="mean")
    bad = SimpleNamespace(name="x", metric="calls_waiting", op="==", value=1, window_s=60,
                          for_s=0, queues=(), severity="warning")
    with pytest.raises(ValueError, match="op"):
        engine(bad)  # type: ignore[arg-type]


# -- reload ----------------------------------------------------------------------------------

def test_update_rules_keeps_unchanged_rules_and_windows_and_clears_the_others() -> None:
    sl = rule("sl_low", metric="service_level", op="<", value=0.8)
    waiting = rule("waiting", metric="calls_waiting", op=">", value=2)
    gone = rule("gone", metric="longest_wait_s", op=">", value=10)
    e = engine(sl, waiting, gone)
    answered(e, 10, wait=60)
    live = {"general": {"waiting": 5.0, "longest_wait_s": 30.0}}
    assert len(e.evaluate(11, live)) == 3
    stricter = rule("waiting", metric="calls_waiting", op=">", value=4, severity="critical")
    cleared = e.update_rules([sl, stricter], 12)
    assert sorted((c.rule, c.reason, c.ts, c.value) for c in cleared) == [
        ("gone", "rule_removed", 12, None), ("waiting", "rule_changed", 12, None)]
    assert all(isinstance(c, rep.AlertCleared) for c in cleared)
    assert [a["rule"] for a in e.active()] == ["sl_low"]  # kept, not raised again
    [raised] = e.evaluate(13, live)  # the changed rule still holds: raised anew
    assert (raised.rule, raised.severity) == ("waiting", "critical")
    # the window survived the reload: one more good call gives 1/2, still low
    answered(e, 14, wait=1)
    assert e.window_figures("general", 15, 1800)["service_level"] == 0.5
    assert e.evaluate(15, live) == []
