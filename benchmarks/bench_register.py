"""Authenticated REGISTER throughput and CPU per registration: softswitch beside Kamailio.

    python benchmarks/bench_register.py --duration 30 --users 10000 --rate 8000 \\
        --targets softswitch,kamailio --json out.json
    python benchmarks/bench_register.py --targets kamailio --find-max

Each target runs pinned to one core (default 1) and SIPp's register_auth scenario on the
other (default 0): REGISTER, 401, REGISTER with digest, 200, one call per registration,
looping over the users. Reported per target: registrations/s achieved, failed calls,
retransmissions, and the target's CPU microseconds per registration.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from common import CLK_TCK, Target, _stat_fields, kamailio_target, process_tree, softswitch_target

from tests.peers.sipp import SippResult, run_sipp, users_for, write_users_csv

TargetFactory = Callable[[Path, int, int | None], AbstractContextManager[Target]]
TARGETS: dict[str, TargetFactory] = {
    "kamailio": lambda workdir, users, cpu: kamailio_target(workdir, cpu),
    "softswitch": lambda workdir, users, cpu: softswitch_target(workdir, users, cpu),
}


def run_sipps(target: Target, csv: Path, rate: float, duration: float,
              sipp_cpu: int | None, extra: list[str], procs: int) -> list[SippResult]:
    """``procs`` SIPp processes in parallel, each at rate/procs (one UAC tops out early)."""
    if "-buff_size" not in extra:
        # SIPp's 64 KB default socket buffer drops bursts of answers on the driver's side,
        # which would count as the target's retransmissions.
        extra = ["-buff_size", "4194304", *extra]
    with ThreadPoolExecutor(procs) as pool:
        futures = [pool.submit(run_sipp, "register_auth", target.sip, users_csv=csv,
                               rate=rate / procs, duration=duration, pin_cpu=sipp_cpu,
                               extra=extra) for _ in range(procs)]
        return [f.result() for f in futures]


def user_system(pid: int) -> tuple[float, float]:
    """utime and stime (seconds) of ``pid`` and its live descendants: Python vs kernel."""
    user = system = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def measure(target: Target, csv: Path, rate: float, duration: float, sipp_cpu: int | None,
            extra: list[str], procs: int = 1) -> dict[str, Any]:
    """SIPp at ``rate`` for ``duration``; the target's CPU is read around it."""
    cpu0 = target.cpu()
    us0 = user_system(target.pid)
    # SIPp is a waited-for child: its CPU shows in RUSAGE_CHILDREN once it has exited.
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = run_sipps(target, csv, rate, duration, sipp_cpu, extra, procs)
    cpu = target.cpu() - cpu0
    us1 = user_system(target.pid)
    user, system = us1[0] - us0[0], us1[1] - us0[1]
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    result = results[0]
    ok = sum(r.successful for r in results)
    elapsed = max(r.elapsed for r in results)
    return {
        "target": target.name,
        "rate_asked": rate,
        "calls_asked": int(rate * duration),
        "sipp_procs": procs,
        "successful": ok,
        "failed": sum(r.failed for r in results),
        "retransmissions": sum(r.retransmissions for r in results),
        "elapsed_s": round(elapsed, 3),
        "registrations_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "target_cpu_s": round(cpu, 3),
        "cpu_us_per_registration": round(cpu / ok * 1e6, 2) if ok else None,
        "user_us_per_registration": round(user / ok * 1e6, 2) if ok else None,
        "system_us_per_registration": round(system / ok * 1e6, 2) if ok else None,
        "target_cpu_load": round(cpu / elapsed, 3) if elapsed else None,
        "sipp_cpu_load": round(sipp_cpu / elapsed, 3) if elapsed else None,
        "sipp_rc": [r.returncode for r in results],
        "sipp_timed_out": any(r.timed_out for r in results),
        "target_alive": target.alive(),
        "_sipp": result,
    }


def clean(m: dict[str, Any]) -> bool:
    """No failures, no retransmissions, and (nearly) the asked rate reached."""
    return (m["failed"] == 0 and m["retransmissions"] == 0 and m["target_alive"]
            and m["successful"] >= 0.97 * m["calls_asked"]
            and m["registrations_per_s"] >= 0.95 * m["rate_asked"])


def rates(start: float, factor: float, limit: float) -> Iterator[float]:
    rate = start
    while rate <= limit:
        yield rate
        rate = round(rate * factor, -1)


def run_target(name: str, args: argparse.Namespace, csv: Path) -> dict[str, Any]:
    factory = TARGETS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        with factory(workdir, args.users, args.target_cpu) as target:
            print(f"[{name}] pid {target.pid} on {target.sip}", file=sys.stderr)
            if args.warmup:
                # Create every binding once so the measured run is all refreshes.
                warm_rate = min(args.rate, 2000.0)
                warm = run_sipp("register_auth", target.sip, users_csv=csv, rate=warm_rate,
                                max_calls=args.users, pin_cpu=args.sipp_cpu)
                print(f"[{name}] warm-up: {warm.successful} ok, {warm.failed} failed",
                      file=sys.stderr)
            if not args.find_max:
                m = measure(target, csv, args.rate, args.duration, args.sipp_cpu,
                            args.sipp_extra, args.sipp_procs)
                report(m)
                if m["failed"] and not m["successful"]:
                    print(m["_sipp"].describe(), file=sys.stderr)
                    print(target.log_tail(), file=sys.stderr)
                return strip(m)
            steps: list[dict[str, Any]] = []
            best: dict[str, Any] | None = None
            for rate in rates(args.start_rate, args.step_factor, args.max_rate):
                m = measure(target, csv, rate, args.step_duration, args.sipp_cpu,
                            args.sipp_extra, args.sipp_procs)
                report(m)
                steps.append(strip(m))
                if not clean(m):
                    break
                best = m
            return {"target": name, "max_clean_rate": best["rate_asked"] if best else None,
                    "at_max": strip(best) if best else None, "steps": steps}


def strip(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if not k.startswith("_")}


def report(m: dict[str, Any]) -> None:
    print(f"{m['target']:>10}  asked {m['rate_asked']:>7.0f}/s  got "
          f"{m['registrations_per_s']:>8.1f}/s  ok {m['successful']:>7}  "
          f"failed {m['failed']:>5}  retrans "
          f"{m['retransmissions']:>5}  cpu {m['target_cpu_s']:>6.2f}s  "
          f"{m['cpu_us_per_registration'] or float('nan'):>7.1f} us/reg "
          f"(user {m['user_us_per_registration'] or float('nan'):.1f} "
          f"sys {m['system_us_per_registration'] or float('nan'):.1f})  "
          f"load {m['target_cpu_load'] or 0:.2f}  sipp load {m['sipp_cpu_load'] or 0:.2f}",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--first", type=int, default=100000, help="first extension")
    ap.add_argument("--rate", type=float, default=8000.0, help="REGISTER calls per second")
    ap.add_argument("--targets", default="softswitch,kamailio")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--target-cpu", type=int, default=1)
    ap.add_argument("--sipp-cpu", type=int, default=0)
    ap.add_argument("--sipp-procs", type=int, default=1,
                    help="SIPp processes sharing the rate (all on --sipp-cpu)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--find-max", action="store_true",
                    help="step the rate up until failures or retransmissions appear")
    ap.add_argument("--start-rate", type=float, default=1000.0)
    ap.add_argument("--step-factor", type=float, default=1.25)
    ap.add_argument("--max-rate", type=float, default=60000.0)
    ap.add_argument("--step-duration", type=float, default=5.0)
    ap.add_argument("--sipp-extra", nargs=argparse.REMAINDER, default=[],
                    help="further SIPp arguments (last on the line)")
    args = ap.parse_args()

    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(names) - set(TARGETS)
    if unknown:
        ap.error(f"unknown targets: {', '.join(sorted(unknown))}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-users-") as tmp:
        csv = write_users_csv(Path(tmp) / "users.csv", users_for(args.users, args.first))
        for name in names:
            try:
                results.append(run_target(name, args, csv))
            except (OSError, RuntimeError, TimeoutError) as exc:
                print(f"[{name}] not measured: {exc}", file=sys.stderr)
                results.append({"target": name, "error": str(exc)})
    if args.json:
        args.json.write_text(json.dumps({"args": {k: (str(v) if isinstance(v, Path) else v)
                                                  for k, v in vars(args).items()},
                                         "results": results}, indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
