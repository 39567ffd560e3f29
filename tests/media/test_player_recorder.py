from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from media.player import ClipCache, Player, resample
from media.recorder import CALLEE, CALLER, Recorder


def goertzel_power(x: np.ndarray, rate: int, freq: float) -> float:
    """Normalised power of `x` at `freq` (Goertzel), ~amplitude**2 / 4 for a pure tone."""
    n = len(x)
    k = round(n * freq / rate)
    w = 2 * np.pi * k / n
    coeff = 2 * np.cos(w)
    s1 = s2 = 0.0
    for v in x.astype(np.float64) / 32768.0:
        s1, s2 = v + coeff * s1 - s2, s1
    return float((s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n))


def write_tone(path: Path, rate: int, freq: float, seconds: float, channels: int = 1,
               fmt: str | None = None, amplitude: float = 0.5) -> None:
    t = np.arange(int(rate * seconds)) / rate
    tone = amplitude * np.sin(2 * np.pi * freq * t)
    data = np.column_stack([tone] * channels) if channels > 1 else tone
    soundfile.write(path, data, rate, format=fmt)


def test_44k1_tone_keeps_its_frequency(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_tone(path, 44100, 1000.0, 1.0)
    clip = ClipCache().get(path)
    assert len(clip.samples) == 8000 and clip.samples.dtype == np.int16
    body = clip.samples[400:7600]
    at_1k = goertzel_power(body, 8000, 1000.0)
    assert at_1k == pytest.approx(0.25 * 0.25, rel=0.02)  # amplitude 0.5 kept
    for other in (500.0, 1500.0, 3000.0):
        assert goertzel_power(body, 8000, other) < at_1k * 1e-4


def test_above_nyquist_is_filtered_not_aliased(tmp_path: Path) -> None:
    path = tmp_path / "high.flac"
    write_tone(path, 48000, 6000.0, 0.5, channels=2)  # 6 kHz would alias to 2 kHz
    clip = ClipCache().get(path)
    body = clip.samples[200:-200]
    assert goertzel_power(body, 8000, 2000.0) < 1e-7
    assert np.abs(body).max() < 50


@pytest.mark.parametrize(("rate", "fmt"), [(8000, "WAV"), (16000, "FLAC"), (22050, "OGG"),
                                           (11025, "WAV")])
def test_formats_and_rates(tmp_path: Path, rate: int, fmt: str) -> None:
    path = tmp_path / f"p.{fmt.lower()}"
    write_tone(path, rate, 440.0, 0.5, fmt=fmt)
    clip = ClipCache().get(path)
    assert abs(len(clip.samples) - 4000) <= 1
    body = clip.samples[400:3600]
    assert goertzel_power(body, 8000, 440.0) > 0.05


def test_mp3_when_libsndfile_has_it(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("libsndfile without MP3")
    path = tmp_path / "p.mp3"
    write_tone(path, 44100, 1000.0, 1.0, fmt="MP3")
    clip = ClipCache().get(path)
    assert goertzel_power(clip.samples[1000:7000], 8000, 1000.0) > 0.05


def test_cache_loads_once_per_file_version(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    write_tone(path, 16000, 440.0, 0.2)
    cache = ClipCache()
    a, b = cache.get(path), cache.get(str(path))
    assert a is b and cache.loads == 1
    write_tone(path, 16000, 880.0, 0.3)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    c = cache.get(path)
    assert c is not a and cache.loads == 2 and len(c.samples) == 2400
    with pytest.raises(ValueError):
        a.samples[0] = 1  # shared by every player: read-only


def test_player_frames_and_loop(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    soundfile.write(path, np.arange(1, 401, dtype=np.int16), 8000, subtype="PCM_16")
    clip = ClipCache().get(path)
    assert clip.samples[:3].tolist() == [1, 2, 3]
    p = Player(clip)
    frames = [p.read_frame() for _ in range(4)]
    assert frames[3] is None and p.done
    assert frames[2] is not None and frames[2][79] == 400 and not frames[2][80:].any()
    looped = Player(clip, loop=True)
    for _ in range(3):
        frame = looped.read_frame()
    assert frame is not None and frame[79] == 400 and frame[80] == 1


def test_resample_identity_and_upsample() -> None:
    x = np.sin(np.arange(1000) / 10)
    assert np.array_equal(resample(x, 8000, 8000), x)
    y = resample(np.sin(2 * np.pi * 500 * np.arange(4000) / 4000), 4000, 8000)
    assert len(y) == 8000
    ref = np.sin(2 * np.pi * 500 * np.arange(8000) / 8000)
    assert np.abs(y[200:-200] - ref[200:-200]).max() < 1e-3


def test_recorder_channels_and_alignment(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    with Recorder(path, flush_frames=4) as rec:
        rec.push(CALLER, np.full(160, 1000, dtype=np.int16))
        rec.push(CALLEE, np.full(160, -2000, dtype=np.int16))
        rec.tick()
        rec.push(CALLER, np.full(160, 1001, dtype=np.int16))  # callee lost this frame
        rec.tick()
        rec.tick()  # both silent
        rec.push(CALLEE, np.full(160, -2003, dtype=np.int16))  # caller lost this one
        rec.push(CALLEE, np.full(160, -2004, dtype=np.int16))  # a burst: queued
        rec.tick()
        rec.tick()
        rec.write(np.full(160, 1005, dtype=np.int16), None)
    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 8000 and data.shape == (6 * 160, 2)
    left = data[::160, 0].tolist()
    right = data[::160, 1].tolist()
    assert left == [1000, 1001, 0, 0, 0, 1005]
    assert right == [-2000, 0, 0, -2003, -2004, 0]
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)


def test_recorder_file_is_playable_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "crash.wav"
    rec = Recorder(path, flush_frames=5)
    for i in range(12):
        rec.write(np.full(160, i, dtype=np.int16), np.full(160, -i, dtype=np.int16))
    # No close(): the process "dies" here. 10 frames were flushed, 2 still in memory.
    data, rate = soundfile.read(path, dtype="int16")
    assert data.shape == (10 * 160, 2)
    assert data[-1].tolist() == [9, -9]
    rec.close()
    assert soundfile.info(str(path)).frames == 12 * 160


def test_recorder_mp3(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("libsndfile without MP3")
    path = tmp_path / "call.mp3"
    t = np.arange(160 * 100) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).reshape(100, 160)
    with Recorder(path, format="mp3") as rec:
        for frame in tone:
            rec.write(frame, None)
    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 8000 and data.shape[1] == 2
    rms = np.sqrt((data[2000:-2000].astype(np.float64) ** 2).mean(axis=0))
    assert rms[0] == pytest.approx(8000 / np.sqrt(2), rel=0.05) and rms[1] < 50
