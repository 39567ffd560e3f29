"""Audio helpers for tests with real phones: a test tone to play, reading what a phone recorded,
and measuring how much of it lies at one frequency (Goertzel)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tests.peers.phone import Phone


def tone(path: Path, freq: float, seconds: float = 3.0) -> str:
    t = np.arange(int(8000 * seconds)) / 8000
    samples = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return str(path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples of a pjsua recording (RIFF sizes may be 0: read the data chunk to EOF)."""
    data = path.read_bytes()
    rate = int.from_bytes(data[24:28], "little")
    pos = data.find(b"data")
    assert pos > 0, "no data chunk"
    return np.frombuffer(data[pos + 8:len(data) - (len(data) - pos - 8) % 2], "<i2"), rate


def goertzel(samples: np.ndarray, rate: int, freq: float) -> float:
    """Relative energy at `freq` (normalised by total energy)."""
    x = samples.astype(np.float64)
    if not len(x) or not np.any(x):
        return 0.0
    k = 2 * np.cos(2 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return float(power / (len(x) * np.sum(x * x)))


async def hear_each_other(caller: Phone, cid: int, rec_caller: Path, other: Phone, ocid: int,
                          rec_other: Path, *, caller_hz: float = 440, other_hz: float = 1000,
                          seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray, int]:
    """Both ends recording, each playing its tone: after `seconds` (audio accumulates in real
    time) the last half second each one recorded holds the other's tone at least ten times
    stronger than its own. Both recordings and their rate."""
    await asyncio.sleep(seconds)
    await other.stop_record(ocid)
    await caller.stop_record(cid)
    heard_caller, rate = read_wav(rec_caller)
    heard_other, _ = read_wav(rec_other)
    tail_c, tail_o = heard_caller[-rate // 2:], heard_other[-rate // 2:]
    assert goertzel(tail_c, rate, other_hz) > 10 * goertzel(tail_c, rate, caller_hz)
    assert goertzel(tail_o, rate, caller_hz) > 10 * goertzel(tail_o, rate, other_hz)
    return heard_caller, heard_other, rate
