"""Acceptance (issue 4, ACD-3): a mobile-number caller overtakes a fixed-line caller who
arrived earlier.

Real pjsua2 phones: the agent logs in by *11 and goes on a break by *13 (aux); a fixed-line
caller (0215550100) dials 1500 and waits in the queue, then a mobile caller (081234567890)
dials 1500 and waits too. The agent makes itself available by *14: the switch rings the agent
with the MOBILE caller first (caller ID on the agent's phone, and the engine's reports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acd import AgentState
from reporting import events as rep
from softswitch.app import Switch
from tests.peers.audio import tone
from tests.peers.phone import Phone
from tests.switchkit import running_switch
from tests.test_calls_phones import USERS, Setup, write_config
from tests.test_contact_centre_phones import PROMPTS, _until

pytestmark = pytest.mark.peers

FIXED, MOBILE = "0215550100", "081234567890"
CALLERS = {FIXED: "pwfixed", MOBILE: "pwmobile"}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    with s.config.open("a") as fh:
        for ext, pw in CALLERS.items():
            fh.write(f'[[users]]\nextension = "{ext}"\npassword = "{pw}"\n')
        fh.write(
            f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
            '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n'
            # auto_answer off: the test sees the offer ring and decides.
            '[[queues]]\nname = "general"\nring_timeout_s = 15\nauto_answer = false\n'
            '[[priority_rules]]\nname = "mobile"\npriority_class = 0\n'
            'caller_regex = "^(\\\\+62|62|0)8"\n'
            '[[services]]\nnumber = "1500"\nqueue = "general"\n')
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


async def _phone(name: str, user: str, password: str, setup: Setup) -> Phone:
    phone = Phone(name)
    await phone.start()
    ev = await phone.register(user, password, setup.registrar)
    assert ev["event"] == "registered", ev
    return phone


async def _feature(phone: Phone, setup: Setup, code: str, keys: str = "") -> None:
    """Dial a feature code, key `keys` once the switch answers, wait for its hang-up."""
    cid = await phone.make_call(setup.uri(code))
    await phone.wait_call_state(cid, "confirmed", 10)
    if keys:
        await phone.wait_event("media_active", 10, where=lambda e: e["call"] == cid)
        await phone.send_dtmf(cid, keys)
    await phone.wait_call_state(cid, "disconnected", 30)


async def test_mobile_caller_overtakes_earlier_fixed_line_caller(
        setup: Setup, switch: Switch) -> None:
    cc = switch.contact_centre
    assert cc is not None
    phones: list[Phone] = []
    try:
        agent = await _phone("agent", "1002", USERS["1002"], setup)
        phones.append(agent)
        fixed = await _phone("fixed", FIXED, CALLERS[FIXED], setup)
        phones.append(fixed)
        mobile = await _phone("mobile", MOBILE, CALLERS[MOBILE], setup)
        phones.append(mobile)

        await _feature(agent, setup, "*11", "2001#1234#")
        assert cc.agent_of_device == {"1002": "2001"}
        await _feature(agent, setup, "*13", "5#")  # a break: aux code 5
        assert cc.engine.agent_state("2001") == (AgentState.AUX, "5")
        # The centre hands every batch of reporting events to its listeners (and keeps none).
        reports: list[rep.ReportEvent] = []
        cc.report_listeners.append(reports.extend)

        play = tone(setup.tmp / "a.wav", 440)
        fid = await fixed.make_call(setup.uri("1500"), play=play)
        await fixed.wait_call_state(fid, "confirmed", 10)
        # The greeting plays, then the fixed-line call waits in the queue ...
        await _until(lambda: len(cc.engine.waiting("general")) == 1, 30)
        mid = await mobile.make_call(setup.uri("1500"), play=play)
        await mobile.wait_call_state(mid, "confirmed", 10)
        # ... and only then does the mobile call join it.
        await _until(lambda: len(cc.engine.waiting("general")) == 2, 30)
        assert cc.engine.pop_reports() == []
        queued = [r for r in reports if isinstance(r, rep.CallQueued)]
        assert [(r.caller, r.priority_class) for r in queued] == [(FIXED, 1), (MOBILE, 0)]
        mobile_call = queued[1].call_id
        assert cc.engine.waiting("general")[0] == mobile_call  # ahead, though it came later

        await _feature(agent, setup, "*14")  # available: the head of the queue is offered
        inc = await agent.wait_event("incoming_call", 15)
        assert f"sip:{MOBILE}@" in inc["remote_uri"], inc
        offered = [r for r in reports if isinstance(r, rep.CallOffered)]
        assert [r.call_id for r in offered] == [mobile_call]
        # The agent takes it; the fixed-line caller still waits, now first in line.
        await agent.answer(inc["call"], 200)
        await agent.wait_call_state(inc["call"], "confirmed", 10)
        await _until(lambda: cc.engine.agent_state("2001")[0] is AgentState.ON_CALL)
        assert len(cc.engine.waiting("general")) == 1
        assert cc.engine.waiting("general")[0] == queued[0].call_id
        await mobile.hangup(mid)
        await agent.wait_call_state(inc["call"], "disconnected", 10)
        await fixed.hangup(fid)
    finally:
        for phone in phones:
            await phone.close()
