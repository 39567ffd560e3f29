"""Acceptance (issue 4): with real pjsua2 phones, a caller dials the service number, hears the
greeting, keys 2 at the menu (IVR-2), waits in the queue hearing a position announcement
(ACD-2), the agent logged in by *11 from another phone auto-answers and both hear each other;
the AGENT hangs up, the caller keys 4 at the survey (ACC-8) and the score is stored."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from acd import AgentState
from softswitch.app import Switch
from softswitch.contact_centre import ContactCentre, Session
from tests.peers.audio import hear_each_other, read_wav, tone
from tests.peers.phone import Phone
from tests.switchkit import running_switch
from tests.test_calls_phones import Setup, cdrs, registered, write_config

pytestmark = pytest.mark.peers

PROMPTS = Path(__file__).resolve().parent.parent / "conf" / "prompts"


def silence(path: Path, seconds: float = 2.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    # Silent hold music: whatever the caller hears while queued is the announcement.
    moh = silence(tmp_path / "silent.wav")
    text = s.config.read_text().replace("[media]\n", f'[media]\nmoh = "{moh}"\n', 1)
    s.config.write_text(
        text + f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "id"\n'
        '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n'
        '[[queues]]\nname = "general"\nring_timeout_s = 10\nauto_answer = true\n'
        'announce_welcome = true\nannounce_every_s = 60\nsurvey = true\nsurvey_rate = 1.0\n'
        '[[services]]\nnumber = "1500"\nlanguage = "en"\n'
        '[services.menu]\ntimeout_s = 10\n'
        'options = { "1" = { info = "info" }, "2" = { queue = "general" } }\n')
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


async def _until(check: Callable[[], object], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def service_session(cc: ContactCentre) -> Session | None:
    return next((s for s in cc.sessions.values() if s.kind == "service"), None)


async def hear_greeting(caller: Phone, cc: ContactCentre, setup: Setup, *,
                        play: str | None = None,
                        delayed_offer: bool = False) -> tuple[int, Session, int]:
    """Call the service number: the switch answers and the greeting plays to its end (the
    menu prompt follows) and is heard. The call, its session and the recording's rate."""
    rec = setup.tmp / f"greeting{'-late' if delayed_offer else ''}.wav"
    cid = await caller.make_call(setup.uri("1500"), play=play, record=str(rec),
                                 delayed_offer=delayed_offer)
    await caller.wait_call_state(cid, "confirmed", 10)  # answered by the switch
    await _until(lambda: service_session(cc) is not None)
    s = service_session(cc)
    assert s is not None
    await _until(lambda: s.stage == "menu", 15)
    await caller.stop_record(cid)
    heard, rate = read_wav(rec)
    assert rms(heard[: rate * 2]) > 300, rms(heard[: rate * 2])
    return cid, s, rate


async def test_menu_queue_announcement_agent_then_survey_stored(
        setup: Setup, switch: Switch) -> None:
    agent = await registered("agent", "1002", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cc, store = switch.contact_centre, switch.store
        assert cc is not None and store is not None
        cid, s, rate = await hear_greeting(caller, cc, setup,
                                           play=tone(setup.tmp / "a.wav", 440))
        # After the greeting, the menu prompt: the caller keys 2 (an agent).
        await caller.send_dtmf(cid, "2")
        await _until(lambda: s.queue == "general")
        assert s.stage in ("queued", "announcing")
        assert cc.engine.agent_state("2001")[0] is AgentState.LOGGED_OUT

        # No agent yet: it waits and hears "you are number 1 ..." over silent hold music.
        rec_queue = setup.tmp / "queue.wav"
        await caller.record(cid, str(rec_queue))
        await _until(lambda: s.announcements >= 1 and s.stage == "queued", 20)
        await caller.stop_record(cid)
        announced, _ = read_wav(rec_queue)
        assert len(announced) > rate, len(announced)
        assert rms(announced) > 300, rms(announced)

        # The agent logs in by *11 from its phone; the waiting call is offered, auto-answered.
        login = await agent.make_call(setup.uri("*11"))
        await agent.wait_call_state(login, "confirmed", 10)
        await agent.wait_event("media_active", 10)
        await agent.send_dtmf(login, "2001#1234#")
        await agent.wait_call_state(login, "disconnected", 30)
        inc = await agent.wait_event("incoming_call", 30)
        acid = inc["call"]
        await agent.wait_call_state(acid, "confirmed", 10)
        await agent.wait_event("media_active", 10, where=lambda e: e["call"] == acid)
        await _until(lambda: s.stage == "connected")
        assert s.agent == "2001" and s.survey
        await agent.play(acid, tone(setup.tmp / "b.wav", 1000))
        rec_caller, rec_agent = setup.tmp / "caller.wav", setup.tmp / "agent.wav"
        await caller.record(cid, str(rec_caller))
        await agent.record(acid, str(rec_agent))
        await hear_each_other(caller, cid, rec_caller, agent, acid, rec_agent)

        # The AGENT hangs up first: the caller stays with the switch for the survey.
        await agent.hangup(acid)
        await agent.wait_call_state(acid, "disconnected", 10)
        await _until(lambda: s.stage == "survey")
        assert cc.engine.agent_state("2001")[0] is not AgentState.ON_CALL
        await caller.send_dtmf(cid, "4")
        await _until(lambda: s.stage == "closing")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not (rows := await store.list_surveys(call_id=s.acd_id)):
            assert loop.time() < deadline, "survey not stored"
            await asyncio.sleep(0.05)
        assert len(rows) == 1
        assert (rows[0].score, rows[0].agent, rows[0].queue) == (4, "2001", "general")
        # "Thank you", then the switch hangs up the caller.
        await caller.wait_call_state(cid, "disconnected", 15)
        cdr = [r for r in await cdrs(switch, 3) if r.callee == "1500"]
        assert len(cdr) == 1 and cdr[0].call_id == s.acd_id
        assert cdr[0].hangup_side == "switch"
    finally:
        await agent.close()
        await caller.close()


async def test_delayed_offer_caller_hears_the_greeting(setup: Setup, switch: Switch) -> None:
    """A caller whose INVITE has no SDP (as some carriers' gateways send) is answered with the
    switch's offer, answers in its ACK, and the service starts: the greeting is heard."""
    caller = await registered("caller", "1001", setup)
    try:
        cc = switch.contact_centre
        assert cc is not None
        cid, _, _ = await hear_greeting(caller, cc, setup, delayed_offer=True)
        await caller.hangup(cid)
        await caller.wait_call_state(cid, "disconnected", 10)
    finally:
        await caller.close()
