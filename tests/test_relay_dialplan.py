"""Unit tests: the RTP relay over real loopback sockets, and the dialplan."""

from __future__ import annotations

import asyncio
import socket

import pytest

from media.g711 import ULAW_TO_ALAW
from media.relay import LegMedia, RtpRelay, parse_port_range
from softswitch.config import UserConfig
from softswitch.dialplan import Dialplan, Extension, NotFound
from softswitch.directory import Directory


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def rtp(pt: int, seq: int, payload: bytes, marker: bool = False) -> bytes:
    return bytes([0x80, (0x80 if marker else 0) | pt]) + seq.to_bytes(2, "big") + \
        (1000 + seq * 160).to_bytes(4, "big") + (0x1234).to_bytes(4, "big") + payload


async def recv(sock: socket.socket, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), timeout)


async def bridged(codec_a: str, pt_a: int, codec_b: str, pt_b: int, dtmf_a: int | None = 101,
                  dtmf_b: int | None = 101):
    relay = RtpRelay("127.0.0.1", 32000, 32099)
    pa, pb = relay.allocate(), relay.allocate()
    assert pa is not None and pb is not None and pa % 2 == 0 and pb % 2 == 0 and pa != pb
    a, b = udp(), udp()
    relay.bridge(pa, LegMedia("127.0.0.1", a.getsockname()[1], codec_a, pt_a, dtmf_a),
                 pb, LegMedia("127.0.0.1", b.getsockname()[1], codec_b, pt_b, dtmf_b))
    return relay, pa, pb, a, b


async def test_relay_forwards_both_ways_unchanged_when_codecs_match() -> None:
    relay, pa, pb, a, b = await bridged("PCMU", 0, "PCMU", 0)
    try:
        pkt = rtp(0, 7, bytes(range(160)), marker=True)
        a.sendto(pkt, ("127.0.0.1", pa))
        data, src = await recv(b)
        assert data == pkt and src == ("127.0.0.1", pb)  # from the B-facing port
        back = rtp(0, 9, b"\xff" * 160)
        b.sendto(back, ("127.0.0.1", pb))
        data, src = await recv(a)
        assert data == back and src == ("127.0.0.1", pa)
        assert relay.counters(pa) == (1, 1) and relay.counters(pb) == (1, 1)
    finally:
        relay.close()
        a.close()
        b.close()


async def test_relay_rewrites_dtmf_payload_type_and_transcodes() -> None:
    relay, pa, pb, a, b = await bridged("PCMU", 0, "PCMA", 8, 101, 96)
    try:
        payload = bytes(range(256))[:160]
        a.sendto(rtp(0, 1, payload, marker=True), ("127.0.0.1", pa))
        data, _ = await recv(b)
        assert data[1] == 0x80 | 8  # marker kept, PT of the other leg
        assert data[12:] == ULAW_TO_ALAW[list(payload)].tobytes()
        assert data[2:12] == rtp(0, 1, b"")[2:12]
        a.sendto(rtp(101, 2, b"\x05\x0a\x00\xa0"), ("127.0.0.1", pa))
        data, _ = await recv(b)
        assert data[1] & 0x7F == 96 and data[12:] == b"\x05\x0a\x00\xa0"  # RFC 4733 untouched
    finally:
        relay.close()
        a.close()
        b.close()


async def test_relay_latches_to_the_first_source_and_tracks_inactivity() -> None:
    relay, pa, pb, a, b = await bridged("PCMA", 8, "PCMA", 8)
    moved = udp()  # the phone actually sends from another port (NAT)
    try:
        before = relay.last_rx(pa)
        await asyncio.sleep(0.05)
        moved.sendto(rtp(8, 1, b"\xd5" * 160), ("127.0.0.1", pa))
        await recv(b)
        assert relay.remote(pa) == moved.getsockname()
        assert relay.last_rx(pa) > before  # type: ignore[operator]
        b.sendto(rtp(8, 1, b"\xd5" * 160), ("127.0.0.1", pb))
        await recv(moved)  # symmetric RTP: back to where the packets came from
    finally:
        relay.close()
        for s in (a, b, moved):
            s.close()


async def test_relay_allocation_wraps_and_releases() -> None:
    relay = RtpRelay("127.0.0.1", 32100, 32107)  # two... four pairs
    ports = [relay.allocate() for _ in range(4)]
    assert sorted(ports) == [32100, 32102, 32104, 32106]  # type: ignore[type-var]
    assert relay.allocate() is None
    relay.release(32102)
    assert relay.allocate() == 32102
    relay.close()
    assert len(relay) == 0


def test_parse_port_range() -> None:
    assert parse_port_range("20000-29999") == (20000, 29999)
    for bad in ("20000", "3-9", "30000-20000", "x-y", "20000-20001"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_dialplan_resolves_extensions_and_reloads() -> None:
    users = [UserConfig(extension="1001", password="x"), UserConfig(extension="1002",
                                                                    password="y")]
    plan = Dialplan(Directory.from_users(users, "example.com"))
    assert plan.resolve("1001") == Extension("1001")
    assert plan.resolve("10-02") == Extension("1002")
    assert plan.resolve("1003") == NotFound("1003")
    assert plan.resolve("") == NotFound("")
    reloaded = Dialplan(Directory.from_users(users[:1], "example.com"))
    assert reloaded.resolve("1002") == NotFound("1002")
