"""Interval aggregates (CMS-1, CMS-2, CMS-5): a hand-computed morning, every service-level
convention, and a deterministic rebuild from a simulated centre's events."""

from __future__ import annotations

import pytest

from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.sim import Simulation, Workload
from reporting import events as rep
from reporting.aggregate import (
    AGENT_COUNTS,
    QUEUE_COUNTS,
    IntervalAggregator,
    IntervalRow,
)


def st(ts: float, agent: str, state: str, previous: str, reason: str = "", queue: str = "",
       call: str = "") -> rep.AgentStateChanged:
    return rep.AgentStateChanged(ts=ts, agent=agent, state=state, previous=previous,
                                 reason=reason, queue=queue, call_id=call)


def answered_call(cid: str, q: str, agent: str, t_q: float, t_ans: float, t_end: float,
                  acw_end: float | None) -> list[rep.ReportEvent]:
    evs: list[rep.ReportEvent] = [
        rep.CallQueued(ts=t_q, call_id=cid, queue=q, position=1),
        rep.CallOffered(ts=t_q, call_id=cid, queue=q, agent=agent),
        st(t_q, agent, "ringing", "available", queue=q, call=cid),
        rep.CallAnswered(ts=t_ans, call_id=cid, queue=q, agent=agent, wait=t_ans - t_q),
        st(t_ans, agent, "on_call", "ringing", queue=q, call=cid),
        rep.CallCompleted(ts=t_end, call_id=cid, queue=q, agent=agent, talk=t_end - t_ans),
    ]
    if acw_end is None:
        evs.append(st(t_end, agent, "available", "on_call", queue=q, call=cid))
    else:
        evs.append(st(t_end, agent, "acw", "on_call", queue=q, call=cid))
        evs.append(st(acw_end, agent, "available", "acw"))
    return evs


def morning() -> list[rep.ReportEvent]:
    """Two queues (sales, support), three agents, two 15-minute intervals [0,900) [900,1800)."""
    evs: list[rep.ReportEvent] = [
        st(0, "a1", "available", "logged_out"),
        st(0, "a2", "available", "logged_out"),
        st(0, "a3", "available", "logged_out"),
        st(100, "a3", "aux", "available", reason="break"),
        st(700, "a3", "aux", "aux", reason="lunch"),  # aux spans the boundary
        st(1200, "a3", "logged_out", "aux"),  # logs off mid-interval
        rep.ConfigApplied(ts=0, component="acd", version=1),
    ]
    # c1 sales: answered by a1 in 5 s (within T), 100 s talk, 30 s ACW
    evs += answered_call("c1", "sales", "a1", 10, 15, 115, 145)
    # c2 sales: rings a2 without answer, then a1 answers after 30 s (beyond T), no ACW
    evs += [
        rep.CallQueued(ts=200, call_id="c2", queue="sales", position=1),
        rep.CallOffered(ts=200, call_id="c2", queue="sales", agent="a2"),
        st(200, "a2", "ringing", "available", queue="sales", call="c2"),
        rep.CallOfferFailed(ts=215, call_id="c2", queue="sales", agent="a2",
                            reason="ring_no_answer"),
        st(215, "a2", "available", "ringing", queue="sales", call="c2"),
        rep.CallOffered(ts=215, call_id="c2", queue="sales", agent="a1", wait=15),
        st(215, "a1", "ringing", "available", queue="sales", call="c2"),
        rep.CallAnswered(ts=230, call_id="c2", queue="sales", agent="a1", wait=30),
        st(230, "a1", "on_call", "ringing", queue="sales", call="c2"),
        rep.CallCompleted(ts=430, call_id="c2", queue="sales", agent="a1", talk=200),
        st(430, "a1", "available", "on_call", queue="sales", call="c2"),
    ]
    # c3 support: short abandon (3 s); c4 support: long abandon (40 s)
    evs += [
        rep.CallQueued(ts=300, call_id="c3", queue="support", position=1),
        rep.CallAbandoned(ts=303, call_id="c3", queue="support", wait=3),
        rep.CallQueued(ts=400, call_id="c4", queue="support", position=1),
        rep.CallAbandoned(ts=440, call_id="c4", queue="support", wait=40),
    ]
    # c5 sales: abandons after 12 s (long, but within T); c6 support: overflows after 60 s
    evs += [
        rep.CallQueued(ts=500, call_id="c5", queue="sales", position=1),
        rep.CallAbandoned(ts=512, call_id="c5", queue="sales", wait=12),
        rep.CallQueued(ts=600, call_id="c6", queue="support", position=1),
        rep.CallOverflowed(ts=660, call_id="c6", queue="support", destination="voicemail",
                           wait=60, reason="max_wait"),
    ]
    # c7 support: a2 answers at 860 (10 s), talks across the boundary to 1000, ACW 20 s
    evs += answered_call("c7", "support", "a2", 850, 860, 1000, 1020)
    # c8 sales: a1, 2 s, 198 s talk, 40 s ACW; c9 sales: dropped on arrival (no agents)
    evs += answered_call("c8", "sales", "a1", 1300, 1302, 1500, 1540)
    evs += [
        rep.CallQueued(ts=1600, call_id="c9", queue="sales", position=0),
        rep.CallOverflowed(ts=1600, call_id="c9", queue="sales", destination=None,
                           reason="no_agents"),
    ]
    return sorted(evs, key=lambda e: e.ts)  # stable: same-time events keep their order


def qc(**kw: float) -> dict[str, float]:
    return {k: float(kw.get(k, 0.0)) for k in QUEUE_COUNTS}


def ac(**kw: float) -> dict[str, float]:
    return {k: float(kw.get(k, 0.0)) for k in AGENT_COUNTS}


EXPECTED: list[IntervalRow] = [
    # -- [0, 900) --------------------------------------------------------------------------
    IntervalRow("queue", "sales", 0, 900, qc(
        offered=3, queued=3, answered=2, answered_in_t=1, wait_sum=35, max_wait=30,
        abandoned=1, abandoned_in_t=1, abandon_wait_sum=12, handled=2, talk=300, acw=30,
        ring_no_answer=1),
        {"service_level": 1 / 3, "abandon_rate": 1 / 3, "asa": 17.5, "aht": 165.0,
         "avg_acw": 15.0, "avg_talk": 150.0}),
    IntervalRow("queue", "support", 0, 900, qc(
        offered=4, queued=4, answered=1, answered_in_t=1, wait_sum=10, max_wait=10,
        abandoned=2, short_abandoned=1, abandoned_in_t=1, abandon_wait_sum=43, overflowed=1),
        {"service_level": 0.5, "abandon_rate": 1 / 3, "asa": 10.0, "aht": None,
         "avg_acw": None, "avg_talk": None}),
    IntervalRow("agent", "a1", 0, 900, ac(
        staffed=900, available=550, ringing=20, talk=300, acw=30, handled=2, offered=2),
        {"occupancy": 330 / 900, "aht": 165.0}, {}, 0, None),
    IntervalRow("agent", "a2", 0, 900, ac(
        staffed=900, available=835, ringing=25, talk=40, offered=2, ring_no_answer=1),
        {"occupancy": 40 / 900, "aht": None}, {}, 0, None),
    IntervalRow("agent", "a3", 0, 900, ac(staffed=900, available=100, aux=800),
                {"occupancy": 0.0, "aht": None}, {"break": 600.0, "lunch": 200.0}, 0, None),
    # -- [900, 1800) -----------------------------------------------------------------------
    IntervalRow("queue", "sales", 900, 1800, qc(
        offered=2, queued=1, answered=1, answered_in_t=1, wait_sum=2, max_wait=2, dropped=1,
        handled=1, talk=198, acw=40),
        {"service_level": 1.0, "abandon_rate": 0.0, "asa": 2.0, "aht": 238.0,
         "avg_acw": 40.0, "avg_talk": 198.0}),
    IntervalRow("queue", "support", 900, 1800, qc(handled=1, talk=140, acw=20),
                {"service_level": None, "abandon_rate": None, "asa": None, "aht": 160.0,
                 "avg_acw": 20.0, "avg_talk": 140.0}),
    IntervalRow("agent", "a1", 900, 1800, ac(
        staffed=900, available=660, ringing=2, talk=198, acw=40, handled=1, offered=1),
        {"occupancy": 238 / 900, "aht": 238.0}, {}, None, None),
    IntervalRow("agent", "a2", 900, 1800, ac(staffed=900, available=780, talk=100, acw=20,
                                             handled=1),
                {"occupancy": 120 / 900, "aht": 120.0}, {}, None, None),
    IntervalRow("agent", "a3", 900, 1800, ac(staffed=300, aux=300),
                {"occupancy": None, "aht": None}, {"lunch": 300.0}, None, 1200),
]


def assert_rows(got: list[IntervalRow], expected: list[IntervalRow]) -> None:
    assert [(r.kind, r.name, r.start) for r in got] == [
        (r.kind, r.name, r.start) for r in expected]
    for g, e in zip(got, expected, strict=True):
        where = f"{g.kind} {g.name} @{g.start}"
        assert g.counts == pytest.approx(e.counts), where
        assert g.derived == pytest.approx(e.derived), where
        assert g.aux == pytest.approx(e.aux), where
        assert (g.end, g.login, g.logoff) == (e.end, e.login, e.logoff), where


def test_morning_closed_at_each_boundary() -> None:
    agg = IntervalAggregator(interval_s=900, sl_threshold_s=20, short_abandon_s=5)
    rows: list[IntervalRow] = []
    for e in morning():
        if e.ts >= 900 and not rows:
            rows += agg.close_until(900)
        agg.ingest(e)
    rows += agg.close_until(1800)
    assert_rows(rows, EXPECTED)
    assert agg.close_until(1800) == []
    assert agg.late_events == 0


def test_morning_closed_at_once_is_the_same() -> None:
    agg = IntervalAggregator()
    for e in morning():
        agg.ingest(e)
    assert_rows(agg.close_until(1799.9), EXPECTED[:5])  # only [0, 900) has ended
    assert_rows(agg.close_until(1800), EXPECTED[5:])


@pytest.mark.parametrize(("formula", "sales", "support"), [
    ("default", 1 / 3, 1 / 2),  # within T / (answered + abandons after 5 s)
    ("ignore_abandons", 1 / 2, 1 / 1),  # within T / answered
    ("abandons_against", 1 / 3, 1 / 3),  # within T / (answered + every abandon)
    ("abandons_in_favour", 2 / 3, 2 / 3),  # (within T + abandons within T) / (ans + aband.)
])
def test_service_level_conventions(formula: str, sales: float, support: float) -> None:
    agg = IntervalAggregator(sl_formula=formula)
    for e in morning():
        agg.ingest(e)
    rows = {(r.name, r.start): r for r in agg.close_until(1800) if r.kind == "queue"}
    assert rows["sales", 0].derived["service_level"] == pytest.approx(sales)
    assert rows["support", 0].derived["service_level"] == pytest.approx(support)


def test_unknown_formula_refused() -> None:
    with pytest.raises(ValueError):
        IntervalAggregator(sl_formula="best_case")


def test_live_queued_and_longest_wait() -> None:
    agg = IntervalAggregator()
    for e in morning():
        if e.ts > 850:
            break
        agg.ingest(e)  # c7 (support, 850) is ringing: still counted as waiting
    assert agg.live(855) == {"sales": {"queued": 0.0, "longest_wait": 0.0},
                             "support": {"queued": 1.0, "longest_wait": 5.0}}
    agg2 = IntervalAggregator()
    agg2.ingest(rep.CallQueued(ts=10, call_id="x", queue="q", position=1))
    agg2.ingest(rep.CallQueued(ts=12, call_id="y", queue="q", position=2))
    assert agg2.live(30) == {"q": {"queued": 2.0, "longest_wait": 20.0}}
    agg2.ingest(rep.CallAbandoned(ts=31, call_id="x", queue="q", wait=21))
    assert agg2.live(40) == {"q": {"queued": 1.0, "longest_wait": 28.0}}


def sim_events() -> list[rep.ReportEvent]:
    agents = [f"a{i}" for i in range(8)]
    config = AcdConfig.build(
        [QueueConfig("sales", acw=10.0, ring_timeout=15.0, max_wait=300.0,
                     max_wait_destination="voicemail"),
         QueueConfig("support", acw=5.0, ring_timeout=15.0)],
        [AgentConfig(a, {"sales": 0, "support": 0} if i % 2 else {"support": 0})
         for i, a in enumerate(agents)])
    sim = Simulation(config, [Workload("sales", 0.03, 120.0, patience=60.0),
                              Workload("support", 0.03, 90.0, patience=90.0)],
                     agents, seed=5, answer_delay=2.0, no_answer_prob=0.05,
                     aux_rate=1 / 900, aux_mean=120.0, reports=True)
    sim.run(3600.0, drain=True)
    return [e for e in sim.reports if isinstance(e, rep.ReportEvent)]


def test_rebuild_from_sim_is_deterministic() -> None:
    events = sim_events()
    assert len(events) > 500

    def build() -> list[IntervalRow]:
        agg = IntervalAggregator()
        for e in events:
            agg.ingest(e)
        return agg.close_until(events[-1].ts + 900)

    first, second = build(), build()
    assert first == second
    assert sim_events() == events  # the simulation itself is reproducible
    queues = [r for r in first if r.kind == "queue"]
    offered = sum(r.counts["offered"] for r in queues)
    outcomes = sum(r.counts["answered"] + r.counts["abandoned"] + r.counts["overflowed"]
                   + r.counts["dropped"] for r in queues)
    assert offered == outcomes == sum(1 for e in events if isinstance(e, rep.CallQueued))
    handled = sum(r.counts["handled"] for r in queues)
    assert handled == sum(r.counts["handled"] for r in first if r.kind == "agent")
    for r in first:
        if r.kind == "agent":
            c = r.counts
            parts = c["available"] + c["ringing"] + c["talk"] + c["hold"] + c["acw"] + c["aux"]
            assert parts == pytest.approx(c["staffed"])
            assert c["staffed"] <= 900 + 1e-6
            assert sum(r.aux.values()) == pytest.approx(c["aux"])
