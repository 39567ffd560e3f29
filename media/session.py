"""One RTP session's sans-I/O state: what we send (SSRC, sequence, timestamp) and what we
measured on what we receive (RFC 3550 Appendix A.1 sequence validation, A.3 loss, A.8
interarrival jitter), with the RTCP report block built from it."""

from __future__ import annotations

import secrets

from .rtp import RTP_HEADER, RtcpReceiverInfo, uint16_diff

__all__ = ["ReceiveStats", "RtpSender", "ntp_middle"]

MAX_DROPOUT = 3000  # RFC 3550 A.1
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
RTP_SEQ_MOD = 1 << 16


def ntp_middle(ntp_timestamp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: the LSR field, RFC 3550 §6.4.1."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


class RtpSender:
    """Sequence numbers and timestamps of one outgoing stream, RFC 3550 §5.1: both start
    random; the timestamp advances by the samples in each packet."""

    __slots__ = ("clock_rate", "octet_count", "packet_count", "payload_type", "seq", "ssrc",
                 "timestamp", "_marker")

    def __init__(
        self,
        payload_type: int,
        *,
        ssrc: int | None = None,
        seq: int | None = None,
        timestamp: int | None = None,
        clock_rate: int = 8000,
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.seq = secrets.randbits(16) if seq is None else seq
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp
        self.clock_rate = clock_rate
        self.packet_count = 0
        self.octet_count = 0
        self._marker = True  # RFC 3551 §4.1: marker on the first packet of a talkspurt

    def talkspurt(self) -> None:
        """The next packet starts a talkspurt (after silence, or a change of source)."""
        self._marker = True

    def skip(self, samples: int) -> None:
        """Time passed without sending (silence suppression, hold)."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF

    def packet(self, payload: bytes, samples: int = 160, payload_type: int | None = None) -> bytes:
        """Header + payload for the next packet; advances sequence and timestamp."""
        pt = self.payload_type if payload_type is None else payload_type
        data = RTP_HEADER.pack(
            0x80, (0x80 if self._marker else 0) | pt, self.seq, self.timestamp, self.ssrc
        ) + payload
        self._marker = False
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return data


class ReceiveStats:
    """Per-source receive statistics, RFC 3550 Appendix A.1, A.3 and A.8."""

    __slots__ = ("ssrc", "clock_rate", "max_seq", "cycles", "base_seq", "bad_seq", "probation",
                 "received", "expected_prior", "received_prior", "transit", "jitter",
                 "lsr", "lsr_at", "last_at")

    def __init__(self, ssrc: int, seq: int, clock_rate: int = 8000) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.probation = MIN_SEQUENTIAL
        self.jitter = 0.0  # in timestamp units, as A.8 keeps it
        self.transit: int | None = None
        self.lsr = 0
        self.lsr_at: float | None = None
        self.last_at = 0.0
        self._init_seq(seq)
        self.max_seq = (seq - 1) & 0xFFFF  # A.1: the first packet goes through update()

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, seq: int, timestamp: int, now: float) -> bool:
        """Count one packet; False if it is not (yet) valid per A.1 (probation, big jump)."""
        self.last_at = now
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter(timestamp, now)
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # A very large jump: accept it only when the next packet confirms it.
            if seq == self.bad_seq:
                self._init_seq(seq)
                self.transit = None
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered within MAX_MISORDER, counted below
        self.received += 1
        self._jitter(timestamp, now)
        return True

    def _jitter(self, timestamp: int, now: float) -> None:
        # A.8: transit = arrival (in timestamp units) - RTP timestamp; J += (|D| - J) / 16.
        arrival = int(now * self.clock_rate)
        transit = (arrival - timestamp) & 0xFFFFFFFF
        if self.transit is not None:
            d = abs(((transit - self.transit + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
            self.jitter += (d - self.jitter) / 16.0
        self.transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative loss, A.3 (negative when duplicates outnumber losses)."""
        return self.expected - self.received

    def sender_report(self, ntp_timestamp: int, now: float) -> None:
        """An SR arrived from this source: remember it for LSR/DLSR, §6.4.1."""
        self.lsr = ntp_middle(ntp_timestamp)
        self.lsr_at = now

    def report_block(self, now: float) -> RtcpReceiverInfo:
        """The report block for this source; resets the interval counters (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        dlsr = 0 if self.lsr_at is None else int((now - self.lsr_at) * 65536)
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=self.lsr,
            dlsr=dlsr,
        )

    def sequence_gap(self, seq: int) -> int:
        """Signed distance of `seq` from the highest seen (for callers that log reorder)."""
        return uint16_diff(seq, self.max_seq)
