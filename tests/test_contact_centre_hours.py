"""Acceptance (issue 4, IVR-3): outside hours the after-hours branch answers.

The hours logic is a pure function of the wall clock (`OpeningHours.is_open(wall)`), tested
at chosen instants in Asia/Jakarta (UTC+7, no DST); then real pjsua2 calls: to a service whose
schedule is closed now the caller hears the after-hours prompt and the switch hangs up, the
call never reaching the queue; to one open now the caller hears the greeting and waits in the
queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from softswitch.acd_config import OpeningHours
from softswitch.app import Switch
from softswitch.config import load_config
from tests.peers.audio import read_wav, tone
from tests.switchkit import running_switch
from tests.test_calls_phones import Setup, registered, write_config
from tests.test_contact_centre_phones import PROMPTS, _until, rms

REPO = Path(__file__).resolve().parent.parent
JAKARTA = ZoneInfo("Asia/Jakarta")
WEEKDAYS = {d: ("08:00-17:00",) for d in ("mon", "tue", "wed", "thu", "fri")}


def at(text: str) -> float:
    """Wall time of a local Jakarta date-time, e.g. "2026-11-30 08:00" (a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=JAKARTA).timestamp()


# -- the hours logic (pure) ------------------------------------------------------------------

@pytest.mark.parametrize(("local", "open_"), [
    ("2026-11-30 07:59:59", False),  # Monday, before opening
    ("2026-11-30 08:00", True),  # opening minute is open
    ("2026-11-30 12:30", True),
    ("2026-11-30 16:59:59", True),
    ("2026-11-30 17:00", False),  # closing minute is closed
    ("2026-12-04 10:00", True),  # Friday
    ("2026-12-05 10:00", False),  # Saturday
    ("2026-12-06 10:00", False),  # Sunday
])
def test_weekday_schedule(local: str, open_: bool) -> None:
    assert OpeningHours(timezone="Asia/Jakarta", **WEEKDAYS).is_open(at(local)) is open_


def test_local_time_not_utc() -> None:
    hours = OpeningHours(timezone="Asia/Jakarta", **WEEKDAYS)
    # 01:30 UTC Monday is 08:30 in Jakarta: open; 16:30 UTC Monday is 23:30 there: closed.
    assert hours.is_open(datetime(2026, 11, 30, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    assert not hours.is_open(datetime(2026, 11, 30, 16, 30, tzinfo=ZoneInfo("UTC")).timestamp())


def test_holiday_closes_the_whole_day_and_24_00_ends_it() -> None:
    hours = OpeningHours(timezone="Asia/Jakarta", mon=("00:00-24:00",), tue=("00:00-24:00",),
                         holidays=("2026-12-01",))
    assert hours.is_open(at("2026-11-30 23:59:59"))
    assert not hours.is_open(at("2026-12-01 00:00"))  # the holiday, a Tuesday
    assert not hours.is_open(at("2026-12-01 12:00"))
    split = OpeningHours(timezone="Asia/Jakarta", mon=("08:00-12:00", "13:00-17:00"))
    assert split.is_open(at("2026-11-30 11:59"))
    assert not split.is_open(at("2026-11-30 12:30"))  # the lunch break
    assert split.is_open(at("2026-11-30 13:00"))


def test_demo_centre_1501_keeps_office_hours() -> None:
    config = load_config(REPO / "conf" / "softswitch.toml")
    services = {s.number: s for s in config.services}
    assert services["1500"].hours is None  # open at all hours
    hours = services["1501"].hours
    assert hours is not None and hours.timezone == "Asia/Jakarta"
    assert hours.is_open(at("2026-11-30 09:00"))
    assert not hours.is_open(at("2026-11-30 18:00"))
    assert not hours.is_open(at("2026-11-28 09:00"))  # Saturday


# -- real calls ------------------------------------------------------------------------------

@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    today = datetime.now(JAKARTA).date()
    # Closed now: every day open, but today and tomorrow are holidays (tomorrow too, so the
    # test holds if Jakarta's midnight passes while it runs).
    days = "".join(f'{d} = ["00:00-24:00"]\n'
                   for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    holidays = [today.isoformat(), (today + timedelta(days=1)).isoformat()]
    with s.config.open("a") as fh:
        fh.write(
            f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
            '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n'
            '[[queues]]\nname = "general"\n'
            '[[services]]\nnumber = "1501"\nqueue = "general"\n'
            f'[services.hours]\ntimezone = "Asia/Jakarta"\n{days}holidays = {holidays!r}\n'
            '[[services]]\nnumber = "1502"\nqueue = "general"\n'
            f'[services.hours]\ntimezone = "Asia/Jakarta"\n{days}')
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


def _speech(heard: np.ndarray, rate: int) -> float:
    """Seconds of the recording with speech energy (20 ms frames above the noise)."""
    frame = rate // 50
    frames = heard[: len(heard) // frame * frame].reshape(-1, frame).astype(np.float64)
    return float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > 300)) / 50


@pytest.mark.peers
async def test_after_hours_prompt_then_hang_up_and_open_hours_queue(
        setup: Setup, switch: Switch) -> None:
    cc = switch.contact_centre
    assert cc is not None
    services = {s.number: s for s in cc.config.services}
    assert services["1501"].hours is not None and services["1502"].hours is not None
    assert not services["1501"].hours.is_open(datetime.now(JAKARTA).timestamp())
    assert services["1502"].hours.is_open(datetime.now(JAKARTA).timestamp())
    caller = await registered("caller", "1001", setup)
    try:
        # Closed: the switch answers, plays the after-hours prompt and hangs up by itself.
        rec = setup.tmp / "closed.wav"
        cid = await caller.make_call(setup.uri("1501"), play=tone(setup.tmp / "a.wav", 440),
                                     record=str(rec))
        await caller.wait_call_state(cid, "confirmed", 10)
        await caller.wait_call_state(cid, "disconnected", 20)  # BYE from the switch
        heard, rate = read_wav(rec)
        prompt, prompt_rate = read_wav(PROMPTS / "en" / "after-hours.wav")
        # The caller heard (most of) the after-hours prompt, and nothing after it.
        assert _speech(heard, rate) >= 0.6 * _speech(prompt, prompt_rate), (
            _speech(heard, rate), _speech(prompt, prompt_rate))
        assert len(heard) / rate < len(prompt) / prompt_rate + 2.0
        assert cc.engine.calls == 0 and cc.engine.waiting("general") == []

        # Open: the greeting, then the queue (no agent logged in: the call waits).
        rec = setup.tmp / "open.wav"
        cid = await caller.make_call(setup.uri("1502"), play=tone(setup.tmp / "a.wav", 440),
                                     record=str(rec))
        await caller.wait_call_state(cid, "confirmed", 10)
        await _until(lambda: len(cc.engine.waiting("general")) == 1, 30)
        call = cc.engine.call(cc.engine.waiting("general")[0])
        assert call is not None and call.caller == "1001" and call.dialled == "1502"
        await caller.stop_record(cid)
        heard, rate = read_wav(rec)
        assert rms(heard[: rate * 2]) > 300, rms(heard[: rate * 2])  # the greeting
        assert not any(e.get("event") == "call_state" and e.get("call") == cid
                       and e.get("state") == "disconnected" for e in caller.events)
        await caller.hangup(cid)
        await caller.wait_call_state(cid, "disconnected", 10)
        await _until(lambda: cc.engine.calls == 0)
    finally:
        await caller.close()
