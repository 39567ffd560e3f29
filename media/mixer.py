"""N-party mixing for every conference at once, vectorised.

All participants of all rooms share one input matrix (slots x 160 int16). A tick sums each
room's inputs (`np.add.reduceat` over participants kept sorted by room) and gives every
participant the room sum minus its own input — everyone hears the others, never
themselves — saturated to int16. Membership changes only re-sort the index arrays; the
per-tick cost is a handful of numpy calls whatever the number of rooms.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import numpy.typing as npt

from .g711 import DECODE_BY_LAW

__all__ = ["Mixer"]

FRAME = 160


class Mixer:
    def __init__(self, frame_samples: int = FRAME, capacity: int = 64) -> None:
        self.frame_samples = frame_samples
        self._inputs = np.zeros((capacity, frame_samples), dtype=np.int16)
        self._slot: dict[Hashable, int] = {}
        self._room: dict[Hashable, Hashable] = {}
        self._muted: set[Hashable] = set()
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self._dirty = True
        # Built by _index(): participants sorted by room.
        self._order = np.zeros(0, dtype=np.intp)  # slots, grouped by room
        self._starts = np.zeros(0, dtype=np.intp)  # first position of each room in _order
        self._group = np.zeros(0, dtype=np.intp)  # room number of each position
        self._speaks = np.zeros(0, dtype=bool)  # False for muted (listen-only) positions
        self._keys: list[Hashable] = []

    def __contains__(self, key: Hashable) -> bool:
        return key in self._slot

    def __len__(self) -> int:
        return len(self._slot)

    def join(self, key: Hashable, room: Hashable, *, muted: bool = False) -> None:
        if key in self._slot:
            raise ValueError(f"{key!r} is already in a room")
        if not self._free:
            self._grow()
        self._slot[key] = self._free.pop()
        self._inputs[self._slot[key]] = 0
        self._room[key] = room
        if muted:
            self._muted.add(key)
        self._dirty = True

    def leave(self, key: Hashable) -> None:
        self._free.append(self._slot.pop(key))
        del self._room[key]
        self._muted.discard(key)
        self._dirty = True

    def set_muted(self, key: Hashable, muted: bool) -> None:
        if muted:
            self._muted.add(key)
        else:
            self._muted.discard(key)
        self._dirty = True

    def put(self, key: Hashable, pcm: npt.NDArray[np.int16]) -> None:
        """This tick's input of `key` (160 int16 samples; missing input is silence)."""
        self._inputs[self._slot[key]] = pcm

    def put_g711(self, key: Hashable, payload: bytes, law: int) -> None:
        """This tick's input as a G.711 payload (law 0 µ, 1 A), decoded into place."""
        codes = np.frombuffer(payload, dtype=np.uint8)[: self.frame_samples]
        row = self._inputs[self._slot[key]]
        np.take(DECODE_BY_LAW[law], codes, out=row[: len(codes)])
        row[len(codes) :] = 0

    def mix(self) -> tuple[list[Hashable], npt.NDArray[np.int16]]:
        """(participants, their output frames) for this tick; inputs are cleared."""
        if self._dirty:
            self._index()
        if not self._keys:
            return [], np.zeros((0, self.frame_samples), dtype=np.int16)
        inputs = self._inputs[self._order].astype(np.int32)  # gathered, grouped by room
        inputs[~self._speaks] = 0
        sums = np.add.reduceat(inputs, self._starts, axis=0)
        out = sums[self._group] - inputs
        np.clip(out, -32768, 32767, out=out)
        self._inputs[self._order] = 0
        return self._keys, out.astype(np.int16)

    def _index(self) -> None:
        by_room: dict[Hashable, list[Hashable]] = {}
        for key, room in self._room.items():
            by_room.setdefault(room, []).append(key)
        keys: list[Hashable] = []
        starts: list[int] = []
        group: list[int] = []
        for number, members in enumerate(by_room.values()):
            starts.append(len(keys))
            keys.extend(members)
            group.extend([number] * len(members))
        self._keys = keys
        self._order = np.array([self._slot[k] for k in keys], dtype=np.intp)
        self._starts = np.array(starts, dtype=np.intp)
        self._group = np.array(group, dtype=np.intp)
        self._speaks = np.array([k not in self._muted for k in keys], dtype=bool)
        self._dirty = False

    def _grow(self) -> None:
        old = len(self._inputs)
        self._inputs = np.concatenate([self._inputs, np.zeros_like(self._inputs)])
        self._free.extend(range(2 * old - 1, old - 1, -1))
