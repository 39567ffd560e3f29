"""Acceptance: real pjsua2 phones call each other through the switch (issue 3, first slice).

Each test starts its own switch (UDP+TCP SIP, HTTP, SQLite store, a small RTP port range) in
this process, registers phones as 1001/1002 (and a second 1002), and checks what each phone
sees (final status, SDP address, audio) and the CDR the switch wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from softswitch.app import Switch
from softswitch.store.base import Cdr
from tests.peers import free_port
from tests.peers.audio import goertzel, read_wav, tone
from tests.peers.phone import Phone
from tests.switchkit import running_switch

pytestmark = pytest.mark.peers

USERS = {"1001": "pw1001", "1002": "pw1002", "1003": "pw1003"}
RTP_LOW = 31000
RTP_HIGH = 31199


@dataclass
class Setup:
    config: Path
    sip_port: int
    tmp: Path

    @property
    def registrar(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.sip_port}"


def write_config(tmp_path: Path, ring_timeout: float = 30) -> Setup:
    sip_port = free_port("both")
    http_port = free_port("tcp")
    users = "".join(
        f'\n[[users]]\nextension = "{ext}"\npassword = "{pw}"\nname = "User {ext}"\n'
        for ext, pw in USERS.items()
    )
    config = tmp_path / "softswitch.toml"
    config.write_text(
        "[sip]\n"
        f'listen = ["udp:127.0.0.1:{sip_port}", "tcp:127.0.0.1:{sip_port}"]\n'
        'domain = "127.0.0.1"\n'
        "[http]\n"
        f'listen = "127.0.0.1:{http_port}"\n'
        "[store]\n"
        f'url = "sqlite:///{tmp_path / "switch.db"}"\n'
        "[media]\n"
        f'rtp_ports = "{RTP_LOW}-{RTP_HIGH}"\n'
        "[calls]\n"
        f"ring_timeout_s = {ring_timeout}\n"
        "[log]\n"
        'level = "info"\n' + users
    )
    return Setup(config, sip_port, tmp_path)


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Setup:
    # Parametrized indirectly with a ring time by the no-answer test.
    return write_config(tmp_path, getattr(request, "param", 30))


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


async def registered(name: str, user: str, setup: Setup, **kw: object) -> Phone:
    phone = Phone(name, **kw)  # type: ignore[arg-type]
    await phone.start()
    ev = await phone.register(user, USERS[user], setup.registrar)
    assert ev["event"] == "registered", ev
    return phone


async def cdrs(sw: Switch, n: int = 1, timeout: float = 5.0) -> list[Cdr]:
    assert sw.store is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = await sw.store.list_cdrs()
        if len(rows) >= n or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def call_and_answer(caller: Phone, callee: Phone, setup: Setup, user: str, *,
                          play: str | None = None, record: str | None = None,
                          callee_play: str | None = None, callee_record: str | None = None,
                          delayed_offer: bool = False) -> tuple[int, int]:
    cid = await caller.make_call(setup.uri(user), play=play, record=record,
                                 delayed_offer=delayed_offer)
    inc = await callee.wait_event("incoming_call", 10)
    await callee.answer(inc["call"], 200)
    if callee_play:
        await callee.play(inc["call"], callee_play)
    if callee_record:
        await callee.record(inc["call"], callee_record)
    await caller.wait_call_state(cid, "confirmed", 10)
    return cid, inc["call"]


# -- the basic call -----------------------------------------------------------------------------

async def _audio_call(setup: Setup, sw: Switch, caller_codecs: str, callee_codecs: str, *,
                      delayed_offer: bool = False) -> None:
    a = await registered("alice", "1001", setup, codecs=caller_codecs)
    b = await registered("bob", "1002", setup, codecs=callee_codecs)
    try:
        tone_a = tone(setup.tmp / "a.wav", 440)
        tone_b = tone(setup.tmp / "b.wav", 1000)
        rec_a, rec_b = setup.tmp / "rec_a.wav", setup.tmp / "rec_b.wav"
        cid, bcid = await call_and_answer(a, b, setup, "1002", play=tone_a, record=str(rec_a),
                                          callee_play=tone_b, callee_record=str(rec_b),
                                          delayed_offer=delayed_offer)
        inc_from = next(e for e in b.history if e.get("event") == "incoming_call")
        # Caller identity reaches the callee: display name and number.
        assert '"User 1001"' in inc_from["remote_uri"] and "sip:1001@" in inc_from["remote_uri"]
        ma = await a.wait_event("media_active", 10)
        mb = await b.wait_event("media_active", 10)
        # Both phones send to the switch, never to each other (media anchoring).
        for ev, other in ((ma, mb), (mb, ma)):
            host, port = ev["remote_rtp"].rsplit(":", 1)
            assert host == "127.0.0.1" and RTP_LOW <= int(port) <= RTP_HIGH, ev
            assert ev["remote_rtp"] != other["local_rtp"]
        await asyncio.sleep(2.0)
        await a.stop_record(cid)
        await b.stop_record(bcid)
        await a.hangup(cid)
        await b.wait_call_state(bcid, "disconnected", 10)
        heard_a, rate = read_wav(rec_a)
        heard_b, _ = read_wav(rec_b)
        tail_a, tail_b = heard_a[-8000:], heard_b[-8000:]
        # Each hears the other's tone (and not its own).
        assert goertzel(tail_a, rate, 1000) > 10 * goertzel(tail_a, rate, 440)
        assert goertzel(tail_b, rate, 440) > 10 * goertzel(tail_b, rate, 1000)
        assert np.sqrt(np.mean(tail_a.astype(float) ** 2)) > 1000
        assert np.sqrt(np.mean(tail_b.astype(float) ** 2)) > 1000
        (row,) = await cdrs(sw)
        assert (row.caller, row.callee, row.disposition) == ("1001", "1002", "answered")
        assert row.hangup_side == "caller" and row.hangup_cause == "bye"
        assert row.answered_at is not None and 1.5 < row.billable < row.duration
        assert len(sw.relay or []) == 0  # ports released
    finally:
        await a.close()
        await b.close()


async def test_call_anchored_media_both_directions(setup: Setup, switch: Switch) -> None:
    await _audio_call(setup, switch, "PCMU/8000", "PCMU/8000")


async def test_call_transcodes_pcmu_to_pcma(setup: Setup, switch: Switch) -> None:
    await _audio_call(setup, switch, "PCMU/8000", "PCMA/8000")


async def test_delayed_offer_call_has_audio_both_ways(setup: Setup, switch: Switch) -> None:
    """RFC 3261 §13.2.1: the caller's INVITE has no SDP; the switch offers in its 2xx (the
    callee's codec first), the caller answers in the ACK, and the media flows."""
    await _audio_call(setup, switch, "PCMU/8000", "PCMA/8000", delayed_offer=True)


# -- failures -----------------------------------------------------------------------------------

async def _failed_call(setup: Setup, sw: Switch, user: str, status: int, disposition: str,
                       callee_action: int | None = None, *, cancel: bool = False,
                       register_callee: bool = True, timeout: float = 15) -> None:
    a = await registered("alice", "1001", setup)
    b = await registered("bob", "1002", setup) if register_callee else None
    try:
        cid = await a.make_call(setup.uri(user))
        if b is not None and user == "1002":
            inc = await b.wait_event("incoming_call", 10)
            if callee_action is not None:
                await b.answer(inc["call"], callee_action)
            if cancel:
                await a.wait_call_state(cid, "early", 10)
                await a.hangup(cid)
        ev = await a.wait_call_state(cid, "disconnected", timeout)
        assert ev["code"] == status, ev
        (row,) = await cdrs(sw)
        assert row.disposition == disposition, row
        assert row.answered_at is None and row.billable == 0
        if b is not None and (cancel or disposition == "no_answer"):
            ev_b = await b.wait_event("call_state", 10,
                                      where=lambda e: e["state"] == "disconnected")
            assert ev_b["code"] == 487, ev_b
    finally:
        await a.close()
        if b is not None:
            await b.close()


async def test_busy_486(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "1002", 486, "busy", 486)


async def test_reject_603(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "1002", 603, "rejected", 603)


async def test_unknown_number_404(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "4999", 404, "not_found", register_callee=False)


async def test_not_registered_480(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "1003", 480, "unavailable", register_callee=False)


async def test_caller_cancels_487(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "1002", 487, "cancelled", cancel=True)


@pytest.mark.parametrize("setup", [2], indirect=True)
async def test_no_answer_after_ring_timeout(setup: Setup, switch: Switch) -> None:
    await _failed_call(setup, switch, "1002", 480, "no_answer")


# -- parallel ringing ---------------------------------------------------------------------------

async def test_parallel_ringing_first_answer_wins(setup: Setup, switch: Switch) -> None:
    a = await registered("alice", "1001", setup)
    b1 = await registered("bob1", "1002", setup)
    b2 = await registered("bob2", "1002", setup)
    try:
        cid = await a.make_call(setup.uri("1002"))
        inc1 = await b1.wait_event("incoming_call", 10)
        inc2 = await b2.wait_event("incoming_call", 10)
        await b2.answer(inc2["call"], 200)
        await a.wait_call_state(cid, "confirmed", 10)
        ev = await b1.wait_call_state(inc1["call"], "disconnected", 10)
        assert ev["code"] == 487, ev
        await b2.hangup(inc2["call"])
        await a.wait_call_state(cid, "disconnected", 10)
        (row,) = await cdrs(switch)
        assert row.disposition == "answered" and row.hangup_side == "callee"
    finally:
        for p in (a, b1, b2):
            await p.close()
