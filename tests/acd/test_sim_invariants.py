"""Long random simulations with the simulator's invariant checks switched on.

The simulator raises `InvariantError` the moment an agent is offered a call while holding
another, a call is offered after it was connected or ended, or connected twice. Here we also
check that no call is lost (each ends answered, abandoned or overflowed, and the engine holds
nothing at the end), and FIFO within a class (first offers follow arrival order per class).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from acd import events as ev
from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.sim import SimResult, Simulation, Workload
from acd.strategies import REGISTRY

CLASSES = {0: 0.2, 1: 0.5, 2: 0.3}


def _check(result: SimResult, fifo_queues: set[str]) -> None:
    assert all(c.outcome for c in result.calls), "a call was lost"
    assert result.engine.calls == 0
    assert not [r for r in result.refused if not isinstance(
        r.event, ev.AuxRequested | ev.AvailableRequested)]
    per_class: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for c in result.calls:
        if c.first_offer is not None and c.queue in fifo_queues:
            per_class[(c.queue, c.priority_class)].append((c.arrival, c.first_offer))
    for seq in per_class.values():
        offered = [o for _, o in sorted(seq)]
        assert offered == sorted(offered), "FIFO broken within a class"


@pytest.mark.parametrize("strategy", sorted(REGISTRY))
def test_random_centre_keeps_invariants(strategy: str) -> None:
    agents = [f"a{i}" for i in range(12)]
    queues = [
        QueueConfig("sales", strategy=strategy, ring_timeout=8.0, acw=5.0, max_wait=400.0,
                    max_length=30, ageing=60.0, announce_interval=30.0, seed=3,
                    requirements={"sales": 1}),
        QueueConfig("support", strategy=strategy, ring_timeout=8.0, weight=5, max_misses=2),
    ]
    config = AcdConfig.build(queues, [
        AgentConfig(a, {"sales": i % 2, "support": 0} if i % 3 else {"sales": 0},
                    skills={"sales": 1 + i % 3}) for i, a in enumerate(agents)])
    sim = Simulation(
        config,
        [Workload("sales", 0.05, 120.0, patience=90.0, classes=CLASSES),
         Workload("support", 0.04, 100.0, patience=200.0, classes=CLASSES)],
        agents, seed=7, answer_delay=2.0, no_answer_prob=0.1, aux_rate=1 / 900, aux_mean=120.0)
    result = sim.run(4 * 3600.0, drain=True)
    assert len(result.calls) > 1000
    assert result.count("answered") > 500 and result.count("abandoned") > 0
    _check(result, {"sales", "support"})


def test_skills_with_service_types_and_relaxation() -> None:
    agents = [f"a{i}" for i in range(10)]
    queue = QueueConfig(
        "help", strategy="skills", ring_timeout=10.0, relax_interval=30.0,
        service_requirements={"tax": {"tax": 3}, "id": {"id": 2}})
    config = AcdConfig.build([queue], [
        AgentConfig(a, {"help": i % 3}, skills={"tax": i % 4, "id": 3 - i % 4})
        for i, a in enumerate(agents)])
    sim = Simulation(config, [Workload("help", 0.07, 120.0, patience=300.0,
                                       service_types={"tax": 0.6, "id": 0.4})],
                     agents, seed=11, answer_delay=1.0, no_answer_prob=0.05)
    result = sim.run(3 * 3600.0, drain=True)
    assert result.count("answered") > 400
    _check(result, set())
