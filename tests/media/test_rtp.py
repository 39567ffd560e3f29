from __future__ import annotations

import random
import struct

import pytest

from media.rtp import (
    RtcpByePacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtcpUnknownPacket,
    RtpError,
    RtpPacket,
    extend_seq,
    extend_timestamp,
    is_rtcp,
    parse_rtcp,
    peek_header,
    rewrite_header,
    serialize_rtcp,
    uint16_add,
    uint16_diff,
    uint16_gt,
    uint32_add,
    uint32_diff,
    uint32_gt,
)

# A PCMU packet: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, 4-byte payload.
SIMPLE = bytes.fromhex("8080 1234 deadbeef 01020304") + b"\xff\xfe\xfd\xfc"


def test_parse_simple() -> None:
    p = RtpPacket.parse(SIMPLE)
    assert (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc) == (
        0, True, 0x1234, 0xDEADBEEF, 0x01020304)
    assert p.payload == b"\xff\xfe\xfd\xfc" and p.csrc == [] and p.extension_profile is None
    assert p.serialize() == SIMPLE
    assert peek_header(SIMPLE) == (0, 0x1234, 0xDEADBEEF, 0x01020304)


def test_csrc_extension_padding_round_trip() -> None:
    p = RtpPacket(payload_type=8, sequence_number=65535, timestamp=2**32 - 1, ssrc=7,
                  payload=b"abc", csrc=[1, 2, 3], extension_profile=0xBEDE,
                  extension=b"\x10\xaa\x00\x00", padding_size=5)
    data = p.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[-1] == 5 and len(data) == 12 + 12 + 4 + 4 + 3 + 5
    assert RtpPacket.parse(data) == p


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00\x00",
        SIMPLE[:11],
        b"\x40" + SIMPLE[1:],  # version 1
        b"\x00" + SIMPLE[1:],  # version 0
        b"\x82" + SIMPLE[1:12] + b"\x00\x00\x00\x01",  # 2 CSRCs announced, 1 present
        b"\x90" + SIMPLE[1:12] + b"\xbe\xde",  # extension header cut
        b"\x90" + SIMPLE[1:12] + b"\xbe\xde\x00\x02" + b"\x00" * 4,  # extension too long
        b"\xa0" + SIMPLE[1:12] + b"\x00",  # padding count 0
        b"\xa0" + SIMPLE[1:12] + b"ab\x09",  # padding larger than the packet
    ],
)
def test_malformed_raises_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


def test_fuzz_only_rtp_error_escapes() -> None:
    rng = random.Random(4733)
    good = RtpPacket(payload_type=0, payload=b"x" * 20, csrc=[9],
                     extension_profile=1, extension=b"1234", padding_size=3).serialize()
    for _ in range(3000):
        data = bytearray(good[: rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        for parse in (RtpPacket.parse, parse_rtcp):
            try:
                parse(bytes(data))
            except RtpError:
                pass


def test_serialize_refuses_what_cannot_be_encoded() -> None:
    with pytest.raises(RtpError):
        RtpPacket(csrc=list(range(16))).serialize()
    with pytest.raises(RtpError):
        RtpPacket(extension_profile=1, extension=b"abc").serialize()


def test_rewrite_header_in_place() -> None:
    buf = bytearray(SIMPLE)
    rewrite_header(buf, seq_offset=0xFFFF - 0x1234 + 2, ts_offset=0x21524111, ssrc=99)
    p = RtpPacket.parse(bytes(buf))
    assert (p.sequence_number, p.timestamp, p.ssrc, p.marker) == (1, 0, 99, True)
    assert p.payload == SIMPLE[12:]


def test_is_rtcp_demux_rfc5761() -> None:
    assert not is_rtcp(SIMPLE)
    assert is_rtcp(bytes([0x80, 200, 0, 1]))
    assert not is_rtcp(bytes([0x80, 0x80 | 96]))  # marker + dynamic PT 96 = 224: RTP


def test_wraparound_arithmetic() -> None:
    assert uint16_add(65535, 2) == 1
    assert uint16_diff(1, 65535) == 2 and uint16_diff(65535, 1) == -2
    assert uint16_gt(0, 65535) and not uint16_gt(65535, 0)
    assert uint16_diff(0x8000, 0) == -0x8000  # the ambiguous half-way point
    assert uint32_add(2**32 - 1, 1) == 0
    assert uint32_diff(5, 2**32 - 5) == 10
    assert uint32_gt(3, 2**32 - 3)


def test_extended_sequence_numbers() -> None:
    ext = 65534
    seen = []
    for seq in (65535, 0, 1, 65533, 2):  # wraps, then one late packet from before the wrap
        ext2 = extend_seq(ext, seq)
        seen.append(ext2)
        ext = max(ext, ext2)
    assert seen == [65535, 65536, 65537, 65533, 65538]
    assert extend_seq(3 * 65536 + 10, 65530) == 2 * 65536 + 65530
    assert extend_timestamp(2**32 - 160, 160) == 2**32 + 160


def _report(ssrc: int = 0x11, lost: int = -3) -> RtcpReceiverInfo:
    return RtcpReceiverInfo(ssrc=ssrc, fraction_lost=64, packets_lost=lost,
                            highest_sequence=70000, jitter=12, lsr=0xAABBCCDD, dlsr=65536)


def test_rtcp_compound_round_trip() -> None:
    packets = [
        RtcpSrPacket(0x1234, RtcpSenderInfo(0x83AA7E80_00000000, 160, 10, 1600),
                     [_report(), _report(0x22, 5)]),
        RtcpSdesPacket([(0x1234, [(1, b"alice@192.0.2.1")]), (0x99, [(1, b"abcd")])]),
        RtcpByePacket([0x1234], b"hangup"),
    ]
    data = serialize_rtcp(packets)
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == packets
    rr = [RtcpRrPacket(5, [_report(lost=0x7FFFFF)]), RtcpByePacket([1, 2])]
    assert parse_rtcp(serialize_rtcp(rr)) == rr


def test_rtcp_known_bytes() -> None:
    # RR from SSRC 1 with one block about SSRC 2: 8 + 24 octets, length field 7.
    data = serialize_rtcp([RtcpRrPacket(1, [RtcpReceiverInfo(2, 1, -1, 3, 4, 5, 6)])])
    assert data[:4] == bytes([0x81, 201, 0, 7])
    assert data[12:16] == bytes([1, 0xFF, 0xFF, 0xFF])  # fraction 1, lost -1 (24-bit)
    assert parse_rtcp(data)[0].reports[0].packets_lost == -1  # type: ignore[union-attr]


def test_rtcp_lost_clamps_to_24_bits() -> None:
    data = serialize_rtcp([RtcpRrPacket(1, [_report(lost=10**9)])])
    assert parse_rtcp(data)[0].reports[0].packets_lost == 0x7FFFFF  # type: ignore[union-attr]


def test_rtcp_unknown_and_padding() -> None:
    app = RtcpUnknownPacket(204, 3, b"name1234")
    assert parse_rtcp(serialize_rtcp([app])) == [app]
    # An RR with the P bit: 4 octets of padding counted in the length.
    body = struct.pack("!I", 7) + b"\x00\x00\x00\x04"
    data = bytes([0xA0, 201, 0, 2]) + body
    assert parse_rtcp(data) == [RtcpRrPacket(7, [])]


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\xc8",
        bytes([0x40, 201, 0, 1, 0, 0, 0, 1]),  # version 1
        bytes([0x80, 201, 0, 5, 0, 0, 0, 1]),  # length beyond the datagram
        bytes([0x81, 201, 0, 1, 0, 0, 0, 1]),  # one report block announced, none present
        bytes([0x80, 200, 0, 1, 0, 0, 0, 1]),  # SR without sender info
        bytes([0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 0, 0]),  # SDES item longer than packet
        bytes([0x82, 203, 0, 1, 0, 0, 0, 1]),  # BYE with 2 sources, 1 present
        bytes([0xA0, 201, 0, 1, 0, 0, 0, 0]),  # padding count 0
    ],
)
def test_rtcp_malformed(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtcp(data)
