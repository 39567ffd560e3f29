"""Threshold alerts (CMS-4): raise and clear `[reporting] thresholds` rules per queue.

Pure and sans-I/O: feed the reporting events to `AlertEngine.ingest()` in timestamp order and
call `evaluate(now, live)` (every second or so); it returns the `AlertRaised` /
`AlertCleared` events of the rules whose state changed. `active()` is the snapshot's
``"alerts"`` list.

Metrics a rule can watch (the formulas of docs/metrics.md):

- ``service_level``, ``abandon_rate``, ``asa_s``: over the calls whose outcome (answer,
  abandon, overflow) fell in the last ``window_s`` seconds; service level with the configured
  `sl_formula` and the queue's T. A window without calls gives no figure, so it never raises
  (and clears a raised alert: nothing to report any more).
- ``calls_waiting``, ``longest_wait_s``, ``agents_available``: now, from `live`.

A rule is raised once when its condition has held for ``for_s`` seconds, and cleared once when
it stops holding. Rules are duck-typed (``softswitch.config.ThresholdRule`` fits): name, metric,
op, value, window_s, for_s, queues, severity. This module imports nothing of ``softswitch``.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reporting import events as rep
from reporting.aggregate import SL_FORMULAS, service_level

__all__ = ["AlertEngine", "OPS", "WINDOWED", "INSTANT"]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
WINDOWED = frozenset({"service_level", "abandon_rate", "asa_s"})
# rule metric -> key of the `live` mapping
INSTANT = {"calls_waiting": "waiting", "longest_wait_s": "longest_wait_s",
           "agents_available": "agents_available"}

# One call outcome in a window: (ts, answered, answered_in_t, abandoned, short_abandoned,
# abandoned_in_t, offered, answer_wait)
_Outcome = tuple[float, int, int, int, int, int, int, float]


@dataclass(slots=True)
class _State:
    """Where one (rule, queue) pair stands."""

    pending_since: float | None = None  # the condition has held since then
    active: bool = False
    since: float = 0.0  # when it was raised
    value: float | None = None


def _definition(rule: Any) -> tuple[Any, ...]:
    return (rule.metric, rule.op, float(rule.value), float(rule.window_s), float(rule.for_s),
            tuple(rule.queues), rule.severity)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


class AlertEngine:
    def __init__(self, rules: Sequence[Any], *, sl_threshold: Callable[[str], float],
                 short_abandon_s: float, sl_formula: str, queues: Sequence[str]) -> None:
        if sl_formula not in SL_FORMULAS:
            raise ValueError(f"sl_formula must be one of {SL_FORMULAS}")
        for r in rules:
            if r.op not in OPS:
                raise ValueError(f"rule {r.name}: unknown op {r.op!r}")
            if r.metric not in WINDOWED and r.metric not in INSTANT:
                raise ValueError(f"rule {r.name}: unknown metric {r.metric!r}")
        self.rules = tuple(rules)
        self.queues = tuple(queues)
        self._sl_threshold = sl_threshold
        self._short = float(short_abandon_s)
        self._formula = sl_formula
        windows = [float(r.window_s) for r in self.rules if r.metric in WINDOWED]
        self._keep = max(windows) if windows else 0.0  # seconds of outcomes worth keeping
        self._calls: dict[str, str] = {}  # call id -> queue, while queued (offered on outcome)
        self._outcomes: dict[str, deque[_Outcome]] = {}
        self._state: dict[tuple[str, str], _State] = {}

    def update_rules(self, rules: Sequence[Any], now: float, *,
                     queues: Sequence[str] | None = None) -> list[rep.AlertCleared]:
        """A reloaded config: keep the windows and the state of unchanged rules; a raised
        alert whose rule was removed or changed is cleared (returned, `value` None, reason
        ``rule_removed`` / ``rule_changed``); a changed rule is raised again by the next
        `evaluate` if it still holds."""
        new = AlertEngine(rules, sl_threshold=self._sl_threshold, short_abandon_s=self._short,
                          sl_formula=self._formula,
                          queues=self.queues if queues is None else queues)
        old_rules = {r.name: r for r in self.rules}
        kept = {r.name for r in new.rules
                if r.name in old_rules and _definition(old_rules[r.name]) == _definition(r)}
        out: list[rep.AlertCleared] = []
        for (name, queue), st in self._state.items():
            if name in kept:
                continue
            if st.active:
                reason = "rule_changed" if any(r.name == name for r in new.rules) \
                    else "rule_removed"
                out.append(rep.AlertCleared(ts=now, reason=reason,
                                            **self._fields(old_rules[name], queue, None)))
        self.rules = new.rules
        self.queues = new.queues
        self._keep = new._keep
        self._state = {k: st for k, st in self._state.items() if k[0] in kept}
        if not self._keep:
            self._calls.clear()
            self._outcomes.clear()
        return out

    # -- input --------------------------------------------------------------------------------

    def ingest(self, event: rep.ReportEvent) -> None:
        """Remember call outcomes for the windowed metrics; other events are ignored."""
        if not self._keep:
            return
        t = type(event)
        if t is rep.CallQueued:
            q: rep.CallQueued = event  # type: ignore[assignment]
            self._calls[q.call_id] = q.queue
        elif t is rep.CallAnswered:
            a: rep.CallAnswered = event  # type: ignore[assignment]
            offered = self._offered(a.call_id)
            in_t = int(a.wait <= self._sl_threshold(a.queue))
            self._add(a.queue, (a.ts, 1, in_t, 0, 0, 0, offered, a.wait))
        elif t is rep.CallAbandoned:
            b: rep.CallAbandoned = event  # type: ignore[assignment]
            offered = self._offered(b.call_id)
            short = int(b.wait < self._short)
            in_t = int(b.wait <= self._sl_threshold(b.queue))
            self._add(b.queue, (b.ts, 0, 0, 1, short, in_t, offered, 0.0))
        elif t is rep.CallOverflowed:
            o: rep.CallOverflowed = event  # type: ignore[assignment]
            offered = self._offered(o.call_id)
            if offered:  # overflowed or dropped: offered, outside the service level
                self._add(o.queue, (o.ts, 0, 0, 0, 0, 0, 1, 0.0))

    def _offered(self, call_id: str) -> int:
        # Like the interval aggregator: a call is offered when its queuing was seen.
        return 1 if self._calls.pop(call_id, None) is not None else 0

    def _add(self, queue: str, outcome: _Outcome) -> None:
        d = self._outcomes.get(queue)
        if d is None:
            d = self._outcomes[queue] = deque()
        d.append(outcome)

    # -- figures ------------------------------------------------------------------------------

    def window_figures(self, queue: str, now: float, window_s: float) -> dict[str, float | None]:
        """service_level, abandon_rate and asa_s of the outcomes in (now - window_s, now]."""
        ans = in_t = ab = short = ab_t = offered = 0
        wait = 0.0
        start = now - window_s
        for o in reversed(self._outcomes.get(queue, ())):
            if o[0] <= start:
                break
            if o[0] > now:
                continue
            ans += o[1]
            in_t += o[2]
            ab += o[3]
            short += o[4]
            ab_t += o[5]
            offered += o[6]
            wait += o[7]
        return {
            "service_level": service_level(self._formula, ans, in_t, ab, short, ab_t),
            "abandon_rate": _ratio(ab - short, offered - short),
            "asa_s": _ratio(wait, ans),
        }

    def _value(self, rule: Any, queue: str, now: float,
               live: Mapping[str, Mapping[str, float]]) -> float | None:
        if rule.metric in WINDOWED:
            return self.window_figures(queue, now, float(rule.window_s))[rule.metric]
        figure = live.get(queue, {}).get(INSTANT[rule.metric])
        return None if figure is None else float(figure)

    def _prune(self, now: float) -> None:
        horizon = now - self._keep
        for d in self._outcomes.values():
            while d and d[0][0] <= horizon:
                d.popleft()

    def _targets(self, rule: Any, live: Mapping[str, Mapping[str, float]]) -> list[str]:
        if rule.queues:
            return list(rule.queues)
        return list(dict.fromkeys([*self.queues, *live]))

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, now: float, live: Mapping[str, Mapping[str, float]]
                 ) -> list[rep.AlertRaised | rep.AlertCleared]:
        """Raise the rules that have held for their `for_s`, clear those that stopped.

        `live[queue]` = ``{"waiting": n, "longest_wait_s": s, "agents_available": n}``.
        """
        self._prune(now)
        out: list[rep.AlertRaised | rep.AlertCleared] = []
        for rule in self.rules:
            test = OPS[rule.op]
            for queue in self._targets(rule, live):
                value = self._value(rule, queue, now, live)
                st = self._state.get((rule.name, queue))
                if st is None:
                    st = self._state[(rule.name, queue)] = _State()
                holds = value is not None and test(value, float(rule.value))
                if holds:
                    st.value = value
                    if st.pending_since is None:
                        st.pending_since = now
                    if not st.active and now - st.pending_since >= float(rule.for_s):
                        st.active = True
                        st.since = now
                        out.append(rep.AlertRaised(ts=now, **self._fields(rule, queue, value)))
                else:
                    st.pending_since = None
                    if st.active:
                        st.active = False
                        st.value = value
                        out.append(rep.AlertCleared(ts=now, **self._fields(rule, queue, value)))
        return out

    @staticmethod
    def _fields(rule: Any, queue: str, value: float | None) -> dict[str, Any]:
        return {"rule": rule.name, "queue": queue, "metric": rule.metric, "op": rule.op,
                "threshold": float(rule.value), "value": value, "severity": rule.severity}

    def active(self) -> list[dict[str, Any]]:
        """The raised alerts, in rule order then queue order (the snapshot's ``"alerts"``)."""
        out: list[dict[str, Any]] = []
        order = {r.name: i for i, r in enumerate(self.rules)}
        by_name = {r.name: r for r in self.rules}
        for (name, queue), st in sorted(self._state.items(),
                                        key=lambda kv: (order[kv[0][0]], kv[0][1])):
            if st.active:
                rule = by_name[name]
                out.append({**self._fields(rule, queue, st.value), "since": st.since})
        return out
