"""Acceptance (issue 4 call-flow nodes) with real pjsua2 phones: a menu choice takes a
message (voicemail: prompt, beep, the caller's audio recorded until '#', WAV stored and
indexed), and a menu choice transfers the caller to extension 1003 (both hear each other)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from softswitch.app import Switch
from softswitch.contact_centre import _beep
from tests.peers.audio import goertzel, hear_each_other, read_wav, tone
from tests.switchkit import running_switch
from tests.test_calls_phones import Setup, registered, write_config
from tests.test_contact_centre_flow import PROMPTS, _until, rms, service_session, silence

pytestmark = pytest.mark.peers


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    moh = silence(tmp_path / "silent.wav")
    text = s.config.read_text().replace("[media]\n", f'[media]\nmoh = "{moh}"\n', 1)
    s.config.write_text(
        text + f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
        f'voicemail_dir = "{tmp_path / "vm"}"\nvoicemail_max_s = 20\n'
        '[[queues]]\nname = "general"\n'
        '[[services]]\nnumber = "1500"\n'
        '[services.menu]\ntimeout_s = 10\n'
        'options = { "1" = { transfer = "1003" }, "2" = { voicemail = true } }\n')
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


async def test_voicemail_records_the_caller_until_hash_and_indexes_it(
        setup: Setup, switch: Switch) -> None:
    caller = await registered("caller", "1001", setup)
    try:
        cc, store = switch.contact_centre, switch.store
        assert cc is not None and store is not None
        cid = await caller.make_call(setup.uri("1500"), play=tone(setup.tmp / "a.wav", 440))
        await caller.wait_call_state(cid, "confirmed", 10)
        await _until(lambda: service_session(cc) is not None)
        s = service_session(cc)
        assert s is not None
        await _until(lambda: s.stage == "menu", 15)
        await caller.send_dtmf(cid, "2")
        # "Please leave a message after the tone", the beep, then recording.
        await _until(lambda: s.stage == "recording", 20)
        await asyncio.sleep(2.0)  # the caller's 440 Hz "message"
        await caller.send_dtmf(cid, "#")
        await _until(lambda: s.stage == "closing", 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not (rows := await store.list_voicemails(call_id=s.acd_id)):
            assert loop.time() < deadline, "voicemail not indexed"
            await asyncio.sleep(0.05)
        assert len(rows) == 1
        row = rows[0]
        assert (row.caller, row.service) == ("1001", "1500")
        assert 1.5 <= row.seconds <= 3.5, row.seconds
        path = Path(row.path)
        assert path.is_file() and path.parent.parent.parent.parent == setup.tmp / "vm"
        assert path.name.endswith(".wav") and len(row.sha256) == 64
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        stereo, rate = read_wav(path)
        left = stereo.reshape(-1, 2)[:, 0] if stereo.ndim == 1 else stereo[:, 0]
        assert abs(len(left) / rate - row.seconds) < 0.05
        body = left[rate // 4: -rate // 4]
        assert rms(body) > 1000, rms(body)
        assert goertzel(body, rate, 440) > 10 * goertzel(body, rate, 1000)
        # "Thank you", then the switch hangs up.
        await caller.wait_call_state(cid, "disconnected", 15)
    finally:
        await caller.close()


async def test_transfer_rings_the_extension_and_bridges_it(setup: Setup, switch: Switch) -> None:
    callee = await registered("callee", "1003", setup, auto_answer=200)
    caller = await registered("caller", "1001", setup)
    try:
        cc = switch.contact_centre
        assert cc is not None
        cid = await caller.make_call(setup.uri("1500"), play=tone(setup.tmp / "a.wav", 440))
        await caller.wait_call_state(cid, "confirmed", 10)
        await _until(lambda: service_session(cc) is not None)
        s = service_session(cc)
        assert s is not None
        await _until(lambda: s.stage == "menu", 15)
        await caller.send_dtmf(cid, "1")
        inc = await callee.wait_event("incoming_call", 15)
        bcid = inc["call"]
        await callee.wait_call_state(bcid, "confirmed", 10)
        await callee.wait_event("media_active", 10, where=lambda e: e["call"] == bcid)
        await _until(lambda: s.stage == "connected")
        await callee.play(bcid, tone(setup.tmp / "b.wav", 1000))
        rec_caller, rec_callee = setup.tmp / "caller.wav", setup.tmp / "callee.wav"
        await caller.record(cid, str(rec_caller))
        await callee.record(bcid, str(rec_callee))
        await hear_each_other(caller, cid, rec_caller, callee, bcid, rec_callee)
        await callee.hangup(bcid)
        await caller.wait_call_state(cid, "disconnected", 10)
    finally:
        await callee.close()
        await caller.close()


def test_beep_is_a_short_tone() -> None:
    clip = _beep()
    assert clip.duration == pytest.approx(0.4)
    samples = np.asarray(clip.samples)
    assert goertzel(samples, 8000, 1000) > 10 * goertzel(samples, 8000, 440)
