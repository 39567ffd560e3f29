"""Media engine CPU costs: ``python benchmarks/bench_media.py [seconds-per-case]``.

Prints, on one core: the media clock's CPU per generated (prompt) and mixed (conference)
stream per 20 ms tick and the number of such streams one core sustains in real time;
G.711 encode/decode throughput (batched and per 160-sample packet); the relay helpers'
cost per packet. Figures go to benchmarks/RESULTS.md by hand, with the command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import g711  # noqa: E402
from media.clock import MediaClock  # noqa: E402
from media.player import Clip  # noqa: E402
from media.rtp import peek_header, rewrite_header  # noqa: E402
from media.session import RtpSender  # noqa: E402

BUDGET = 0.020


def cpu_per_call(fn: Callable[[], object], seconds: float) -> float:
    """CPU seconds per call of fn, over about `seconds` of CPU."""
    fn()  # warm up
    calls = 0
    start = time.process_time()
    while True:
        fn()
        calls += 1
        spent = time.process_time() - start
        if spent >= seconds:
            return spent / calls


def clock_with_players(n: int) -> MediaClock:
    rng = np.random.default_rng(1)
    clips = [Clip(f"c{i}", rng.integers(-8000, 8000, 8000 * (3 + i)).astype(np.int16))
             for i in range(8)]
    clock = MediaClock(start=0.0, max_catchup=1)
    for i in range(n):
        clock.play(i, clips[i % 8], RtpSender(0 if i % 2 else 8, ssrc=i), loop=True)
    return clock


def clock_with_conferences(n: int, room_size: int = 3) -> MediaClock:
    clock = MediaClock(start=0.0, max_catchup=1)
    for i in range(n):
        clock.join(i, i // room_size, RtpSender(0, ssrc=i))
    return clock


def _ticker(clock: MediaClock, n: int, payload: bytes | None) -> Callable[[], None]:
    state = {"t": 0.0}

    def tick() -> None:
        if payload is not None:  # each leg's decoded input, as the call layer gives it
            for key in range(n):
                clock.mixer.put_g711(key, payload, 0)
        clock.tick(state["t"])
        state["t"] += 0.020

    return tick


def bench_clock(kind: str, make: Callable[[int], MediaClock], seconds: float) -> None:
    print(f"\nmedia clock, {kind}: CPU per tick (one 20 ms frame for every stream)")
    print(f"{'streams':>8} {'ms/tick':>9} {'µs/stream':>10} {'budget used':>12}")
    points: list[tuple[int, float]] = []
    payload = g711.ulaw_encode(np.full(160, 1000, dtype=np.int16)).tobytes()
    feed = kind.startswith("conference")
    for n in (100, 500, 1000, 2000, 4000):
        per_tick = cpu_per_call(_ticker(make(n), n, payload if feed else None), seconds)
        points.append((n, per_tick))
        print(f"{n:>8} {per_tick * 1e3:>9.3f} {per_tick / n * 1e6:>10.2f} "
              f"{per_tick / BUDGET:>11.1%}")
    n, per_tick = points[-1]
    print(f"  at {n} streams: {per_tick / n * 1e6:.2f} µs/stream/tick -> one core sustains "
          f"~{int(BUDGET / (per_tick / n)):,} such streams in real time (20 ms budget)")


def bench_g711(seconds: float) -> None:
    print("\nG.711 (numpy tables)")
    rng = np.random.default_rng(2)
    batch = rng.integers(-32768, 32767, (1000, 160)).astype(np.int16)
    codes = g711.ulaw_encode(batch)
    frame = batch[0]
    payload = codes[0].tobytes()
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("µ-law encode, 1000x160 batch", lambda: g711.ulaw_encode(batch), batch.size),
        ("µ-law decode, 1000x160 batch", lambda: g711.ulaw_decode(codes), batch.size),
        ("A-law encode, 1000x160 batch", lambda: g711.alaw_encode(batch), batch.size),
        ("µ-law encode, one 160 packet", lambda: g711.encode(frame, 0), 160),
        ("µ-law decode, one 160 packet", lambda: g711.decode(payload, 0), 160),
        ("µ->A transcode, one packet", lambda: g711.ulaw_to_alaw(payload).tobytes(), 160),
    ]
    for name, fn, samples in cases:
        per = cpu_per_call(fn, seconds)
        print(f"  {name:<32} {samples / per / 1e6:8.1f} Msamples/s  {per * 1e6:8.2f} µs/call"
              f"  ({samples / 160 / per:,.0f} packets/s)")


def bench_relay(seconds: float) -> None:
    print("\nrelay helpers (per packet, no objects built)")
    buf = bytearray(b"\x80\x00\x12\x34" + bytes(8) + bytes(160))
    n = 10_000

    def peek() -> None:
        for _ in range(n):
            peek_header(buf)

    def rewrite() -> None:
        for _ in range(n):
            rewrite_header(buf, 7, 160, 0x1234)

    for name, fn in (("peek_header", peek), ("rewrite_header", rewrite)):
        per = cpu_per_call(fn, seconds) / n
        print(f"  {name:<16} {per * 1e9:7.0f} ns/packet ({1 / per:,.0f} packets/s)")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"{seconds}s CPU per case, one thread")
    bench_clock("prompts (clip bank gather + G.711 + RTP header)", clock_with_players, seconds)
    bench_clock("conference legs, rooms of 3 (decode in + mix + encode)",
                clock_with_conferences, seconds)
    bench_g711(seconds)
    bench_relay(seconds)


if __name__ == "__main__":
    main()
