"""The one vocabulary of reporting events, shared by `acd/`, `softswitch/` and `reporting/`.

Every fact a report needs (CMS-1, CMS-2) is one of these immutable events: a type name, a
timestamp, ids, the queue and priority class it concerns and a reason code. They travel on the
event bus as msgpack maps: `to_dict()` gives a plain dict with a ``"type"`` key, `from_dict()`
turns it back into the same event.

This module imports nothing else of the project (ARCHITECTURE.md, "Who may import whom").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

EVENT_TYPES: dict[str, type[ReportEvent]] = {}
E = TypeVar("E", bound="ReportEvent")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEvent:
    """Base of every reporting event: `ts` is seconds (virtual or wall clock, the adapter's)."""

    type_name: ClassVar[str] = "event"

    ts: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A msgpack-encodable map: ``{"type": ..., field: value, ...}``."""
        out: dict[str, Any] = {"type": self.type_name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _register(cls: type[E]) -> type[E]:
    if cls.type_name in EVENT_TYPES:
        raise ValueError(f"duplicate reporting event type {cls.type_name!r}")
    EVENT_TYPES[cls.type_name] = cls
    return cls


def from_dict(data: dict[str, Any]) -> ReportEvent:
    """The event `to_dict()` produced; unknown keys are ignored (newer producers)."""
    try:
        cls = EVENT_TYPES[data["type"]]
    except KeyError as exc:
        raise ValueError(f"unknown reporting event type {data.get('type')!r}") from exc
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


# -- calls in queues (CMS-2) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent(ReportEvent):
    """Common fields of the life of one queued call."""

    call_id: str
    queue: str
    priority_class: int = 0


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(CallEvent):
    """Offered to the queue: counts as "calls offered" and "calls queued"."""

    type_name: ClassVar[str] = "call_queued"
    caller: str = ""
    dialled: str = ""
    service_type: str = ""
    position: int = 0
    priority_rule: str = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(CallEvent):
    """Rung at an agent (one event per agent when ringing several)."""

    type_name: ClassVar[str] = "call_offered"
    agent: str
    wait: float = 0.0


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallOfferFailed(CallEvent):
    """An offer that did not become a conversation; reason: ring_no_answer, rejected, ..."""

    type_name: ClassVar[str] = "call_offer_failed"
    agent: str


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(CallEvent):
    """Connected to an agent; `wait` is arrival → answer (service level, ASA)."""

    type_name: ClassVar[str] = "call_answered"
    agent: str
    wait: float


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(CallEvent):
    """The caller hung up before an agent answered."""

    type_name: ClassVar[str] = "call_abandoned"
    wait: float


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallOverflowed(CallEvent):
    """Left the queue for `destination`; reason: max_wait, max_length, no_agents, ..."""

    type_name: ClassVar[str] = "call_overflowed"
    destination: str | None = None
    wait: float = 0.0


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallCompleted(CallEvent):
    """An answered call ended; `talk` is answer → end."""

    type_name: ClassVar[str] = "call_completed"
    agent: str
    talk: float


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(CallEvent):
    """The agent blind-transferred an answered call (SIP REFER) to `target` (an extension
    or a service number); follows the CallCompleted (reason "transferred") of that agent's
    conversation. Counted as the queue's "transfers" (Avaya CMS TRANSFERRED)."""

    type_name: ClassVar[str] = "call_transferred"
    agent: str
    target: str


# -- calls through the switch (PBX-6) ---------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(ReportEvent):
    """A call through the B2BUA ended: the facts of its CDR (`ts` is the end, wall clock).

    Every call, queued or not; `disposition` answered, busy, no_answer, cancelled, ...;
    `hangup_side` caller, callee or switch. Reports count queue calls from the ACD's events,
    not these.
    """

    type_name: ClassVar[str] = "call_ended"
    call_id: str
    caller: str = ""
    callee: str = ""
    started_at: float = 0.0
    answered_at: float | None = None
    duration: float = 0.0
    billable: float = 0.0
    disposition: str = ""
    hangup_cause: str = ""
    hangup_side: str = ""


# -- agents (CMS-1) ---------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(ReportEvent):
    """Every agent state change; `reason` is the aux/system reason code when there is one.

    `queue`, `call_id` and `priority_class` name the call the change is about (offer, answer,
    end, after-call work), empty otherwise.
    """

    type_name: ClassVar[str] = "agent_state_changed"
    agent: str
    state: str
    previous: str
    device: str = ""
    queue: str = ""
    call_id: str = ""
    priority_class: int = 0


# -- configuration ----------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigApplied(ReportEvent):
    """A configuration version took effect (ACD-1: later calls use it, earlier keep theirs)."""

    type_name: ClassVar[str] = "config_applied"
    component: str
    version: int


# -- thresholds (CMS-4) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEvent(ReportEvent):
    """A threshold rule of `[reporting] thresholds` about one queue."""

    rule: str
    queue: str
    metric: str
    op: str
    threshold: float
    value: float | None = None
    severity: str = "warning"


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised(AlertEvent):
    """`metric op threshold` started to hold (for the rule's `for_s`); `value` is the figure."""

    type_name: ClassVar[str] = "alert_raised"


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class AlertCleared(AlertEvent):
    """The rule no longer holds; `value` is the figure that cleared it."""

    type_name: ClassVar[str] = "alert_cleared"
