"""Benchmark: non-INVITE server transactions (REGISTER-like) through `TransactionLayer`.

Each transaction: request in, 200 out, every 10th request retransmitted once (absorbed with
the cached 200), `get_timer()` after every input as the adapter does, timers fired on
virtual time at the given arrival rate, and Timer J (64*T1 over UDP) ending them all.

Parsing and building the 200 are the message layer's and TU's work: they are done ahead of
the timed section, a chunk at a time. Memory is measured in a second pass with tracemalloc:
what the layer retains per finished transaction while Timer J holds it.

    .venv/bin/python benchmarks/bench_transaction.py [-n 200000] [--rate 16000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc

from softswitch.sip.events import RequestReceived, SendMessage, TransactionTerminated
from softswitch.sip.message import Peer, Request, Response, make_response, parse_message
from softswitch.sip.transaction import Timers, TransactionLayer

CHUNK = 10_000
TEMPLATE = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.{a}.{b}.{c}:5060;branch=z9hG4bK-{i}-bench;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:{i}@example.com>;tag=f{i}\r\n"
    "To: <sip:{i}@example.com>\r\n"
    "Call-ID: {i}-reg@10.{a}.{b}.{c}\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:{i}@10.{a}.{b}.{c}:5060>;expires=3600\r\n"
    "User-Agent: bench\r\n"
    "Content-Length: 0\r\n\r\n"
)


def build_chunk(start: int, stop: int) -> list[tuple[Request, Request | None, Response, Peer]]:
    out = []
    for i in range(start, stop):
        a, b, c = (i >> 16) & 255, (i >> 8) & 255, i & 255
        data = TEMPLATE.format(i=i, a=a, b=b, c=c).encode()
        req = parse_message(data)
        again = parse_message(data) if i % 10 == 0 else None
        assert isinstance(req, Request) and (again is None or isinstance(again, Request))
        # the adapter's stamp_via / check_request have parsed the top Via before the layer
        req.top_via  # noqa: B018
        if again is not None:
            again.top_via  # noqa: B018
        ok = make_response(req, 200, to_tag=f"t{i}", headers=[
            ("Contact", f"<sip:{i}@10.{a}.{b}.{c}:5060>;expires=3600")])
        out.append((req, again, ok, Peer("udp", f"10.{a}.{b}.{c}", 5060)))
    return out


def run(n: int, rate: float, measure_memory: bool) -> dict[str, float]:
    layer = TransactionLayer(Timers())
    step = 1.0 / rate
    busy = 0.0
    serialize = 0.0
    sent = absorbed = ended = 0
    peak_live = 0
    peak_bytes = 0
    base = 0
    if measure_memory:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    now = 0.0
    i = 0
    while i < n:
        chunk = build_chunk(i, min(i + CHUNK, n))
        chunk_bytes = tracemalloc.get_traced_memory()[0] if measure_memory else 0
        t0 = time.perf_counter()
        for _, _, ok, _ in chunk:
            ok.to_bytes()  # what send_response spends in the message layer, for the record
        serialize += time.perf_counter() - t0
        t0 = time.perf_counter()
        for req, again, ok, source in chunk:
            now += step
            for event in layer.receive_request(req, source, now):
                if type(event) is RequestReceived:
                    # the 200, and TransactionTerminated: the TU is done with it at once;
                    # the layer keeps the Completed state (Timer J) in its compact table
                    for out in layer.send_response(event.txn, ok, now):
                        if type(out) is SendMessage:
                            sent += 1
                        elif type(out) is TransactionTerminated:
                            ended += 1
            layer.get_timer()
            if again is not None:
                absorbed += len(layer.receive_request(again, source, now))
                layer.get_timer()
            deadline = layer.get_timer()
            if deadline is not None and deadline <= now:
                ended += len(layer.handle_timer(now))
        busy += time.perf_counter() - t0
        peak_live = max(peak_live, len(layer))
        if measure_memory:
            # what the layer holds, net of the chunk of prepared messages still referenced
            held = tracemalloc.get_traced_memory()[0] - base
            del chunk
            gc.collect()
            peak_bytes = max(peak_bytes, tracemalloc.get_traced_memory()[0] - base)
            assert held >= 0 and chunk_bytes >= 0
        i += CHUNK
    t0 = time.perf_counter()
    while (deadline := layer.get_timer()) is not None:
        ended += len(layer.handle_timer(deadline))
    busy += time.perf_counter() - t0
    if measure_memory:
        tracemalloc.stop()
    assert len(layer) == 0 and ended == n, (len(layer), ended)
    assert sent == n and absorbed == (n + 9) // 10
    return {"busy": busy, "serialize": serialize, "peak_live": peak_live,
            "peak_bytes": peak_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="transactions")
    parser.add_argument("--rate", type=float, default=16_000.0, help="arrivals per second")
    args = parser.parse_args()
    n = args.n
    timing = run(n, args.rate, measure_memory=False)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # tracemalloc slows allocation a lot; per-transaction retention is linear, so a
    # smaller run tells the same
    memory = run(min(n, 50_000), args.rate, measure_memory=True)
    busy = timing["busy"]
    per_txn = memory["peak_bytes"] / memory["peak_live"]
    print(f"transactions            {n}")
    print(f"retransmissions         {(n + 9) // 10} (absorbed with the cached 200)")
    print(f"layer time              {busy:.3f} s")
    print(f"transactions/s          {n / busy:,.0f}")
    print(f"us per transaction      {busy / n * 1e6:.2f}  (request + 200 + 1/10 retransmission"
          " + Timer J + get_timer per input)")
    print(f"  of which to_bytes()   {timing['serialize'] / n * 1e6:.2f}  (serializing the 200,"
          " message layer)")
    print(f"peak live transactions  {int(timing['peak_live'])} (all of them: Timer J outlives"
          " the run)")
    print(f"retained per txn        {per_txn:.0f} B (tracemalloc over {int(memory['peak_live'])}"
          " transactions, Timer J pending)")
    print(f"peak traced (layer)     {memory['peak_bytes'] / 2**20:.1f} MiB")
    print(f"max RSS (timing pass)   {rss_mb:.1f} MiB (includes prepared messages)")
    est = per_txn * 512_000 / 2**20
    print(f"at 16,000/s, 32 s Timer J: ~512k live -> ~{est:.0f} MiB")


if __name__ == "__main__":
    main()
