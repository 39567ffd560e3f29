from __future__ import annotations

import numpy as np
import pytest

from media.clock import InactivityTracker, MediaClock
from media.g711 import ULAW_DECODE, alaw_decode, ulaw_decode, ulaw_encode
from media.mixer import Mixer
from media.player import Clip
from media.rtp import RtpPacket
from media.session import RtpSender


def const(v: int) -> np.ndarray:
    return np.full(160, v, dtype=np.int16)


def test_each_hears_the_others_not_itself() -> None:
    m = Mixer()
    for key, room in (("a", 1), ("b", 1), ("c", 1), ("x", 2), ("y", 2)):
        m.join(key, room)
    for key, v in (("a", 100), ("b", 20), ("c", 3), ("x", 7), ("y", -7)):
        m.put(key, const(v))
    keys, out = m.mix()
    heard = {k: int(out[i][0]) for i, k in enumerate(keys)}
    assert heard == {"a": 23, "b": 103, "c": 120, "x": -7, "y": 7}
    keys, out = m.mix()  # inputs were consumed: silence now
    assert not out.any()


def test_saturation_and_mute() -> None:
    m = Mixer()
    for key in "abcd":
        m.join(key, "room")
    m.set_muted("d", True)
    for key in "abcd":
        m.put(key, const(30000))
    keys, out = m.mix()
    heard = {k: int(out[i][0]) for i, k in enumerate(keys)}
    assert heard == {"a": 32767, "b": 32767, "c": 32767, "d": 32767}
    for key in "abc":
        m.put(key, const(-30000))
    m.put("d", const(5))
    keys, out = m.mix()
    heard = {k: int(out[i][0]) for i, k in enumerate(keys)}
    assert heard["d"] == -32768 and heard["a"] == -32768  # d is muted: nobody hears its 5
    m.leave("b")
    m.put("a", const(1))
    m.put("c", const(2))
    keys, out = m.mix()
    assert dict(zip(keys, out[:, 0].tolist(), strict=True)) == {"a": 2, "c": 1, "d": 3}


def test_put_g711_decodes_in_place() -> None:
    m = Mixer()
    m.join("a", 0)
    m.join("b", 0)
    m.put_g711("a", bytes(ulaw_encode(const(1000))), law=0)
    keys, out = m.mix()
    assert int(out[keys.index("b")][0]) == int(ULAW_DECODE[ulaw_encode(const(1000))[0]])


def sender(ssrc: int, pt: int = 0) -> RtpSender:
    return RtpSender(pt, ssrc=ssrc, seq=65534, timestamp=2**32 - 160)


def test_clock_batches_a_thousand_sources_in_one_call() -> None:
    clock = MediaClock(start=0.0)
    ramp = Clip("ramp", (np.arange(800, dtype=np.int16) * 8))
    tone = Clip("tone", np.full(320, 4000, dtype=np.int16))
    for i in range(1000):
        clock.play(i, ramp if i % 2 else tone, sender(i, 0 if i % 3 else 8), loop=i % 4 == 0)
    out = clock.tick(0.0)
    assert out.frames == 1 and len(out.packets) == 1000
    by_key = dict(out.packets)
    p1 = RtpPacket.parse(by_key[1])
    assert (p1.ssrc, p1.sequence_number, p1.timestamp, p1.marker) == (1, 65534, 2**32 - 160, True)
    assert ulaw_decode(p1.payload).tolist() == ulaw_decode(ulaw_encode(ramp.samples[:160])).tolist()
    p3 = RtpPacket.parse(by_key[3])
    assert p3.payload_type == 8 and alaw_decode(p3.payload)[0] == 8  # A-law has no zero: +8
    out = clock.tick(0.02)  # the 320-sample tone ends with its second frame
    p1 = RtpPacket.parse(dict(out.packets)[1])
    assert (p1.sequence_number, p1.timestamp, p1.marker) == (65535, 0, False)
    finished = set(out.finished)
    assert finished == {i for i in range(1000) if i % 2 == 0 and i % 4 != 0}
    assert len(clock) == 1000 - len(finished)


def test_clip_end_is_padded_and_sender_resumes() -> None:
    clock = MediaClock(start=10.0)
    s = sender(5)
    clock.play("k", Clip("c", np.full(200, 8000, dtype=np.int16)), s)
    clock.tick(10.0)
    out = clock.tick(10.02)
    payload = ulaw_decode(RtpPacket.parse(out.packets[0][1]).payload)
    assert (payload[:40] > 7000).all() and (payload[40:] == 0).all()
    assert out.finished == ["k"] and "k" not in clock
    assert (s.seq, s.timestamp, s.packet_count) == (0, 160, 2)  # continues after the prompt


def test_clock_catches_up_late_ticks_without_drift() -> None:
    clock = MediaClock(start=0.0, max_catchup=5)
    clock.play("a", Clip("z", np.zeros(8000, dtype=np.int16)), sender(1), loop=True)
    assert clock.tick(0.0).frames == 1
    assert clock.next_deadline() == pytest.approx(0.02)
    assert clock.tick(0.015).frames == 0  # early: nothing due
    out = clock.tick(0.069)  # 0.02, 0.04, 0.06 are due
    assert out.frames == 3
    seqs = [RtpPacket.parse(p).sequence_number for _, p in out.packets]
    assert seqs == [65535, 0, 1]
    assert clock.next_deadline() == pytest.approx(0.08)
    # Ten minutes of ticks at irregular moments: deadlines stay on the 20 ms grid.
    t, produced = 0.07, 4
    rng = np.random.default_rng(7)
    while t < 600:
        t += float(rng.uniform(0.005, 0.035))
        produced += clock.tick(t).frames
    assert produced == clock.ticks == int(t / 0.02 + 1e-9) + 1
    assert clock.next_deadline() == pytest.approx(clock.ticks * 0.02)


def test_clock_skips_after_a_long_stall() -> None:
    clock = MediaClock(start=0.0, max_catchup=3)
    clock.play("a", Clip("z", np.zeros(8000, dtype=np.int16)), sender(1), loop=True)
    clock.tick(0.0)
    out = clock.tick(1.0)  # 50 frames due
    assert (out.frames, out.skipped) == (3, 47)
    first = RtpPacket.parse(out.packets[0][1])
    assert first.marker and first.timestamp == (2**32 - 160 + 48 * 160) & 0xFFFFFFFF
    assert first.sequence_number == 65535  # sequence numbers count packets, not time


def test_clock_conference_legs() -> None:
    clock = MediaClock(start=0.0)
    for key in "abc":
        clock.join(key, "room", sender(ord(key)))
    clock.mixer.put("a", const(1000))
    clock.mixer.put("b", const(-500))
    out = dict(clock.tick(0.0).packets)
    heard = {k: int(ulaw_decode(RtpPacket.parse(p).payload)[0]) for k, p in out.items()}
    assert heard["a"] == pytest.approx(-500, abs=20)
    assert heard["b"] == pytest.approx(1000, abs=40)
    assert heard["c"] == pytest.approx(500, abs=20)
    clock.stop("c")
    assert set(dict(clock.tick(0.02).packets)) == {"a", "b"}


def test_clock_refuses_non_g711_and_duplicates() -> None:
    clock = MediaClock(start=0.0)
    clip = Clip("z", np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError):
        clock.play("a", clip, RtpSender(96))
    clock.play("a", clip, sender(1))
    with pytest.raises(ValueError):
        clock.play("a", clip, sender(1))


def test_inactivity_tracker() -> None:
    tr = InactivityTracker(timeout=60.0)
    tr.touch("a", 0.0)
    tr.touch("b", 0.0)
    tr.touch("b", 30.0)
    assert tr.next_deadline() == 60.0
    assert tr.expired(59.0) == []
    assert tr.expired(59.5) == []  # checked at most once a second
    assert tr.expired(60.5) == ["a"]
    assert tr.expired(95.0) == ["b"] and len(tr) == 0
    clock = MediaClock(start=0.0, inactivity_timeout=5.0)
    clock.inactivity.touch("call-1", 0.0)
    assert clock.tick(6.0).inactive == ["call-1"]
