"""Interval aggregation throughput: reporting events of a simulated hour into live aggregates.

    .venv/bin/python benchmarks/bench_aggregate.py

The events come from `acd.sim` (300 agents, ~10,000 calls, aux breaks, 2 % ring-no-answer);
the figure is events ingested per second by `IntervalAggregator.ingest()`, closing every
15-minute interval on the way (target: 50,000 events/s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acd.config import AcdConfig, AgentConfig, QueueConfig  # noqa: E402
from acd.sim import Simulation, Workload  # noqa: E402
from reporting.aggregate import IntervalAggregator  # noqa: E402
from reporting.events import ReportEvent  # noqa: E402


def hour_events() -> list[ReportEvent]:
    agents = [f"a{i}" for i in range(300)]
    config = AcdConfig.build(
        [QueueConfig("main", acw=10.0, ring_timeout=20.0, max_wait=600.0),
         QueueConfig("help", acw=5.0, ring_timeout=20.0)],
        [AgentConfig(a, {"main": 0, "help": 0} if i % 3 else {"main": 0})
         for i, a in enumerate(agents)])
    sim = Simulation(config, [Workload("main", 7_000 / 3600, 90.0, patience=120.0),
                              Workload("help", 3_000 / 3600, 60.0, patience=60.0)],
                     agents, seed=1, answer_delay=2.0, no_answer_prob=0.02,
                     aux_rate=1 / 1800, aux_mean=120.0, reports=True)
    sim.run(3600.0, drain=True)
    return [e for e in sim.reports if isinstance(e, ReportEvent)]


def main() -> None:
    events = hour_events()
    best = 0.0
    rows = 0
    for _ in range(5):
        agg = IntervalAggregator()
        next_close = 900.0
        t0 = time.perf_counter()
        for e in events:
            if e.ts >= next_close:
                rows += len(agg.close_until(next_close))
                next_close += 900.0
            agg.ingest(e)
        rows += len(agg.close_until(next_close + 900.0))
        wall = time.perf_counter() - t0
        best = max(best, len(events) / wall)
    print(f"interval aggregation: {len(events)} events of a simulated hour (300 agents), "
          f"{rows // 5} rows — best of 5: {best:,.0f} events/s")


if __name__ == "__main__":
    main()
