"""Run SIPp (3.6) with bounded runs and parsed ``-trace_stat`` counters.

    result = run_sipp("register_auth", "127.0.0.1:5060", users_csv=csv, rate=100, max_calls=500)
    assert result.successful == 500 and result.failed == 0

Scenarios are XML files in ``tests/sipp/`` (named without ``.xml``), a path, or a built-in
as ``"sn:uas"``. Every run is bounded twice: SIPp's ``-timeout`` and a process timeout after
which SIPp is killed; SIPp never outlives the call that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.peers import SIPP, SIPP_DIR, free_port

# ---------------------------------------------------------------------------------------------
# users


def users_for(n: int, first: int = 100000) -> list[tuple[str, str]]:
    """The benchmark directory: extension str(first+i), password "pw" + extension."""
    return [(str(first + i), f"pw{first + i}") for i in range(n)]


def write_users_csv(path: Path | str, users: Iterable[tuple[str, str]]) -> Path:
    """SIPp injection file, read SEQUENTIAL (wrapping around at the end).

    field0 is the user, field1 the ``[authentication ...]`` keyword the scenario places
    after a ``<recv ... auth="true"/>``.
    """
    path = Path(path)
    lines = ["SEQUENTIAL"]
    for user, password in users:
        lines.append(f"{user};[authentication username={user} password={password}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_users_toml(path: Path | str, n: int, first: int = 100000) -> Path:
    """The same users as ``[[users]]`` tables for the switch's config (an include file)."""
    path = Path(path)
    parts = [f'[[users]]\nextension = "{ext}"\npassword = "{pw}"\n' for ext, pw in
             users_for(n, first)]
    path.write_text("\n".join(parts))
    return path


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class SippResult:
    """What one SIPp run did. Counters come from the last ``-trace_stat`` line."""

    argv: list[str]
    returncode: int | None
    wall: float  # seconds from spawn to exit, as this process saw it
    stats: dict[str, str] = field(default_factory=dict)  # last stat line, by column name
    per_second: list[int] = field(default_factory=list)  # SuccessfulCall(P) per stat line
    errors: str = ""  # tail of -trace_err
    screen: str = ""  # last screen (-trace_screen) and SIPp's stderr
    timed_out: bool = False

    def counter(self, name: str) -> int:
        """A cumulative counter, e.g. ``counter("SuccessfulCall")``."""
        value = self.stats.get(f"{name}(C)", "0") or "0"
        return int(float(value))

    @property
    def successful(self) -> int:
        return self.counter("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.counter("FailedCall")

    @property
    def retransmissions(self) -> int:
        return self.counter("Retransmissions")

    @property
    def elapsed(self) -> float:
        """SIPp's own run time (CurrentTime - StartTime of the last line), else wall time."""
        try:
            # Each time column is "date<TAB>time<TAB>epoch".
            start = float(self.stats["StartTime"].split("\t")[-1])
            now = float(self.stats["CurrentTime"].split("\t")[-1])
        except (KeyError, ValueError):
            return self.wall
        return now - start

    @property
    def call_rate(self) -> float:
        """Successful calls per second over the run."""
        return self.successful / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and not self.timed_out

    def describe(self) -> str:
        """One paragraph for an assertion message."""
        return (f"sipp rc={self.returncode} timed_out={self.timed_out} ok={self.successful} "
                f"failed={self.failed} retrans={self.retransmissions} "
                f"elapsed={self.elapsed:.2f}s\nargv: {' '.join(self.argv)}\n"
                f"errors:\n{self.errors[-2000:]}\nscreen:\n{self.screen[-3000:]}")


def parse_stat_file(path: Path) -> tuple[dict[str, str], list[int]]:
    """Columns of the last line by name, and SuccessfulCall(P) of every line."""
    try:
        rows = [r for r in path.read_text(errors="replace").splitlines() if r.strip()]
    except FileNotFoundError:
        return {}, []
    if len(rows) < 2:
        return {}, []
    header = rows[0].rstrip(";").split(";")
    parsed = [dict(zip(header, r.rstrip(";").split(";"), strict=False)) for r in rows[1:]]
    per_second = []
    for row in parsed:
        with contextlib.suppress(ValueError):
            per_second.append(int(row.get("SuccessfulCall(P)", "0")))
    return parsed[-1], per_second


# ---------------------------------------------------------------------------------------------
# command line


@dataclass
class SippRun:
    """Everything that decides one SIPp command line and where its files go."""

    scenario: str | Path
    target: str
    workdir: Path
    users_csv: Path | str | None = None
    rate: float = 10.0
    max_calls: int | None = None
    duration: float | None = None
    transport: str = "u1"
    pin_cpu: int | None = None
    extra: Sequence[str] = ()
    timeout: float | None = None
    local_port: int = 0

    def sipp_timeout(self) -> float:
        """SIPp's own bound: the expected run length plus slack."""
        if self.timeout is not None:
            return self.timeout
        calls = self.calls()
        expected = calls / self.rate if calls and self.rate > 0 else (self.duration or 30.0)
        return expected + 15.0

    def calls(self) -> int | None:
        if self.max_calls is not None:
            return self.max_calls
        if self.duration is not None:
            return max(1, int(self.rate * self.duration))
        return None

    def argv(self) -> list[str]:
        scen = str(self.scenario)
        if scen.startswith("sn:"):
            scen_args = ["-sn", scen[3:]]
        else:
            p = Path(scen)
            if not p.suffix:
                p = SIPP_DIR / f"{scen}.xml"
            scen_args = ["-sf", str(p)]
        prefix = ["taskset", "-c", str(self.pin_cpu)] if self.pin_cpu is not None else []
        # "-p 0" is taken as "default" (5060) by SIPp 3.6.1: pick a free port instead.
        if not self.local_port:
            kind = "udp" if self.transport.startswith("u") else "both"
            self.local_port = free_port(kind)
        argv = [*prefix, SIPP, *scen_args, "-i", "127.0.0.1", "-p", str(self.local_port),
                "-t", self.transport,
                "-nostdin", "-r", f"{self.rate:g}", "-rp", "1000",
                "-timeout", f"{int(self.sipp_timeout())}s", "-timeout_error",
                "-trace_stat", "-fd", "1", "-stf", str(self.workdir / "stat.csv"),
                "-trace_err", "-error_file", str(self.workdir / "errors.log"),
                "-trace_screen", "-screen_file", str(self.workdir / "screen.log")]
        calls = self.calls()
        if calls is not None:
            argv += ["-m", str(calls)]
        if self.users_csv is not None:
            argv += ["-inf", str(self.users_csv)]
        argv += [*self.extra]
        if self.target:
            argv.append(self.target)
        return argv

    def result(self, argv: list[str], rc: int | None, wall: float, timed_out: bool,
               stderr: str) -> SippResult:
        stats, per_second = parse_stat_file(self.workdir / "stat.csv")
        return SippResult(argv=argv, returncode=rc, wall=wall, stats=stats,
                          per_second=per_second,
                          errors=_tail(self.workdir / "errors.log"),
                          screen=_tail(self.workdir / "screen.log") + stderr,
                          timed_out=timed_out)


def _tail(path: Path, limit: int = 20000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------------
# sync and async runners


def run_sipp(scenario: str | Path, target: str, *, users_csv: Path | str | None = None,
             rate: float = 10.0, max_calls: int | None = None, duration: float | None = None,
             transport: str = "u1", pin_cpu: int | None = None, extra: Sequence[str] = (),
             timeout: float | None = None, workdir: Path | None = None,
             local_port: int = 0) -> SippResult:
    """Run SIPp to completion (blocking) and return its counters."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sipp-")))
        run = SippRun(scenario, target, workdir, users_csv, rate, max_calls, duration,
                      transport, pin_cpu, extra, timeout, local_port)
        argv = run.argv()
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        timed_out = False
        try:
            _, err = proc.communicate(timeout=run.sipp_timeout() + 10.0)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            _, err = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wall = time.monotonic() - start
        return run.result(argv, proc.returncode, wall, timed_out,
                          err.decode(errors="replace") if err else "")


class SippProcess:
    """SIPp as an asyncio subprocess, for tests that run the switch in the same loop.

    ``async with SippProcess(...) as sipp: ... result = await sipp.wait()``; leaving the
    block kills a SIPp that is still running (a UAS, for instance).
    """

    def __init__(self, scenario: str | Path, target: str = "", *,
                 users_csv: Path | str | None = None, rate: float = 10.0,
                 max_calls: int | None = None, duration: float | None = None,
                 transport: str = "u1", pin_cpu: int | None = None, extra: Sequence[str] = (),
                 timeout: float | None = None, workdir: Path | None = None,
                 local_port: int = 0) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipp-")
            workdir = Path(self._tmp.name)
        self.run = SippRun(scenario, target, workdir, users_csv, rate, max_calls, duration,
                           transport, pin_cpu, extra, timeout, local_port)
        self.argv = self.run.argv()
        self.port = self.run.local_port  # where a UAS scenario listens
        self.proc: asyncio.subprocess.Process | None = None
        self._start = 0.0
        self._result: SippResult | None = None

    async def start(self) -> None:
        self._start = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.run.workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    async def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish (killing it after ``timeout``) and parse its files."""
        if self._result is not None:
            return self._result
        assert self.proc is not None, "start() first"
        limit = timeout if timeout is not None else self.run.sipp_timeout() + 10.0
        timed_out = False
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), limit)
        except TimeoutError:
            timed_out = True
            await self._kill()
            err = b""
        self._result = self.run.result(self.argv, self.proc.returncode,
                                       time.monotonic() - self._start, timed_out,
                                       err.decode(errors="replace") if err else "")
        return self._result

    async def stop(self) -> SippResult:
        """Kill SIPp now (a UAS has no natural end) and return what it counted."""
        assert self.proc is not None
        if self.proc.returncode is None:
            await self._kill()
        return await self.wait(timeout=5.0)

    async def _kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    async def __aenter__(self) -> SippProcess:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.proc is not None:
            await self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()


async def run_sipp_async(scenario: str | Path, target: str, *,
                         users_csv: Path | str | None = None, rate: float = 10.0,
                         max_calls: int | None = None, duration: float | None = None,
                         transport: str = "u1", pin_cpu: int | None = None,
                         extra: Sequence[str] = (), timeout: float | None = None,
                         workdir: Path | None = None, local_port: int = 0) -> SippResult:
    """``run_sipp`` without blocking the event loop."""
    async with SippProcess(scenario, target, users_csv=users_csv, rate=rate,
                           max_calls=max_calls, duration=duration, transport=transport,
                           pin_cpu=pin_cpu, extra=extra, timeout=timeout,
                           workdir=workdir, local_port=local_port) as sipp:
        return await sipp.wait()
