"""The agent state machine: one table of legal transitions; anything else raises.

    logged_out ─login→ available ─offer→ ringing ─answer→ on_call ─wrap→ acw ─free→ available
                         │  ▲              │ miss/cancel → available      │ free (no wrap-up)
                         │  └─── free ─── aux ◄─ pause ─┘ (auto-pause after N misses)
                         └──────── pause ──┘

An aux request (ACD-4) or a logout made while ringing or on a call is *pending*: it is applied
when the agent is next released (call ended without wrap-up, wrap-up ended, offer missed or
cancelled), instead of making the agent available.
"""

from __future__ import annotations

from enum import StrEnum

from acd.errors import AcdError
from acd.timers import Timer


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"  # reserved for one call: an offer is ringing on the device
    ON_CALL = "on_call"
    ACW = "acw"  # after-call work (wrap-up)
    AUX = "aux"  # not taking calls, with a reason code


class Trigger(StrEnum):
    LOGIN = "login"
    OFFER = "offer"
    ANSWER = "answer"
    MISS = "miss"  # rejected or rang without answer
    CANCEL = "cancel"  # offer withdrawn: caller gone, another agent answered, overflow
    WRAP = "wrap"  # call ended, wrap-up starts
    FREE = "free"  # call or wrap-up ended, or agent asked to be available
    PAUSE = "pause"  # aux with a reason (agent's, or the system's after missed offers)
    LOGOUT = "logout"


S, T = AgentState, Trigger

TRANSITIONS: dict[tuple[AgentState, Trigger], AgentState] = {
    (S.LOGGED_OUT, T.LOGIN): S.AVAILABLE,
    (S.AVAILABLE, T.OFFER): S.RINGING,
    (S.AVAILABLE, T.PAUSE): S.AUX,
    (S.AVAILABLE, T.LOGOUT): S.LOGGED_OUT,
    (S.RINGING, T.ANSWER): S.ON_CALL,
    (S.RINGING, T.MISS): S.AVAILABLE,
    (S.RINGING, T.CANCEL): S.AVAILABLE,
    (S.RINGING, T.PAUSE): S.AUX,  # auto-pause after misses, or a pending aux on release
    (S.RINGING, T.LOGOUT): S.LOGGED_OUT,  # a pending logout on release
    (S.ON_CALL, T.WRAP): S.ACW,
    (S.ON_CALL, T.FREE): S.AVAILABLE,
    (S.ON_CALL, T.PAUSE): S.AUX,  # call ended with an aux pending and no wrap-up
    (S.ON_CALL, T.LOGOUT): S.LOGGED_OUT,  # call ended with a logout pending and no wrap-up
    (S.ACW, T.FREE): S.AVAILABLE,
    (S.ACW, T.PAUSE): S.AUX,
    (S.ACW, T.LOGOUT): S.LOGGED_OUT,
    (S.AUX, T.FREE): S.AVAILABLE,
    (S.AUX, T.PAUSE): S.AUX,  # another reason code
    (S.AUX, T.LOGOUT): S.LOGGED_OUT,
}

BUSY = frozenset({S.RINGING, S.ON_CALL})


class IllegalTransition(AcdError):
    def __init__(self, agent: str, state: AgentState, trigger: Trigger) -> None:
        super().__init__(f"agent {agent}: {trigger.value} is illegal in state {state.value}")
        self.state = state
        self.trigger = trigger


class Agent:
    """One agent's live state. The engine owns these; strategies only read them."""

    __slots__ = (
        "id", "device", "state", "reason", "since", "queues", "skills", "order", "acw",
        "idle_since", "avail_token", "misses", "pending_aux", "pending_logout", "call",
        "calls_by_queue", "talk_time", "login_override", "listed", "acw_timer",
    )

    def __init__(self, agent_id: str, order: int) -> None:
        self.id = agent_id
        self.device = ""
        self.state = AgentState.LOGGED_OUT
        self.reason = ""
        self.since = 0.0
        self.queues: dict[str, int] = {}  # queue name -> penalty
        self.skills: dict[str, int] = {}  # skill -> level
        self.order = order  # position in the configured list: linear and round-robin order
        self.acw: float | None = None  # wrap-up override (None: the queue's)
        self.idle_since = 0.0  # when the agent last became free of calls
        self.avail_token = 0  # bumped each time the agent becomes available (lazy heaps)
        self.misses = 0  # consecutive offers missed
        self.pending_aux: str | None = None
        self.pending_logout = False
        self.call: object | None = None  # the call ringing or connected (acd.queues.Call)
        self.calls_by_queue: dict[str, int] = {}
        self.talk_time = 0.0
        self.login_override = False  # memberships came with the login, not from config
        self.listed = False  # entered in its queues' strategies (available, not yet offered)
        self.acw_timer: Timer | None = None

    def __repr__(self) -> str:
        return f"Agent({self.id!r}, {self.state.value})"

    def apply(self, trigger: Trigger, now: float, reason: str = "") -> AgentState:
        """Move along the table; raise `IllegalTransition` (nothing changed) otherwise."""
        target = TRANSITIONS.get((self.state, trigger))
        if target is None:
            raise IllegalTransition(self.id, self.state, trigger)
        self.state = target
        self.since = now
        self.reason = reason if target is AgentState.AUX else ""
        if target is AgentState.AVAILABLE:
            self.avail_token += 1
            # A cancelled offer was no fault of the agent: it keeps its place in line. Every
            # other way in (login, aux, wrap-up, a missed offer) starts a new idle period.
            if trigger is not Trigger.CANCEL:
                self.idle_since = now
        if target is AgentState.LOGGED_OUT:
            self.pending_aux = None
            self.pending_logout = False
            self.misses = 0
        elif target is AgentState.AUX:
            self.pending_aux = None
        return target

    def release_trigger(self, default: Trigger) -> tuple[Trigger, str]:
        """What releasing the agent means now: a pending logout or aux wins over `default`."""
        if self.pending_logout:
            return Trigger.LOGOUT, ""
        if self.pending_aux is not None:
            return Trigger.PAUSE, self.pending_aux
        return default, ""
