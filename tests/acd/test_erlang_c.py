"""The published model: a simulated M/M/N queue reproduces Erlang C.

Poisson arrivals at rate λ, exponential handling with mean h, N agents, no abandonment, no
wrap-up, agents answer at once, longest-idle routing. With offered load A = λ·h < N, Erlang C
gives

    P_w   = (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A))   probability of waiting
    SL(t) = 1 − P_w · e^{−(N−A)·t/h}                                    answered within t
    ASA   = P_w · h / (N − A)                                           average speed of answer

At three loads the engine, driven by `acd.sim` on virtual time (~100,000 calls, a warm-up of
20 handling times discarded), must match P_w and SL(20 s) within ±3 percentage points, and
ASA within ±5%. Seeds are fixed: the test is deterministic.

P_w and SL converge fast (spread over seeds ~0.5 pp at that length), but the mean wait does
not: waits are correlated through busy periods, and 100,000 calls leave a standard error of
3-7% on ASA (it would take ~40x the calls, minutes of engine time, to resolve ±5% at 2.5
standard errors). So ASA is estimated with a control variate on common random numbers:

1. the reference is the exact FCFS recursion for N identical servers (a heap of the times
   the agents come free; a call waits for the earliest one). Fed the engine run's own
   arrival times and handling times, it must give every call the wait the engine gave it
   (within 1 µs): the engine is a correct FCFS M/M/N queue, call by call, so on the same
   random numbers its ASA *is* the reference's (control coefficient 1, no residual);
2. the reference's expectation is then estimated by the same recursion on 4,000,000 fresh
   calls (~0.4 µs each), whose batch-means standard error on ASA must be ≤ 2% (so ±5% is at
   least 2.5 standard errors: the check can fail), and its ASA must be within ±5% of Erlang C
   (its P_w and SL within ±1 point).

    ASA_est = ASA_engine − ASA_ref(same numbers) + ASA_ref(long run)
"""

from __future__ import annotations

import heapq
import math
import random

import pytest

from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.sim import Simulation, Workload

H = 180.0  # mean handling time, seconds
T_SL = 20.0  # service-level threshold, seconds
CALLS = 100_000  # through the engine
REF_CALLS = 4_000_000  # through the reference recursion
WARMUP = 20 * H
BATCHES = 20


def erlang_c(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def fcfs_waits(n: int, arrivals: list[float], handles: list[float]) -> list[float]:
    """Waits of calls served first come, first served by `n` identical agents."""
    free = [0.0] * n  # when each agent comes free (a heap)
    waits = []
    for t, s in zip(arrivals, handles, strict=True):
        start = max(free[0], t)
        waits.append(start - t)
        heapq.heapreplace(free, start + s)
    return waits


def reference_waits(n: int, rate: float, calls: int, seed: int) -> list[float]:
    """`fcfs_waits` on fresh Poisson arrivals and exponential handling times (fused: fast)."""
    rng = random.Random(seed)
    expo, replace, mu = rng.expovariate, heapq.heapreplace, 1.0 / H
    free = [0.0] * n
    waits: list[float] = []
    keep = waits.append
    t = 0.0
    for _ in range(calls):
        t += expo(rate)
        f = free[0]
        if f > t:
            keep(f - t)
            replace(free, f + expo(mu))
        else:
            keep(0.0)
            replace(free, t + expo(mu))
    return waits


def batch_stderr(waits: list[float]) -> float:
    """Standard error of the mean of `waits` by batch means."""
    size = len(waits) // BATCHES
    means = [sum(waits[i * size:(i + 1) * size]) / size for i in range(BATCHES)]
    mean = sum(means) / BATCHES
    return math.sqrt(sum((m - mean) ** 2 for m in means) / (BATCHES - 1) / BATCHES)


@pytest.mark.parametrize(("n", "a"), [(5, 3.0), (10, 7.0), (20, 15.0)])
def test_mmn_matches_erlang_c(n: int, a: float) -> None:
    agents = [f"a{i}" for i in range(n)]
    config = AcdConfig.build([QueueConfig("q", strategy="longest_idle", ring_timeout=30.0)],
                             [AgentConfig(x, {"q": 0}) for x in agents])
    rate = a / H
    result = Simulation(config, [Workload("q", rate, H)], agents, seed=1).run(
        CALLS / rate, drain=True)
    assert not result.refused
    assert result.count("abandoned") == 0 and result.count("overflowed") == 0
    assert all(c.outcome == "answered" for c in result.calls)

    p_w = erlang_c(n, a)
    sl = 1 - p_w * math.exp(-(n - a) * T_SL / H)
    asa = p_w * H / (n - a)
    got_pw, got_sl, got_asa = (result.prob_wait(WARMUP), result.service_level(T_SL, WARMUP),
                               result.asa(WARMUP))
    print(f"N={n} A={a}: engine P_w {got_pw:.4f}/{p_w:.4f} SL {got_sl:.4f}/{sl:.4f} "
          f"ASA {got_asa:.2f}/{asa:.2f}")
    assert abs(got_pw - p_w) <= 0.03
    assert abs(got_sl - sl) <= 0.03

    # 1. Common random numbers: the reference, fed the engine's inputs, gives the same waits.
    calls = sorted(result.calls, key=lambda c: c.arrival)
    handles = [c.ended - c.connected for c in calls]  # type: ignore[operator]
    ref = fcfs_waits(n, [c.arrival for c in calls], handles)
    engine_waits = [c.connected - c.arrival for c in calls]  # type: ignore[operator]
    worst = max(abs(x - y) for x, y in zip(engine_waits, ref, strict=True))
    assert worst <= 1e-6, f"the engine's waits differ from FCFS by up to {worst:.3g} s"
    measured = [w for c, w in zip(calls, ref, strict=True) if c.arrival >= WARMUP]
    ref_same = sum(measured) / len(measured)

    # 2. The reference's expectation, from a long run of its own.
    long = reference_waits(n, rate, REF_CALLS, seed=1000 + n)[int(WARMUP * rate):]
    ref_long = sum(long) / len(long)
    stderr = batch_stderr(long) / asa
    est = got_asa - ref_same + ref_long
    long_pw = sum(1 for w in long if w > 1e-9) / len(long)
    long_sl = sum(1 for w in long if w <= T_SL) / len(long)
    print(f"  reference ({len(long)} calls): P_w {long_pw:.4f} SL {long_sl:.4f} "
          f"ASA {ref_long:.2f} ± {stderr:.3f} (relative); "
          f"ASA_est {est:.2f}, error {est / asa - 1:+.3f}")
    assert stderr <= 0.02
    assert abs(long_pw - p_w) <= 0.01 and abs(long_sl - sl) <= 0.01
    assert abs(est / asa - 1) <= 0.05
