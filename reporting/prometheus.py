"""Prometheus exposition of the CMS figures (CMS-3, CMS-4): queues, agents, alerts.

`CmsCollector(get_snapshot)` turns the reporting service's snapshot (the JSON-ready dict of
`ReportingService.snapshot(now)`, contract §2) into metric families when Prometheus scrapes.
The switch registers it on its own `/metrics` (softswitch/metrics.py); the standalone
reporting process can register the same collector on its registry.

Naming (https://prometheus.io/docs/practices/naming/): base units (seconds, ratios 0–1),
``_total`` counters that only grow while the service runs (they restart at 0 with it, which
`rate()`/`increase()` handle), bounded labels only: queue, agent id (both from the config),
state, rule, severity. Never a caller's number or a call id. docs/metrics.md lists them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CmsCollector", "AGENT_STATES", "QUEUE_AGENT_STATES"]

log = logging.getLogger(__name__)

# States of the agent state machine (acd/), in the order panels show them.
AGENT_STATES = ("logged_out", "available", "ringing", "on_call", "hold", "acw", "aux")
QUEUE_AGENT_STATES = AGENT_STATES[1:]  # a queue counts its logged-in agents

# snapshot totals.queues key -> (metric name without _total, help)
QUEUE_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("offered", "softswitch_queue_calls_offered",
     "Calls offered to the queue (counted at their outcome: answer, abandon, overflow, drop)"),
    ("answered", "softswitch_queue_calls_answered", "Calls answered by an agent"),
    ("answered_in_t", "softswitch_queue_calls_answered_within_threshold",
     "Calls answered within the queue's service level threshold T"),
    ("abandoned", "softswitch_queue_calls_abandoned",
     "Calls whose caller hung up before an answer"),
    ("short_abandoned", "softswitch_queue_calls_short_abandoned",
     "Abandoned calls that waited less than the short-abandon threshold"),
    ("abandoned_in_t", "softswitch_queue_calls_abandoned_within_threshold",
     "Abandoned calls that waited at most the service level threshold T"),
    ("overflowed", "softswitch_queue_calls_overflowed",
     "Calls that left the queue for another destination"),
    ("dropped", "softswitch_queue_calls_dropped",
     "Calls that left the queue with nowhere to go"),
    ("handled", "softswitch_queue_calls_handled", "Answered calls whose conversation ended"),
    ("transfers", "softswitch_queue_transfers",
     "Answered calls the agent blind-transferred away (SIP REFER; Avaya CMS TRANSFERRED)"),
    ("ring_no_answer", "softswitch_queue_offers_unanswered",
     "Offers to an agent that rang out (ring-no-answer)"),
    ("wait_sum", "softswitch_queue_answer_wait_seconds",
     "Sum of the answered calls' waits, arrival to answer"),
    ("talk", "softswitch_queue_talk_seconds", "Sum of the talk time of handled calls"),
    ("acw", "softswitch_queue_acw_seconds", "Sum of the after-call work of the queue's calls"),
)

# snapshot totals.agents key -> (metric name without _total, help)
AGENT_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("handled", "softswitch_agent_calls_handled", "Calls the agent handled (conversation ended)"),
    ("offered", "softswitch_agent_calls_offered", "Calls offered (rung) to the agent"),
    ("ring_no_answer", "softswitch_agent_offers_unanswered",
     "Offers to the agent that rang out (ring-no-answer)"),
    ("staffed", "softswitch_agent_staffed_seconds", "Time logged in"),
)
# snapshot totals.agents key -> the state label of softswitch_agent_state_seconds_total
AGENT_STATE_TIMES = (("available", "available"), ("talk", "on_call"), ("acw", "acw"),
                     ("aux", "aux"))

# today's queue counts exported as softswitch_queue_calls_today{kind}
TODAY_KINDS = ("offered", "answered", "answered_in_t", "abandoned", "short_abandoned",
               "overflowed", "dropped", "handled")
# today's queue ratios/averages: snapshot key -> (metric, help)
TODAY_DERIVED: tuple[tuple[str, str, str], ...] = (
    ("service_level", "softswitch_queue_service_level_ratio",
     "Service level since local midnight (sl_formula); absent while undefined"),
    ("abandon_rate", "softswitch_queue_abandon_ratio",
     "Abandon rate since local midnight, short abandons excluded; absent while undefined"),
    ("asa_s", "softswitch_queue_answer_speed_average_seconds",
     "Average speed of answer since local midnight; absent while undefined"),
    ("aht_s", "softswitch_queue_handle_time_average_seconds",
     "Average handle time (talk + hold + ACW) since local midnight; absent while undefined"),
)


def _num(value: Any) -> float:
    return float(value) if value is not None else 0.0


class CmsCollector(Collector):
    """Metric families of one snapshot; nothing while `get_snapshot()` gives None."""

    def __init__(self, get_snapshot: Callable[[], Mapping[str, Any] | None]) -> None:
        self._get_snapshot = get_snapshot

    def collect(self) -> Iterator[Metric]:
        try:
            snap = self._get_snapshot()
        except Exception:  # a broken snapshot must not take the switch's own metrics down
            log.exception("reporting snapshot failed; CMS metrics left out of this scrape")
            return
        if snap is None:
            return
        yield from self._queues(snap)
        yield from self._agents(snap)
        yield from self._alerts(snap)

    # -- queues -------------------------------------------------------------------------------

    @staticmethod
    def _queues(snap: Mapping[str, Any]) -> Iterator[Metric]:
        queues = snap.get("queues", [])
        waiting = GaugeMetricFamily("softswitch_queue_calls_waiting",
                                    "Calls waiting or ringing in the queue now", labels=["queue"])
        longest = GaugeMetricFamily(
            "softswitch_queue_longest_wait_seconds",
            "How long the oldest call still waiting has waited", labels=["queue"])
        staffed = GaugeMetricFamily("softswitch_queue_agents_staffed",
                                    "Agents of the queue logged in now", labels=["queue"])
        agents = GaugeMetricFamily("softswitch_queue_agents",
                                   "Logged-in agents of the queue now, by state",
                                   labels=["queue", "state"])
        threshold = GaugeMetricFamily("softswitch_queue_service_level_threshold_seconds",
                                      "The queue's service level threshold T",
                                      labels=["queue"])
        today = GaugeMetricFamily("softswitch_queue_calls_today",
                                  "Calls since local midnight, by outcome",
                                  labels=["queue", "kind"])
        derived = {key: GaugeMetricFamily(name, help_, labels=["queue"])
                   for key, name, help_ in TODAY_DERIVED}
        for q in queues:
            name = str(q["name"])
            waiting.add_metric([name], _num(q.get("waiting")))
            longest.add_metric([name], _num(q.get("longest_wait_s")))
            counts = q.get("agents", {})
            staffed.add_metric([name], _num(counts.get("staffed")))
            for state in QUEUE_AGENT_STATES:
                agents.add_metric([name, state], _num(counts.get(state)))
            threshold.add_metric([name], _num(q.get("sl_threshold_s")))
            t = q.get("today", {})
            for kind in TODAY_KINDS:
                today.add_metric([name, kind], _num(t.get(kind)))
            for key, gauge in derived.items():
                if t.get(key) is not None:
                    gauge.add_metric([name], float(t[key]))
        yield from (waiting, longest, staffed, agents, threshold, today, *derived.values())

        totals = snap.get("totals", {}).get("queues", {})
        for key, metric, help_ in QUEUE_COUNTERS:
            family = CounterMetricFamily(metric, help_, labels=["queue"])
            for name in sorted(totals):
                family.add_metric([name], _num(totals[name].get(key)))
            yield family

    # -- agents -------------------------------------------------------------------------------

    @staticmethod
    def _agents(snap: Mapping[str, Any]) -> Iterator[Metric]:
        agents = snap.get("agents", [])
        state = GaugeMetricFamily("softswitch_agent_state",
                                  "1 for the state the agent is in now, 0 for the others",
                                  labels=["agent", "state"])
        in_state = GaugeMetricFamily("softswitch_agent_state_duration_seconds",
                                     "How long the agent has been in the current state",
                                     labels=["agent"])
        by_state = GaugeMetricFamily("softswitch_agents", "Agents now, by state",
                                     labels=["state"])
        handled_today = GaugeMetricFamily("softswitch_agent_calls_handled_today",
                                          "Calls the agent handled since local midnight",
                                          labels=["agent"])
        occupancy = GaugeMetricFamily(
            "softswitch_agent_occupancy_ratio",
            "Occupancy since local midnight: (talk + hold + ACW) / (staffed - aux); "
            "absent while undefined", labels=["agent"])
        counts = dict.fromkeys(AGENT_STATES, 0)
        for a in agents:
            agent = str(a["agent"])
            current = str(a.get("state", "logged_out"))
            if current in counts:
                counts[current] += 1
            for s in AGENT_STATES:
                state.add_metric([agent, s], 1.0 if s == current else 0.0)
            in_state.add_metric([agent], _num(a.get("time_in_state_s")))
            t = a.get("today", {})
            handled_today.add_metric([agent], _num(t.get("handled")))
            if t.get("occupancy") is not None:
                occupancy.add_metric([agent], float(t["occupancy"]))
        for s in AGENT_STATES:
            by_state.add_metric([s], counts[s])
        yield from (state, in_state, by_state, handled_today, occupancy)

        totals = snap.get("totals", {}).get("agents", {})
        for key, metric, help_ in AGENT_COUNTERS:
            family = CounterMetricFamily(metric, help_, labels=["agent"])
            for agent in sorted(totals):
                family.add_metric([agent], _num(totals[agent].get(key)))
            yield family
        times = CounterMetricFamily("softswitch_agent_state_seconds",
                                    "Time the agent spent in a state", labels=["agent", "state"])
        for agent in sorted(totals):
            for key, label in AGENT_STATE_TIMES:
                times.add_metric([agent, label], _num(totals[agent].get(key)))
        yield times

    # -- alerts -------------------------------------------------------------------------------

    @staticmethod
    def _alerts(snap: Mapping[str, Any]) -> Iterator[Metric]:
        active = GaugeMetricFamily("softswitch_alerts_active",
                                   "1 for each threshold alert raised now (CMS-4)",
                                   labels=["rule", "queue", "severity"])
        for a in snap.get("alerts", []):
            active.add_metric([str(a["rule"]), str(a["queue"]), str(a.get("severity", ""))], 1.0)
        yield active
