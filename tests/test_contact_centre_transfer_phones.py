"""Blind transfer by the agent (SIP REFER, RFC 3515) with real pjsua2 phones: a caller dials
the queue's service number, the logged-in agent answers and transfers the caller to
extension 1003 (a third phone), which answers. The caller and 1003 hear each other, the
agent's phone got the NOTIFYs (100 Trying, then 200 OK) and a BYE, the event log holds
CallTransferred and the queue's transfers figure is 1."""

from __future__ import annotations

import asyncio
import time

import pytest

from acd import AgentState
from softswitch.app import Switch
from tests.peers.audio import hear_each_other, tone
from tests.peers.phone import Phone
from tests.test_calls_phones import Setup, registered
from tests.test_contact_centre_phones import _until, setup, switch  # noqa: F401 (fixtures)

pytestmark = pytest.mark.peers


async def test_agent_blind_transfers_a_queue_call_to_an_extension(
        setup: Setup, switch: Switch) -> None:  # noqa: F811
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    third = await registered("third", "1003", setup, auto_answer=200)
    try:
        cc = switch.contact_centre
        assert cc is not None and switch.reporting is not None and switch.store is not None
        login = await agent.make_call(setup.uri("*11"))
        await agent.wait_call_state(login, "confirmed", 10)
        await agent.wait_event("media_active", 10)
        await agent.send_dtmf(login, "2001#1234#")
        await agent.wait_call_state(login, "disconnected", 30)
        assert cc.engine.agent_state("2001")[0] is AgentState.AVAILABLE

        rec_caller = setup.tmp / "caller.wav"
        cid = await caller.make_call(setup.uri("1500"), play=tone(setup.tmp / "a.wav", 440),
                                     record=str(rec_caller))
        await caller.wait_call_state(cid, "confirmed", 10)
        inc = await agent.wait_event("incoming_call", 30)
        acid = inc["call"]
        await agent.wait_call_state(acid, "confirmed", 10)
        await agent.wait_event("media_active", 10, where=lambda e: e["call"] == acid)
        assert cc.engine.agent_state("2001")[0] is AgentState.ON_CALL

        # The agent transfers the caller to 1003 (REFER, Refer-To sip:1003@switch).
        await agent.xfer(acid, setup.uri("1003"))
        inc3 = await third.wait_event("incoming_call", 15)
        tcid = inc3["call"]
        await third.wait_call_state(tcid, "confirmed", 10)
        await third.wait_event("media_active", 10, where=lambda e: e["call"] == tcid)
        # The agent's phone heard of it: NOTIFY sipfrag 100 Trying, then 200 OK (final).
        # (pjsua2 also reports the REFER's 202 as a non-final 100 status.)
        statuses = [await agent.wait_event("transfer_status", 10)]
        while not statuses[-1]["final"]:
            statuses.append(await agent.wait_event("transfer_status", 10))
        assert [s["code"] for s in statuses[:-1]] and all(
            s["code"] == 100 for s in statuses[:-1]), statuses
        assert statuses[-1]["code"] == 200, statuses
        await agent.wait_call_state(acid, "disconnected", 10)  # the switch's BYE
        await _until(lambda: cc.engine.agent_state("2001")[0] is not AgentState.ON_CALL)

        # Caller and 1003 bridged: audio both ways.
        await third.play(tcid, tone(setup.tmp / "c.wav", 1000))
        rec_third = setup.tmp / "third.wav"
        await third.record(tcid, str(rec_third))
        await hear_each_other(caller, cid, rec_caller, third, tcid, rec_third)

        # Reporting: CallCompleted (transferred) and CallTransferred; transfers = 1.
        async def logged() -> list[dict]:
            rows = await switch.store.read_events(limit=1000)  # type: ignore[union-attr]
            return [r.data() for r in rows]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            events = await logged()
            if any(e.get("type") == "call_transferred" for e in events):
                break
            assert loop.time() < deadline, [e.get("type") for e in events]
            await asyncio.sleep(0.1)
        (xfer,) = [e for e in events if e.get("type") == "call_transferred"]
        assert (xfer["queue"], xfer["agent"], xfer["target"]) == ("general", "2001", "1003")
        (done,) = [e for e in events if e.get("type") == "call_completed"]
        assert done["reason"] == "transferred" and done["talk"] > 0
        snap = switch.reporting.snapshot(time.time())
        (general,) = [q for q in snap["queues"] if q["name"] == "general"]
        assert general["today"]["transfers"] == 1
        assert snap["totals"]["queues"]["general"]["transfers"] == 1

        await caller.hangup(cid)
        await third.wait_call_state(tcid, "disconnected", 10)
    finally:
        await agent.close()
        await caller.close()
        await third.close()


async def _agent_on_queue_call(s: Setup, sw: Switch, agent: Phone,
                               caller: Phone) -> tuple[int, int]:
    """Log 2001 in on 1002, call the service 1500 from 1001; (caller's call, agent's call)."""
    assert sw.contact_centre is not None
    login = await agent.make_call(s.uri("*11"))
    await agent.wait_call_state(login, "confirmed", 10)
    await agent.wait_event("media_active", 10)
    await agent.send_dtmf(login, "2001#1234#")
    await agent.wait_call_state(login, "disconnected", 30)
    cid = await caller.make_call(s.uri("1500"))
    await caller.wait_call_state(cid, "confirmed", 10)
    inc = await agent.wait_event("incoming_call", 30)
    acid = inc["call"]
    await agent.wait_call_state(acid, "confirmed", 10)
    await agent.wait_event("media_active", 10, where=lambda e: e["call"] == acid)
    return cid, acid


async def _final_status(phone: Phone) -> dict:
    while True:
        ev = await phone.wait_event("transfer_status", 15)
        if ev["final"]:
            return ev


async def test_transfer_to_the_service_number_queues_the_call_again(
        setup: Setup, switch: Switch) -> None:  # noqa: F811
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cc = switch.contact_centre
        assert cc is not None and switch.store is not None
        cid, acid = await _agent_on_queue_call(setup, switch, agent, caller)
        await agent.xfer(acid, setup.uri("1500"))
        final = await _final_status(agent)
        assert final["code"] == 200, final  # taken into the queue
        await agent.wait_call_state(acid, "disconnected", 10)
        # Queued again: offered to the (only) agent once more, who answers it.
        again = await agent.wait_event("incoming_call", 30)
        await agent.wait_call_state(again["call"], "confirmed", 10)
        await _until(lambda: cc.engine.agent_state("2001")[0] is AgentState.ON_CALL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            events = [r.data() for r in await switch.store.read_events(limit=1000)]
            queued = [e for e in events if e.get("type") == "call_queued"]
            if len(queued) == 2:
                break
            assert loop.time() < deadline, [e.get("type") for e in events]
            await asyncio.sleep(0.1)
        assert queued[0]["call_id"] == queued[1]["call_id"]
        (xfer,) = [e for e in events if e.get("type") == "call_transferred"]
        assert xfer["target"] == "1500"
        await caller.hangup(cid)
        await agent.wait_call_state(again["call"], "disconnected", 10)
    finally:
        await agent.close()
        await caller.close()


async def test_transfer_to_an_unregistered_extension_is_notified_and_ends(
        setup: Setup, switch: Switch) -> None:  # noqa: F811
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cid, acid = await _agent_on_queue_call(setup, switch, agent, caller)
        await agent.xfer(acid, setup.uri("1003"))  # 1003 is not registered
        final = await _final_status(agent)
        assert final["code"] == 480, final
        await agent.wait_call_state(acid, "disconnected", 10)
        # The caller hears "unavailable", then the switch hangs up.
        await caller.wait_call_state(cid, "disconnected", 30)
    finally:
        await agent.close()
        await caller.close()


async def test_transfer_to_an_unknown_number_is_refused_and_the_call_stays(
        setup: Setup, switch: Switch) -> None:  # noqa: F811
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cc = switch.contact_centre
        assert cc is not None
        cid, acid = await _agent_on_queue_call(setup, switch, agent, caller)
        await agent.xfer(acid, setup.uri("4711"))
        status = await _final_status(agent)  # pjsua2 reports the REFER's 404 as final
        assert status["code"] == 404, status
        await asyncio.sleep(0.5)
        assert cc.engine.agent_state("2001")[0] is AgentState.ON_CALL
        assert not any(e.get("event") == "call_state" and e.get("state") == "disconnected"
                       for e in agent.events + caller.events)
        await caller.hangup(cid)
        await agent.wait_call_state(acid, "disconnected", 10)
    finally:
        await agent.close()
        await caller.close()
