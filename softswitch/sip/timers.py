"""Transaction timer values (RFC 3261 §17, Table 4) and the deadline queues that hold them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Timers:
    """Base timer values in seconds; every transaction timer derives from these.

    `d` is Timer D, "> 32 s for UDP" (RFC 3261 Table 4): it does not scale with T1.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0 or self.d < 0:
            raise ValueError(f"invalid SIP timers {self!r}")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (RFC 3261) and L, M (RFC 6026 §8.11)."""
        return 64 * self.t1


class Timed(Protocol):
    """What a queue entry points at: the deadline it currently expects for each slot."""

    timeout_at: float | None
    rtx_at: float | None


# (deadline, owner, is_retransmission_slot). An entry is live only while the owner still
# expects that deadline in that slot: cancelling or re-arming a timer is one attribute store,
# and the stale entry is dropped when it reaches the head of its queue (lazy deletion).
Entry = tuple[float, Timed, bool]


def _live(entry: Entry) -> bool:
    deadline, owner, rtx = entry
    return (owner.rtx_at if rtx else owner.timeout_at) == deadline


class DeadlineQueues:
    """One FIFO per timer duration.

    Timers of one fixed duration started at non-decreasing `now` expire in the order they were
    started, so each queue stays sorted by deadline: push and pop are O(1), and finding the
    earliest deadline costs one look at the head of each queue (a handful of durations: T1
    doublings up to T2, T4, 64*T1, Timer D).
    Should `now` ever step back, an entry only waits behind the head of its queue (fires
    late, never lost).
    """

    __slots__ = ("_queues", "_best", "_known")

    def __init__(self) -> None:
        self._queues: dict[float, deque[Entry]] = {}
        # The earliest live entry, cached between calls: the adapter asks after every input,
        # and most inputs arm nothing earlier. `_known` is False when it must be recomputed.
        self._best: Entry | None = None
        self._known = True

    def __len__(self) -> int:
        """Entries held, stale ones included (they are dropped as they reach a head)."""
        return sum(len(q) for q in self._queues.values())

    def push(self, duration: float, owner: Timed, rtx: bool, deadline: float) -> None:
        queue = self._queues.get(duration)
        if queue is None:
            queue = self._queues[duration] = deque()
        entry = (deadline, owner, rtx)
        queue.append(entry)
        best = self._best
        if self._known and (best is None or deadline < best[0]):
            self._best = entry

    def _head(self) -> deque[Entry] | None:
        best: deque[Entry] | None = None
        best_at = 0.0
        for queue in self._queues.values():
            while queue:
                deadline, owner, rtx = queue[0]
                if (owner.rtx_at if rtx else owner.timeout_at) == deadline:
                    break
                queue.popleft()
            else:
                continue
            if best is None or queue[0][0] < best_at:
                best = queue
                best_at = queue[0][0]
        return best

    def earliest(self) -> float | None:
        """The earliest live deadline, or None."""
        best = self._best
        if self._known:
            if best is None:
                return None
            deadline, owner, rtx = best  # _live() inlined: asked after every input
            if (owner.rtx_at if rtx else owner.timeout_at) == deadline:
                # still live, so still the minimum: entries only ever left since
                return deadline
        queue = self._head()
        self._best = best = None if queue is None else queue[0]
        self._known = True
        return None if best is None else best[0]

    def pop_due(self, now: float) -> Entry | None:
        """Remove and return the earliest live entry due at `now`, or None."""
        queue = self._head()
        if queue is None or queue[0][0] > now:
            return None
        self._known = False
        return queue.popleft()
