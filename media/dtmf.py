"""RFC 4733 telephone events (DTMF over RTP): payload codec, receiver, sender.

The receiver turns the stream of event packets — start, updates, three end packets, any
of them lost, duplicated or late — into exactly one `DtmfDigit` per key press. An event
is identified by its RTP timestamp (RFC 4733 §2.5.1.1: every packet of one event carries
the timestamp of its start), so retransmitted end packets and late updates of a finished
event are recognised and dropped.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from .rtp import RtpError, uint32_diff

__all__ = [
    "DIGITS",
    "DtmfDigit",
    "DtmfPacket",
    "DtmfReceiver",
    "dtmf_packets",
    "event_code",
    "parse_event",
    "serialize_event",
]

# RFC 4733 §3.2 Table 7: DTMF named events 0-15; 16 is flash (hook flash).
DIGITS = "0123456789*#ABCD"
_CODES = {d: i for i, d in enumerate(DIGITS)}
_EVENT = struct.Struct("!BBH")


def event_code(digit: str) -> int:
    try:
        return _CODES[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF digit: {digit!r}") from None


def parse_event(payload: bytes) -> tuple[int, bool, int, int]:
    """(event, end, volume, duration) of a telephone-event payload, RFC 4733 §2.3.

    Only the first 4 octets count; more would be RFC 2198 redundancy, decoded elsewhere.
    """
    if len(payload) < 4:
        raise RtpError("telephone-event payload shorter than 4 octets")
    event, flags, duration = _EVENT.unpack_from(payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


def serialize_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    # §2.3.4: volume is 0..63 as -dBm0; §2.3.5: duration in timestamp units, 16 bits.
    return _EVENT.pack(event, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str  # "0"-"9", "*", "#", "A"-"D", or "!" for flash / unknown events
    event: int
    timestamp: int  # RTP timestamp of the event start
    duration: int  # in timestamp units (8000 Hz: 8 per ms)
    volume: int
    ended: bool  # False when no end packet arrived and the digit was closed by timeout

    @property
    def duration_ms(self) -> float:
        return self.duration / 8.0


class DtmfReceiver:
    """Sans-I/O: `receive()` each telephone-event packet, `poll(now)` on the timer."""

    def __init__(self, timeout: float = 0.5, remember: int = 16) -> None:
        self.timeout = timeout  # close an event whose end packets were all lost
        self._ts: int | None = None  # timestamp of the event in progress
        self._event = 0
        self._duration = 0
        self._volume = 0
        self._last_at = 0.0
        # Timestamps of finished events: their retransmitted ends are duplicates.
        self._done: deque[int] = deque(maxlen=remember)

    def receive(self, timestamp: int, payload: bytes, now: float) -> list[DtmfDigit]:
        """Feed one packet; returns the digits it completes (zero, one, rarely two)."""
        event, end, volume, duration = parse_event(payload)
        out: list[DtmfDigit] = []
        if timestamp in self._done:
            return out  # §2.5.1.4: retransmitted end, or an update arriving after it
        if self._ts is not None and timestamp != self._ts:
            if uint32_diff(timestamp, self._ts) < 0:
                return out  # a late packet of an event older than the current one
            # A new event began before the old one's end arrived: close the old one.
            out.append(self._close(ended=False))
        if self._ts is None:
            self._ts, self._event = timestamp, event
        self._duration = max(self._duration, duration)
        self._volume = volume
        self._last_at = now
        if end:
            out.append(self._close(ended=True))
        return out

    def poll(self, now: float) -> list[DtmfDigit]:
        if self._ts is not None and now - self._last_at >= self.timeout:
            return [self._close(ended=False)]
        return []

    def get_timer(self) -> float | None:
        return None if self._ts is None else self._last_at + self.timeout

    def _close(self, ended: bool) -> DtmfDigit:
        assert self._ts is not None
        event = self._event
        digit = DIGITS[event] if event < 16 else "!"
        out = DtmfDigit(digit, event, self._ts, self._duration, self._volume, ended)
        self._done.append(self._ts)
        self._ts = None
        self._duration = 0
        return out


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    offset: float  # seconds after the first packet when this one is due
    marker: bool
    timestamp: int
    payload: bytes


def dtmf_packets(
    digit: str,
    timestamp: int,
    *,
    duration_ms: int = 100,
    interval_ms: int = 20,
    volume: int = 10,
    clock_rate: int = 8000,
    end_repeats: int = 3,
) -> list[DtmfPacket]:
    """The packets that send one key press, RFC 4733 §2.5.1.

    The first carries the marker bit (§2.5.1.2); every packet carries the event's start
    `timestamp`; updates follow every `interval_ms` with the duration so far; the end
    packet (E bit, final duration) is sent `end_repeats` times (§2.5.1.4). The caller gives
    each packet the next RTP sequence number.
    """
    event = event_code(digit)
    step = clock_rate * interval_ms // 1000
    total = clock_rate * duration_ms // 1000
    out: list[DtmfPacket] = []
    elapsed = step
    while elapsed < total:
        out.append(
            DtmfPacket(
                (len(out)) * interval_ms / 1000,
                not out,
                timestamp,
                serialize_event(event, False, volume, elapsed),
            )
        )
        elapsed += step
    end = serialize_event(event, True, volume, total)
    for _ in range(end_repeats):
        out.append(DtmfPacket(len(out) * interval_ms / 1000, not out, timestamp, end))
    return out
