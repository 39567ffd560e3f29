"""RTP and RTCP packets (RFC 3550), and sequence/timestamp arithmetic.

Two levels, like the rest of media/:

- `RtpPacket.parse()` / `serialize()` and the RTCP classes build objects; they are for the
  control path (tests, DTMF, RTCP every few seconds).
- `peek_header()`, `rewrite_header()` and `RTP_HEADER` work on the wire bytes in place, with
  no object per packet; the relay path forwards ~100k packets/s through them.

Every malformed input raises `RtpError` and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "RTP_HEADER",
    "RtcpByePacket",
    "RtcpPacket",
    "RtcpReceiverInfo",
    "RtcpRrPacket",
    "RtcpSdesPacket",
    "RtcpSenderInfo",
    "RtcpSrPacket",
    "RtcpUnknownPacket",
    "RtpError",
    "RtpPacket",
    "extend_seq",
    "extend_timestamp",
    "is_rtcp",
    "parse_rtcp",
    "peek_header",
    "rewrite_header",
    "serialize_rtcp",
    "uint16_add",
    "uint16_diff",
    "uint16_gt",
    "uint32_add",
    "uint32_diff",
    "uint32_gt",
]

RTP_VERSION = 2
# RFC 3550 §5.1: V P X CC | M PT | sequence number | timestamp | SSRC.
RTP_HEADER = struct.Struct("!BBHII")
_U16 = struct.Struct("!HH")
_U32 = struct.Struct("!I")

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203


class RtpError(ValueError):
    """A malformed RTP or RTCP packet (or RFC 4733 payload): the one parse error of media/."""


# -- sequence and timestamp arithmetic --------------------------------------------------------
# RTP counters wrap (16-bit sequence numbers, 32-bit timestamps); comparisons are made on the
# shortest distance around the circle, as in RFC 3550 Appendix A.1.


def uint16_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFF


def uint16_diff(a: int, b: int) -> int:
    """Signed distance a - b in [-32768, 32767], taking the short way round."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def uint16_gt(a: int, b: int) -> bool:
    """a is after b (RFC 1982 serial-number comparison)."""
    return uint16_diff(a, b) > 0


def uint32_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFFFFFF


def uint32_diff(a: int, b: int) -> int:
    """Signed distance a - b in [-2**31, 2**31 - 1]."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def uint32_gt(a: int, b: int) -> bool:
    return uint32_diff(a, b) > 0


def extend_seq(reference: int, seq: int) -> int:
    """The extended (unwrapped) sequence number of `seq` nearest the extended `reference`.

    RFC 3550 §6.4.1 "extended highest sequence number": the cycle count lives in the bits
    above 16; a packet just before a wrap maps below the reference, not 65535 ahead.
    """
    return reference + uint16_diff(seq, reference & 0xFFFF)


def extend_timestamp(reference: int, timestamp: int) -> int:
    """As `extend_seq` for 32-bit RTP timestamps."""
    return reference + uint32_diff(timestamp, reference & 0xFFFFFFFF)


# -- RTP ---------------------------------------------------------------------------------------


def is_rtcp(data: bytes) -> bool:
    """RTP/RTCP demultiplexing on one port, RFC 5761 §4: RTCP packet types 192-223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def peek_header(data: bytes) -> tuple[int, int, int, int]:
    """(payload_type, sequence_number, timestamp, ssrc) of a packet, without building one.

    Checks only what the relay path relies on: length and version.
    """
    if len(data) < 12:
        raise RtpError("RTP packet shorter than its 12-byte header")
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    return b1 & 0x7F, seq, ts, ssrc


def rewrite_header(
    buf: bytearray | memoryview, seq_offset: int, ts_offset: int, ssrc: int
) -> None:
    """Shift sequence number and timestamp and replace the SSRC, in place.

    The B2BUA relay keeps each outgoing leg one continuous stream (RFC 3550 §8.2: a
    translator must keep sequence and timestamp contiguous when it changes the SSRC).
    """
    _b0, _b1, seq, ts, _ssrc = RTP_HEADER.unpack_from(buf)
    struct.pack_into(
        "!HII", buf, 2, (seq + seq_offset) & 0xFFFF, (ts + ts_offset) & 0xFFFFFFFF, ssrc
    )


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet, RFC 3550 §5.1 (header extension §5.3.1, padding §5.1 "P")."""

    payload_type: int = 0
    marker: bool = False
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        n = len(data)
        if n < 12:
            raise RtpError("RTP packet shorter than its 12-byte header")
        b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if n < pos:
            raise RtpError("RTP CSRC list truncated")
        csrc = list(struct.unpack_from(f"!{cc}I", data, 12)) if cc else []
        profile: int | None = None
        extension = b""
        if b0 & 0x10:
            # RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words.
            if n < pos + 4:
                raise RtpError("RTP header extension truncated")
            profile, words = _U16.unpack_from(data, pos)
            pos += 4
            if n < pos + 4 * words:
                raise RtpError("RTP header extension longer than the packet")
            extension = bytes(data[pos : pos + 4 * words])
            pos += 4 * words
        end = n
        padding = 0
        if b0 & 0x20:
            # RFC 3550 §5.1: the last octet counts the padding, itself included.
            padding = data[-1]
            if padding == 0 or pos + padding > n:
                raise RtpError("RTP padding count invalid")
            end = n - padding
        return cls(
            payload_type=b1 & 0x7F,
            marker=bool(b1 & 0x80),
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            csrc=csrc,
            extension_profile=profile,
            extension=extension,
            padding_size=padding,
        )

    def serialize(self) -> bytes:
        if len(self.csrc) > 15:
            raise RtpError("at most 15 CSRCs fit in an RTP header")
        if len(self.extension) % 4:
            raise RtpError("RTP header extension must be a whole number of 32-bit words")
        if not 0 <= self.padding_size <= 255:
            raise RtpError("RTP padding must be 0..255 octets")
        b0 = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding_size:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        parts = [
            RTP_HEADER.pack(
                b0,
                (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                self.sequence_number & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_U16.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)


# -- RTCP (RFC 3550 §6.4-6.6) ------------------------------------------------------------------

_REPORT_BLOCK = struct.Struct("!IB3sIIII")  # §6.4.1, 24 octets
_SENDER_INFO = struct.Struct("!QIII")  # §6.4.1: NTP, RTP timestamp, packets, octets
_RTCP_HEADER = struct.Struct("!BBH")


@dataclass(slots=True)
class RtcpReceiverInfo:
    """One report block, RFC 3550 §6.4.1."""

    ssrc: int
    fraction_lost: int
    packets_lost: int  # cumulative, signed 24-bit
    highest_sequence: int  # extended
    jitter: int
    lsr: int
    dlsr: int

    def _pack(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.packets_lost)) & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            lost.to_bytes(3, "big"),
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def _unpack(cls, data: bytes, pos: int) -> RtcpReceiverInfo:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        return cls(
            ssrc, fraction, int.from_bytes(lost, "big", signed=True), highest, jitter, lsr, dlsr
        )


@dataclass(slots=True)
class RtcpSenderInfo:
    ntp_timestamp: int  # 64-bit NTP format, §4
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass(slots=True)
class RtcpSrPacket:
    ssrc: int
    sender_info: RtcpSenderInfo
    reports: list[RtcpReceiverInfo] = field(default_factory=list)


@dataclass(slots=True)
class RtcpRrPacket:
    ssrc: int
    reports: list[RtcpReceiverInfo] = field(default_factory=list)


@dataclass(slots=True)
class RtcpSdesPacket:
    """§6.5: chunks of (SSRC, [(item type, value)]); CNAME is item type 1."""

    chunks: list[tuple[int, list[tuple[int, bytes]]]] = field(default_factory=list)


@dataclass(slots=True)
class RtcpByePacket:
    sources: list[int] = field(default_factory=list)
    reason: bytes = b""


@dataclass(slots=True)
class RtcpUnknownPacket:
    """APP (§6.7) and packet types from other RFCs, kept opaque."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = (
    RtcpSrPacket | RtcpRrPacket | RtcpSdesPacket | RtcpByePacket | RtcpUnknownPacket
)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _parse_reports(body: bytes, pos: int, count: int) -> list[RtcpReceiverInfo]:
    if len(body) < pos + 24 * count:
        raise RtpError("RTCP report blocks truncated")
    return [RtcpReceiverInfo._unpack(body, pos + 24 * i) for i in range(count)]


def _parse_sdes(body: bytes, count: int) -> RtcpSdesPacket:
    chunks: list[tuple[int, list[tuple[int, bytes]]]] = []
    pos = 0
    for _ in range(count):
        if len(body) < pos + 4:
            raise RtpError("RTCP SDES chunk truncated")
        ssrc = _U32.unpack_from(body, pos)[0]
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= len(body):
                raise RtpError("RTCP SDES items not terminated")
            item_type = body[pos]
            if item_type == 0:
                # §6.5: the list ends with a null octet, then pads to a 32-bit boundary.
                pos = (pos + 4) & ~3
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtpError("RTCP SDES item truncated")
            length = body[pos + 1]
            items.append((item_type, bytes(body[pos + 2 : pos + 2 + length])))
            pos += 2 + length
        chunks.append((ssrc, items))
    return RtcpSdesPacket(chunks)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """A compound RTCP packet (§6.1) as its list of packets."""
    packets: list[RtcpPacket] = []
    pos = 0
    n = len(data)
    if n < 4:
        raise RtpError("RTCP packet shorter than its header")
    while pos < n:
        if n < pos + 4:
            raise RtpError("RTCP header truncated")
        b0, packet_type, words = _RTCP_HEADER.unpack_from(data, pos)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTCP version {b0 >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > n:
            raise RtpError("RTCP length field exceeds the datagram")
        body = data[pos + 4 : end]
        if b0 & 0x20:
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise RtpError("RTCP padding count invalid")
            body = body[: len(body) - pad]
        count = b0 & 0x1F
        packets.append(_parse_one(packet_type, count, bytes(body)))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 24:
            raise RtpError("RTCP SR truncated")
        ssrc = _U32.unpack_from(body)[0]
        info = RtcpSenderInfo(*_SENDER_INFO.unpack_from(body, 4))
        return RtcpSrPacket(ssrc, info, _parse_reports(body, 24, count))
    if packet_type == RTCP_RR:
        if len(body) < 4:
            raise RtpError("RTCP RR truncated")
        return RtcpRrPacket(_U32.unpack_from(body)[0], _parse_reports(body, 4, count))
    if packet_type == RTCP_SDES:
        return _parse_sdes(body, count)
    if packet_type == RTCP_BYE:
        # §6.6: SC SSRCs, then an optional length-prefixed reason.
        if len(body) < 4 * count:
            raise RtpError("RTCP BYE truncated")
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = b""
        pos = 4 * count
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise RtpError("RTCP BYE reason truncated")
            reason = body[pos + 1 : pos + 1 + length]
        return RtcpByePacket(sources, reason)
    return RtcpUnknownPacket(packet_type, count, body)


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    if count > 31:
        raise RtpError("at most 31 items fit in one RTCP packet")
    return _RTCP_HEADER.pack((RTP_VERSION << 6) | count, packet_type, len(body) // 4) + body


def serialize_rtcp(packets: list[RtcpPacket]) -> bytes:
    out: list[bytes] = []
    for p in packets:
        if isinstance(p, RtcpSrPacket):
            i = p.sender_info
            body = _U32.pack(p.ssrc) + _SENDER_INFO.pack(
                i.ntp_timestamp, i.rtp_timestamp, i.packet_count, i.octet_count
            )
            body += b"".join(r._pack() for r in p.reports)
            out.append(_header(len(p.reports), RTCP_SR, body))
        elif isinstance(p, RtcpRrPacket):
            body = _U32.pack(p.ssrc) + b"".join(r._pack() for r in p.reports)
            out.append(_header(len(p.reports), RTCP_RR, body))
        elif isinstance(p, RtcpSdesPacket):
            body = b""
            for ssrc, items in p.chunks:
                chunk = _U32.pack(ssrc)
                for item_type, value in items:
                    if len(value) > 255:
                        raise RtpError("RTCP SDES item longer than 255 octets")
                    chunk += bytes([item_type, len(value)]) + value
                body += chunk + bytes(4 - len(chunk) % 4)  # null item + padding
            out.append(_header(len(p.chunks), RTCP_SDES, body))
        elif isinstance(p, RtcpByePacket):
            body = struct.pack(f"!{len(p.sources)}I", *p.sources)
            if p.reason:
                if len(p.reason) > 255:
                    raise RtpError("RTCP BYE reason longer than 255 octets")
                body += _pad4(bytes([len(p.reason)]) + p.reason)
            out.append(_header(len(p.sources), RTCP_BYE, body))
        else:
            out.append(_header(p.count, p.packet_type, _pad4(p.body)))
    return b"".join(out)
