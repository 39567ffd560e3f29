"""Time load_config + Directory build for a configuration with 10,000 users (in an include).

Run: .venv/bin/python benchmarks/bench_directory.py [--users N] [--repeat R]
Prints the best and median of R runs for each step; the budget is "well under a second".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from softswitch.config import load_config  # noqa: E402
from softswitch.directory import Directory  # noqa: E402


def write_config(folder: Path, users: int) -> Path:
    main = folder / "softswitch.toml"
    main.write_text('include = ["users.toml"]\n[sip]\ndomain = "bench.example"\n')
    lines = []
    for n in range(users):
        ext = str(100000 + n)
        lines.append(f'[[users]]\nextension = "{ext}"\npassword = "pw{ext}"\nname = "User {ext}"\n')
    (folder / "users.toml").write_text("\n".join(lines))
    return main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-directory-") as tmp:
        path = write_config(Path(tmp), args.users)
        load_s: list[float] = []
        build_s: list[float] = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            config = load_config(path)
            t1 = time.perf_counter()
            directory = Directory.from_config(config)
            t2 = time.perf_counter()
            assert len(directory) == args.users
            load_s.append(t1 - t0)
            build_s.append(t2 - t1)
    total = [a + b for a, b in zip(load_s, build_s, strict=True)]
    print(f"users: {args.users}, runs: {args.repeat}")
    for label, values in (("load_config", load_s), ("Directory", build_s), ("total", total)):
        print(
            f"{label:>12}: best {min(values) * 1000:7.1f} ms   "
            f"median {statistics.median(values) * 1000:7.1f} ms"
        )
    verdict = "OK" if statistics.median(total) < 0.5 else "SLOW"
    print(f"median total {statistics.median(total) * 1000:.0f} ms: {verdict} (budget < 500 ms)")


if __name__ == "__main__":
    main()
