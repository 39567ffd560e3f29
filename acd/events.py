"""Inputs of the ACD engine: what happened, told by the call layer (frozen, past tense).

The call layer (softswitch/) turns SIP and keypad facts into these and feeds them to
`Engine.handle_event(event, now)`; the engine never sees SIP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acd.config import AcdConfig


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every engine input."""


# -- calls ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallArrived(Event):
    """A call entered `queue`. `priority_class` set by a call flow overrides the caller rules."""

    call_id: str
    queue: str
    caller: str = ""
    dialled: str = ""
    priority_class: int | None = None
    service_type: str = ""


@dataclass(frozen=True, slots=True)
class CallAbandoned(Event):
    """The caller hung up before being connected (waiting or while an agent was ringing)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """A connected call ended (either side hung up, or transferred away).

    `transferred_to`: the agent blind-transferred it there (an extension or a service
    number); the agent's conversation ends as "transferred" (reporting CallTransferred)."""

    call_id: str
    transferred_to: str = ""


# -- agent legs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentAnswered(Event):
    """The agent's device answered the offer of `call_id`."""

    agent: str
    call_id: str


@dataclass(frozen=True, slots=True)
class AgentRejected(Event):
    """The agent's device refused the offer (busy, declined, unreachable)."""

    agent: str
    call_id: str
    reason: str = "rejected"


@dataclass(frozen=True, slots=True)
class RingNoAnswer(Event):
    """The device rang without answer (reported by the call layer; the engine also times it)."""

    agent: str
    call_id: str


# -- agent requests (keypad, softphone, web desktop: ACD-0, ACD-4) ----------------------------


@dataclass(frozen=True, slots=True)
class AgentLoggedIn(Event):
    """Agent logged in from `device` (free seating). `queues` (name → penalty) overrides the
    configured memberships when given; `skills` likewise."""

    agent: str
    device: str
    queues: Mapping[str, int] | None = None
    skills: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class AgentLoggedOut(Event):
    """Agent asked to log out (deferred until the current call and its wrap-up end)."""

    agent: str


@dataclass(frozen=True, slots=True)
class AuxRequested(Event):
    """Agent entered an activity/aux code; pending while on a call or ringing."""

    agent: str
    reason: str


@dataclass(frozen=True, slots=True)
class AvailableRequested(Event):
    """Agent asked to take calls (leaves aux, or ends after-call work early)."""

    agent: str


@dataclass(frozen=True, slots=True)
class AcwEnded(Event):
    """Agent finished after-call work (wrap-up) before or without its timer."""

    agent: str


# -- operations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigChanged(Event):
    """A validated configuration was loaded (ACD-1): new calls use it, calls in progress keep
    the version they started with."""

    config: AcdConfig
