"""Agent blind transfers in the ACD and the CMS: the conversation ends as "transferred", one
CallTransferred, counted as the queue's transfers in the interval of the transfer."""

from __future__ import annotations

from acd import events as ev
from acd.agents import AgentState
from acd.config import QueueConfig
from reporting import events as rep
from reporting.aggregate import Q_TRANSFERS, IntervalAggregator
from tests.acd.helpers import arrive, engine_for, login


def test_transferred_call_completes_and_is_reported_then_wrap_up() -> None:
    engine = engine_for(QueueConfig("q", acw=30.0), agents=["a1"])
    login(engine, "a1", now=0.0)
    arrive(engine, "c1", "q", 10.0)
    engine.handle_event(ev.AgentAnswered("a1", "c1"), 12.0)
    engine.pop_reports()
    engine.handle_event(ev.CallEnded("c1", transferred_to="1003"), 70.0)
    reports = engine.pop_reports()
    (done,) = [r for r in reports if isinstance(r, rep.CallCompleted)]
    assert (done.reason, done.talk, done.agent) == ("transferred", 58.0, "a1")
    (xfer,) = [r for r in reports if isinstance(r, rep.CallTransferred)]
    assert (xfer.call_id, xfer.queue, xfer.agent, xfer.target, xfer.ts) == (
        "c1", "q", "a1", "1003", 70.0)
    assert rep.from_dict(xfer.to_dict()) == xfer
    assert engine.agent_state("a1")[0] is AgentState.ACW  # the queue's wrap-up
    # The same call can come back into a queue (a transfer to a service number).
    arrive(engine, "c1", "q", 71.0)
    assert engine.waiting("q") == ["c1"]


def test_aggregator_counts_transfers_in_the_interval_of_the_transfer() -> None:
    agg = IntervalAggregator(interval_s=900.0)
    agg.ingest(rep.CallQueued(ts=10.0, call_id="c1", queue="q", position=1))
    agg.ingest(rep.CallAnswered(ts=12.0, call_id="c1", queue="q", agent="a1", wait=2.0))
    agg.ingest(rep.CallCompleted(ts=905.0, call_id="c1", queue="q", agent="a1", talk=893.0,
                                 reason="transferred"))
    agg.ingest(rep.CallTransferred(ts=905.0, call_id="c1", queue="q", agent="a1",
                                   target="1003"))
    rows = {(r.kind, r.name, r.start): r for r in agg.close_until(1800.0)}
    assert rows[("queue", "q", 0.0)].counts["transfers"] == 0
    second = rows[("queue", "q", 900.0)].counts
    assert (second["transfers"], second["handled"]) == (1, 1)
    assert Q_TRANSFERS == 16
