from __future__ import annotations

import pytest

from media.jitterbuffer import JitterBuffer
from media.rtp import RtpPacket
from media.session import ReceiveStats, RtpSender


def drain(jb: JitterBuffer, now: float = 0.0) -> list[int | None]:
    out: list[int | None] = []
    while (f := jb.get(now)) is not None:
        out.append(f.sequence_number if f.payload is not None else None)
    return out


def test_reorders_across_wrap() -> None:
    jb = JitterBuffer(capacity=8, prefetch=3)
    for seq in (65534, 0, 65535, 1):
        jb.put(seq, seq * 160, bytes([seq & 0xFF]), 0.0)
    assert drain(jb) == [65534, 65535, 0, 1]
    assert jb.lost == 0 and jb.late == 0


def test_prefetch_then_play() -> None:
    jb = JitterBuffer(capacity=8, prefetch=3)
    jb.put(10, 0, b"a", 0.0)
    jb.put(11, 160, b"b", 0.0)
    assert jb.get(0.0) is None  # still prefetching
    jb.put(12, 320, b"c", 0.0)
    frame = jb.get(0.0)
    assert frame is not None and (frame.sequence_number, frame.payload) == (10, b"a")


def test_loss_late_and_duplicates() -> None:
    jb = JitterBuffer(capacity=8, prefetch=1)
    for seq in (100, 101, 103, 103, 104):
        jb.put(seq, 0, b"x", 0.0)
    assert drain(jb) == [100, 101, None, 103, 104]
    assert (jb.lost, jb.duplicates) == (1, 1)
    jb.put(102, 0, b"late", 0.0)  # after its slot was declared lost
    assert jb.late == 1 and len(jb) == 0


def test_bounded_capacity_drops_oldest() -> None:
    jb = JitterBuffer(capacity=4, prefetch=4)
    for seq in range(10):
        jb.put(seq, 0, b"x", 0.0)
    assert len(jb) == 4 and jb.overflows == 6
    assert drain(jb) == [6, 7, 8, 9]


def test_idle_resets_and_big_jump() -> None:
    jb = JitterBuffer(capacity=8, prefetch=1, idle_reset=1.0)
    jb.put(10, 0, b"x", 0.0)
    assert drain(jb) == [10]
    jb.put(5000, 0, b"y", 5.0)  # after a hold: new origin, no loss storm
    jb.put(40000, 0, b"z", 5.01)  # a jump beyond MAX_DROPOUT restarts too
    assert drain(jb) == [40000] and jb.lost == 0


def test_sender_headers() -> None:
    s = RtpSender(8, ssrc=42, seq=65535, timestamp=2**32 - 80)
    a = RtpPacket.parse(s.packet(b"\xd5" * 160))
    b = RtpPacket.parse(s.packet(b"\xd5" * 160))
    assert (a.marker, a.sequence_number, a.timestamp) == (True, 65535, 2**32 - 80)
    assert a.payload_type == 8
    assert (b.marker, b.sequence_number, b.timestamp) == (False, 0, 80)
    assert s.packet_count == 2 and s.octet_count == 320


def test_receive_stats_loss_and_report() -> None:
    st = ReceiveStats(ssrc=9, seq=65530)
    t = 0.0
    for seq in [65530, 65531, 65532, 65534, 65535, 0, 2, 3]:  # 65533 and 1 lost, wraps
        st.update(seq, (seq * 160) & 0xFFFFFFFF, t)
        t += 0.02
    assert st.extended_max == 65536 + 3
    assert st.lost == 2
    st.sender_report(0x0001_0002_0003_0004, now=t)
    block = st.report_block(t + 0.5)
    assert block.packets_lost == 2 and block.highest_sequence == 65539
    assert block.fraction_lost == (2 << 8) // 9  # A.3: lost/expected in 1/256
    assert block.lsr == 0x0002_0003 and block.dlsr == 32768
    assert st.report_block(t + 1).fraction_lost == 0  # nothing new in this interval


def test_jitter_a8() -> None:
    # Packets sent every 20 ms; arrivals alternate 0 and +10 ms late: |D| = 80 units.
    st = ReceiveStats(ssrc=1, seq=0)
    for i in range(400):
        st.update(i, i * 160, i * 0.02 + (0.01 if i % 2 else 0.0))
    assert st.jitter == pytest.approx(80, rel=0.01)
    steady = ReceiveStats(ssrc=1, seq=0)
    for i in range(100):
        steady.update(i, i * 160, 3.0 + i * 0.02)
    assert steady.jitter < 1.0


def test_probation_and_restart() -> None:
    st = ReceiveStats(ssrc=1, seq=100)
    assert st.update(100, 0, 0.0) is False  # A.1: MIN_SEQUENTIAL packets first
    assert st.update(101, 160, 0.02) is True
    assert st.update(30000, 0, 0.04) is False  # a huge jump must be confirmed
    assert st.update(30001, 160, 0.06) is True
    assert st.base_seq == 30001
