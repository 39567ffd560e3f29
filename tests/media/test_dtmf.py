from __future__ import annotations

import pytest

from media.dtmf import (
    DtmfReceiver,
    dtmf_packets,
    event_code,
    parse_event,
    serialize_event,
)
from media.rtp import RtpError

TS = 0xFFFFFF00  # near the 32-bit wrap on purpose


def test_payload_round_trip_and_bytes() -> None:
    # RFC 4733 §2.3: event 5, E=1, volume 10, duration 800.
    data = serialize_event(5, True, 10, 800)
    assert data == bytes([5, 0x8A, 0x03, 0x20])
    assert parse_event(data) == (5, True, 10, 800)
    assert parse_event(serialize_event(11, False, 63, 70000)) == (11, False, 63, 0xFFFF)
    with pytest.raises(RtpError):
        parse_event(b"\x01\x02\x03")
    assert event_code("#") == 11 and event_code("a") == 12
    with pytest.raises(ValueError):
        event_code("x")


def test_sender_sequence() -> None:
    pkts = dtmf_packets("7", TS, duration_ms=100, interval_ms=20)
    assert [p.marker for p in pkts] == [True] + [False] * (len(pkts) - 1)
    assert {p.timestamp for p in pkts} == {TS}
    fields = [parse_event(p.payload) for p in pkts]
    assert [f[3] for f in fields] == [160, 320, 480, 640, 800, 800, 800]
    assert [f[1] for f in fields] == [False] * 4 + [True] * 3  # three end packets
    assert all(f[0] == 7 for f in fields)
    assert [p.offset for p in pkts] == pytest.approx([i * 0.02 for i in range(7)])
    slow = dtmf_packets("1", 0, duration_ms=200, interval_ms=50)
    assert [parse_event(p.payload)[3] for p in slow] == [400, 800, 1200, 1600, 1600, 1600]


def feed(rx: DtmfReceiver, packets: list[tuple[int, bytes]], t0: float = 0.0) -> list[str]:
    out = []
    for i, (ts, payload) in enumerate(packets):
        out += [d.digit for d in rx.receive(ts, payload, t0 + i * 0.02)]
    return out


def stream(digit: str, ts: int) -> list[tuple[int, bytes]]:
    return [(p.timestamp, p.payload) for p in dtmf_packets(digit, ts)]


def test_one_digit_per_press_with_duration() -> None:
    rx = DtmfReceiver()
    digits = rx.receive(TS, serialize_event(1, False, 10, 160), 0.0)
    assert digits == []
    for ts, payload in stream("1", TS)[1:]:
        digits += rx.receive(ts, payload, 0.1)
    assert [(d.digit, d.duration, d.ended, d.timestamp) for d in digits] == [("1", 800, True, TS)]
    assert digits[0].duration_ms == 100


def test_duplicates_retransmissions_and_reordering() -> None:
    rx = DtmfReceiver()
    pkts = stream("5", TS) + stream("#", (TS + 2000) & 0xFFFFFFFF)
    dup = [p for p in pkts for _ in range(2)]  # every packet twice
    dup.insert(3, dup[8])  # an end packet of '5' arrives early, before some updates
    assert feed(rx, dup) == ["5", "#"]


def test_loss_of_start_and_some_ends() -> None:
    rx = DtmfReceiver()
    pkts = stream("3", TS)
    kept = pkts[2:4] + pkts[5:6]  # start, one update and two of three ends lost
    assert feed(rx, kept) == ["3"]


def test_all_ends_lost_closed_by_next_event() -> None:
    rx = DtmfReceiver()
    first = stream("2", 1000)[:4]  # no end packet survives
    got = feed(rx, first + stream("2", 3000))
    assert got == ["2", "2"]  # same key pressed twice: two digits, told apart by timestamp


def test_all_ends_lost_closed_by_timeout() -> None:
    rx = DtmfReceiver(timeout=0.5)
    assert feed(rx, stream("9", 1000)[:3]) == []
    assert rx.get_timer() == pytest.approx(0.04 + 0.5)
    assert rx.poll(0.3) == []
    (digit,) = rx.poll(0.6)
    assert (digit.digit, digit.ended, digit.duration) == ("9", False, 480)
    assert rx.poll(5.0) == [] and rx.get_timer() is None
    assert feed(rx, stream("9", 1000)[-3:], 1.0) == []  # its late end packets are ignored


def test_late_packet_of_older_event_ignored() -> None:
    rx = DtmfReceiver()
    a, b = stream("4", 1000), stream("6", 5000)
    assert feed(rx, a[:2] + b[:1] + a[2:3] + b[1:]) == ["4", "6"]


def test_flash_event() -> None:
    rx = DtmfReceiver()
    (d,) = rx.receive(0, serialize_event(16, True, 0, 1600), 0.0)
    assert d.digit == "!" and d.event == 16
