from __future__ import annotations

import pytest

from acd.agents import TRANSITIONS, Agent, AgentState, IllegalTransition, Trigger


def test_every_state_is_reachable_and_can_log_out() -> None:
    targets = set(TRANSITIONS.values())
    assert targets == set(AgentState)
    for state in AgentState:
        if state not in (AgentState.LOGGED_OUT, AgentState.ON_CALL):
            assert TRANSITIONS[(state, Trigger.LOGOUT)] is AgentState.LOGGED_OUT


def test_illegal_transition_raises_and_changes_nothing() -> None:
    agent = Agent("a1", 0)
    with pytest.raises(IllegalTransition):
        agent.apply(Trigger.OFFER, 1.0)
    assert agent.state is AgentState.LOGGED_OUT
    agent.apply(Trigger.LOGIN, 1.0)
    with pytest.raises(IllegalTransition):
        agent.apply(Trigger.ANSWER, 2.0)  # nothing is ringing
    assert agent.state is AgentState.AVAILABLE


def test_walk_through_a_call_with_wrap_up() -> None:
    agent = Agent("a1", 0)
    for trigger, state in [
        (Trigger.LOGIN, AgentState.AVAILABLE),
        (Trigger.OFFER, AgentState.RINGING),
        (Trigger.ANSWER, AgentState.ON_CALL),
        (Trigger.WRAP, AgentState.ACW),
        (Trigger.PAUSE, AgentState.AUX),
        (Trigger.FREE, AgentState.AVAILABLE),
        (Trigger.LOGOUT, AgentState.LOGGED_OUT),
    ]:
        assert agent.apply(trigger, 0.0, "lunch") is state
    assert agent.reason == ""


def test_cancel_keeps_the_place_a_miss_does_not() -> None:
    agent = Agent("a1", 0)
    agent.apply(Trigger.LOGIN, 10.0)
    agent.apply(Trigger.OFFER, 20.0)
    agent.apply(Trigger.CANCEL, 21.0)
    assert agent.idle_since == 10.0
    agent.apply(Trigger.OFFER, 30.0)
    agent.apply(Trigger.MISS, 45.0)
    assert agent.idle_since == 45.0


def test_pending_requests_win_on_release() -> None:
    agent = Agent("a1", 0)
    assert agent.release_trigger(Trigger.FREE) == (Trigger.FREE, "")
    agent.pending_aux = "lunch"
    assert agent.release_trigger(Trigger.FREE) == (Trigger.PAUSE, "lunch")
    agent.pending_logout = True
    assert agent.release_trigger(Trigger.MISS) == (Trigger.LOGOUT, "")
