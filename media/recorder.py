"""Call recording: stereo, caller on the left channel, callee (agent) on the right.

Each leg `push()`es its decoded 20 ms frames as they come; the media clock calls `tick()`
once per 20 ms and one stereo frame is committed, with silence for a leg that sent
nothing, so the channels stay aligned whatever each leg's loss or jitter. Frames collect
in memory and are written every `flush_frames`; the WAV header's sizes are rewritten at
each flush, so a crash leaves a playable file up to the last flush. MP3 is written
through libsndfile (LAME) when asked for and available.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt
import soundfile

__all__ = ["CALLEE", "CALLER", "Recorder"]

CALLER = 0  # left
CALLEE = 1  # right
FRAME = 160
RATE = 8000
MAX_QUEUED = 5  # frames one leg may run ahead before the oldest is dropped


def _wav_header(data_bytes: int) -> bytes:
    # RIFF/WAVE with a PCM fmt chunk (WAVE_FORMAT_PCM = 1): 8 kHz, 2 channels, 16 bit.
    channels, bits = 2, 16
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, bits)
        + b"data" + struct.pack("<I", data_bytes)
    )


class Recorder:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["wav", "mp3"] = "wav",
        flush_frames: int = 50,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.format = format
        self.flush_frames = flush_frames
        self.fsync = fsync
        self.frames = 0  # stereo frames committed
        self._queues: tuple[deque[npt.NDArray[np.int16]], ...] = (deque(), deque())
        self._buffer = np.zeros((flush_frames * FRAME, 2), dtype=np.int16)
        self._buffered = 0
        self._data_bytes = 0
        self._file: BinaryIO | None = None
        self._sf: soundfile.SoundFile | None = None
        if format == "wav":
            self._file = open(self.path, "wb")  # noqa: SIM115 - lives as long as the recorder
            self._file.write(_wav_header(0))
            self._file.flush()
        elif format == "mp3":
            self._sf = soundfile.SoundFile(
                self.path, "w", samplerate=RATE, channels=2, format="MP3",
                subtype="MPEG_LAYER_III",
            )
        else:
            raise ValueError(f"unknown recording format {format!r}")

    @property
    def closed(self) -> bool:
        return self._file is None and self._sf is None

    def push(self, leg: int, pcm: npt.NDArray[np.int16]) -> None:
        """A decoded frame from CALLER or CALLEE, to be committed at the next tick."""
        queue = self._queues[leg]
        if len(queue) >= MAX_QUEUED:
            queue.popleft()  # a leg bursting ahead: keep the newest audio
        queue.append(pcm)

    def tick(self) -> None:
        """Commit one 20 ms stereo frame; a leg with nothing queued contributes silence."""
        start = self._buffered * FRAME
        rows = self._buffer[start : start + FRAME]
        for leg in (CALLER, CALLEE):
            queue = self._queues[leg]
            if queue:
                pcm = queue.popleft()
                rows[: len(pcm), leg] = pcm[:FRAME]
                rows[len(pcm) :, leg] = 0
            else:
                rows[:, leg] = 0
        self._buffered += 1
        self.frames += 1
        if self._buffered >= self.flush_frames:
            self.flush()

    def write(self, caller: npt.NDArray[np.int16] | None,
              callee: npt.NDArray[np.int16] | None) -> None:
        """Both legs' frames for one tick at once (None = silence)."""
        if caller is not None:
            self.push(CALLER, caller)
        if callee is not None:
            self.push(CALLEE, callee)
        self.tick()

    def flush(self) -> None:
        if not self._buffered:
            return
        data = self._buffer[: self._buffered * FRAME]
        if self._file is not None:
            self._file.write(data.astype("<i2", copy=False).tobytes())
            self._data_bytes += data.nbytes
            # Patch the RIFF and data sizes so the file is valid up to here.
            end = self._file.tell()
            self._file.seek(4)
            self._file.write(struct.pack("<I", 36 + self._data_bytes))
            self._file.seek(40)
            self._file.write(struct.pack("<I", self._data_bytes))
            self._file.seek(end)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        elif self._sf is not None:
            # Float samples: libsndfile 1.2's MP3 path mangles level and channels when fed
            # int16 in several writes (measured), float32 comes out right.
            self._sf.write(data.astype(np.float32) / 32768.0)
            self._sf.flush()
        self._buffered = 0

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sf is not None:
            self._sf.close()
            self._sf = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
