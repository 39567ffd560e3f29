"""Acceptance (issue 4, first slice): with real pjsua2 phones, an agent logs in by *11 from
one phone, a caller dials the service number, hears the greeting, waits in the queue, and the
agent's phone auto-answers; both hear each other and the CDR is written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from acd import AgentState
from softswitch.app import Switch
from tests.peers.audio import hear_each_other, tone
from tests.switchkit import running_switch
from tests.test_calls_phones import Setup, cdrs, registered, write_config

pytestmark = pytest.mark.peers

PROMPTS = Path(__file__).resolve().parent.parent / "conf" / "prompts"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    with s.config.open("a") as fh:
        fh.write(
            f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
            '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n'
            '[[queues]]\nname = "general"\nring_timeout_s = 10\nauto_answer = true\n'
            '[[services]]\nnumber = "1500"\nqueue = "general"\n')
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


async def _until(check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


async def test_caller_reaches_logged_in_agent_through_greeting_and_queue(
        setup: Setup, switch: Switch) -> None:
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cc = switch.contact_centre
        assert cc is not None
        # *11, agent ID #, PIN #: the switch answers, reads the keys, logs 2001 in on 1002.
        login = await agent.make_call(setup.uri("*11"))
        await agent.wait_call_state(login, "confirmed", 10)
        await agent.wait_event("media_active", 10)
        await agent.send_dtmf(login, "2001#1234#")
        await agent.wait_call_state(login, "disconnected", 30)  # BYE after "logged in"
        assert cc.engine.agent_state("2001")[0] is AgentState.AVAILABLE
        assert cc.agent_of_device == {"1002": "2001"}

        rec_caller = setup.tmp / "caller.wav"
        cid = await caller.make_call(setup.uri("1500"), play=tone(setup.tmp / "a.wav", 440),
                                     record=str(rec_caller))
        await caller.wait_call_state(cid, "confirmed", 10)  # answered by the switch
        # The greeting plays, then the call is queued and offered: the agent auto-answers.
        inc = await agent.wait_event("incoming_call", 30)
        acid = inc["call"]
        await agent.wait_call_state(acid, "confirmed", 10)
        await agent.wait_event("media_active", 10, where=lambda e: e["call"] == acid)
        await agent.play(acid, tone(setup.tmp / "b.wav", 1000))
        rec_agent = setup.tmp / "agent.wav"
        await agent.record(acid, str(rec_agent))
        # The caller heard the agent's tone (and the agent the caller's) ...
        heard_caller, _, rate = await hear_each_other(caller, cid, rec_caller, agent, acid,
                                                      rec_agent)
        # ... and, before it, the greeting (speech energy early on).
        assert rms(heard_caller[: rate * 2]) > 300, rms(heard_caller[: rate * 2])
        assert cc.engine.agent_state("2001")[0] is AgentState.ON_CALL

        await caller.hangup(cid)
        await agent.wait_call_state(acid, "disconnected", 10)
        await _until(lambda: cc.engine.agent_state("2001")[0] is not AgentState.ON_CALL)
        rows = await cdrs(switch, 3)
        service = [r for r in rows if r.callee == "1500"]
        assert len(service) == 1 and service[0].caller == "1001"
        assert service[0].answered_at is not None and service[0].billable > 2
    finally:
        await agent.close()
        await caller.close()
