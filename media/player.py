"""Prompts: load any audio file once, resample to 8 kHz mono int16 once, cache it.

`load_clip()` reads WAV/FLAC/OGG (and MP3 where libsndfile has it) through soundfile,
mixes to mono and resamples with a Kaiser-windowed sinc (polyphase: one table of weights
per output phase, applied in blocks), then keeps the result in a cache keyed by
(path, mtime, size) so a prompt played to a thousand callers is decoded once. `Player`
hands out 160-sample frames from a clip for single streams; the media clock plays clips
to many streams at once from the same arrays.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

__all__ = ["Clip", "ClipCache", "Player", "load_clip", "resample"]

RATE = 8000
FRAME = 160
Float = npt.NDArray[np.float64]


def resample(x: Float, src_rate: int, dst_rate: int, *, zeros: int = 16,
             beta: float = 8.6, rolloff: float = 0.92) -> Float:
    """Band-limited rational resampling of a 1-D signal (Kaiser-windowed sinc).

    Output sample n sits at input position n*src/dst. Its weights depend only on the
    fractional part of that position, which takes `up` distinct values for a ratio
    up/down in lowest terms, so they are computed once per phase. The cutoff is
    `rolloff` times the lower Nyquist frequency; beta 8.6 gives ~80 dB stop-band.
    """
    if src_rate == dst_rate:
        return x.astype(np.float64, copy=True)
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    cutoff = rolloff * min(1.0, dst_rate / src_rate)  # fraction of the input Nyquist
    half = int(math.ceil(zeros / cutoff))  # taps each side, in input samples
    taps = np.arange(-half + 1, half + 1)  # input offsets around floor(position)
    phases = np.arange(up) / up
    d = phases[:, None] - taps[None, :]  # distance from each tap to the position
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (d / half) ** 2, 0.0, 1.0))) / np.i0(beta)
    weights = cutoff * np.sinc(cutoff * d) * window
    weights /= weights.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
    n_out = (len(x) * up) // down
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    out = np.empty(n_out)
    block = max(1, 1 << 20 // len(taps))
    for start in range(0, n_out, block):
        n = np.arange(start, min(n_out, start + block))
        base = (n * down) // up
        phase = (n * down) % up
        idx = base[:, None] + taps[None, :] + half
        out[start : start + len(n)] = np.einsum("ij,ij->i", padded[idx], weights[phase])
    return out


@dataclass(frozen=True, slots=True)
class Clip:
    """A prompt ready to send: 8 kHz mono int16, read-only, shared by every player."""

    path: str
    samples: npt.NDArray[np.int16]

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


def _decode(path: str) -> npt.NDArray[np.int16]:
    data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    mono = data.mean(axis=1)
    if rate != RATE:
        mono = resample(mono, int(rate), RATE)
    pcm = np.clip(np.round(mono * 32767.0), -32768, 32767).astype(np.int16)
    pcm.flags.writeable = False
    return pcm


class ClipCache:
    """Decoded clips by (path, mtime, size); least recently used dropped past max_bytes."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._clips: OrderedDict[tuple[str, int, int], Clip] = OrderedDict()
        self._bytes = 0
        self.loads = 0  # files decoded (for tests and metrics)

    def get(self, path: str | os.PathLike[str]) -> Clip:
        name = str(Path(path).resolve())
        st = os.stat(name)
        key = (name, st.st_mtime_ns, st.st_size)
        clip = self._clips.get(key)
        if clip is not None:
            self._clips.move_to_end(key)
            return clip
        for old in [k for k in self._clips if k[0] == name]:  # the file changed
            self._bytes -= self._clips.pop(old).samples.nbytes
        clip = Clip(name, _decode(name))
        self.loads += 1
        self._clips[key] = clip
        self._bytes += clip.samples.nbytes
        while self._bytes > self.max_bytes and len(self._clips) > 1:
            _, dropped = self._clips.popitem(last=False)
            self._bytes -= dropped.samples.nbytes
        return clip


_default_cache = ClipCache()


def load_clip(path: str | os.PathLike[str], cache: ClipCache | None = None) -> Clip:
    """The clip for `path`, decoded and resampled at most once per file version."""
    return (cache or _default_cache).get(path)


class Player:
    """160-sample frames of one clip; the last frame is padded with silence."""

    def __init__(self, clip: Clip, *, loop: bool = False) -> None:
        self.clip = clip
        self.loop = loop
        self.position = 0

    @property
    def done(self) -> bool:
        return not self.loop and self.position >= len(self.clip.samples)

    def read_frame(self) -> npt.NDArray[np.int16] | None:
        samples = self.clip.samples
        n = len(samples)
        if self.done or n == 0:
            return None
        if self.loop:
            idx = (self.position + np.arange(FRAME)) % n
            self.position = (self.position + FRAME) % n
            return samples[idx]
        frame = np.zeros(FRAME, dtype=np.int16)
        chunk = samples[self.position : self.position + FRAME]
        frame[: len(chunk)] = chunk
        self.position += FRAME
        return frame
