"""Routing strategies: which available agent(s) of a queue get the call.

Each strategy keeps its own structure of the queue's available agents, updated as agents come
and go (`add`, `remove`), so choosing an agent never scans every agent: heaps with lazy deletion
(an entry is live while the agent is still available under the same `avail_token`), a sorted
ring for round-robin, an indexed list for random, and for skills one heap per skill profile.

`select(call, now)` returns the agents to ring (several for ring-all), without removing them:
the engine reserves the agents it offers to, which makes their entries stale everywhere.
`accepts(agent, call, now)` says whether an agent that just became free may take `call`.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left, bisect_right, insort
from typing import ClassVar

from acd.agents import Agent, AgentState
from acd.config import QueueConfig
from acd.queues import Call

REGISTRY: dict[str, type[Strategy]] = {}

_AVAILABLE = AgentState.AVAILABLE


def register(cls: type[Strategy]) -> type[Strategy]:
    REGISTRY[cls.name] = cls
    return cls


def make_strategy(cfg: QueueConfig) -> Strategy:
    try:
        cls = REGISTRY[cfg.strategy]
    except KeyError:
        raise ValueError(
            f"queue {cfg.name}: unknown strategy {cfg.strategy!r} (known: {sorted(REGISTRY)})"
        ) from None
    return cls(cfg)


class Strategy:
    name: ClassVar[str] = ""
    ring_all: ClassVar[bool] = False

    def __init__(self, cfg: QueueConfig) -> None:
        self.queue = cfg.name
        self.cfg = cfg
        self.live = 0  # agents available in this queue

    def add(self, agent: Agent, now: float) -> None:
        self.live += 1

    def remove(self, agent: Agent) -> None:
        self.live -= 1

    def select(self, call: Call, now: float) -> list[Agent]:
        raise NotImplementedError

    def offered(self, agent: Agent) -> None:
        """`agent` was rung for a call of this queue (round-robin remembers it)."""

    def accepts(self, agent: Agent, call: Call, now: float) -> bool:
        return True


def _live(agent: Agent, token: int) -> bool:
    return agent.state is _AVAILABLE and agent.avail_token == token


class HeapStrategy(Strategy):
    """The available agent with the smallest `key` wins."""

    def __init__(self, cfg: QueueConfig) -> None:
        super().__init__(cfg)
        self._heap: list[tuple[tuple[float, ...], int, Agent]] = []

    def key(self, agent: Agent) -> tuple[float, ...]:
        raise NotImplementedError

    def add(self, agent: Agent, now: float) -> None:
        self.live += 1
        heap = self._heap
        if len(heap) > 64 and len(heap) > 4 * self.live:  # mostly stale: rebuild
            heap[:] = [e for e in heap if _live(e[2], e[1])]
            heapq.heapify(heap)
        heapq.heappush(heap, (self.key(agent), agent.avail_token, agent))

    def select(self, call: Call, now: float) -> list[Agent]:
        heap = self._heap
        while heap:
            _, token, agent = heap[0]
            if _live(agent, token):
                return [agent]
            heapq.heappop(heap)
        return []


@register
class LongestIdle(HeapStrategy):
    name = "longest_idle"

    def key(self, agent: Agent) -> tuple[float, ...]:
        return (agent.idle_since, agent.order)


@register
class FewestCalls(HeapStrategy):
    name = "fewest_calls"

    def key(self, agent: Agent) -> tuple[float, ...]:
        return (agent.calls_by_queue.get(self.queue, 0), agent.idle_since, agent.order)


@register
class LeastTalkTime(HeapStrategy):
    name = "least_talk_time"

    def key(self, agent: Agent) -> tuple[float, ...]:
        return (agent.talk_time, agent.idle_since, agent.order)


@register
class Linear(HeapStrategy):
    """Always the first available agent in configured order."""

    name = "linear"

    def key(self, agent: Agent) -> tuple[float, ...]:
        return (agent.order,)


@register
class RoundRobin(Strategy):
    """The next available agent after the last one rung, in configured order, wrapping."""

    name = "round_robin"

    def __init__(self, cfg: QueueConfig) -> None:
        super().__init__(cfg)
        self._ring: list[tuple[int, str]] = []
        self._agents: dict[str, Agent] = {}
        self._last = -1

    def add(self, agent: Agent, now: float) -> None:
        if agent.id in self._agents:
            return
        self.live += 1
        self._agents[agent.id] = agent
        insort(self._ring, (agent.order, agent.id))

    def remove(self, agent: Agent) -> None:
        if self._agents.pop(agent.id, None) is None:
            return
        self.live -= 1
        ring = self._ring
        del ring[bisect_left(ring, (agent.order, agent.id))]

    def select(self, call: Call, now: float) -> list[Agent]:
        ring = self._ring
        if not ring:
            return []
        i = bisect_right(ring, (self._last, "\U0010ffff"))
        return [self._agents[ring[i % len(ring)][1]]]

    def offered(self, agent: Agent) -> None:
        self._last = agent.order


@register
class RingAll(Strategy):
    """Ring every available agent; the first to answer takes the call."""

    name = "ring_all"
    ring_all = True

    def __init__(self, cfg: QueueConfig) -> None:
        super().__init__(cfg)
        self._agents: dict[str, Agent] = {}

    def add(self, agent: Agent, now: float) -> None:
        if agent.id not in self._agents:
            self.live += 1
            self._agents[agent.id] = agent

    def remove(self, agent: Agent) -> None:
        if self._agents.pop(agent.id, None) is not None:
            self.live -= 1

    def select(self, call: Call, now: float) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda a: a.order)


@register
class Random(Strategy):
    """A uniformly random available agent, from a generator seeded by the queue config."""

    name = "random"

    def __init__(self, cfg: QueueConfig) -> None:
        super().__init__(cfg)
        self._rng = random.Random(cfg.seed)
        self._list: list[Agent] = []
        self._index: dict[str, int] = {}

    def add(self, agent: Agent, now: float) -> None:
        if agent.id in self._index:
            return
        self.live += 1
        self._index[agent.id] = len(self._list)
        self._list.append(agent)

    def remove(self, agent: Agent) -> None:
        i = self._index.pop(agent.id, None)
        if i is None:
            return
        self.live -= 1
        last = self._list.pop()
        if last is not agent:
            self._list[i] = last
            self._index[last.id] = i

    def select(self, call: Call, now: float) -> list[Agent]:
        if not self._list:
            return []
        return [self._list[self._rng.randrange(len(self._list))]]


@register
class SkillsBased(Strategy):
    """Agents qualified for the call's requirements; best penalty, then best skill, then
    longest idle. Requirements relax as the call waits: every `relax_interval` seconds the
    required levels drop by one and members one penalty level further may take it.

    Available agents are grouped by profile (penalty, skills): choosing costs one look per
    profile, and a centre has far fewer profiles than agents.
    """

    name = "skills"

    def __init__(self, cfg: QueueConfig) -> None:
        super().__init__(cfg)
        self._profiles: dict[tuple[int, tuple[tuple[str, int], ...]], _Profile] = {}
        self._order: list[_Profile] = []  # by penalty

    def add(self, agent: Agent, now: float) -> None:
        self.live += 1
        penalty = agent.queues.get(self.queue, 0)
        pkey = (penalty, tuple(sorted(agent.skills.items())))
        profile = self._profiles.get(pkey)
        if profile is None:
            profile = self._profiles[pkey] = _Profile(penalty, dict(agent.skills))
            self._order.append(profile)
            self._order.sort(key=lambda p: p.penalty)
        profile.push(agent)

    def steps(self, call: Call, now: float) -> int:
        interval = call.cfg.relax_interval
        if not interval:
            return 0
        return int((now - call.arrival) // interval)

    def _eligible(self, penalty: int, skills: dict[str, int], call: Call, steps: int) -> bool:
        if penalty > steps:
            return False
        for skill, level in call.requirements.items():
            if skills.get(skill, 0) < level - steps:
                return False
        return True

    def _score(self, skills: dict[str, int], call: Call) -> int:
        return sum(skills.get(s, 0) for s in call.requirements)

    def select(self, call: Call, now: float) -> list[Agent]:
        steps = self.steps(call, now)
        best: tuple[int, int, float, int] | None = None
        chosen: Agent | None = None
        for profile in self._order:
            if profile.penalty > steps:
                break
            if not self._eligible(profile.penalty, profile.skills, call, steps):
                continue
            agent = profile.head()
            if agent is None:
                continue
            rank = (profile.penalty, -self._score(profile.skills, call), agent.idle_since,
                    agent.order)
            if best is None or rank < best:
                best, chosen = rank, agent
        return [chosen] if chosen is not None else []

    def accepts(self, agent: Agent, call: Call, now: float) -> bool:
        return self._eligible(agent.queues.get(self.queue, 0), agent.skills, call,
                              self.steps(call, now))


class _Profile:
    __slots__ = ("penalty", "skills", "heap", "limit")

    def __init__(self, penalty: int, skills: dict[str, int]) -> None:
        self.penalty = penalty
        self.skills = skills
        self.heap: list[tuple[float, int, int, Agent]] = []
        self.limit = 64  # compact the stale entries out when the heap grows past this

    def push(self, agent: Agent) -> None:
        heap = self.heap
        if len(heap) > self.limit:
            heap[:] = [e for e in heap if _live(e[3], e[2])]
            heapq.heapify(heap)
            self.limit = max(64, 2 * len(heap))
        heapq.heappush(heap, (agent.idle_since, agent.order, agent.avail_token, agent))

    def head(self) -> Agent | None:
        heap = self.heap
        while heap:
            _, _, token, agent = heap[0]
            if _live(agent, token):
                return agent
            heapq.heappop(heap)
        return None
