"""Interval aggregates of the reporting events (CMS-1, CMS-2, CMS-3, CMS-5).

Pure and sans-I/O: feed `ReportEvent`s in timestamp order to `IntervalAggregator.ingest()`,
ask `close_until(ts)` for the rows of every interval that ended at or before `ts`, and `live()`
for the real-time view. The formulas and conventions are in docs/metrics.md.

Counting conventions (Avaya CMS style):

- a call is counted (offered, answered, abandoned, overflowed, dropped, queued) in the interval
  of its *outcome*: the answer, the abandon or the overflow; talk and "handled" in the interval
  the conversation ends; a queue's ACW time in the interval the wrap-up ends;
- agent time (staffed, available, ringing, talk, hold, ACW, aux by reason) is split across
  interval boundaries to the second it was spent.

Hot path: plain lists indexed by constants, dicts keyed by name; one list per
(interval, queue) and per (interval, agent) and one small tuple per waiting call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reporting import events as rep

# -- queue accumulator slots ------------------------------------------------------------------
Q_OFFERED = 0
Q_QUEUED = 1
Q_ANSWERED = 2
Q_ANSWERED_IN_T = 3
Q_WAIT_SUM = 4  # answer waits
Q_MAX_WAIT = 5  # longest answer wait
Q_ABANDONED = 6
Q_SHORT_ABANDONED = 7
Q_ABANDONED_IN_T = 8
Q_ABANDON_WAIT_SUM = 9
Q_OVERFLOWED = 10
Q_DROPPED = 11
Q_HANDLED = 12
Q_TALK = 13
Q_HOLD = 14
Q_ACW = 15
Q_TRANSFERS = 16
Q_RNA = 17
Q_SLOTS = 18

QUEUE_COUNTS = (
    "offered", "queued", "answered", "answered_in_t", "wait_sum", "max_wait", "abandoned",
    "short_abandoned", "abandoned_in_t", "abandon_wait_sum", "overflowed", "dropped",
    "handled", "talk", "hold", "acw", "transfers", "ring_no_answer",
)

# -- agent accumulator slots ------------------------------------------------------------------
A_STAFFED = 0
A_AVAILABLE = 1
A_RINGING = 2
A_TALK = 3
A_HOLD = 4
A_ACW = 5
A_AUX = 6
A_HANDLED = 7
A_OFFERED = 8
A_RNA = 9
A_SLOTS = 10

AGENT_COUNTS = ("staffed", "available", "ringing", "talk", "hold", "acw", "aux", "handled",
                "offered", "ring_no_answer")

# agent state → slot it accumulates into (besides staffed); logged_out accumulates nothing
_STATE_SLOT: dict[str, int] = {
    "available": A_AVAILABLE, "ringing": A_RINGING, "on_call": A_TALK, "hold": A_HOLD,
    "acw": A_ACW, "aux": A_AUX,
}
LOGGED_OUT = "logged_out"

SL_FORMULAS = ("default", "ignore_abandons", "abandons_against", "abandons_in_favour")


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One closed interval of one queue (`kind="queue"`) or one agent (`kind="agent"`).

    `counts` holds the additive figures (QUEUE_COUNTS or AGENT_COUNTS, seconds for times);
    `aux` the aux seconds by reason code (agents); `login`/`logoff` the first login and last
    logoff in the interval (agents), None if none; `derived` the ratios (None when undefined).
    """

    kind: str
    name: str
    start: float
    end: float
    counts: dict[str, float]
    derived: dict[str, float | None]
    aux: dict[str, float] = field(default_factory=dict)
    login: float | None = None
    logoff: float | None = None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def service_level(formula: str, answered: float, within: float, abandoned: float,
                  short: float, abandoned_within: float) -> float | None:
    """The service level of docs/metrics.md under `formula` (SL_FORMULAS): answered within T
    over the calls the convention counts; None when no call counts. The one definition the
    interval rows, the report API and the alert windows share."""
    if formula == "default":
        return _ratio(within, answered + abandoned - short)
    if formula == "ignore_abandons":
        return _ratio(within, answered)
    if formula == "abandons_against":
        return _ratio(within, answered + abandoned)
    if formula == "abandons_in_favour":
        return _ratio(within + abandoned_within, answered + abandoned)
    raise ValueError(f"unknown service level formula {formula!r}")


class IntervalAggregator:
    """Per-interval, per-queue and per-agent aggregates of an ordered event stream."""

    def __init__(
        self, interval_s: float = 900.0, sl_threshold_s: float = 20.0,
        short_abandon_s: float = 5.0, sl_formula: str = "default",
        sl_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if sl_formula not in SL_FORMULAS:
            raise ValueError(f"sl_formula must be one of {SL_FORMULAS}")
        self.interval = float(interval_s)
        self.sl_threshold = float(sl_threshold_s)  # T of queues not in `sl_thresholds`
        self.sl_thresholds = {q: float(t) for q, t in (sl_thresholds or {}).items()}
        self.short_abandon = float(short_abandon_s)
        self.sl_formula = sl_formula
        self.late_events = 0  # events older than the last close: counted in the first open one
        self._closed_until = -1  # first bucket index still open (-1: none closed)
        self._q: dict[int, dict[str, list[float]]] = {}
        self._a: dict[int, dict[str, list[float]]] = {}
        self._aux: dict[int, dict[str, dict[str, float]]] = {}
        self._login: dict[int, dict[str, float]] = {}
        self._logoff: dict[int, dict[str, float]] = {}
        # live state
        self._waiting: dict[str, dict[str, float]] = {}  # queue → call → arrival (in order)
        self._calls: dict[str, tuple[str, float, bool]] = {}  # call → (queue, arrival, queued)
        self._agents: dict[str, list[object]] = {}  # agent → [state, reason, since]
        self._acw: dict[str, tuple[str, float]] = {}  # agent → (queue, wrap-up start)

    def threshold(self, queue: str) -> float:
        """Service-level T of `queue` (seconds)."""
        return self.sl_thresholds.get(queue, self.sl_threshold)

    # -- buckets ------------------------------------------------------------------------------

    def _bucket(self, ts: float) -> int:
        b = int(ts // self.interval)
        if b < self._closed_until:
            self.late_events += 1
            return self._closed_until
        return b

    def _qrow(self, b: int, queue: str) -> list[float]:
        rows = self._q.get(b)
        if rows is None:
            rows = self._q[b] = {}
        row = rows.get(queue)
        if row is None:
            row = rows[queue] = [0.0] * Q_SLOTS
        return row

    def _arow(self, b: int, agent: str) -> list[float]:
        rows = self._a.get(b)
        if rows is None:
            rows = self._a[b] = {}
        row = rows.get(agent)
        if row is None:
            row = rows[agent] = [0.0] * A_SLOTS
        return row

    # -- ingest -------------------------------------------------------------------------------

    def ingest(self, event: rep.ReportEvent) -> None:
        """Account one event; events must come in timestamp order."""
        t = type(event)
        if t is rep.AgentStateChanged:
            self._agent_state(event)  # type: ignore[arg-type]
        elif t is rep.CallQueued:
            self._queued(event)  # type: ignore[arg-type]
        elif t is rep.CallAnswered:
            self._answered(event)  # type: ignore[arg-type]
        elif t is rep.CallCompleted:
            self._completed(event)  # type: ignore[arg-type]
        elif t is rep.CallAbandoned:
            self._abandoned(event)  # type: ignore[arg-type]
        elif t is rep.CallOverflowed:
            self._overflowed(event)  # type: ignore[arg-type]
        elif t is rep.CallOffered:
            e: rep.CallOffered = event  # type: ignore[assignment]
            self._arow(self._bucket(e.ts), e.agent)[A_OFFERED] += 1
        elif t is rep.CallOfferFailed:
            f: rep.CallOfferFailed = event  # type: ignore[assignment]
            if f.reason == "ring_no_answer":
                b = self._bucket(f.ts)
                self._arow(b, f.agent)[A_RNA] += 1
                self._qrow(b, f.queue)[Q_RNA] += 1
        elif t is rep.CallTransferred:
            x: rep.CallTransferred = event  # type: ignore[assignment]
            self._qrow(self._bucket(x.ts), x.queue)[Q_TRANSFERS] += 1
        # ConfigApplied and unknown types: nothing to count

    def _queued(self, e: rep.CallQueued) -> None:
        queued = e.position > 0
        self._calls[e.call_id] = (e.queue, e.ts, queued)
        if queued:
            w = self._waiting.get(e.queue)
            if w is None:
                w = self._waiting[e.queue] = {}
            w[e.call_id] = e.ts

    def _outcome(self, call_id: str, queue: str, ts: float) -> list[float]:
        """The queue row of the call's outcome interval, counted as offered (and queued)."""
        info = self._calls.pop(call_id, None)
        row = self._qrow(self._bucket(ts), queue)
        if info is not None:
            row[Q_OFFERED] += 1
            if info[2]:
                row[Q_QUEUED] += 1
                w = self._waiting.get(info[0])
                if w is not None:
                    w.pop(call_id, None)
        return row

    def _answered(self, e: rep.CallAnswered) -> None:
        row = self._outcome(e.call_id, e.queue, e.ts)
        wait = e.wait
        row[Q_ANSWERED] += 1
        row[Q_WAIT_SUM] += wait
        if wait <= self.sl_thresholds.get(e.queue, self.sl_threshold):
            row[Q_ANSWERED_IN_T] += 1
        if wait > row[Q_MAX_WAIT]:
            row[Q_MAX_WAIT] = wait

    def _abandoned(self, e: rep.CallAbandoned) -> None:
        row = self._outcome(e.call_id, e.queue, e.ts)
        wait = e.wait
        row[Q_ABANDONED] += 1
        row[Q_ABANDON_WAIT_SUM] += wait
        if wait < self.short_abandon:
            row[Q_SHORT_ABANDONED] += 1
        if wait <= self.sl_thresholds.get(e.queue, self.sl_threshold):
            row[Q_ABANDONED_IN_T] += 1

    def _overflowed(self, e: rep.CallOverflowed) -> None:
        if e.call_id in self._calls:
            row = self._outcome(e.call_id, e.queue, e.ts)
        else:  # never queued (unknown queue): a dropped call of that name, not offered
            row = self._qrow(self._bucket(e.ts), e.queue)
        if e.destination is None:
            row[Q_DROPPED] += 1
        else:
            row[Q_OVERFLOWED] += 1

    def _completed(self, e: rep.CallCompleted) -> None:
        b = self._bucket(e.ts)
        row = self._qrow(b, e.queue)
        row[Q_HANDLED] += 1
        row[Q_TALK] += e.talk
        self._arow(b, e.agent)[A_HANDLED] += 1

    def _agent_state(self, e: rep.AgentStateChanged) -> None:
        agent = e.agent
        cur = self._agents.get(agent)
        ts = e.ts
        if cur is not None:
            state = cur[0]
            since: float = cur[2]  # type: ignore[assignment]
            if state != LOGGED_OUT and ts > since:
                self._credit(agent, state, cur[1], since, ts)  # type: ignore[arg-type]
            acw = self._acw.pop(agent, None)
            if acw is not None and acw[0]:
                self._qrow(self._bucket(ts), acw[0])[Q_ACW] += ts - acw[1]
            cur[0] = e.state
            cur[1] = e.reason
            cur[2] = ts
        else:
            self._agents[agent] = [e.state, e.reason, ts]
        if e.state == "acw":
            self._acw[agent] = (e.queue, ts)
        if e.previous == LOGGED_OUT and e.state != LOGGED_OUT:
            logins = self._login.setdefault(self._bucket(ts), {})
            logins.setdefault(agent, ts)
            self._arow(self._bucket(ts), agent)
        elif e.state == LOGGED_OUT and e.previous != LOGGED_OUT:
            self._logoff.setdefault(self._bucket(ts), {})[agent] = ts
            self._arow(self._bucket(ts), agent)

    def _credit(self, agent: str, state: str, reason: str, since: float, until: float) -> None:
        """Spread [since, until) of `state` over the intervals it covers."""
        slot = _STATE_SLOT.get(state)
        interval = self.interval
        while since < until:
            b = self._bucket(since)
            end = min(until, (b + 1) * interval)
            if end <= since:  # clamped late time: count the rest in the open interval
                end = until
            d = end - since
            row = self._arow(b, agent)
            row[A_STAFFED] += d
            if slot is not None:
                row[slot] += d
                if slot == A_AUX:
                    rs = self._aux.setdefault(b, {}).setdefault(agent, {})
                    rs[reason] = rs.get(reason, 0.0) + d
            since = end

    # -- output -------------------------------------------------------------------------------

    def close_until(self, ts: float) -> list[IntervalRow]:
        """Rows of every interval ending at or before `ts` not closed yet, oldest first
        (queues then agents, by name, within one interval)."""
        first_open = int(ts // self.interval)
        if first_open <= self._closed_until:
            return []
        boundary = first_open * self.interval
        for agent, cur in self._agents.items():  # credit open states up to the boundary
            since: float = cur[2]  # type: ignore[assignment]
            if since < boundary:
                if cur[0] != LOGGED_OUT:
                    self._credit(agent, cur[0], cur[1], since, boundary)  # type: ignore[arg-type]
                cur[2] = boundary
        out: list[IntervalRow] = []
        for b in sorted({*self._q, *self._a}):
            if b >= first_open:
                break
            out.extend(self._rows(b))
        for d in (self._q, self._a, self._aux, self._login, self._logoff):
            for b in [b for b in d if b < first_open]:
                del d[b]
        self._closed_until = first_open
        return out

    def _rows(self, b: int) -> list[IntervalRow]:
        start = b * self.interval
        end = start + self.interval
        out: list[IntervalRow] = []
        for name in sorted(self._q.get(b, {})):
            row = self._q[b][name]
            counts = dict(zip(QUEUE_COUNTS, row, strict=True))
            out.append(IntervalRow("queue", name, start, end, counts, self.queue_derived(row)))
        aux = self._aux.get(b, {})
        logins = self._login.get(b, {})
        logoffs = self._logoff.get(b, {})
        for name in sorted(self._a.get(b, {})):
            row = self._a[b][name]
            counts = dict(zip(AGENT_COUNTS, row, strict=True))
            reasons = dict(sorted(aux.get(name, {}).items()))
            out.append(IntervalRow("agent", name, start, end, counts, self.agent_derived(row),
                                   reasons, logins.get(name), logoffs.get(name)))
        return out

    def service_level(self, row: list[float], formula: str | None = None) -> float | None:
        """Service level of a queue row under `formula` (default: the aggregator's)."""
        return service_level(formula or self.sl_formula, row[Q_ANSWERED], row[Q_ANSWERED_IN_T],
                             row[Q_ABANDONED], row[Q_SHORT_ABANDONED], row[Q_ABANDONED_IN_T])

    def queue_derived(self, row: list[float]) -> dict[str, float | None]:
        short = row[Q_SHORT_ABANDONED]
        return {
            "service_level": self.service_level(row),
            "abandon_rate": _ratio(row[Q_ABANDONED] - short, row[Q_OFFERED] - short),
            "asa": _ratio(row[Q_WAIT_SUM], row[Q_ANSWERED]),
            "aht": _ratio(row[Q_TALK] + row[Q_HOLD] + row[Q_ACW], row[Q_HANDLED]),
            "avg_acw": _ratio(row[Q_ACW], row[Q_HANDLED]),
            "avg_talk": _ratio(row[Q_TALK], row[Q_HANDLED]),
        }

    @staticmethod
    def agent_derived(row: list[float]) -> dict[str, float | None]:
        busy = row[A_TALK] + row[A_HOLD] + row[A_ACW]
        return {
            "occupancy": _ratio(busy, row[A_STAFFED] - row[A_AUX]),
            "aht": _ratio(busy, row[A_HANDLED]),
        }

    def open_rows(self) -> tuple[dict[int, dict[str, list[float]]],
                                 dict[int, dict[str, list[float]]]]:
        """The accumulators of the intervals not closed yet: (queues, agents), each
        ``{bucket: {name: row}}`` (`bucket * interval` is its start). Read only."""
        return self._q, self._a

    def agent_state(self, agent: str) -> tuple[str, str, float] | None:
        """(state, reason, since) of `agent`; `since` is moved to each closed boundary, so
        the time after it is not in any row yet. None for an agent never seen."""
        cur = self._agents.get(agent)
        return None if cur is None else (cur[0], cur[1], cur[2])  # type: ignore[return-value]

    def agents(self) -> list[str]:
        return list(self._agents)

    def live(self, now: float) -> dict[str, dict[str, float]]:
        """Per queue: calls waiting now (queued or ringing) and the longest wait now (s)."""
        out: dict[str, dict[str, float]] = {}
        for queue, waiting in self._waiting.items():
            if waiting:
                oldest = next(iter(waiting.values()))
                out[queue] = {"queued": float(len(waiting)), "longest_wait": now - oldest}
            else:
                out[queue] = {"queued": 0.0, "longest_wait": 0.0}
        return out
