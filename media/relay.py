"""Anchored RTP/RTCP relay: two legs per call, packets forwarded as they arrive.

Each leg owns an even RTP port and the odd RTCP port above it (RFC 3550 §11) on the media
address. Sockets are non-blocking and read through ``loop.add_reader`` — allocation is
synchronous (the B2BUA needs the port to write its SDP at once) and a readable socket is
drained in one callback, with no protocol object or future per packet.

Forwarding from leg X to its peer Y:
- same codec: the bytes go out unchanged, except the payload type byte when the two legs
  negotiated different payload types (a dynamic telephone-event PT, RFC 4733 §7.1.1);
- PCMU <-> PCMA: the payload goes through a 256-entry code-to-code table (ITU-T G.711
  Tables 3/4, built in ``media.g711``) with ``bytes.translate`` — the header is kept, since
  both laws have the same clock rate and packet time.
- Symmetric RTP (RFC 4961): a leg sends to the address the SDP named until the first packet
  arrives from its peer, then latches onto that source (NATed phones send from elsewhere).
Each leg keeps the loop time of its last packet (`last_rx`) so a dead call can be found.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from media.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW
from media.rtp import RTP_HEADER, rewrite_header

__all__ = ["LegMedia", "RtpRelay", "parse_port_range"]

_MAX_PACKET = 2048
_DRAIN = 64  # packets read per readable callback at most (fairness between sockets)
_ULAW_TO_ALAW = ULAW_TO_ALAW.tobytes()
_ALAW_TO_ULAW = ALAW_TO_ULAW.tobytes()


def parse_port_range(text: str) -> tuple[int, int]:
    """``"20000-29999"`` -> (20000, 29999); ValueError when malformed."""
    low_text, sep, high_text = text.partition("-")
    if not sep or not low_text.strip().isdigit() or not high_text.strip().isdigit():
        raise ValueError("expected LOW-HIGH, e.g. 20000-29999")
    low, high = int(low_text), int(high_text)
    if not 1024 <= low < high <= 65535:
        raise ValueError("ports must satisfy 1024 <= LOW < HIGH <= 65535")
    if (high - low + 1) < 4:
        raise ValueError("range must hold at least two even/odd port pairs")
    return low, high


@dataclass(frozen=True, slots=True)
class LegMedia:
    """What one leg negotiated: where its peer listens and which payload types it uses."""

    remote_host: str
    remote_port: int
    codec: str  # encoding name, e.g. "PCMU"
    payload_type: int
    dtmf_payload_type: int | None = None


class _Leg:
    __slots__ = ("relay", "port", "rtp", "rtcp", "remote", "rtcp_remote", "latched",
                 "rtcp_latched", "peer", "last_rx", "media", "table", "pt_map", "rx", "tx",
                 "last_out", "shift", "tap")

    def __init__(self, relay: RtpRelay, port: int, rtp: socket.socket,
                 rtcp: socket.socket) -> None:
        self.relay = relay
        self.port = port
        self.rtp = rtp
        self.rtcp = rtcp
        self.remote: tuple[str, int] | None = None
        self.rtcp_remote: tuple[str, int] | None = None
        self.latched = False
        self.rtcp_latched = False
        self.peer: _Leg | None = None
        self.last_rx = 0.0
        self.media: LegMedia | None = None
        # How packets received on this leg are changed before the peer leg sends them.
        self.table: bytes | None = None
        self.pt_map: dict[int, int] | None = None
        self.rx = 0
        self.tx = 0
        # The last packet sent from this leg: where generated audio (music on hold) picks
        # up sequence number and timestamp (RFC 3550 §5.1), one store per packet.
        self.last_out: bytes | None = None
        # After generated audio (hold music) the relayed stream continues it: (sequence
        # offset, timestamp offset, SSRC) applied to what this leg sends; [] = not yet known.
        self.shift: list[int] | None = None
        # Sees every packet received on this leg (DTMF collection by the switch itself).
        self.tap: Callable[[bytes], None] | None = None

    def on_rtp(self) -> None:
        sock = self.rtp
        relay = self.relay
        for _ in range(_DRAIN):
            try:
                data, addr = sock.recvfrom(_MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ICMP port unreachable reported on the next read, etc.
            self.rx += 1
            self.last_rx = relay.loop.time()
            if not self.latched:
                self.remote = addr  # RFC 4961: send back where the peer sends from
                self.latched = True
            if self.tap is not None:
                self.tap(data)
            peer = self.peer
            if peer is None or peer.remote is None or len(data) < 12:
                continue
            pt_map = self.pt_map
            table = self.table
            if pt_map is not None or table is not None:
                pt = data[1] & 0x7F
                out = bytearray(data)
                if pt_map is not None and pt in pt_map:
                    out[1] = (data[1] & 0x80) | pt_map[pt]
                elif table is not None and pt == self.media.payload_type:  # type: ignore[union-attr]
                    # RFC 3550 §5.1: 12 octets + 4 per CSRC (+ extension, §5.3.1).
                    start = 12 + 4 * (data[0] & 0x0F)
                    if data[0] & 0x10 and len(data) >= start + 4:
                        start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
                    out[start:] = data[start:].translate(table)
                    out[1] = (data[1] & 0x80) | peer.media.payload_type  # type: ignore[union-attr]
                data = bytes(out)
            if peer.shift is not None:
                data = peer.continued(data)
            try:
                peer.rtp.sendto(data, peer.remote)
                peer.tx += 1
                peer.last_out = data
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                    relay.send_errors += 1

    def continued(self, data: bytes) -> bytes:
        """`data` renumbered to follow what this leg sent last (RFC 3550 §8.2: a translator
        changing the source keeps sequence and timestamp contiguous)."""
        shift = self.shift
        assert shift is not None
        out = bytearray(data)
        if not shift:
            last = self.last_out
            if last is None or len(last) < 12:
                self.shift = None
                return data
            _b0, _b1, seq, ts, ssrc = RTP_HEADER.unpack_from(last)
            _c0, _c1, seq_in, ts_in, _ssrc_in = RTP_HEADER.unpack_from(data)
            shift[:] = [seq + 1 - seq_in, ts + 160 - ts_in, ssrc]
            out[1] |= 0x80  # RFC 3551 §4.1: marker, a new talkspurt for the jitter buffer
        rewrite_header(out, shift[0], shift[1], shift[2])
        return bytes(out)

    def on_rtcp(self) -> None:
        sock = self.rtcp
        for _ in range(_DRAIN):
            try:
                data, addr = sock.recvfrom(_MAX_PACKET)
            except OSError:
                return
            if not self.rtcp_latched:
                self.rtcp_remote = addr
                self.rtcp_latched = True
            peer = self.peer
            if peer is not None and peer.rtcp_remote is not None:
                try:
                    peer.rtcp.sendto(data, peer.rtcp_remote)
                except OSError:
                    self.relay.send_errors += 1


class RtpRelay:
    """Port pairs on `address` from `low`..`high`, and the bridges between them."""

    def __init__(self, address: str, low: int, high: int,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.address = address
        self.low = low + (low & 1)  # RTP on even ports (RFC 3550 §11)
        self.high = high
        self.loop = loop or asyncio.get_running_loop()
        self._legs: dict[int, _Leg] = {}
        self._next = self.low
        self.send_errors = 0

    def __len__(self) -> int:
        return len(self._legs)

    # -- ports ------------------------------------------------------------------------------
    def allocate(self) -> int | None:
        """Bind the next free even/odd pair; the RTP port, or None when the range is full."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        span = (self.high - self.low + 1) // 2
        for _ in range(span):
            port = self._next
            self._next = port + 2 if port + 3 <= self.high else self.low
            if port in self._legs:
                continue
            socks: list[socket.socket] = []
            try:
                for p in (port, port + 1):
                    s = socket.socket(family, socket.SOCK_DGRAM)
                    socks.append(s)
                    s.setblocking(False)
                    s.bind((self.address, p))
            except OSError:
                for s in socks:
                    s.close()
                continue  # taken by someone else: try the next pair
            leg = _Leg(self, port, socks[0], socks[1])
            leg.last_rx = self.loop.time()
            self._legs[port] = leg
            self.loop.add_reader(socks[0].fileno(), leg.on_rtp)
            self.loop.add_reader(socks[1].fileno(), leg.on_rtcp)
            return port
        return None

    def release(self, port: int) -> None:
        leg = self._legs.pop(port, None)
        if leg is None:
            return
        if leg.peer is not None and leg.peer.peer is leg:
            leg.peer.peer = None
        for s in (leg.rtp, leg.rtcp):
            self.loop.remove_reader(s.fileno())
            s.close()

    def close(self) -> None:
        for port in list(self._legs):
            self.release(port)

    # -- bridging ---------------------------------------------------------------------------
    def set_remote(self, port: int, media: LegMedia) -> None:
        """What leg `port` negotiated; the SDP address is used until a packet latches."""
        leg = self._legs[port]
        leg.media = media
        if not leg.latched:
            leg.remote = (media.remote_host, media.remote_port)
        if not leg.rtcp_latched:
            leg.rtcp_remote = (media.remote_host, media.remote_port + 1)  # RFC 3550 §11

    def bridge(self, port_a: int, a: LegMedia, port_b: int, b: LegMedia) -> None:
        """Connect two legs both ways (again, after a re-negotiation)."""
        leg_a, leg_b = self._legs[port_a], self._legs[port_b]
        self.set_remote(port_a, a)
        self.set_remote(port_b, b)
        leg_a.peer, leg_b.peer = leg_b, leg_a
        leg_a.table, leg_a.pt_map = _conversion(a, b)
        leg_b.table, leg_b.pt_map = _conversion(b, a)
        now = self.loop.time()
        leg_a.last_rx = max(leg_a.last_rx, now)
        leg_b.last_rx = max(leg_b.last_rx, now)

    def detach(self, port: int) -> None:
        """Stop forwarding between leg `port` and its peer, both ways (hold); `bridge`
        connects them again. Packets still arriving keep `last_rx` fresh."""
        leg = self._legs.get(port)
        if leg is None:
            return
        if leg.peer is not None and leg.peer.peer is leg:
            leg.peer.peer = None
        leg.peer = None

    def continue_stream(self, port: int) -> None:
        """What leg `port` relays from now on continues what it sent last (after hold
        music), so the phone's jitter buffer sees one stream."""
        leg = self._legs.get(port)
        if leg is not None:
            leg.shift = []

    def tap(self, port: int, callback: Callable[[bytes], None] | None) -> None:
        """Call `callback` with every RTP packet received on leg `port` (None: stop)."""
        leg = self._legs.get(port)
        if leg is not None:
            leg.tap = callback

    def send(self, port: int, data: bytes) -> bool:
        """Send one generated RTP packet from leg `port`'s socket to where it sends (so a
        latching phone keeps receiving from the address it latched on, RFC 4961)."""
        leg = self._legs.get(port)
        if leg is None or leg.remote is None:
            return False
        try:
            leg.rtp.sendto(data, leg.remote)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                self.send_errors += 1
            return False
        leg.tx += 1
        leg.last_out = data
        return True

    # -- views ------------------------------------------------------------------------------
    def last_sent(self, port: int) -> bytes | None:
        """The last RTP packet sent from leg `port` (relayed or generated), if any."""
        leg = self._legs.get(port)
        return None if leg is None else leg.last_out

    def last_rx(self, port: int) -> float | None:
        leg = self._legs.get(port)
        return None if leg is None else leg.last_rx

    def counters(self, port: int) -> tuple[int, int]:
        """(packets received on, packets sent from) leg `port`."""
        leg = self._legs[port]
        return leg.rx, leg.tx

    def remote(self, port: int) -> tuple[str, int] | None:
        leg = self._legs.get(port)
        return None if leg is None else leg.remote


def _conversion(src: LegMedia, dst: LegMedia) -> tuple[bytes | None, dict[int, int] | None]:
    """The (translate table, payload type map) for packets going from `src` to `dst`."""
    pt_map: dict[int, int] = {}
    table: bytes | None = None
    if src.codec.upper() == dst.codec.upper():
        if src.payload_type != dst.payload_type:
            pt_map[src.payload_type] = dst.payload_type
    elif (src.codec.upper(), dst.codec.upper()) == ("PCMU", "PCMA"):
        table = _ULAW_TO_ALAW
    elif (src.codec.upper(), dst.codec.upper()) == ("PCMA", "PCMU"):
        table = _ALAW_TO_ULAW
    else:
        raise ValueError(f"cannot relay {src.codec} to {dst.codec}")
    if (src.dtmf_payload_type is not None and dst.dtmf_payload_type is not None
            and src.dtmf_payload_type != dst.dtmf_payload_type):
        pt_map[src.dtmf_payload_type] = dst.dtmf_payload_type
    return table, pt_map or None
