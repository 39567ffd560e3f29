"""The one media clock: every generated or mixed stream gets its next 20 ms in one batch.

`MediaClock` is sans-I/O. It holds every stream that the switch itself produces — prompts
and music from clips, conference legs from the mixer — as rows of numpy arrays (SSRC,
sequence, timestamp, payload type, clip position...). `tick(now)` makes the frame of every
row at once: one gather from the clip bank, one mixer pass for every room, one G.711
table lookup, one header build; it returns the packets to send. Deadlines are
`start + k * ptime`, counted, never accumulated, so a late tick catches up (several
frames, up to `max_catchup`) without drift; a longer stall skips ahead, advancing
timestamps so receivers see a gap rather than a slowed stream.

`InactivityTracker` notes the last RTP arrival per session and names those silent for
longer than the timeout (RTP inactivity ends a dead call).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .g711 import ENCODE_BY_LAW, PCMA, PCMU
from .mixer import Mixer
from .player import Clip
from .session import RtpSender

__all__ = ["ClockOutput", "InactivityTracker", "MediaClock"]

FRAME = 160
PACKET = 12 + FRAME  # RTP header + G.711 payload
_FREE, _PLAYER, _CONFERENCE = 0, 1, 2
_LAW = {PCMU: 0, PCMA: 1}
_EPSILON = 1e-9  # float slack when comparing `now` to a deadline


@dataclass(slots=True)
class ClockOutput:
    packets: list[tuple[Hashable, bytes]] = field(default_factory=list)
    finished: list[Hashable] = field(default_factory=list)  # clips that played to the end
    inactive: list[Hashable] = field(default_factory=list)  # sessions without RTP too long
    frames: int = 0  # batches produced by this tick (1 normally, more when catching up)
    skipped: int = 0  # frames skipped after a stall longer than max_catchup


class InactivityTracker:
    """Last RTP arrival per session; `expired(now)` names and forgets the silent ones."""

    def __init__(self, timeout: float = 60.0, granularity: float = 1.0) -> None:
        self.timeout = timeout
        self.granularity = granularity  # check at most this often: a scan is O(sessions)
        self._last: dict[Hashable, float] = {}
        self._next_check = -math.inf

    def __len__(self) -> int:
        return len(self._last)

    def touch(self, key: Hashable, now: float) -> None:
        """An RTP packet for `key` arrived (one dict store: fit for the per-packet path)."""
        self._last[key] = now

    def forget(self, key: Hashable) -> None:
        self._last.pop(key, None)

    def expired(self, now: float) -> list[Hashable]:
        if now < self._next_check:
            return []
        self._next_check = now + self.granularity
        limit = now - self.timeout
        dead = [k for k, t in self._last.items() if t <= limit]
        for k in dead:
            del self._last[k]
        return dead

    def next_deadline(self) -> float | None:
        if not self._last:
            return None
        return max(self._next_check, min(self._last.values()) + self.timeout)


class MediaClock:
    # Per-slot state, one row per generated stream (grown by _alloc).
    _kind: npt.NDArray[np.int8]
    _ssrc: npt.NDArray[np.int64]
    _seq: npt.NDArray[np.int64]
    _ts: npt.NDArray[np.int64]
    _pt: npt.NDArray[np.int64]
    _law: npt.NDArray[np.int64]  # 0 µ-law, 1 A-law: row of ENCODE_BY_LAW
    _marker: npt.NDArray[np.bool_]
    _sent: npt.NDArray[np.int64]
    _base: npt.NDArray[np.int64]  # clip offset in the bank
    _pos: npt.NDArray[np.int64]  # next sample of the clip
    _len: npt.NDArray[np.int64]
    _loop: npt.NDArray[np.bool_]
    _frames: npt.NDArray[np.int16]  # slots x 160, this tick's linear audio

    def __init__(
        self,
        start: float,
        *,
        ptime: float = 0.020,
        max_catchup: int = 5,
        capacity: int = 256,
        inactivity_timeout: float = 60.0,
    ) -> None:
        self.start = start
        self.ptime = ptime
        self.max_catchup = max_catchup
        self.ticks = 0  # frames produced or skipped since start
        self.mixer = Mixer(FRAME)
        self.inactivity = InactivityTracker(inactivity_timeout)
        self._keys: list[Hashable | None] = []
        self._senders: list[RtpSender | None] = []
        self._clips: list[Clip | None] = []
        self._slot_of: dict[Hashable, int] = {}
        self._free: list[int] = []
        self._alloc(capacity)
        self._bank = np.zeros(1, dtype=np.int16)
        self._bank_offset: dict[int, int] = {}  # id(clip.samples) -> offset in the bank
        self._dirty = True
        self._active = np.zeros(0, dtype=np.intp)
        self._players = np.zeros(0, dtype=np.intp)
        self._mixer_keys: list[Hashable] | None = None
        self._mixer_slots = np.zeros(0, dtype=np.intp)
        self._ar = np.arange(FRAME, dtype=np.int64)

    # -- streams --------------------------------------------------------------------------

    def __contains__(self, key: Hashable) -> bool:
        return key in self._slot_of

    def __len__(self) -> int:
        return len(self._slot_of)

    def play(self, key: Hashable, clip: Clip, sender: RtpSender, *, loop: bool = False) -> None:
        """Send `clip` to the stream `key` (G.711 per sender.payload_type) from next tick."""
        slot = self._add(key, sender, _PLAYER)
        self._clips[slot] = clip
        self._pos[slot] = 0
        self._len[slot] = len(clip.samples)
        self._loop[slot] = loop
        if len(clip.samples) == 0:
            self._len[slot] = 1  # plays one frame of silence, then finishes
            self._loop[slot] = False
        if id(clip.samples) not in self._bank_offset:
            self._rebuild_bank()
        self._base[slot] = self._bank_offset.get(id(clip.samples), 0)

    def join(self, key: Hashable, room: Hashable, sender: RtpSender, *,
             muted: bool = False) -> None:
        """Stream `key` takes part in conference `room`: it is sent the others' mix and its
        input (decoded frames fed through `self.mixer.put*`) goes to them."""
        self._add(key, sender, _CONFERENCE)
        self.mixer.join(key, room, muted=muted)

    def stop(self, key: Hashable) -> None:
        """Stop generating for `key`; its sender continues where the clock left off."""
        slot = self._slot_of.pop(key)
        sender = self._senders[slot]
        assert sender is not None
        sender.seq = int(self._seq[slot]) & 0xFFFF
        sender.timestamp = int(self._ts[slot]) & 0xFFFFFFFF
        sender.packet_count += int(self._sent[slot])
        sender.octet_count += int(self._sent[slot]) * FRAME
        if self._kind[slot] == _CONFERENCE:
            self.mixer.leave(key)
        self._kind[slot] = _FREE
        self._keys[slot] = None
        self._senders[slot] = None
        self._clips[slot] = None
        self._free.append(slot)
        self._dirty = True

    def _add(self, key: Hashable, sender: RtpSender, kind: int) -> int:
        if key in self._slot_of:
            raise ValueError(f"{key!r} is already generated by the media clock")
        if sender.payload_type not in _LAW:
            raise ValueError("the media clock generates G.711 only (payload type 0 or 8)")
        if not self._free:
            self._alloc(len(self._keys))
        slot = self._free.pop()
        self._slot_of[key] = slot
        self._keys[slot] = key
        self._senders[slot] = sender
        self._kind[slot] = kind
        self._ssrc[slot] = sender.ssrc
        self._seq[slot] = sender.seq
        self._ts[slot] = sender.timestamp
        self._pt[slot] = sender.payload_type
        self._law[slot] = _LAW[sender.payload_type]
        self._marker[slot] = True  # RFC 3551 §4.1: a new source starts a talkspurt
        self._sent[slot] = 0
        self._dirty = True
        return slot

    def _alloc(self, extra: int) -> None:
        old = len(self._keys)
        new = old + max(extra, 16)

        def grow(name: str, dtype: npt.DTypeLike, shape: tuple[int, ...] = ()) -> None:
            array = np.zeros((new, *shape), dtype=dtype)
            if old:
                array[:old] = getattr(self, name)
            setattr(self, name, array)

        for name, dtype in (("_kind", np.int8), ("_ssrc", np.int64), ("_seq", np.int64),
                            ("_ts", np.int64), ("_pt", np.int64), ("_law", np.int64),
                            ("_marker", bool), ("_sent", np.int64), ("_base", np.int64),
                            ("_pos", np.int64), ("_len", np.int64), ("_loop", bool)):
            grow(name, dtype)
        grow("_frames", np.int16, (FRAME,))
        self._keys.extend([None] * (new - old))
        self._senders.extend([None] * (new - old))
        self._clips.extend([None] * (new - old))
        self._free.extend(range(new - 1, old - 1, -1))

    def _rebuild_bank(self) -> None:
        """All clips in use, end to end, so one gather serves every player."""
        live: dict[int, Clip] = {}
        for slot in self._slot_of.values():
            clip = self._clips[slot]
            if clip is not None:
                live.setdefault(id(clip.samples), clip)
        parts = [np.zeros(1, dtype=np.int16)]
        offsets: dict[int, int] = {}
        at = 1
        for ident, clip in live.items():
            offsets[ident] = at
            parts.append(clip.samples)
            at += len(clip.samples)
        self._bank = np.concatenate(parts)
        self._bank_offset = offsets
        for slot in self._slot_of.values():
            clip = self._clips[slot]
            if clip is not None:
                self._base[slot] = offsets[id(clip.samples)]

    def _refresh(self) -> None:
        slots = sorted(self._slot_of.values())
        self._active = np.array(slots, dtype=np.intp)
        self._players = self._active[self._kind[self._active] == _PLAYER]
        self._dirty = False

    # -- time -----------------------------------------------------------------------------

    def next_deadline(self) -> float:
        return self.start + self.ticks * self.ptime

    def tick(self, now: float) -> ClockOutput:
        """Produce every frame that is due at `now` (normally one batch)."""
        out = ClockOutput()
        due = int(math.floor((now - self.start) / self.ptime + _EPSILON)) + 1 - self.ticks
        if due > self.max_catchup:
            out.skipped = due - self.max_catchup
            self._skip(out.skipped, out)
            due = self.max_catchup
        for _ in range(max(due, 0)):
            self._batch(out)
        out.inactive = self.inactivity.expired(now)
        return out

    def _skip(self, frames: int, out: ClockOutput) -> None:
        if self._dirty:
            self._refresh()
        self.ticks += frames
        active = self._active
        self._ts[active] = (self._ts[active] + frames * FRAME) & 0xFFFFFFFF
        self._marker[active] = True
        players = self._players
        if players.size:
            pos = self._pos[players] + frames * FRAME
            length = self._len[players]
            loop = self._loop[players]
            self._pos[players] = np.where(loop, pos % length, pos)
            self._finish(players[~loop & (pos >= length)], out)

    def _batch(self, out: ClockOutput) -> None:
        if self._dirty:
            self._refresh()
        self.ticks += 1
        active = self._active
        frames = self._frames
        players = self._players
        ended = players[:0]
        if players.size:
            pos = self._pos[players]
            length = self._len[players][:, None]
            loop = self._loop[players]
            idx = pos[:, None] + self._ar
            idx = np.where(loop[:, None], idx % length, idx)
            past = idx >= length
            gathered = self._bank[self._base[players][:, None] + np.minimum(idx, length - 1)]
            gathered[past] = 0
            frames[players] = gathered
            new_pos = pos + FRAME
            self._pos[players] = np.where(loop, new_pos % length[:, 0], new_pos)
            ended = players[~loop & (new_pos >= length[:, 0])]
        if len(self.mixer):
            keys, mixed = self.mixer.mix()
            if keys is not self._mixer_keys:
                self._mixer_keys = keys
                self._mixer_slots = np.array([self._slot_of[k] for k in keys], dtype=np.intp)
            frames[self._mixer_slots] = mixed
        n = len(active)
        if n:
            codes = ENCODE_BY_LAW[self._law[active][:, None], frames[active].view(np.uint16)]
            buf = np.empty((n, PACKET), dtype=np.uint8)
            buf[:, 0] = 0x80  # RFC 3550 §5.1: V=2, no padding, extension or CSRC
            buf[:, 1] = self._pt[active] | (self._marker[active].astype(np.int64) << 7)
            buf[:, 2:4] = self._seq[active].astype(">u2").view(np.uint8).reshape(n, 2)
            buf[:, 4:8] = self._ts[active].astype(">u4").view(np.uint8).reshape(n, 4)
            buf[:, 8:12] = self._ssrc[active].astype(">u4").view(np.uint8).reshape(n, 4)
            buf[:, 12:] = codes
            raw = buf.tobytes()
            keys_of = self._keys
            out.packets.extend(
                (keys_of[slot], raw[i * PACKET : (i + 1) * PACKET])
                for i, slot in enumerate(active.tolist())
            )
            self._seq[active] = (self._seq[active] + 1) & 0xFFFF
            self._ts[active] = (self._ts[active] + FRAME) & 0xFFFFFFFF
            self._marker[active] = False
            self._sent[active] += 1
        out.frames += 1
        self._finish(ended, out)

    def _finish(self, slots: npt.NDArray[np.intp], out: ClockOutput) -> None:
        for slot in slots.tolist():
            key = self._keys[slot]
            out.finished.append(key)
            self.stop(key)
