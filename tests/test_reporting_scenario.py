"""Acceptance (issue 5, CMS-5): a scripted morning through the real ReportingService and a
real store (SQLite and PostgreSQL), checked against figures computed by hand.

The morning of Monday 2026-11-23 in Asia/Jakarta (UTC+7), 15-minute intervals, queues
``sales`` (T = 20 s) and ``support`` (T = 30 s, per-queue), short abandon S = 5 s. Times below
are seconds after 08:00 local. One transfer: agent 2002 ends C6 at 1210 by blind-transferring
it to extension 1003 (SIP REFER): its CallCompleted has reason "transferred" (still handled,
talk 300, ACW as usual) and a CallTransferred follows at the same second. The only figures it
adds are sales' transfers = 1 in 08:15 (1210 s = 08:20:10) and in the day; every other figure
is the same as without it (a transfer to an extension leaves the queues).

Agents
  2001 (sales, support): login 0; C1 rings 60, talk 70–250, ACW 250–280 (sales); C2 rings
       320, talk 330–750; C10 rings 1860, talk 1865–1985, ACW 1985–2045 (support); aux
       "lunch" 2100; logoff 2400.
  2002 (sales): login 120; C2 rings 300, ring-no-answer 320 → aux "rona" until 360; C6 rings
       890, talk 910–1210, ACW 1210–1240 (sales); logoff 1500.
  2003 (support): login into aux "meeting" 0; available 600; C5 rings 780, talk 805–1025,
       ACW 1025–1085 (support); aux "break" 1320–1620; logoff 2280.
Calls
  C1 sales   queued 60, answered 70 (wait 10, within T)
  C2 sales   queued 300, RONA at 2002 320, answered by 2001 330 (wait 30, not within 20)
  C3 sales   queued 420, abandoned 423 (wait 3: short abandon)
  C4 support queued 480, abandoned 520 (wait 40)
  C5 support queued 780, answered 805 (wait 25: within support's 30, not sales' 20)
  C6 sales   queued 890, answered 910 (wait 20: within T; counted at 08:15, its outcome);
             transferred by 2002 to 1003 at 1210 (transfers: sales 08:15)
  C7 sales   queued 960, overflowed to voicemail 1080 (wait 120)
  C8 support arrives 1140 with no agent to queue for (position 0): dropped at once
  C10 support queued 1860, answered 1865 (wait 5)
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reporting import events as rep
from reporting.rebuild import rebuild
from reporting.report_api import report_routes
from reporting.service import ReportingService, ReportingSettings
from softswitch.store import Store
from softswitch.store.base import ReportRow

TZ = "Asia/Jakarta"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo(TZ)).timestamp()  # 01:00 UTC
DAY = "2026-11-23"
A, B, C = T0, T0 + 900, T0 + 1800  # the three intervals' starts


def settings() -> ReportingSettings:
    return ReportingSettings(
        interval_s=900, sl_threshold_s=20, sl_thresholds={"support": 30}, short_abandon_s=5,
        timezone=TZ, queues=("sales", "support"),
        membership={"2001": ("sales", "support"), "2002": ("sales",), "2003": ("support",)},
        agent_names={"2001": "Ani", "2002": "Budi", "2003": "Citra"})


def st(t: float, agent: str, state: str, previous: str, reason: str = "", queue: str = "",
       call: str = "") -> rep.AgentStateChanged:
    return rep.AgentStateChanged(ts=T0 + t, agent=agent, state=state, previous=previous,
                                 reason=reason, queue=queue, call_id=call, device="d" + agent)


def morning() -> list[rep.ReportEvent]:
    def q(t: float, cid: str, queue: str, position: int = 1) -> rep.CallQueued:
        return rep.CallQueued(ts=T0 + t, call_id=cid, queue=queue, position=position)

    def offer(t: float, cid: str, queue: str, agent: str, wait: float) -> rep.CallOffered:
        return rep.CallOffered(ts=T0 + t, call_id=cid, queue=queue, agent=agent, wait=wait)

    def ans(t: float, cid: str, queue: str, agent: str, wait: float) -> rep.CallAnswered:
        return rep.CallAnswered(ts=T0 + t, call_id=cid, queue=queue, agent=agent, wait=wait)

    def done(t: float, cid: str, queue: str, agent: str, talk: float) -> rep.CallCompleted:
        return rep.CallCompleted(ts=T0 + t, call_id=cid, queue=queue, agent=agent, talk=talk)

    evs: list[rep.ReportEvent] = [
        st(0, "2001", "available", "logged_out"),
        st(0, "2003", "aux", "logged_out", reason="meeting"),
        q(60, "C1", "sales"), offer(60, "C1", "sales", "2001", 0),
        st(60, "2001", "ringing", "available", queue="sales", call="C1"),
        ans(70, "C1", "sales", "2001", 10),
        st(70, "2001", "on_call", "ringing", queue="sales", call="C1"),
        st(120, "2002", "available", "logged_out"),
        done(250, "C1", "sales", "2001", 180),
        st(250, "2001", "acw", "on_call", queue="sales", call="C1"),
        st(280, "2001", "available", "acw"),
        q(300, "C2", "sales"), offer(300, "C2", "sales", "2002", 0),
        st(300, "2002", "ringing", "available", queue="sales", call="C2"),
        rep.CallOfferFailed(ts=T0 + 320, call_id="C2", queue="sales", agent="2002",
                            reason="ring_no_answer"),
        st(320, "2002", "aux", "ringing", reason="rona"),
        offer(320, "C2", "sales", "2001", 20),
        st(320, "2001", "ringing", "available", queue="sales", call="C2"),
        ans(330, "C2", "sales", "2001", 30),
        st(330, "2001", "on_call", "ringing", queue="sales", call="C2"),
        st(360, "2002", "available", "aux"),
        q(420, "C3", "sales"),
        rep.CallAbandoned(ts=T0 + 423, call_id="C3", queue="sales", wait=3),
        q(480, "C4", "support"),
        rep.CallAbandoned(ts=T0 + 520, call_id="C4", queue="support", wait=40),
        st(600, "2003", "available", "aux"),
        done(750, "C2", "sales", "2001", 420),
        st(750, "2001", "available", "on_call", queue="sales", call="C2"),
        q(780, "C5", "support"), offer(780, "C5", "support", "2003", 0),
        st(780, "2003", "ringing", "available", queue="support", call="C5"),
        ans(805, "C5", "support", "2003", 25),
        st(805, "2003", "on_call", "ringing", queue="support", call="C5"),
        q(890, "C6", "sales"), offer(890, "C6", "sales", "2002", 0),
        st(890, "2002", "ringing", "available", queue="sales", call="C6"),
        ans(910, "C6", "sales", "2002", 20),
        st(910, "2002", "on_call", "ringing", queue="sales", call="C6"),
        q(960, "C7", "sales"),
        done(1025, "C5", "support", "2003", 220),
        st(1025, "2003", "acw", "on_call", queue="support", call="C5"),
        rep.CallOverflowed(ts=T0 + 1080, call_id="C7", queue="sales", destination="voicemail",
                           wait=120, reason="max_wait"),
        st(1085, "2003", "available", "acw"),
        q(1140, "C8", "support", position=0),
        rep.CallOverflowed(ts=T0 + 1140, call_id="C8", queue="support", destination=None,
                           reason="no_agents"),
        dataclasses.replace(done(1210, "C6", "sales", "2002", 300), reason="transferred"),
        rep.CallTransferred(ts=T0 + 1210, call_id="C6", queue="sales", agent="2002",
                            target="1003"),
        st(1210, "2002", "acw", "on_call", queue="sales", call="C6"),
        st(1240, "2002", "available", "acw"),
        st(1320, "2003", "aux", "available", reason="break"),
        st(1500, "2002", "logged_out", "available"),
        st(1620, "2003", "available", "aux"),
        q(1860, "C10", "support"), offer(1860, "C10", "support", "2001", 0),
        st(1860, "2001", "ringing", "available", queue="support", call="C10"),
        ans(1865, "C10", "support", "2001", 5),
        st(1865, "2001", "on_call", "ringing", queue="support", call="C10"),
        done(1985, "C10", "support", "2001", 120),
        st(1985, "2001", "acw", "on_call", queue="support", call="C10"),
        st(2045, "2001", "available", "acw"),
        st(2100, "2001", "aux", "available", reason="lunch"),
        st(2280, "2003", "logged_out", "available"),
        st(2400, "2001", "logged_out", "aux"),
    ]
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    return evs


QZERO = dict.fromkeys(("offered", "queued", "answered", "answered_in_t", "wait_sum",
                       "max_wait", "abandoned", "short_abandoned", "abandoned_in_t",
                       "abandon_wait_sum", "overflowed", "dropped", "handled", "talk", "hold",
                       "acw", "transfers", "ring_no_answer"), 0.0)
AZERO = dict.fromkeys(("staffed", "available", "ringing", "talk", "hold", "acw", "aux",
                       "handled", "offered", "ring_no_answer"), 0.0)


def qrow(name: str, start: float | None, **counts: float) -> ReportRow:
    return ReportRow("queue", name, DAY, start, 900.0 if start else 0.0, {**QZERO, **counts})


def arow(name: str, start: float | None, reasons: dict[str, float] | None = None,
         login: float | None = None, logoff: float | None = None, **counts: float) -> ReportRow:
    return ReportRow("agent", name, DAY, start, 900.0 if start else 0.0, {**AZERO, **counts},
                     reasons or {}, login, logoff)


# -- the figures, by hand -------------------------------------------------------------------

QUEUE_INTERVALS = [
    qrow("sales", A, offered=3, queued=3, answered=2, answered_in_t=1, wait_sum=40,
         max_wait=30, abandoned=1, short_abandoned=1, abandoned_in_t=1, abandon_wait_sum=3,
         handled=2, talk=600, acw=30, ring_no_answer=1),
    qrow("support", A, offered=2, queued=2, answered=1, answered_in_t=1, wait_sum=25,
         max_wait=25, abandoned=1, abandon_wait_sum=40),
    # C6's transfer at 08:20:10 (the only transfer of the morning): transfers=1 here.
    qrow("sales", B, offered=2, queued=2, answered=1, answered_in_t=1, wait_sum=20,
         max_wait=20, overflowed=1, handled=1, talk=300, acw=30, transfers=1),
    qrow("support", B, offered=1, dropped=1, handled=1, talk=220, acw=60),
    qrow("support", C, offered=1, queued=1, answered=1, answered_in_t=1, wait_sum=5,
         max_wait=5, handled=1, talk=120, acw=60),
]
AGENT_INTERVALS = [
    arow("2001", A, login=T0, staffed=900, available=250, ringing=20, talk=600, acw=30,
         handled=2, offered=2),
    arow("2002", A, {"rona": 40}, login=T0 + 120, staffed=780, available=710, ringing=30,
         aux=40, offered=2, ring_no_answer=1),
    arow("2003", A, {"meeting": 600}, login=T0, staffed=900, available=180, ringing=25,
         talk=95, aux=600, offered=1),
    arow("2001", B, staffed=900, available=900),
    arow("2002", B, logoff=T0 + 1500, staffed=600, available=260, ringing=10, talk=300,
         acw=30, handled=1),
    arow("2003", B, {"break": 300}, staffed=900, available=415, talk=125, acw=60, aux=300,
         handled=1),
    arow("2001", C, {"lunch": 300}, logoff=T0 + 2400, staffed=600, available=115, ringing=5,
         talk=120, acw=60, aux=300, handled=1, offered=1),
    arow("2003", C, logoff=T0 + 2280, staffed=480, available=480),
]
QUEUE_DAYS = [
    qrow("sales", None, offered=5, queued=5, answered=3, answered_in_t=2, wait_sum=60,
         max_wait=30, abandoned=1, short_abandoned=1, abandoned_in_t=1, abandon_wait_sum=3,
         overflowed=1, handled=3, talk=900, acw=60, ring_no_answer=1, transfers=1),
    qrow("support", None, offered=4, queued=3, answered=2, answered_in_t=2, wait_sum=30,
         max_wait=25, abandoned=1, abandon_wait_sum=40, dropped=1, handled=2, talk=340,
         acw=120),
]
AGENT_DAYS = [
    arow("2001", None, {"lunch": 300}, login=T0, logoff=T0 + 2400, staffed=2400,
         available=1265, ringing=25, talk=720, acw=90, aux=300, handled=3, offered=3),
    arow("2002", None, {"rona": 40}, login=T0 + 120, logoff=T0 + 1500, staffed=1380,
         available=970, ringing=40, talk=300, acw=30, aux=40, handled=1, offered=2,
         ring_no_answer=1),
    arow("2003", None, {"break": 300, "meeting": 600}, login=T0, logoff=T0 + 2280,
         staffed=2280, available=1075, ringing=25, talk=220, acw=60, aux=900, handled=1,
         offered=1),
]


async def feed(service: ReportingService, store: Store, events: list[rep.ReportEvent],
               start_min: int, end_min: int) -> None:
    """Minute by minute: the minute's events (also into the event log, as the switch's
    log writer does), then a tick at the minute's end."""
    for m in range(start_min, end_min):
        lo, hi = T0 + 60 * m, T0 + 60 * (m + 1)
        batch = [e for e in events if lo <= e.ts < hi]
        if batch:
            await store.append_events(batch)
            await service.on_events(batch)
        await service.tick(hi)


async def stored(store: Store) -> tuple[list[ReportRow], ...]:
    return (await store.read_report_rows("queue", "interval"),
            await store.read_report_rows("agent", "interval"),
            await store.read_report_rows("queue", "day"),
            await store.read_report_rows("agent", "day"))


def by_start_name(rows: list[ReportRow]) -> list[ReportRow]:
    return sorted(rows, key=lambda r: (r.start or 0, r.name))


async def test_scripted_morning_gives_the_hand_computed_figures(store: Store) -> None:
    events = morning()
    service = ReportingService(store, settings(), clock=lambda: T0 + 50 * 60)
    await feed(service, store, events, 0, 18)

    # The live view at 08:18:00, before that second's events: C7 waiting since 08:16:00,
    # 2003 in ACW since 08:17:05.
    snap = service.snapshot(T0 + 1080)
    sales = next(q for q in snap["queues"] if q["name"] == "sales")
    assert sales["sl_threshold_s"] == 20.0
    assert (sales["waiting"], sales["longest_wait_s"]) == (1, 120.0)
    assert sales["agents"] == {"staffed": 2, "available": 1, "ringing": 0, "on_call": 1,
                               "hold": 0, "acw": 0, "aux": 0}
    assert {k: sales["today"][k] for k in ("offered", "answered", "answered_in_t",
                                           "abandoned", "short_abandoned", "overflowed",
                                           "handled")} == {
        "offered": 4, "answered": 3, "answered_in_t": 2, "abandoned": 1,
        "short_abandoned": 1, "overflowed": 0, "handled": 2}
    assert sales["today"]["service_level"] == pytest.approx(2 / 3)
    assert sales["today"]["asa_s"] == 20.0
    a2003 = next(a for a in snap["agents"] if a["agent"] == "2003")
    assert (a2003["state"], a2003["since"], a2003["queue"], a2003["call_id"]) == (
        "acw", T0 + 1025, "support", "C5")
    assert a2003["time_in_state_s"] == 55.0 and a2003["name"] == "Citra"
    assert (a2003["today"]["talk_s"], a2003["today"]["acw_s"],
            a2003["today"]["staffed_s"]) == (220.0, 55.0, 1080.0)
    assert snap["day"] == DAY and snap["timezone"] == TZ
    assert snap["totals"]["agents"]["2003"]["talk"] == 220.0
    assert snap["totals"]["queues"]["support"]["offered"] == 2.0

    await feed(service, store, events, 18, 50)
    q_int, a_int, q_day, a_day = await stored(store)
    assert by_start_name(q_int) == by_start_name(QUEUE_INTERVALS)
    assert by_start_name(a_int) == by_start_name(AGENT_INTERVALS)
    assert q_day == QUEUE_DAYS
    assert a_day == AGENT_DAYS
    # Identity of docs/metrics.md: staffed = available + ringing + talk + hold + ACW + aux.
    for row in a_int + a_day:
        c = row.counts
        assert c["staffed"] == sum(c[k] for k in ("available", "ringing", "talk", "hold",
                                                  "acw", "aux"))

    # The report API over the same store.
    app = Starlette(routes=report_routes(lambda: store, settings, allow_all))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        r = await http.get("/api/reports/queues", params={"from": DAY, "to": DAY,
                                                          "group": "interval"})
        assert r.status_code == 200
        body = r.json()
        assert (body["kind"], body["group"], body["timezone"]) == ("queue", "interval", TZ)
        assert [(x["queue"], x["period"], x["start"]) for x in body["rows"]] == [
            ("sales", "2026-11-23T08:00", "2026-11-23T08:00:00+07:00"),
            ("support", "2026-11-23T08:00", "2026-11-23T08:00:00+07:00"),
            ("sales", "2026-11-23T08:15", "2026-11-23T08:15:00+07:00"),
            ("support", "2026-11-23T08:15", "2026-11-23T08:15:00+07:00"),
            ("support", "2026-11-23T08:30", "2026-11-23T08:30:00+07:00")]
        derived = [(x["service_level"], x["abandon_rate"], x["asa_s"], x["aht_s"],
                    x["avg_acw_s"]) for x in body["rows"]]
        assert derived == [(0.5, 0.0, 20.0, 315.0, 15.0), (0.5, 0.5, 25.0, None, None),
                           (1.0, 0.0, 20.0, 330.0, 30.0), (None, 0.0, None, 280.0, 60.0),
                           (1.0, 0.0, 5.0, 180.0, 60.0)]
        r = await http.get("/api/reports/queues", params={
            "from": DAY, "group": "day", "metrics": "offered,service_level,abandon_rate,"
                                                    "asa_s,aht_s,max_wait"})
        assert r.json()["rows"] == [
            {"queue": "sales", "period": DAY, "start": "2026-11-23T00:00:00+07:00",
             "offered": 5.0, "service_level": 2 / 3, "abandon_rate": 0.0, "asa_s": 20.0,
             "aht_s": 320.0, "max_wait": 30.0},
            {"queue": "support", "period": DAY, "start": "2026-11-23T00:00:00+07:00",
             "offered": 4.0, "service_level": 2 / 3, "abandon_rate": 0.25, "asa_s": 15.0,
             "aht_s": 230.0, "max_wait": 25.0}]
        # 08:00-08:30 (to exclusive) summed over both intervals: the same sales day figures
        # apart from nothing at 08:30; support without C10.
        r = await http.get("/api/reports/queues", params={
            "from": f"{DAY}T08:00", "to": f"{DAY}T08:30", "group": "total",
            "metrics": "offered,answered,service_level,dropped", "queues": "support"})
        assert r.json()["rows"] == [
            {"queue": "support", "period": "total", "start": "2026-11-23T08:00:00+07:00",
             "offered": 3.0, "answered": 1.0, "service_level": 0.5, "dropped": 1.0}]
        r = await http.get("/api/reports/agents", params={
            "from": DAY, "group": "day", "metrics": "staffed,aux,aux_by_reason,occupancy,"
                                                    "aht_s,login,logoff"})
        rows = r.json()["rows"]
        assert [(x["agent"], x["staffed"], x["aux"], x["aux_by_reason"]) for x in rows] == [
            ("2001", 2400.0, 300.0, {"lunch": 300.0}), ("2002", 1380.0, 40.0, {"rona": 40.0}),
            ("2003", 2280.0, 900.0, {"break": 300.0, "meeting": 600.0})]
        assert [x["occupancy"] for x in rows] == pytest.approx([810 / 2100, 330 / 1340,
                                                                280 / 1380])
        assert [x["aht_s"] for x in rows] == [270.0, 330.0, 280.0]
        assert [(x["login"], x["logoff"]) for x in rows] == [
            ("2026-11-23T08:00:00+07:00", "2026-11-23T08:40:00+07:00"),
            ("2026-11-23T08:02:00+07:00", "2026-11-23T08:25:00+07:00"),
            ("2026-11-23T08:00:00+07:00", "2026-11-23T08:38:00+07:00")]
        # Every queue summed per interval, and the team's day in total.
        r = await http.get("/api/reports/queues", params={
            "from": DAY, "group": "interval", "by": "all",
            "metrics": "offered,answered,abandoned,short_abandoned,service_level,max_wait"})
        assert [(x["queue"], x["period"], x["offered"], x["answered"], x["abandoned"],
                 x["short_abandoned"], x["service_level"], x["max_wait"])
                for x in r.json()["rows"]] == [
            ("*", "2026-11-23T08:00", 5.0, 3.0, 2.0, 1.0, 0.5, 30.0),
            ("*", "2026-11-23T08:15", 3.0, 1.0, 0.0, 0.0, 1.0, 20.0),
            ("*", "2026-11-23T08:30", 1.0, 1.0, 0.0, 0.0, 1.0, 5.0)]
        r = await http.get("/api/reports/agents", params={
            "from": DAY, "to": DAY, "group": "total", "by": "all",
            "metrics": "staffed,handled,aux_by_reason,login,logoff,occupancy"})
        assert r.json()["rows"] == [
            {"agent": "*", "period": "total", "start": "2026-11-23T00:00:00+07:00",
             "staffed": 6060.0, "handled": 5.0,
             "aux_by_reason": {"break": 300.0, "lunch": 300.0, "meeting": 600.0,
                               "rona": 40.0},
             "login": "2026-11-23T08:00:00+07:00", "logoff": "2026-11-23T08:40:00+07:00",
             "occupancy": (810 + 330 + 280) / (6060 - 1240)}]
        r = await http.get("/api/reports/agents", params={
            "from": DAY, "group": "interval", "agents": "2003", "metrics": "talk,occupancy",
            "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines() == [
            "agent,period,start,talk,occupancy",
            "2003,2026-11-23T08:00,2026-11-23T08:00:00+07:00,95,0.316667",
            "2003,2026-11-23T08:15,2026-11-23T08:15:00+07:00,125,0.308333",
            "2003,2026-11-23T08:30,2026-11-23T08:30:00+07:00,0,0"]

    # Rebuild from the event log gives exactly what the live service stored.
    before = await stored(store)
    result = await rebuild(store, settings(), DAY, DAY, now=T0 + 3 * 3600)
    assert (result.events, result.rows) == (len(events), len(QUEUE_INTERVALS)
                                            + len(AGENT_INTERVALS))
    assert (result.changed, result.added, result.removed) == (0, 0, 0), result.differences
    assert await stored(store) == before


async def test_restart_mid_morning_recovers_from_the_event_log(store: Store) -> None:
    events = morning()
    first = ReportingService(store, settings())
    await feed(first, store, events, 0, 20)
    # Crash at 08:20: no final tick; 08:00 is stored, 08:15 is open (lost with the process).
    assert await store.last_report_interval() == A
    again = ReportingService(store, settings(), clock=lambda: T0 + 20 * 60)
    await again.start()  # replays the log: the open interval and today's figures come back
    snap = again.snapshot(T0 + 1200)
    sales = next(q for q in snap["queues"] if q["name"] == "sales")
    assert (sales["today"]["offered"], sales["today"]["handled"]) == (5, 2)
    await feed(again, store, events, 20, 50)
    q_int, a_int, q_day, a_day = await stored(store)
    assert by_start_name(q_int) == by_start_name(QUEUE_INTERVALS)
    assert by_start_name(a_int) == by_start_name(AGENT_INTERVALS)
    assert (q_day, a_day) == (QUEUE_DAYS, AGENT_DAYS)


async def test_report_api_refusals(store: Store) -> None:
    def agent_only(request: Request) -> tuple[Response | None, str | None]:
        return None, "2002"

    def nobody(request: Request) -> tuple[Response | None, str | None]:
        return JSONResponse({"error": "login required"}, status_code=401), None

    service = ReportingService(store, settings())
    await feed(service, store, morning(), 0, 50)
    routes = report_routes(lambda: store, settings, agent_only)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=routes)),
                                 base_url="http://test") as http:
        assert (await http.get("/api/reports/queues", params={"from": DAY})).status_code == 403
        r = await http.get("/api/reports/agents", params={"from": DAY, "agents": "2001,2003",
                                                          "metrics": "handled"})
        assert r.json()["rows"] == [{"agent": "2002", "period": DAY,
                                     "start": "2026-11-23T00:00:00+07:00", "handled": 1.0}]
        for params, fault in (({"from": DAY, "metrics": "handled,bogus"}, "bogus"),
                              ({"from": DAY, "group": "week"}, "group"),
                              ({"from": "23/11/2026"}, "from"),
                              ({"from": DAY, "to": "2026-11-22"}, "must be after"),
                              ({"from": DAY, "format": "xml"}, "format"),
                              ({"from": DAY, "by": "team"}, "by"),
                              ({"from": DAY, "queues": "sales"}, "queues"),
                              ({"from": DAY, "colour": "red"}, "colour")):
            r = await http.get("/api/reports/agents", params=params)
            assert r.status_code == 400 and fault in r.json()["error"], (params, r.text)
    routes = report_routes(lambda: store, settings, nobody)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=routes)),
                                 base_url="http://test") as http:
        assert (await http.get("/api/reports/agents")).status_code == 401


def allow_all(request: Request) -> tuple[Response | None, str | None]:
    return None, None


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Europe/Berlin", "Asia/Kolkata",
                                  "America/St_Johns"])
def test_interval_labels_match_the_zone_through_dst(zone: str) -> None:
    from reporting.report_api import _LocalTime

    tz = ZoneInfo(zone)
    local = _LocalTime(tz)
    start = datetime(2026, 3, 28, tzinfo=tz).timestamp()  # Berlin: summer time on the 29th
    for ts in [start + k * 300 for k in range(2 * 288)] + [start + 7.5, start + 61]:
        at = datetime.fromtimestamp(ts, tz)
        assert local.minute_and_iso(ts) == (at.strftime("%Y-%m-%dT%H:%M"), at.isoformat())


async def test_simulated_hour_live_equals_rebuild(store: Store) -> None:
    """A simulated centre's hour (tests/test_aggregate.py's: RONA, aux, overflow) live through
    the service, ticking every second of its clock, then rebuilt from the log: the same rows."""
    from tests.test_aggregate import sim_events

    base = T0 - 8 * 3600 + 7 * 60  # 00:07 local: the first interval starts part-way
    events = [dataclasses.replace(e, ts=e.ts + base) for e in sim_events()]
    service = ReportingService(store, settings())
    i = 0
    for second in range(int(events[-1].ts - base) + 1):
        now = base + second + 1
        j = i
        while j < len(events) and events[j].ts < now:
            j += 1
        if j > i:
            await store.append_events(events[i:j])
            await service.on_events(events[i:j])
            i = j
        await service.tick(now)
    await service.tick(events[-1].ts + 3600)  # the centre closes; the last intervals close
    before = await stored(store)
    assert len(before[0]) >= 4 and len(before[1]) >= 20
    assert service.agg.late_events == 0
    result = await rebuild(store, settings(), now=events[-1].ts + 3600)
    assert (result.changed, result.added, result.removed) == (0, 0, 0), result.differences
    assert result.rows == len(before[0]) + len(before[1])
    assert await stored(store) == before


@pytest.mark.parametrize("minutes", [5, 10, 30, 60])
async def test_every_interval_length_gives_the_same_day(store: Store, minutes: int) -> None:
    """CMS-5 interval lengths: the morning's day rollups do not depend on the bucket size;
    each interval row is one bucket of that size."""
    events = morning()
    s = settings()
    s.interval_s = minutes * 60.0
    service = ReportingService(store, s)
    await feed(service, store, events, 0, 70)
    q_int, a_int, q_day, a_day = await stored(store)
    assert {r.interval_s for r in q_int + a_int} == {minutes * 60.0}
    assert all((r.start or 0) % (minutes * 60) == 0 for r in q_int + a_int)
    assert (q_day, a_day) == (QUEUE_DAYS, AGENT_DAYS)
    result = await rebuild(store, s, DAY, DAY, now=T0 + 3 * 3600, write=False)
    assert (result.changed, result.added, result.removed) == (0, 0, 0), result.differences
