"""The asyncio adapter of the one media clock (media/clock.py): ONE timer for every stream
the switch generates (music on hold today), re-armed from `next_deadline()` after each tick.

Packets go out of the relay's socket of the leg they are for, so a phone that latched on
that address (RFC 4961) keeps receiving, and they continue the SSRC, sequence number and
timestamp of what the relay last sent there (RFC 3550 §5.1), so the phone's jitter buffer
sees one stream; the first generated packet carries the marker bit (RFC 3551 §4.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from media.clock import FRAME, MediaClock
from media.player import Clip
from media.relay import RtpRelay
from media.rtp import RtpError, peek_header
from media.session import RtpSender

__all__ = ["MediaClockDriver", "continue_sender"]

log = logging.getLogger("softswitch.media")


def continue_sender(last: bytes | None, payload_type: int) -> RtpSender:
    """A sender that picks up after packet `last` (a fresh random one without it)."""
    if last is not None:
        try:
            _pt, seq, ts, ssrc = peek_header(last)
        except RtpError:
            pass
        else:
            return RtpSender(payload_type, ssrc=ssrc, seq=(seq + 1) & 0xFFFF,
                             timestamp=(ts + FRAME) & 0xFFFFFFFF)
    return RtpSender(payload_type)


class MediaClockDriver:
    """Plays clips to relay legs, every leg served by the same 20 ms batch."""

    def __init__(self, relay: RtpRelay, loop: asyncio.AbstractEventLoop | None = None, *,
                 ptime: float = 0.020) -> None:
        self.relay = relay
        self.loop = loop or asyncio.get_running_loop()
        self.clock = MediaClock(self.loop.time(), ptime=ptime)
        self._timer: asyncio.TimerHandle | None = None
        self.packets = 0
        # Told the leg of every clip played to its end (loop=False): prompts, then what next.
        self.on_finished: Callable[[int], None] | None = None

    def __contains__(self, port: int) -> bool:
        return port in self.clock

    def play(self, port: int, clip: Clip, payload_type: int, *, loop: bool = True) -> None:
        """Send `clip` (looped) to relay leg `port` from the next tick."""
        if port in self.clock:
            self.clock.stop(port)
        if not len(self.clock):
            # Idle: start the tick grid now rather than "catching up" the idle time.
            self.clock.start = self.loop.time()
            self.clock.ticks = 0
        sender = continue_sender(self.relay.last_sent(port), payload_type)
        self.clock.play(port, clip, sender, loop=loop)
        self._arm()

    def stop(self, port: int) -> None:
        if port in self.clock:
            self.clock.stop(port)
        if not len(self.clock) and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._timer is None and len(self.clock):
            self._timer = self.loop.call_at(self.clock.next_deadline(), self._on_tick)

    def _on_tick(self) -> None:
        self._timer = None
        try:
            out = self.clock.tick(self.loop.time())
            send = self.relay.send
            for port, packet in out.packets:
                send(port, packet)  # type: ignore[arg-type]
            self.packets += len(out.packets)
            if out.finished and self.on_finished is not None:
                for port in out.finished:
                    self.on_finished(port)  # type: ignore[arg-type]
        except Exception:
            log.exception("media clock tick failed")
        self._arm()
