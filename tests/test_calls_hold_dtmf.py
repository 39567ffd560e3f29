"""Acceptance (issue 3): hold with music on hold, resume, and DTMF between pjsua2 phones.

The switch and phones are started as in tests/test_calls_phones.py (its fixtures are reused).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from media.player import load_clip
from softswitch.app import Switch
from tests import test_calls_phones
from tests.peers.phone import Phone
from tests.test_calls_phones import Setup, call_and_answer, goertzel, read_wav, registered, tone

pytestmark = pytest.mark.peers

# The fixtures of the first call tests: a switch with users 1001-1003 on a fresh store.
setup = test_calls_phones.setup
switch = test_calls_phones.switch


def _spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    x = samples.astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return np.fft.rfftfreq(len(x), 1 / rate), power


def moh_notes(path: str) -> list[float]:
    """The dominant frequencies of the music-on-hold file (its notes)."""
    freqs, power = _spectrum(load_clip(path).samples, 8000)
    peaks = [i for i in range(1, len(power) - 1)
             if power[i] >= power[i - 1] and power[i] >= power[i + 1]
             and power[i] > 0.05 * power.max()]
    notes: list[float] = []
    for i in sorted(peaks, key=lambda i: -power[i]):
        if all(abs(freqs[i] - f) > 20 for f in notes):
            notes.append(float(freqs[i]))
    return notes


def energy_near(samples: np.ndarray, rate: int, freqs: list[float], width: float = 20) -> float:
    """Fraction of the signal's energy within `width` Hz of any of `freqs`."""
    f, power = _spectrum(samples, rate)
    near = np.zeros(len(f), dtype=bool)
    for freq in freqs:
        near |= np.abs(f - freq) <= width
    return float(power[near].sum() / power.sum()) if power.sum() else 0.0


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


async def _record_for(phone: Phone, call: int, path: Path, seconds: float) -> np.ndarray:
    await phone.record(call, str(path))
    await asyncio.sleep(seconds)  # audio accumulates in real time: a measurement window
    await phone.stop_record(call)
    samples, rate = read_wav(path)
    assert rate > 0
    return samples


async def test_hold_plays_music_to_the_held_party_and_resume_restores_audio(
        setup: Setup, switch: Switch) -> None:
    a = await registered("alice", "1001", setup, codecs="PCMU/8000")
    b = await registered("bob", "1002", setup, codecs="PCMU/8000")
    try:
        tone_a = tone(setup.tmp / "a.wav", 440)
        tone_b = tone(setup.tmp / "b.wav", 1000)
        cid, bcid = await call_and_answer(a, b, setup, "1002", play=tone_a,
                                          callee_play=tone_b)
        await a.wait_event("media_active", 10)
        await b.wait_event("media_active", 10)
        assert switch.b2bua is not None
        (call,) = switch.b2bua.calls.values()
        # Before hold: B hears A's tone.
        before = await _record_for(b, bcid, setup.tmp / "b_before.wav", 1.2)
        _, rate = read_wav(setup.tmp / "b_before.wav")
        tail = before[-rate // 2:]
        assert goertzel(tail, rate, 440) > 10 * goertzel(tail, rate, 1000)

        await a.hold(cid)
        ev = await a.wait_event("media_state", 10, where=lambda e: e["hold"])
        assert ev["call"] == cid
        assert call.held_by == "a"
        # The held party's leg was not re-INVITEd: B stays sendrecv and hears the music.
        held = await _record_for(b, bcid, setup.tmp / "b_held.wav", 2.0)
        tail = held[-rate:]
        notes = moh_notes(switch.config.media.moh)
        assert 3 <= len(notes) <= 8, notes
        assert rms(tail) > 1000, rms(tail)
        assert energy_near(tail, rate, notes) > 0.6, energy_near(tail, rate, notes)
        assert energy_near(tail, rate, [440.0]) < 0.02  # not the holder's audio
        assert switch.media_clock is not None and switch.media_clock.packets > 50

        await a.unhold(cid)
        await a.wait_event("media_active", 10, where=lambda e: e["call"] == cid)
        assert call.held_by is None
        assert call.b_port not in switch.media_clock
        # pjsua re-creates A's stream on resume and drops its conference connections (a
        # phone reconnects its audio in onCallMediaState): A's tone is started again.
        await a.play(cid, tone_a)
        heard_b = await _record_for(b, bcid, setup.tmp / "b_after.wav", 1.5)
        heard_a = await _record_for(a, cid, setup.tmp / "a_after.wav", 0.5)
        tail_b, tail_a = heard_b[-rate // 2:], heard_a[-rate // 4:]
        # Each hears the other's tone again, and B no longer hears music.
        assert goertzel(tail_b, rate, 440) > 10 * goertzel(tail_b, rate, 1000)
        assert energy_near(tail_b, rate, notes) < 0.1
        assert goertzel(tail_a, rate, 1000) > 10 * goertzel(tail_a, rate, 440)
        assert rms(tail_a) > 1000 and rms(tail_b) > 1000
        await a.hangup(cid)
        await b.wait_call_state(bcid, "disconnected", 10)
    finally:
        await a.close()
        await b.close()


async def test_dtmf_rfc4733_and_sip_info_reach_the_other_phone(
        setup: Setup, switch: Switch) -> None:
    a = await registered("alice", "1001", setup)
    b = await registered("bob", "1002", setup)
    try:
        cid, bcid = await call_and_answer(a, b, setup, "1002")
        await a.wait_event("media_active", 10)
        await b.wait_event("media_active", 10)
        await a.send_dtmf(cid, "1234#")
        got = [await b.wait_event("dtmf", 10) for _ in range(5)]
        assert "".join(e["digit"] for e in got) == "1234#"
        assert {e["call"] for e in got} == {bcid}
        assert {e["method"] for e in got} == {0}  # PJSUA_DTMF_METHOD_RFC2833
        # SIP INFO (RFC 6086, application/dtmf-relay) is relayed in the dialog.
        await a.send_dtmf(cid, "56", method="info")
        got = [await b.wait_event("dtmf", 10) for _ in range(2)]
        assert "".join(e["digit"] for e in got) == "56"
        assert {e["method"] for e in got} == {1}  # PJSUA_DTMF_METHOD_SIP_INFO
        # And B to A, the other direction through the relay.
        await b.send_dtmf(bcid, "9*")
        got = [await a.wait_event("dtmf", 10) for _ in range(2)]
        assert "".join(e["digit"] for e in got) == "9*"
        await a.hangup(cid)
        await b.wait_call_state(bcid, "disconnected", 10)
    finally:
        await a.close()
        await b.close()
