"""A discrete-event simulator that drives the engine on virtual time.

Callers arrive as Poisson processes (one `Workload` per queue), talk for exponential times,
may abandon after an exponential patience; agents answer after a delay, or let it ring with a
given probability; optionally they take aux breaks. The simulator plays the call layer: it
turns the engine's commands into the next events, and checks on the way that no agent ever
holds two calls, no call is connected twice or lost, and that each call is offered only while
it is waiting.

    sim = Simulation(config, workloads, agents, seed=1)
    result = sim.run(duration=3600.0)
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from acd import commands as cmd
from acd import events as ev
from acd.config import AcdConfig
from acd.engine import Engine

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Workload:
    queue: str
    rate: float  # arrivals per second
    mean_handle: float  # seconds of talk, exponential
    patience: float | None = None  # mean seconds before abandoning, exponential; None: never
    classes: Mapping[int, float] = field(default_factory=lambda: {1: 1.0})  # class → weight
    service_types: Mapping[str, float] = field(default_factory=lambda: {"": 1.0})


@dataclass(slots=True)
class CallRecord:
    call_id: str
    queue: str
    priority_class: int
    service_type: str
    arrival: float
    first_offer: float | None = None
    connected: float | None = None
    ended: float | None = None
    outcome: str = ""  # answered, abandoned, overflowed ("" while in progress)
    agent: str | None = None


class InvariantError(AssertionError):
    pass


@dataclass(slots=True)
class SimResult:
    calls: list[CallRecord]
    duration: float
    offers: int
    announcements: int
    refused: list[cmd.Refused]
    engine: Engine

    def measured(self, warmup: float = 0.0) -> list[CallRecord]:
        return [c for c in self.calls if c.arrival >= warmup and c.outcome]

    def waits(self, warmup: float = 0.0) -> list[float]:
        return [c.connected - c.arrival for c in self.measured(warmup)
                if c.connected is not None]

    def prob_wait(self, warmup: float = 0.0, eps: float = 1e-9) -> float:
        w = self.waits(warmup)
        return sum(1 for x in w if x > eps) / len(w)

    def service_level(self, t: float, warmup: float = 0.0) -> float:
        w = self.waits(warmup)
        return sum(1 for x in w if x <= t) / len(w)

    def asa(self, warmup: float = 0.0) -> float:
        w = self.waits(warmup)
        return sum(w) / len(w)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.calls if c.outcome == outcome)


class Simulation:
    def __init__(
        self,
        config: AcdConfig,
        workloads: Sequence[Workload],
        agents: Sequence[str],
        *,
        seed: int = 0,
        answer_delay: float = 0.0,
        no_answer_prob: float = 0.0,
        aux_rate: float = 0.0,  # per agent, per second: how often an agent asks for a break
        aux_mean: float = 60.0,
        check: bool = True,
        reports: bool = False,
    ) -> None:
        self.engine = Engine(config, keep_reports=reports, agent_state_commands=False)
        self.workloads = list(workloads)
        self.agents = list(agents)
        self.rng = random.Random(seed)
        self.answer_delay = answer_delay
        self.no_answer_prob = no_answer_prob
        self.aux_rate = aux_rate
        self.aux_mean = aux_mean
        self.check = check
        self._heap: list[tuple[float, int, str, object]] = []
        self._seq = itertools.count()
        self.calls: dict[str, CallRecord] = {}
        self.records: list[CallRecord] = []
        self.holding: dict[str, str] = {}  # agent → call ringing or connected
        self.ringing: dict[str, set[str]] = {}  # call → agents ringing
        self.offers = 0
        self.announcements = 0
        self.refused: list[cmd.Refused] = []
        self.reports: list[object] = []

    # -- event queue --------------------------------------------------------------------------

    def _at(self, t: float, kind: str, payload: object) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), kind, payload))

    def run(self, duration: float, *, drain: bool = False) -> SimResult:
        """Arrivals for `duration` seconds; with `drain`, run on until every call is done."""
        rng = self.rng
        for agent in self.agents:
            self._apply(self.engine.handle_event(ev.AgentLoggedIn(agent, f"dev-{agent}"), 0.0),
                        0.0)
            if self.aux_rate > 0:
                self._at(rng.expovariate(self.aux_rate), "aux", agent)
        for i, w in enumerate(self.workloads):
            self._at(rng.expovariate(w.rate), "arrival", i)
        engine = self.engine
        heap = self._heap
        ids = itertools.count()
        while True:
            t_sim = heap[0][0] if heap else math.inf
            t_eng = engine.get_timer()
            if t_eng is None:
                t_eng = math.inf
            t = min(t_sim, t_eng)
            if t == math.inf or (not drain and t > duration):
                break
            if drain and t > duration and not self.calls:
                break
            if t_eng <= t_sim:
                self._apply(engine.handle_timer(t_eng), t_eng)
                continue
            _, _, kind, payload = heapq.heappop(heap)
            if kind == "arrival":
                assert isinstance(payload, int)
                if t > duration:
                    continue
                w = self.workloads[payload]
                self._at(t + rng.expovariate(w.rate), "arrival", payload)
                klass = _pick(rng, w.classes)
                stype = _pick(rng, w.service_types)
                call_id = f"c{next(ids)}"
                rec = CallRecord(call_id, w.queue, klass, stype, t)
                self.calls[call_id] = rec
                self.records.append(rec)
                if w.patience is not None:
                    self._at(t + rng.expovariate(1.0 / w.patience), "abandon", call_id)
                self._apply(engine.handle_event(
                    ev.CallArrived(call_id, w.queue, f"+6281{call_id}", "", klass, stype), t), t)
            elif kind == "answer":
                agent, call_id = payload  # type: ignore[misc]
                if agent in self.ringing.get(call_id, ()):
                    self._apply(engine.handle_event(ev.AgentAnswered(agent, call_id), t), t)
            elif kind == "end":
                assert isinstance(payload, str)
                rec = self.calls.pop(payload)
                rec.ended = t
                rec.outcome = "answered"
                assert rec.agent is not None
                self._free(rec.agent, payload)  # before the engine may offer it a new call
                self._apply(engine.handle_event(ev.CallEnded(payload), t), t)
            elif kind == "abandon":
                assert isinstance(payload, str)
                rec = self.calls.get(payload)  # type: ignore[assignment]
                if rec is not None and rec.connected is None:
                    self._apply(engine.handle_event(ev.CallAbandoned(payload), t), t)
                    self.calls.pop(payload)
                    rec.ended = t
                    rec.outcome = "abandoned"
            elif kind == "aux":
                assert isinstance(payload, str)
                self._apply(engine.handle_event(ev.AuxRequested(payload, "break"), t), t)
                self._at(t + rng.expovariate(1.0 / self.aux_mean), "back", payload)
            elif kind == "back":
                assert isinstance(payload, str)
                self._apply(engine.handle_event(ev.AvailableRequested(payload), t), t)
                self._at(t + rng.expovariate(self.aux_rate), "aux", payload)
            if engine.keep_reports:
                self.reports.extend(engine.pop_reports())
        if engine.keep_reports:
            self.reports.extend(engine.pop_reports())
        return SimResult(self.records, duration, self.offers, self.announcements, self.refused,
                         engine)

    # -- the call layer's side ----------------------------------------------------------------

    def _apply(self, commands: list[cmd.Command], t: float) -> None:
        for c in commands:
            if isinstance(c, cmd.OfferCall):
                self.offers += 1
                rec = self.calls.get(c.call_id)
                if self.check:
                    if rec is None or rec.connected is not None:
                        raise InvariantError(f"{t}: {c.call_id} offered but not waiting")
                    if c.agent in self.holding:
                        raise InvariantError(
                            f"{t}: {c.agent} offered {c.call_id} while holding "
                            f"{self.holding[c.agent]}")
                assert rec is not None
                if rec.first_offer is None:
                    rec.first_offer = t
                self.holding[c.agent] = c.call_id
                self.ringing.setdefault(c.call_id, set()).add(c.agent)
                if self.rng.random() >= self.no_answer_prob:
                    self._at(t + self.answer_delay, "answer", (c.agent, c.call_id))
            elif isinstance(c, cmd.CancelOffer):
                agents = self.ringing.get(c.call_id)
                if agents is not None:
                    agents.discard(c.agent)
                    if not agents:
                        del self.ringing[c.call_id]
                self._free(c.agent, c.call_id)
            elif isinstance(c, cmd.Connect):
                rec = self.calls[c.call_id]
                if self.check and (rec.connected is not None or self.holding.get(c.agent)
                                   != c.call_id):
                    raise InvariantError(f"{t}: {c.call_id} connected twice or to a stranger")
                rec.connected = t
                rec.agent = c.agent
                self.ringing.pop(c.call_id, None)
                w = next(w for w in self.workloads if w.queue == rec.queue)
                self._at(t + self.rng.expovariate(1.0 / w.mean_handle), "end", c.call_id)
            elif isinstance(c, cmd.Overflow):
                rec = self.calls.pop(c.call_id, None)  # type: ignore[assignment]
                if rec is not None:
                    rec.ended = t
                    rec.outcome = "overflowed"
                for agent in self.ringing.pop(c.call_id, set()):
                    self._free(agent, c.call_id)
            elif isinstance(c, cmd.PlayAnnouncement):
                self.announcements += 1
            elif isinstance(c, cmd.Refused):
                self.refused.append(c)

    def _free(self, agent: str, call_id: str) -> None:
        if self.holding.get(agent) == call_id:
            del self.holding[agent]
        elif self.check:
            raise InvariantError(f"{agent} released {call_id} it did not hold")


def _pick(rng: random.Random, weights: Mapping[K, float]) -> K:
    if len(weights) == 1:
        return next(iter(weights))
    total = sum(weights.values())
    x = rng.random() * total
    for key, weight in weights.items():
        x -= weight
        if x < 0:
            return key  # rounding: the last one
    return key  # rounding: the last one
