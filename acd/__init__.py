"""acd — automatic call distribution, sans-I/O (ACD-0..4).

A pure engine on injected time: `Engine.handle_event(event, now)` takes `acd.events` from the
call layer and returns `acd.commands` for it to carry out; `get_timer()`/`handle_timer(now)`
drive its one timer heap; `pop_reports()` yields `reporting.events` for the CMS. Queues are
priority queues with ageing (`acd.queues`), agents explicit state machines (`acd.agents`),
routing strategies small classes in a registry (`acd.strategies`), priority classes come from
caller-ID rules (`acd.priority`). `acd.sim` drives the engine on virtual time.

The engine never knows SIP: this package imports neither `softswitch` nor `media`.
"""

from __future__ import annotations

from acd.agents import AgentState
from acd.config import MANUAL, AcdConfig, AgentConfig, QueueConfig
from acd.engine import Engine
from acd.errors import AcdError
from acd.priority import Classifier, PriorityRule
from acd.strategies import REGISTRY as STRATEGIES

__all__ = [
    "MANUAL", "STRATEGIES", "AcdConfig", "AcdError", "AgentConfig", "AgentState", "Classifier",
    "Engine", "PriorityRule", "QueueConfig",
]
