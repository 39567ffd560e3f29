#!/usr/bin/env python3
"""Write conf/moh/default.wav: the default music on hold (8 kHz mono 16-bit, ~9.6 s).

Run once; the output is committed. A slow pentatonic melody of pure tones with soft
attack and release, so a test can find it by its notes (523, 587, 659, 784, 880 Hz) and a
listener is not annoyed. Deterministic: running it again writes the same bytes.

    .venv/bin/python scripts/make-moh.py [OUTPUT]
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

RATE = 8000
NOTE_S = 0.4
# C5 D5 E5 G5 A5 (C major pentatonic): no two notes clash, none near the test tones.
NOTES = {"C": 523.25, "D": 587.33, "E": 659.26, "G": 783.99, "A": 880.00}
MELODY = "CEGAGECDEGEDCEGAAGEDCDEC"


def render() -> np.ndarray:
    n = int(RATE * NOTE_S)
    t = np.arange(n) / RATE
    fade = int(0.04 * RATE)
    envelope = np.ones(n)
    envelope[:fade] = np.linspace(0.0, 1.0, fade)
    envelope[-fade:] = np.linspace(1.0, 0.0, fade)
    parts = [np.sin(2 * np.pi * NOTES[name] * t) * envelope for name in MELODY]
    signal = 0.35 * np.concatenate(parts)
    return np.round(signal * 32767).astype("<i2")


def main() -> None:
    default = Path(__file__).resolve().parent.parent / "conf" / "moh" / "default.wav"
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(render().tobytes())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
