"""The engine on virtual time: ACW, aux, ring-no-answer, overflow, no agents, reload, reports."""

from __future__ import annotations

import msgpack

from acd import commands as cmd
from acd import events as ev
from acd.agents import AgentState
from acd.config import MANUAL, AcdConfig, AgentConfig, QueueConfig
from acd.engine import Engine
from reporting import events as rep

from .helpers import arrive, engine_for, login, of_type, offers, serve


def test_call_to_longest_idle_agent_and_back() -> None:
    engine = engine_for(QueueConfig("q"))
    login(engine, "a1", now=0.0)
    login(engine, "a2", now=5.0)
    out = arrive(engine, "c1", "q", 10.0)
    assert offers(out) == [("c1", "a1")]
    offer = of_type(out, cmd.OfferCall)[0]
    assert (offer.device, offer.ring_timeout) == ("dev-a1", 15.0)
    out = engine.handle_event(ev.AgentAnswered("a1", "c1"), 12.0)
    assert of_type(out, cmd.Connect) == [cmd.Connect("c1", "a1", "dev-a1")]
    assert engine.agent_state("a1") == (AgentState.ON_CALL, "")
    engine.handle_event(ev.CallEnded("c1"), 70.0)
    assert engine.agent_state("a1") == (AgentState.AVAILABLE, "")
    assert offers(arrive(engine, "c2", "q", 80.0)) == [("c2", "a2")]
    assert engine.calls == 1


def test_acw_timed_manual_and_ended_early() -> None:
    engine = engine_for(QueueConfig("q", acw=30.0), agents=["a1"])
    login(engine, "a1")
    arrive(engine, "c1", "q", 1.0)
    serve(engine, "c1", "a1", 2.0)
    assert engine.agent_state("a1")[0] is AgentState.ACW
    arrive(engine, "c2", "q", 3.0)  # waits out the wrap-up
    assert engine.get_timer() == 32.0
    assert engine.handle_timer(31.9) == []
    assert offers(engine.handle_timer(32.0)) == [("c2", "a1")]
    # ended early by the agent
    serve(engine, "c2", "a1", 40.0)
    out = engine.handle_event(ev.AcwEnded("a1"), 45.0)
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE and offers(out) == []
    assert engine.get_timer() is None  # the wrap-up timer went with it
    # the agent's own wrap-up time overrides the queue's; MANUAL waits for the agent
    config = AcdConfig.build([QueueConfig("q", acw=30.0)],
                             [AgentConfig("a1", {"q": 0}, acw=MANUAL)])
    engine = Engine(config)
    login(engine, "a1")
    arrive(engine, "c1", "q", 1.0)
    serve(engine, "c1", "a1", 2.0)
    assert engine.agent_state("a1")[0] is AgentState.ACW and engine.get_timer() is None
    engine.handle_event(ev.AvailableRequested("a1"), 500.0)
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE


def test_aux_immediate_and_pending() -> None:
    engine = engine_for(QueueConfig("q", acw=10.0), agents=["a1"])
    login(engine, "a1")
    engine.handle_event(ev.AuxRequested("a1", "lunch"), 1.0)
    assert engine.agent_state("a1") == (AgentState.AUX, "lunch")
    assert offers(arrive(engine, "c1", "q", 2.0)) == []
    assert offers(engine.handle_event(ev.AvailableRequested("a1"), 3.0)) == [("c1", "a1")]
    engine.handle_event(ev.AgentAnswered("a1", "c1"), 4.0)
    assert engine.handle_event(ev.AuxRequested("a1", "training"), 5.0) == []  # pending
    assert engine.agent_state("a1")[0] is AgentState.ON_CALL
    arrive(engine, "c2", "q", 6.0)
    engine.handle_event(ev.CallEnded("c1"), 7.0)
    assert engine.agent_state("a1")[0] is AgentState.ACW  # wrap-up first
    assert offers(engine.handle_timer(17.0)) == []
    assert engine.agent_state("a1") == (AgentState.AUX, "training")
    assert engine.waiting("q") == ["c2"]
    # aux during wrap-up applies at once; an agent on a call can also withdraw its request
    engine.handle_event(ev.AvailableRequested("a1"), 20.0)
    engine.handle_event(ev.AgentAnswered("a1", "c2"), 21.0)
    engine.handle_event(ev.AuxRequested("a1", "break"), 22.0)
    engine.handle_event(ev.AvailableRequested("a1"), 23.0)
    engine.handle_event(ev.CallEnded("c2"), 24.0)
    engine.handle_event(ev.AuxRequested("a1", "meeting"), 25.0)
    assert engine.agent_state("a1") == (AgentState.AUX, "meeting")
    engine.handle_event(ev.AvailableRequested("a1"), 26.0)
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE


def test_pending_logout_after_call() -> None:
    engine = engine_for(QueueConfig("q"), agents=["a1"])
    login(engine, "a1")
    arrive(engine, "c1", "q", 1.0)
    engine.handle_event(ev.AgentAnswered("a1", "c1"), 2.0)
    engine.handle_event(ev.AgentLoggedOut("a1"), 3.0)
    arrive(engine, "c2", "q", 4.0)
    out = engine.handle_event(ev.CallEnded("c1"), 5.0)
    assert offers(out) == [] and engine.agent_state("a1")[0] is AgentState.LOGGED_OUT


def test_ring_no_answer_goes_to_next_agent_then_pauses_after_n() -> None:
    engine = engine_for(QueueConfig("q", ring_timeout=10.0, max_misses=2), agents=["a1", "a2"])
    login(engine, "a1", now=0.0)
    login(engine, "a2", now=1.0)
    assert offers(arrive(engine, "c1", "q", 2.0)) == [("c1", "a1")]
    out = engine.handle_timer(12.0)
    assert of_type(out, cmd.CancelOffer) == [cmd.CancelOffer("c1", "a1", "ring_no_answer")]
    assert offers(out) == [("c1", "a2")]
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE  # one miss: still available
    # a2 rejects: back to a1 (the only one left), which misses again: paused by the system
    out = engine.handle_event(ev.AgentRejected("a2", "c1"), 13.0)
    assert offers(out) == [("c1", "a1")]
    out = engine.handle_event(ev.RingNoAnswer("a1", "c1"), 20.0)
    assert engine.agent_state("a1") == (AgentState.AUX, "system:ring_no_answer")
    assert offers(out) == [("c1", "a2")]
    engine.handle_event(ev.AgentAnswered("a2", "c1"), 21.0)
    reasons = [r.reason for r in engine.pop_reports() if isinstance(r, rep.CallOfferFailed)]
    assert reasons == ["ring_no_answer", "rejected", "ring_no_answer"]


def test_answer_resets_the_miss_count() -> None:
    engine = engine_for(QueueConfig("q", ring_timeout=5.0, max_misses=2), agents=["a1"])
    login(engine, "a1")
    arrive(engine, "c1", "q", 0.0)
    engine.handle_timer(5.0)  # miss 1, re-offered at once
    serve(engine, "c1", "a1", 6.0)
    arrive(engine, "c2", "q", 7.0)
    engine.handle_timer(12.0)  # miss 1 again, not 2
    assert engine.agent_state("a1")[0] is AgentState.RINGING


def test_overflow_on_max_wait_and_max_length() -> None:
    engine = engine_for(
        QueueConfig("q", max_wait=60.0, max_wait_destination="voicemail", max_length=2,
                    max_length_destination="busy-msg"),
        agents=["a1"])
    arrive(engine, "c1", "q", 0.0)
    arrive(engine, "c2", "q", 10.0)
    out = arrive(engine, "c3", "q", 20.0)
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c3", "busy-msg", "max_length")]
    assert engine.get_timer() == 60.0
    out = engine.handle_timer(60.0)
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c1", "voicemail", "max_wait")]
    assert engine.waiting("q") == ["c2"]
    # a call ringing when its max wait strikes is withdrawn from the agent
    login(engine, "a1", now=65.0)
    out = engine.handle_timer(70.0)
    assert of_type(out, cmd.CancelOffer) == [cmd.CancelOffer("c2", "a1", "max_wait")]
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE and engine.calls == 0
    kinds = [(r.call_id, r.reason) for r in engine.pop_reports()
             if isinstance(r, rep.CallOverflowed)]
    assert kinds == [("c3", "max_length"), ("c1", "max_wait"), ("c2", "max_wait")]


def test_no_agents_logged_in() -> None:
    waiting = engine_for(QueueConfig("q"), agents=["a1"])
    assert of_type(arrive(waiting, "c1", "q", 0.0), cmd.Overflow) == []
    assert waiting.waiting("q") == ["c1"]  # "wait": callers queue for the first agent
    assert offers(login(waiting, "a1", now=5.0)) == [("c1", "a1")]

    engine = engine_for(QueueConfig("q", when_no_agents="overflow", no_agents_destination="ivr"),
                        agents=["a1"])
    out = arrive(engine, "c1", "q", 0.0)
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c1", "ivr", "no_agents")]
    login(engine, "a1", now=1.0)
    engine.handle_event(ev.AuxRequested("a1", "break"), 2.0)
    arrive(engine, "c2", "q", 3.0)  # an agent in aux still staffs the queue
    assert engine.waiting("q") == ["c2"]
    out = engine.handle_event(ev.AgentLoggedOut("a1"), 4.0)  # the last one leaves
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c2", "ivr", "no_agents")]


def test_abandon_while_waiting_and_while_ringing() -> None:
    engine = engine_for(QueueConfig("q", announce_interval=30.0), agents=["a1"])
    arrive(engine, "c1", "q", 0.0)
    arrive(engine, "c2", "q", 1.0)
    engine.handle_event(ev.CallAbandoned("c1"), 5.0)
    assert engine.waiting("q") == ["c2"]
    login(engine, "a1", now=6.0)
    out = engine.handle_event(ev.CallAbandoned("c2"), 7.0)
    assert of_type(out, cmd.CancelOffer) == [cmd.CancelOffer("c2", "a1", "abandoned")]
    assert engine.agent_state("a1")[0] is AgentState.AVAILABLE
    assert engine.get_timer() is None and engine.calls == 0


def test_announcements_position_and_ewt() -> None:
    engine = engine_for(
        QueueConfig("q", announce_welcome=True, announce_interval=30.0, aht_hint=120.0),
        agents=["a1", "a2"])
    login(engine, "a1", "a2")
    engine.handle_event(ev.AuxRequested("a1", "x"), 0.0)
    engine.handle_event(ev.AuxRequested("a2", "x"), 0.0)
    out = arrive(engine, "c1", "q", 0.0)
    assert of_type(out, cmd.PlayAnnouncement) == [
        cmd.PlayAnnouncement("c1", "q", "welcome", 1, 60.0)]
    arrive(engine, "c2", "q", 10.0, priority_class=0)  # jumps ahead
    out = engine.handle_timer(30.0)
    assert of_type(out, cmd.PlayAnnouncement) == [
        cmd.PlayAnnouncement("c1", "q", "position", 2, 120.0)]


def test_agent_in_several_queues_takes_the_weightier_queue_first() -> None:
    config = AcdConfig.build(
        [QueueConfig("low"), QueueConfig("high", weight=10)],
        [AgentConfig("a1", {"low": 0, "high": 0})])
    engine = Engine(config)
    arrive(engine, "c-low", "low", 0.0)
    arrive(engine, "c-high", "high", 5.0)
    assert offers(login(engine, "a1", now=6.0)) == [("c-high", "a1")]
    engine.handle_event(ev.AgentAnswered("a1", "c-high"), 7.0)
    assert offers(engine.handle_event(ev.CallEnded("c-high"), 8.0)) == [("c-low", "a1")]


def test_reload_mid_call_keeps_the_callers_version() -> None:
    engine = engine_for(QueueConfig("q", ring_timeout=10.0, acw=5.0), agents=["a1", "a2"])
    login(engine, "a1")
    arrive(engine, "c1", "q", 0.0)  # ringing a1 under ring_timeout 10, acw 5
    new = AcdConfig.build(
        [QueueConfig("q", ring_timeout=20.0, acw=60.0, strategy="linear"),
         QueueConfig("new")],
        [AgentConfig("a1", {"q": 0}), AgentConfig("a2", {"q": 0, "new": 0})])
    engine.handle_event(ev.ConfigChanged(new), 1.0)
    assert engine.version == 2 and engine.agent_state("a1")[0] is AgentState.RINGING
    assert engine.get_timer() == 10.0  # the ring timer of the old version
    engine.handle_event(ev.AgentAnswered("a1", "c1"), 2.0)
    engine.handle_event(ev.CallEnded("c1"), 3.0)
    assert engine.get_timer() == 8.0  # wrap-up of the old version: 5 s
    login(engine, "a2", now=4.0)
    out = arrive(engine, "c2", "q", 5.0)
    assert of_type(out, cmd.OfferCall)[0].ring_timeout == 20.0  # new calls: new version
    assert offers(arrive(engine, "c3", "new", 5.0)) == []  # a2 is busy with c2
    assert [r.version for r in engine.pop_reports() if isinstance(r, rep.ConfigApplied)] == [1, 2]


def test_reload_removing_a_queue_overflows_its_callers() -> None:
    engine = Engine(AcdConfig.build([QueueConfig("a", max_wait_destination="x"),
                                     QueueConfig("b")]))
    arrive(engine, "c1", "a", 0.0)
    out = engine.handle_event(ev.ConfigChanged(AcdConfig.build([QueueConfig("b")])), 1.0)
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c1", "x", "queue_removed")]
    out = arrive(engine, "c2", "a", 2.0)
    assert of_type(out, cmd.Overflow) == [cmd.Overflow("c2", None, "unknown_queue")]


def test_bad_reload_is_refused_and_changes_nothing() -> None:
    engine = engine_for(QueueConfig("q"))
    out = engine.handle_event(ev.ConfigChanged(AcdConfig.build([QueueConfig("q", strategy="x")])),
                              1.0)
    assert len(of_type(out, cmd.Refused)) == 1 and engine.version == 1


def test_refusals_change_nothing() -> None:
    engine = engine_for(QueueConfig("q"), agents=["a1"])
    for event in [ev.AgentAnswered("a1", "nope"), ev.AcwEnded("a1"), ev.AuxRequested("zz", "x"),
                  ev.AgentLoggedOut("a1"), ev.CallEnded("nope")]:
        out = engine.handle_event(event, 1.0)
        assert [type(c) for c in out] == [cmd.Refused]
    login(engine, "a1")
    assert of_type(login(engine, "a1"), cmd.Refused)
    assert of_type(engine.handle_event(ev.AvailableRequested("a1"), 2.0), cmd.Refused)
    arrive(engine, "c1", "q", 3.0)
    assert of_type(arrive(engine, "c1", "q", 3.0), cmd.Refused)


def test_dynamic_login_with_queues_and_free_seating() -> None:
    engine = Engine(AcdConfig.build([QueueConfig("q")]))
    assert of_type(engine.handle_event(ev.AgentLoggedIn("x", "dev1"), 0.0), cmd.Refused)
    engine.handle_event(ev.AgentLoggedIn("x", "desk-7", queues={"q": 0}), 0.0)
    out = arrive(engine, "c1", "q", 1.0)
    assert of_type(out, cmd.OfferCall)[0].device == "desk-7"


def test_every_state_change_is_reported_and_msgpack_round_trips() -> None:
    engine = engine_for(QueueConfig("q", acw=5.0), agents=["a1"],
                        priority_rules=(), default_class=3)
    login(engine, "a1")
    arrive(engine, "c1", "q", 1.0, caller="081234")
    serve(engine, "c1", "a1", 2.0)
    engine.handle_timer(7.0)
    reports = engine.pop_reports()
    states = [(r.previous, r.state) for r in reports if isinstance(r, rep.AgentStateChanged)]
    assert states == [("logged_out", "available"), ("available", "ringing"),
                      ("ringing", "on_call"), ("on_call", "acw"), ("acw", "available")]
    calls = [type(r).type_name for r in reports if isinstance(r, rep.CallEvent)]
    assert calls == ["call_queued", "call_offered", "call_answered", "call_completed"]
    assert all(r.priority_class == 3 for r in reports if isinstance(r, rep.CallEvent))
    for r in reports:
        assert rep.from_dict(msgpack.unpackb(msgpack.packb(r.to_dict()))) == r
