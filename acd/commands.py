"""Outputs of the ACD engine: what the call layer must do now (frozen dataclasses).

The engine returns these from `handle_event()` and `handle_timer()`; the call layer carries
them out (rings a device, bridges legs, plays audio) and reports back with `acd.events`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every engine output."""


@dataclass(frozen=True, slots=True)
class OfferCall(Command):
    """Ring `agent` on `device` with `call_id`; the engine times the ring itself."""

    call_id: str
    agent: str
    device: str
    queue: str
    ring_timeout: float
    auto_answer: bool = False
    caller: str = ""
    priority_class: int = 0


@dataclass(frozen=True, slots=True)
class CancelOffer(Command):
    """Stop ringing `agent` for `call_id` (caller gone, ring timeout, another agent answered)."""

    call_id: str
    agent: str
    reason: str


@dataclass(frozen=True, slots=True)
class Connect(Command):
    """Bridge the caller of `call_id` with the answered leg of `agent`."""

    call_id: str
    agent: str
    device: str


@dataclass(frozen=True, slots=True)
class PlayAnnouncement(Command):
    """Play to a waiting caller (ACD-2). kind: "welcome" on entry, "position" periodically
    (with `position`, 1 = next, and `ewt`, the expected wait in seconds)."""

    call_id: str
    queue: str
    kind: str
    position: int = 0
    ewt: float = 0.0


@dataclass(frozen=True, slots=True)
class Overflow(Command):
    """Take the call out of the queue to `destination` (None: the call layer's default,
    an announcement then hang-up). reason: max_wait, max_length, no_agents, unknown_queue, ..."""

    call_id: str
    destination: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class SetAgentState(Command):
    """Tell the agent's device/desktop its state (BLF lamp, display, CTI)."""

    agent: str
    device: str
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refused(Command):
    """An input the engine could not apply (unknown agent, illegal transition, ...); the call
    layer may play an error tone. Nothing changed."""

    event: object
    reason: str
