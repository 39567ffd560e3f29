"""The ACD's configuration, as the engine sees it: plain frozen values, already validated.

The TOML/pydantic layer (softswitch/config.py) builds these. A `ConfigChanged` event swaps
the whole `AcdConfig`; each call keeps the `QueueConfig` it arrived under (ACD-1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from acd.priority import PriorityRule

MANUAL = math.inf  # an after-call work time that lasts until the agent ends it


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    strategy: str = "longest_idle"
    seed: int = 0  # the random strategy's seed
    ring_timeout: float = 15.0
    auto_answer: bool = False
    acw: float = 0.0  # wrap-up seconds after each call; MANUAL: until the agent ends it
    weight: int = 0  # for an agent in several queues: higher weight is served first
    # Ageing: a waiting call gains one priority class per `ageing` seconds, so a low class's
    # wait is bounded by its lead over the classes above it. None: strict classes.
    ageing: float | None = None
    max_wait: float | None = None
    max_wait_destination: str | None = None
    max_length: int | None = None
    max_length_destination: str | None = None
    # With no agent logged in to the queue: "wait" keeps callers queued, "overflow" sends
    # arriving (and, when the last agent logs out, waiting) callers to `no_agents_destination`.
    when_no_agents: str = "wait"
    no_agents_destination: str | None = None
    announce_welcome: bool = False
    announce_interval: float | None = None  # position/EWT announcements (ACD-2)
    aht_hint: float = 180.0  # starting average handling time for the EWT estimate
    # Skills: required skill → minimum level, per service type or for the whole queue.
    requirements: Mapping[str, int] = field(default_factory=dict)
    service_requirements: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Every `relax_interval` seconds waited, required levels drop by one and one more
    # penalty level of members may take the call.
    relax_interval: float | None = None
    max_misses: int = 3  # consecutive ring-no-answers before the agent is paused; 0: never

    def requirements_for(self, service_type: str) -> Mapping[str, int]:
        return self.service_requirements.get(service_type, self.requirements)

    def lane_for(self, service_type: str) -> str:
        """Calls with different requirements wait in separate FIFO lanes of one queue."""
        return service_type if service_type in self.service_requirements else ""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    name: str
    queues: Mapping[str, int] = field(default_factory=dict)  # queue → penalty (0 best)
    skills: Mapping[str, int] = field(default_factory=dict)  # skill → level
    acw: float | None = None  # overrides the queue's wrap-up time


@dataclass(frozen=True, slots=True)
class AcdConfig:
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    agents: Mapping[str, AgentConfig] = field(default_factory=dict)
    priority_rules: tuple[PriorityRule, ...] = ()
    default_class: int = 1
    country_code: str = "62"
    rna_reason: str = "system:ring_no_answer"

    @staticmethod
    def build(
        queues: Iterable[QueueConfig], agents: Iterable[AgentConfig] = (), **kwargs: object
    ) -> AcdConfig:
        return AcdConfig(
            queues={q.name: q for q in queues}, agents={a.name: a for a in agents},
            **kwargs,  # type: ignore[arg-type]
        )
