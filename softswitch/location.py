"""The location service: address-of-record -> contact bindings (RFC 3261 §10), in memory.

The registrar answers from memory; changes are written behind to the store in batches
(like Kamailio's usrloc ``db_mode=2``), so a REGISTER never waits for a disk. ``take_changes``
hands the adapter what to write; a crash loses at most the refreshes of one flush interval,
and the bindings themselves persist across a restart.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from softswitch.store.base import Binding

__all__ = ["LocationService"]


def _by_q(binding: Binding) -> float:
    return -(binding.q if binding.q is not None else 1.0)


# The expiry heap is rebuilt from the live bindings when it holds this many entries more than
# twice their number (see `_compact`).
_HEAP_SLACK = 1024


class LocationService:
    __slots__ = ("_by_aor", "_expiry", "_heap_limit", "_dirty", "_deleted")

    def __init__(self) -> None:
        self._by_aor: dict[str, dict[str, Binding]] = {}
        # (expires_at, aor, contact); stale entries are skipped on pop (lazy deletion). Each
        # refresh leaves one behind until its old expiry, so a phone refreshing every second
        # with Expires: 3600 would add 3,600 an hour: past `_heap_limit` the heap is rebuilt.
        self._expiry: list[tuple[float, str, str]] = []
        self._heap_limit = _HEAP_SLACK
        self._dirty: dict[tuple[str, str], Binding] = {}
        self._deleted: set[tuple[str, str]] = set()

    # -- queries --------------------------------------------------------------------------
    def lookup(self, aor: str, wall: float) -> list[Binding]:
        """Live bindings of an AOR, highest q first (RFC 3261 §16.6 ordering input)."""
        contacts = self._by_aor.get(aor)
        if not contacts:
            return []
        found = [b for b in contacts.values() if b.expires_at > wall]
        if len(found) > 1:  # most AORs hold one binding: nothing to order
            found.sort(key=_by_q)
        return found

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_aor.values())

    def aors(self) -> Iterator[str]:
        return iter(self._by_aor)

    def all(self) -> Iterator[Binding]:
        for contacts in self._by_aor.values():
            yield from contacts.values()

    def bindings_of(self, aor: str) -> dict[str, Binding]:
        return self._by_aor.get(aor, {})

    # -- changes --------------------------------------------------------------------------
    def put(self, binding: Binding) -> None:
        key = (binding.aor, binding.contact)
        self._by_aor.setdefault(binding.aor, {})[binding.contact] = binding
        heap = self._expiry
        heapq.heappush(heap, (binding.expires_at, binding.aor, binding.contact))
        if len(heap) > self._heap_limit:
            self._compact()
        self._dirty[key] = binding
        self._deleted.discard(key)

    def _compact(self) -> None:
        """The heap anew from the live bindings, dropping stale entries (amortised O(1))."""
        heap = [(b.expires_at, b.aor, b.contact)
                for contacts in self._by_aor.values() for b in contacts.values()]
        heapq.heapify(heap)
        self._expiry = heap
        self._heap_limit = 2 * len(heap) + _HEAP_SLACK

    def remove(self, aor: str, contact: str) -> Binding | None:
        contacts = self._by_aor.get(aor)
        if not contacts or contact not in contacts:
            return None
        binding = contacts.pop(contact)
        if not contacts:
            del self._by_aor[aor]
        key = (aor, contact)
        self._dirty.pop(key, None)
        self._deleted.add(key)
        return binding

    def load(self, bindings: list[Binding], wall: float) -> int:
        """Restore bindings read from the store at start-up (not marked dirty)."""
        n = 0
        for b in bindings:
            if b.expires_at <= wall:
                self._deleted.add((b.aor, b.contact))
                continue
            self._by_aor.setdefault(b.aor, {})[b.contact] = b
            heapq.heappush(self._expiry, (b.expires_at, b.aor, b.contact))
            n += 1
        if len(self._expiry) > self._heap_limit:
            self._compact()
        return n

    def next_expiry(self) -> float | None:
        return self._expiry[0][0] if self._expiry else None

    def sweep(self, wall: float) -> list[Binding]:
        """Remove and return the bindings that have expired by ``wall``."""
        expired: list[Binding] = []
        heap = self._expiry
        while heap and heap[0][0] <= wall:
            expires_at, aor, contact = heapq.heappop(heap)
            current = self._by_aor.get(aor, {}).get(contact)
            # A refreshed binding left an older heap entry behind: skip it.
            if current is not None and current.expires_at == expires_at:
                self.remove(aor, contact)
                expired.append(current)
        return expired

    def take_changes(self) -> tuple[list[Binding], list[tuple[str, str]]]:
        """What to write to the store since the last call: (upserts, deletions)."""
        upserts = list(self._dirty.values())
        deletes = list(self._deleted)
        self._dirty.clear()
        self._deleted.clear()
        return upserts, deletes

    def restore_changes(
        self, upserts: list[Binding], deletes: list[tuple[str, str]]
    ) -> None:
        """Give back changes whose write failed, unless newer ones superseded them."""
        for b in upserts:
            key = (b.aor, b.contact)
            if key not in self._dirty and self.bindings_of(b.aor).get(b.contact) is b:
                self._dirty[key] = b
        for key in deletes:
            if key not in self._dirty and key[1] not in self.bindings_of(key[0]):
                self._deleted.add(key)

    def has_changes(self) -> bool:
        return bool(self._dirty or self._deleted)
