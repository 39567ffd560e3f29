"""The reporting service (CMS-3, CMS-4, CMS-5): the adapter around the interval aggregator.

`ReportingService` takes the event stream (`on_events`, the bus callback), keeps the live
figures (`snapshot`), closes interval buckets and stores them with their daily rollups
(`tick`), and feeds the threshold alert engine (reporting/alerts.py, when present), whose
raised/cleared events it publishes back onto the bus.

When an interval closes, deterministically:

- *by event time*: an event at or after the end of the open interval closes it before it is
  counted — so replaying the event log (`rebuild`) closes exactly where the live service did;
- *by the clock*: `tick(now)` closes what ended before ``now - close_grace_s`` (quiet times).
  The grace keeps events a little behind the clock (the bus, a batch) out of closed intervals.

Crash safety: rows already stored are never rewritten by a restart. On `start()` the service
replays the store's event log from local midnight minus `replay_lookback_s` (agent states
reach back over midnight) to rebuild the open intervals and today's figures; rows closed
during the replay that the store already holds are not written again. On NATS,
`StreamFeed` (reporting/standalone.py) replays from the JetStream stream instead.

Of ``softswitch`` this module imports only the store's `ReportRow` (a plain dataclass); the
store itself and the config are duck-typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reporting import aggregate as ag
from reporting import events as rep
from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS, IntervalAggregator, IntervalRow

if TYPE_CHECKING:
    from softswitch.store.base import ReportRow, Store

try:  # P's threshold engine (CMS-4); the service runs without it
    from reporting.alerts import AlertEngine
except ImportError:  # pragma: no cover
    AlertEngine = None  # type: ignore[assignment,misc]

__all__ = ["REPLAY_BATCH", "ReportingService", "ReportingSettings", "day_bounds", "local_day",
           "replay_start", "settings_from_config"]

log = logging.getLogger(__name__)

AGENT_STATES = ("available", "ringing", "on_call", "hold", "acw", "aux")
REPLAY_BATCH = 5000


@dataclass
class ReportingSettings:
    """Plain values the service needs (built by softswitch/app.py from the config)."""

    interval_s: float = 900.0
    sl_threshold_s: float = 20.0  # service level T of queues not in sl_thresholds
    sl_thresholds: Mapping[str, float] = field(default_factory=dict)
    short_abandon_s: float = 5.0
    sl_formula: str = "default"
    refresh_s: float = 2.0
    timezone: str = "Asia/Jakarta"
    thresholds: Sequence[Any] = ()  # ThresholdRule-like objects
    queues: Sequence[str] = ()
    membership: Mapping[str, Sequence[str]] = field(default_factory=dict)  # agent → queues
    agent_names: Mapping[str, str] = field(default_factory=dict)
    close_grace_s: float = 2.0
    replay_lookback_s: float = 86400.0

    def sl_threshold(self, queue: str) -> float:
        return float(self.sl_thresholds.get(queue, self.sl_threshold_s))

    def aggregator(self) -> IntervalAggregator:
        return IntervalAggregator(self.interval_s, self.sl_threshold_s, self.short_abandon_s,
                                  self.sl_formula, self.sl_thresholds)


def settings_from_config(config: Any) -> ReportingSettings:
    """Settings from a softswitch `Config` (duck-typed: ``.reporting``, ``.web.timezone``,
    ``.agents``, ``.queues``): intervals, T per queue, thresholds, queues, membership."""
    r = config.reporting
    return ReportingSettings(
        interval_s=float(r.interval_min) * 60, sl_threshold_s=float(r.sl_threshold_s),
        sl_thresholds={q: float(t) for q, t in r.sl_thresholds.items()},
        short_abandon_s=float(r.short_abandon_s), sl_formula=r.sl_formula,
        refresh_s=float(r.refresh_s), timezone=config.web.timezone,
        thresholds=tuple(r.thresholds), queues=tuple(q.name for q in config.queues),
        membership={a.id: tuple(a.queues) for a in config.agents},
        agent_names={a.id: a.name for a in config.agents if a.name})


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(ts: float, tz: str) -> str:
    """The local day (YYYY-MM-DD) of epoch seconds `ts` in zone `tz`."""
    return datetime.fromtimestamp(ts, _zone(tz)).date().isoformat()


def day_bounds(day: str | date, tz: str) -> tuple[float, float]:
    """Epoch seconds of local midnight starting `day` and the next one (DST-proof)."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    zone = _zone(tz)
    start = datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()
    n = d + timedelta(days=1)
    return start, datetime(n.year, n.month, n.day, tzinfo=zone).timestamp()


def replay_start(now: float, settings: ReportingSettings) -> float:
    """Where a restarted service replays from: local midnight of `now` minus the look-back."""
    return day_bounds(local_day(now, settings.timezone), settings.timezone)[0] \
        - settings.replay_lookback_s


def _report_row(row: IntervalRow, tz: str) -> ReportRow:
    from softswitch.store.base import ReportRow

    return ReportRow(row.kind, row.name, local_day(row.start, tz), row.start,
                     row.end - row.start, dict(row.counts), dict(row.aux), row.login,
                     row.logoff)


class ReportingService:
    def __init__(self, store: Store | None, settings: ReportingSettings, *,
                 publish: Callable[[list[rep.ReportEvent]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.publish = publish
        self.clock = clock
        self.tz = settings.timezone
        self.agg = settings.aggregator()
        self.interval = float(settings.interval_s)
        self.alerts: Any = None
        if AlertEngine is not None and settings.thresholds:
            self.alerts = AlertEngine(settings.thresholds, sl_threshold=settings.sl_threshold,
                                      short_abandon_s=settings.short_abandon_s,
                                      sl_formula=settings.sl_formula,
                                      queues=list(settings.queues))
        self.version = 0
        self._changed = asyncio.Event()
        self._boundary = float("-inf")  # end of the open interval (first event sets it)
        self.pending: list[ReportRow] = []  # closed rows not stored yet
        # During a replay: rows starting at or before this are stored already (not rewritten)
        self.persist_after: float | None = None
        self.rows_closed = 0
        self.rows_written = 0
        self.write_failures = 0
        self.events_in = 0
        # closed rows summed per local day (today's figures) and since start (totals)
        self._day: dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]] = {}
        self._tot_q: dict[str, list[float]] = {}
        self._tot_a: dict[str, list[float]] = {}
        self._last_state: dict[str, rep.AgentStateChanged] = {}
        self._queues_seen: dict[str, None] = dict.fromkeys(settings.queues)
        self._stop = asyncio.Event()
        self.ready: Callable[[], bool] = lambda: True  # False: hold clock closes (catch-up)
        self._snap: dict[str, Any] | None = None
        self._snap_key: tuple[int, int] | None = None

    def apply_settings(self, new: ReportingSettings) -> list[str]:
        """A reloaded config: queues, membership, names, refresh and thresholds apply now;
        interval length, T, S, formula and timezone need a restart (they shape stored rows,
        and a rebuild recomputes with them)."""
        old = self.settings
        changes = ["reporting: queues, agents, refresh, thresholds"]
        shaping = ("interval_s", "sl_threshold_s", "sl_thresholds", "short_abandon_s",
                   "sl_formula", "timezone")
        # The caller names the changed ones in its warning (softswitch/app.py reload()).
        for k in shaping:
            setattr(new, k, getattr(old, k))
        if AlertEngine is not None and tuple(new.thresholds) != tuple(old.thresholds):
            self.alerts = (AlertEngine(new.thresholds, sl_threshold=new.sl_threshold,
                                       short_abandon_s=new.short_abandon_s,
                                       sl_formula=new.sl_formula, queues=list(new.queues))
                           if new.thresholds else None)
        self.settings = new
        for q in new.queues:
            self._queues_seen.setdefault(q, None)
        self._bump()
        return changes

    # -- input ----------------------------------------------------------------------------

    async def on_events(self, events: Sequence[rep.ReportEvent]) -> None:
        """The bus callback: account `events` (in order)."""
        self.ingest(events)

    def ingest(self, events: Iterable[rep.ReportEvent]) -> None:
        agg = self.agg
        alerts = self.alerts
        n = 0
        for e in events:
            n += 1
            ts = e.ts
            if ts >= self._boundary:
                self._close(ts)
            agg.ingest(e)
            if alerts is not None:
                alerts.ingest(e)
            t = type(e)
            if t is rep.AgentStateChanged:
                self._last_state[e.agent] = e  # type: ignore[attr-defined,assignment]
            elif t is rep.CallQueued:
                queue: str = e.queue  # type: ignore[attr-defined]
                if queue not in self._queues_seen:
                    self._queues_seen[queue] = None
        if n:
            self.events_in += n
            self._bump()

    def _close(self, ts: float) -> None:
        """Close every interval ending at or before `ts`; queue their rows for the store."""
        rows = self.agg.close_until(ts)
        self._boundary = (ts // self.interval + 1) * self.interval
        if not rows:
            return
        self.rows_closed += len(rows)
        tz = self.tz
        for r in rows:
            stored = _report_row(r, tz)
            self._account(stored)
            if self.persist_after is None or r.start > self.persist_after:
                self.pending.append(stored)

    def _account(self, row: ReportRow) -> None:
        q, a = self._day.get(row.day) or self._day.setdefault(row.day, ({}, {}))
        if row.kind == "queue":
            values = [row.counts[c] for c in QUEUE_COUNTS]
            _add(q, row.name, values, ag.Q_MAX_WAIT)
            _add(self._tot_q, row.name, values, ag.Q_MAX_WAIT)
        else:
            values = [row.counts[c] for c in AGENT_COUNTS]
            _add(a, row.name, values, -1)
            _add(self._tot_a, row.name, values, -1)

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, version: int, timeout: float) -> int:
        """Return as soon as `version` is not current, or after `timeout` seconds."""
        if self.version == version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.version

    # -- clock ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover after a restart: replay today's events from the store's event log."""
        if self.store is None:
            return
        self.persist_after = await self.store.last_report_interval()
        now = self.clock()
        since = replay_start(now, self.settings)
        after = await self.store.first_event_seq(since)
        replayed = 0
        while batch := await self.store.read_events(after_seq=after, limit=REPLAY_BATCH):
            after = batch[-1].seq
            events = []
            for logged in batch:
                try:
                    events.append(logged.event())
                except ValueError:
                    continue  # a type this version does not know
            self.ingest(events)
            replayed += len(events)
        if replayed:
            log.info("reporting: %d logged events replayed since %s", replayed,
                     datetime.fromtimestamp(since, _zone(self.tz)).isoformat())
        await self.tick(now)

    async def tick(self, now: float) -> None:
        """Close intervals ended before ``now - grace``, store rows, evaluate alerts."""
        if self.ready():
            cut = now - self.settings.close_grace_s
            if cut >= self._boundary:
                before = self.rows_closed
                self._close(cut)
                if self.rows_closed != before:
                    self._bump()
            # Recovery ends with the first clock close after the replay: from then on every
            # closed interval is new, whatever the stored rows' times.
            self.persist_after = None
        if self.alerts is not None:
            changes = self.alerts.evaluate(now, self._alert_live(now))
            if changes:
                if self.publish is not None:
                    self.publish(list(changes))
                self._bump()
        await self.flush()
        self._prune_days(now)

    async def flush(self) -> None:
        """Store the closed rows not stored yet (kept for the next try when that fails)."""
        if self.store is None:
            self.pending.clear()  # nowhere to keep them (rebuild takes them itself)
            return
        if not self.pending:
            return
        rows = self.pending
        self.pending = []
        try:
            await self.store.write_report_rows(rows)
        except BaseException:
            self.pending[:0] = rows
            self.write_failures += 1
            raise
        self.rows_written += len(rows)

    async def run(self) -> None:
        """Tick every second until `stop()`; a final tick stores what is closed."""
        self._stop.clear()
        try:
            while not self._stop.is_set():
                try:
                    await self.tick(self.clock())
                except Exception:
                    log.exception("reporting tick failed; will retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)
        finally:
            with contextlib.suppress(Exception):
                await self.tick(self.clock())

    def stop(self) -> None:
        self._stop.set()

    def _prune_days(self, now: float) -> None:
        if len(self._day) > 2:
            today = local_day(now, self.tz)
            for d in sorted(self._day)[:-2]:
                if d != today:
                    del self._day[d]

    # -- views ----------------------------------------------------------------------------

    def _alert_live(self, now: float) -> dict[str, dict[str, float]]:
        live = self.agg.live(now)
        available = self._available_by_queue()
        return {q: {"waiting": live.get(q, {}).get("queued", 0.0),
                    "longest_wait_s": live.get(q, {}).get("longest_wait", 0.0),
                    "agents_available": float(available.get(q, 0))}
                for q in self._queues_seen}

    def _available_by_queue(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for agent, queues in self.settings.membership.items():
            st = self.agg.agent_state(agent)
            if st is not None and st[0] == "available":
                for q in queues:
                    out[q] = out.get(q, 0) + 1
        return out

    def _agents(self) -> list[str]:
        names = dict.fromkeys(self.settings.membership)
        names.update(dict.fromkeys(self.settings.agent_names))
        names.update(dict.fromkeys(self.agg.agents()))
        return list(names)

    def _figures(self, now: float, day: str | None) -> tuple[dict[str, list[float]],
                                                             dict[str, list[float]]]:
        """Queue and agent sums of `day` (None: since start): closed + open + open states."""
        if day is None:
            q = {k: list(v) for k, v in self._tot_q.items()}
            a = {k: list(v) for k, v in self._tot_a.items()}
        else:
            cq, ca = self._day.get(day, ({}, {}))
            q = {k: list(v) for k, v in cq.items()}
            a = {k: list(v) for k, v in ca.items()}
        oq, oa = self.agg.open_rows()
        tz = self.tz
        for b, rows in oq.items():
            if day is None or local_day(b * self.interval, tz) == day:
                for name, row in rows.items():
                    _add(q, name, row, ag.Q_MAX_WAIT)
        for b, rows in oa.items():
            if day is None or local_day(b * self.interval, tz) == day:
                for name, row in rows.items():
                    _add(a, name, row, -1)
        floor = day_bounds(day, tz)[0] if day is not None else float("-inf")
        for agent in self.agg.agents():
            st = self.agg.agent_state(agent)
            assert st is not None
            state, _, since = st
            since = max(since, floor)
            if state == ag.LOGGED_OUT or now <= since:
                continue
            extra = [0.0] * ag.A_SLOTS
            extra[ag.A_STAFFED] = now - since
            slot = ag._STATE_SLOT.get(state)
            if slot is not None:
                extra[slot] = now - since
            _add(a, agent, extra, -1)
        return q, a

    def snapshot(self, now: float) -> dict[str, Any]:
        """The real-time view (contract §2), JSON-ready. Callers within the same quarter
        second and version share one (a few ms per thousand agents); do not modify it."""
        key = (self.version, int(now * 4))
        if self._snap_key == key and self._snap is not None:
            return self._snap
        self._snap = self._snapshot(now)
        self._snap_key = key
        return self._snap

    def _snapshot(self, now: float) -> dict[str, Any]:
        s = self.settings
        day = local_day(now, self.tz)
        today_q, today_a = self._figures(now, day)
        tot_q, tot_a = self._figures(now, None)
        live = self.agg.live(now)
        active = self.alerts.active() if self.alerts is not None else []
        agent_ids = self._agents()
        states: dict[str, tuple[str, str, float]] = {}
        for agent in agent_ids:
            st = self.agg.agent_state(agent)
            states[agent] = st if st is not None else (ag.LOGGED_OUT, "", 0.0)
        queues = []
        for name in self._queues_seen:
            counts = dict.fromkeys(("staffed", *AGENT_STATES), 0)
            for agent, member_of in s.membership.items():
                if name in member_of:
                    state = states.get(agent, (ag.LOGGED_OUT, "", 0.0))[0]
                    if state != ag.LOGGED_OUT:
                        counts["staffed"] += 1
                        if state in counts:
                            counts[state] += 1
            w = live.get(name, {"queued": 0.0, "longest_wait": 0.0})
            queues.append({
                "name": name, "sl_threshold_s": s.sl_threshold(name),
                "waiting": int(w["queued"]), "longest_wait_s": round(w["longest_wait"], 3),
                "agents": counts,
                "today": self._queue_today(today_q.get(name, [0.0] * ag.Q_SLOTS)),
                "alerts": [a["rule"] for a in active if a["queue"] == name],
            })
        agents = []
        for agent in agent_ids:
            state, reason, _ = states[agent]
            last = self._last_state.get(agent)
            since = last.ts if last is not None else None
            agents.append({
                "agent": agent, "name": s.agent_names.get(agent, ""), "state": state,
                "reason": last.reason if last is not None else reason,
                "since": since,
                "time_in_state_s": round(now - since, 3) if since is not None else None,
                "queue": last.queue if last is not None else "",
                "call_id": last.call_id if last is not None else "",
                "device": last.device if last is not None else "",
                "queues": list(s.membership.get(agent, ())),
                "today": self._agent_today(today_a.get(agent, [0.0] * ag.A_SLOTS)),
            })
        return {
            "ts": now, "refresh_s": s.refresh_s, "interval_s": self.interval,
            "timezone": self.tz, "day": day, "queues": queues, "agents": agents,
            "alerts": active,
            "totals": {
                "queues": {name: _queue_totals(tot_q.get(name, [0.0] * ag.Q_SLOTS))
                           for name in self._queues_seen},
                "agents": {agent: _agent_totals(tot_a.get(agent, [0.0] * ag.A_SLOTS))
                           for agent in agent_ids},
            },
        }

    def _queue_today(self, r: list[float]) -> dict[str, Any]:
        d = self.agg.queue_derived(r)
        return {
            "offered": int(r[ag.Q_OFFERED]), "answered": int(r[ag.Q_ANSWERED]),
            "answered_in_t": int(r[ag.Q_ANSWERED_IN_T]), "abandoned": int(r[ag.Q_ABANDONED]),
            "short_abandoned": int(r[ag.Q_SHORT_ABANDONED]),
            "overflowed": int(r[ag.Q_OVERFLOWED]), "dropped": int(r[ag.Q_DROPPED]),
            "handled": int(r[ag.Q_HANDLED]), "transfers": int(r[ag.Q_TRANSFERS]),
            "service_level": d["service_level"], "abandon_rate": d["abandon_rate"],
            "asa_s": d["asa"], "aht_s": d["aht"], "avg_acw_s": d["avg_acw"],
            "max_wait_s": r[ag.Q_MAX_WAIT],
        }

    @staticmethod
    def _agent_today(r: list[float]) -> dict[str, Any]:
        d = IntervalAggregator.agent_derived(r)
        return {
            "handled": int(r[ag.A_HANDLED]), "offered": int(r[ag.A_OFFERED]),
            "ring_no_answer": int(r[ag.A_RNA]), "talk_s": round(r[ag.A_TALK], 3),
            "acw_s": round(r[ag.A_ACW], 3), "aux_s": round(r[ag.A_AUX], 3),
            "available_s": round(r[ag.A_AVAILABLE], 3),
            "staffed_s": round(r[ag.A_STAFFED], 3), "occupancy": d["occupancy"],
            "aht_s": d["aht"],
        }


def _add(into: dict[str, list[float]], name: str, values: Sequence[float], max_slot: int) -> None:
    cur = into.get(name)
    if cur is None:
        into[name] = list(values)
        return
    for i, v in enumerate(values):
        if i == max_slot:
            if v > cur[i]:
                cur[i] = v
        else:
            cur[i] += v


def _queue_totals(r: list[float]) -> dict[str, float]:
    return {"offered": r[ag.Q_OFFERED], "answered": r[ag.Q_ANSWERED],
            "answered_in_t": r[ag.Q_ANSWERED_IN_T], "abandoned": r[ag.Q_ABANDONED],
            "short_abandoned": r[ag.Q_SHORT_ABANDONED],
            "abandoned_in_t": r[ag.Q_ABANDONED_IN_T], "overflowed": r[ag.Q_OVERFLOWED],
            "dropped": r[ag.Q_DROPPED], "handled": r[ag.Q_HANDLED],
            "wait_sum": r[ag.Q_WAIT_SUM], "talk": r[ag.Q_TALK], "acw": r[ag.Q_ACW],
            "ring_no_answer": r[ag.Q_RNA], "transfers": r[ag.Q_TRANSFERS]}


def _agent_totals(r: list[float]) -> dict[str, float]:
    return {"handled": r[ag.A_HANDLED], "offered": r[ag.A_OFFERED],
            "ring_no_answer": r[ag.A_RNA], "talk": r[ag.A_TALK], "acw": r[ag.A_ACW],
            "aux": r[ag.A_AUX], "available": r[ag.A_AVAILABLE], "staffed": r[ag.A_STAFFED]}
