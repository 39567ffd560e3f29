"""The engine's one timer structure: a heap of deadlines with lazy cancellation."""

from __future__ import annotations

import heapq
import itertools


class Timer:
    """A scheduled deadline. Cancelling is one attribute store; the heap drops it later."""

    __slots__ = ("deadline", "kind", "target", "cancelled")

    def __init__(self, deadline: float, kind: str, target: object) -> None:
        self.deadline = deadline
        self.kind = kind
        self.target = target
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerHeap:
    __slots__ = ("_heap", "_seq", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def schedule(self, deadline: float, kind: str, target: object) -> Timer:
        timer = Timer(deadline, kind, target)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        self._live += 1
        return timer

    def cancel(self, timer: Timer | None) -> None:
        if timer is not None and not timer.cancelled:
            timer.cancelled = True
            self._live -= 1

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        if len(heap) > 64 and len(heap) > 4 * self._live:  # mostly cancelled: compact
            self._heap = heap = [e for e in heap if not e[2].cancelled]
            heapq.heapify(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Timer | None:
        """The earliest live timer due at `now`, removed; None when nothing is due."""
        heap = self._heap
        while heap:
            deadline, _, timer = heap[0]
            if timer.cancelled:
                heapq.heappop(heap)
                continue
            if deadline > now:
                return None
            heapq.heappop(heap)
            timer.cancelled = True  # fired: cancelling it later is a no-op
            self._live -= 1
            return timer
        return None
