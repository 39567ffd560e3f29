"""Audio helpers for tests with real phones: a test tone to play, reading what a phone recorded,
and measuring how much of it lies at one frequency (Goertzel)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


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
