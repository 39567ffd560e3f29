"""An audio jitter buffer: reorders by sequence number, bounded, counts loss; sans-I/O.

`put()` stores packets as they arrive (any order); the media clock calls `get()` once per
20 ms and receives the next frame in sequence, a loss marker for a frame that is missing
while later ones are already here, or nothing while the stream is silent or not yet
prefetched. A ring of `capacity` slots indexed by sequence number holds payloads, so
`put()` allocates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtp import uint16_diff

__all__ = ["JitterBuffer", "JitterFrame"]

# RFC 3550 Appendix A.1: a jump further than this restarts the sequence space.
MAX_DROPOUT = 3000


@dataclass(frozen=True, slots=True)
class JitterFrame:
    sequence_number: int
    timestamp: int
    payload: bytes | None  # None: the packet was lost (conceal it)


class JitterBuffer:
    def __init__(self, capacity: int = 16, prefetch: int = 3, idle_reset: float = 1.0) -> None:
        if capacity < 2 or prefetch < 0 or prefetch > capacity:
            raise ValueError("need capacity >= 2 and 0 <= prefetch <= capacity")
        self.capacity = capacity
        self.prefetch = prefetch
        self.idle_reset = idle_reset  # silence longer than this starts over (hold, restart)
        self._payloads: list[bytes | None] = [None] * capacity
        self._seqs = [-1] * capacity
        self._timestamps = [0] * capacity
        self._head: int | None = None  # next sequence number to play out (16-bit)
        self._count = 0
        self._playing = False
        self._last_arrival = 0.0
        self.received = 0
        self.lost = 0
        self.late = 0
        self.duplicates = 0
        self.overflows = 0

    def __len__(self) -> int:
        return self._count

    def put(self, sequence_number: int, timestamp: int, payload: bytes, now: float) -> None:
        if self._head is not None and now - self._last_arrival > self.idle_reset:
            self._reset()
        self._last_arrival = now
        self.received += 1
        if self._head is None:
            self._head = sequence_number
        delta = uint16_diff(sequence_number, self._head)
        if delta < 0:
            if delta < -MAX_DROPOUT:
                self._reset()
                self._head = sequence_number
                delta = 0
            else:
                self.late += 1  # already played out, or declared lost
                return
        if delta > MAX_DROPOUT:
            self._reset()
            self._head = sequence_number
            delta = 0
        if delta >= self.capacity:
            # Too far ahead: drop the oldest frames to make room (counted as lost).
            self.overflows += 1
            self._advance(delta - self.capacity + 1)
        slot = sequence_number % self.capacity
        if self._seqs[slot] == sequence_number:
            self.duplicates += 1
            return
        self._seqs[slot] = sequence_number
        self._timestamps[slot] = timestamp
        self._payloads[slot] = payload
        self._count += 1

    def get(self, now: float) -> JitterFrame | None:
        """The next frame in order, a lost frame (payload None), or None (nothing due)."""
        if self._head is None or self._count == 0:
            self._playing = False  # underrun or silence: prefetch again before playing
            return None
        if not self._playing:
            if self._count < self.prefetch:
                return None
            self._playing = True
        head = self._head
        slot = head % self.capacity
        self._head = (head + 1) & 0xFFFF
        if self._seqs[slot] == head:
            payload = self._payloads[slot]
            self._payloads[slot] = None
            self._seqs[slot] = -1
            self._count -= 1
            return JitterFrame(head, self._timestamps[slot], payload)
        # Later packets are here but this one is not: it is lost (or too late to matter).
        self.lost += 1
        return JitterFrame(head, 0, None)

    def _advance(self, count: int) -> None:
        assert self._head is not None
        for _ in range(count):
            slot = self._head % self.capacity
            if self._seqs[slot] == self._head:
                self._count -= 1
                self._seqs[slot] = -1
                self._payloads[slot] = None
            self.lost += 1
            self._head = (self._head + 1) & 0xFFFF

    def _reset(self) -> None:
        self._payloads = [None] * self.capacity
        self._seqs = [-1] * self.capacity
        self._count = 0
        self._head = None
        self._playing = False
