"""ACD engine benchmarks: routing decision latency, and a simulated hour of a centre.

    .venv/bin/python benchmarks/bench_acd.py

1. Routing with 10,000 waiting calls and 2,000 agents (20 queues, each agent in 3):
   - a call arriving behind 10,000 others (queued: no agent free);
   - an agent freed by the end of its call (wrap-up 0) taking the next call of its queues;
   and, with 2,000 agents available, a call arriving and picked by each strategy.
   Latency is one `handle_event()` call: decision, commands and reporting events included.
2. A simulated hour: 300 agents, 10,000 calls (Poisson), talk 90 s exponential, 2 s to answer,
   10 s wrap-up, abandonment after 120 s mean patience. Wall time of the whole run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acd import events as ev  # noqa: E402
from acd.commands import OfferCall  # noqa: E402
from acd.config import AcdConfig, AgentConfig, QueueConfig  # noqa: E402
from acd.engine import Engine  # noqa: E402
from acd.sim import Simulation, Workload  # noqa: E402
from acd.strategies import REGISTRY  # noqa: E402

N_AGENTS, N_QUEUES, WAITING = 2_000, 20, 10_000


def pct(samples: list[int], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(p * len(s)))] / 1000.0  # µs


def centre(strategy: str = "longest_idle") -> Engine:
    queues = [QueueConfig(f"q{i}", strategy=strategy, ring_timeout=20.0, ageing=60.0,
                          announce_interval=30.0) for i in range(N_QUEUES)]
    agents = [AgentConfig(f"a{i}", {f"q{(i + k) % N_QUEUES}": 0 for k in range(3)},
                          skills={"x": 1 + i % 5}) for i in range(N_AGENTS)]
    engine = Engine(AcdConfig.build(queues, agents))
    for i in range(N_AGENTS):
        engine.handle_event(ev.AgentLoggedIn(f"a{i}", f"dev{i}"), 0.0)
    return engine


def bench_waiting() -> None:
    engine = centre()
    now, n = 1.0, 0
    for _ in range(N_AGENTS):  # every agent on a call
        for c in engine.handle_event(ev.CallArrived(f"c{n}", f"q{n % N_QUEUES}", "0812"), now):
            if isinstance(c, OfferCall):
                engine.handle_event(ev.AgentAnswered(c.agent, c.call_id), now)
        n += 1
    arrive: list[int] = []
    for _ in range(WAITING):
        now += 0.01
        e = ev.CallArrived(f"c{n}", f"q{n % N_QUEUES}", "0812", priority_class=n % 3)
        t0 = time.perf_counter_ns()
        engine.handle_event(e, now)
        arrive.append(time.perf_counter_ns() - t0)
        n += 1
    engine.pop_reports()
    waiting = sum(len(engine.queue(f"q{i}")) for i in range(N_QUEUES))
    print(f"call arrives behind {waiting} waiting, {N_AGENTS} agents busy: "
          f"p50 {pct(arrive, .5):.1f} µs  p99 {pct(arrive, .99):.1f} µs")
    freed: list[int] = []
    connected = [f"c{i}" for i in range(N_AGENTS)]
    for i in range(5_000):
        now += 0.01
        call = connected[i]
        t0 = time.perf_counter_ns()
        out = engine.handle_event(ev.CallEnded(call), now)
        freed.append(time.perf_counter_ns() - t0)
        for c in out:
            if isinstance(c, OfferCall):
                engine.handle_event(ev.AgentAnswered(c.agent, c.call_id), now)
                connected.append(c.call_id)
        engine.handle_event(ev.CallArrived(f"c{n}", f"q{n % N_QUEUES}", "0812"), now)
        n += 1
        if i % 500 == 0:
            engine.handle_timer(now)
            engine.pop_reports()
    print(f"agent freed takes the next of ~{WAITING} waiting calls:    "
          f"p50 {pct(freed, .5):.1f} µs  p99 {pct(freed, .99):.1f} µs")


def bench_available(strategy: str) -> None:
    engine = centre(strategy)
    samples: list[int] = []
    now = 1.0
    for n in range(3_000):
        now += 0.01
        e = ev.CallArrived(f"c{n}", f"q{n % N_QUEUES}", "0812")
        t0 = time.perf_counter_ns()
        out = engine.handle_event(e, now)
        samples.append(time.perf_counter_ns() - t0)
        for c in out:
            if isinstance(c, OfferCall):
                engine.handle_event(ev.AgentAnswered(c.agent, c.call_id), now)
        engine.handle_event(ev.CallEnded(f"c{n}"), now)
        if n % 500 == 0:
            engine.pop_reports()
    print(f"  {strategy:16s} p50 {pct(samples, .5):7.1f} µs  p99 {pct(samples, .99):7.1f} µs")


def bench_hour() -> None:
    agents = [f"a{i}" for i in range(300)]
    config = AcdConfig.build(
        [QueueConfig("main", acw=10.0, ring_timeout=20.0, announce_interval=45.0,
                     max_wait=600.0)],
        [AgentConfig(a, {"main": 0}) for a in agents])
    sim = Simulation(config, [Workload("main", 10_000 / 3600, 90.0, patience=120.0,
                                       classes={0: 0.1, 1: 0.6, 2: 0.3})],
                     agents, seed=1, answer_delay=2.0, no_answer_prob=0.02, reports=True)
    t0 = time.perf_counter()
    result = sim.run(3600.0, drain=True)
    wall = time.perf_counter() - t0
    answered = result.count("answered")
    waits = result.waits()
    print(f"simulated hour, 300 agents: {len(result.calls)} calls, {answered} answered, "
          f"{result.count('abandoned')} abandoned, {result.count('overflowed')} overflowed, "
          f"ASA {sum(waits) / len(waits):.1f} s, SL20 {result.service_level(20.0):.3f}, "
          f"{len(sim.reports)} reporting events — wall {wall:.2f} s")


def main() -> None:
    bench_waiting()
    print(f"call arrives, {N_AGENTS} agents available, by strategy:")
    for strategy in sorted(REGISTRY):
        bench_available(strategy)
    bench_hour()


if __name__ == "__main__":
    main()
