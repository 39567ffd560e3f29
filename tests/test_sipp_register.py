"""Acceptance: SIPp registers a large directory, with digest auth, against a running switch.

The switch runs as the operator runs it — ``softswitch run --config FILE`` in its own process
(ready when ``/healthz`` answers 200) — with the users in an included TOML file. SIPp's
``register_auth`` scenario does REGISTER, 401, REGISTER with credentials, 200 per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.peers import REPO_ROOT, SIPP, free_port
from tests.peers.sipp import (
    SippResult,
    run_sipp_async,
    users_for,
    write_users_csv,
    write_users_toml,
)

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not shutil.which(SIPP), reason="sipp not installed"),
]

SOFTSWITCH = REPO_ROOT / ".venv" / "bin" / "softswitch"
FIRST = 100000  # extensions FIRST .. FIRST+n-1, password "pw" + extension


@dataclass
class RunningSwitch:
    sip_port: int
    http_port: int
    log: Path
    proc: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


async def start_switch(tmp_path: Path, users: int) -> RunningSwitch:
    sip_port = free_port("both")
    http_port = free_port("tcp")
    write_users_toml(tmp_path / "users.toml", users, first=FIRST)
    config = tmp_path / "softswitch.toml"
    config.write_text(
        'include = ["users.toml"]\n'
        "[sip]\n"
        f'listen = ["udp:127.0.0.1:{sip_port}", "tcp:127.0.0.1:{sip_port}"]\n'
        'domain = "127.0.0.1"\n'
        # SIPp 3.6.1 answers only the first WWW-Authenticate and knows only MD5 (it aborts
        # with "authentication must use MD5 or AKAv1-MD5" on the default SHA-256 first
        # challenge): configure the switch as for a site with MD5-only phones.
        "[auth]\n"
        'algorithms = ["MD5"]\n'
        "[http]\n"
        f'listen = "127.0.0.1:{http_port}"\n'
        "[store]\n"
        f'url = "sqlite:///{tmp_path / "switch.db"}"\n'
        "[log]\n"
        'level = "warning"\n'
    )
    log = tmp_path / "softswitch.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(SOFTSWITCH), "run", "--config", str(config), cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
        )
    sw = RunningSwitch(sip_port, http_port, log, proc)
    try:
        await wait_healthy(sw, timeout=60.0)
    except BaseException:
        await stop_switch(sw)
        raise
    return sw


async def wait_healthy(sw: RunningSwitch, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            if sw.proc.returncode is not None:
                raise AssertionError(f"switch exited with {sw.proc.returncode}:\n{sw.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                resp = await client.get(f"{sw.url}/healthz", timeout=2.0)
                if resp.status_code == 200:
                    return
            if loop.time() > deadline:
                raise TimeoutError(f"switch not healthy in {timeout}s:\n{sw.log_tail()}")
            await asyncio.sleep(0.05)  # poll interval; the deadline above bounds the wait


async def stop_switch(sw: RunningSwitch) -> int | None:
    if sw.proc.returncode is None:
        sw.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(sw.proc.wait(), 15.0)
        except TimeoutError:
            sw.proc.kill()
            await sw.proc.wait()
    return sw.proc.returncode


@pytest.fixture
async def switch_factory(tmp_path: Path) -> AsyncIterator:
    started: list[RunningSwitch] = []

    async def start(users: int) -> RunningSwitch:
        sw = await start_switch(tmp_path, users)
        started.append(sw)
        return sw

    yield start
    for sw in started:
        rc = await stop_switch(sw)
        assert rc == 0, f"switch exited with {rc}:\n{sw.log_tail()}"


async def api_status(sw: RunningSwitch) -> dict:
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"{sw.url}/api/status", timeout=30.0)
    resp.raise_for_status()
    return resp.json()


@dataclass
class ScreenCounts:
    """What only SIPp's scenario screen tells: unexpected and discarded messages."""

    unexpected: int  # sum of the Unexpected-Msg column
    out_of_call: int  # "out-of-call msg (discarded)"
    dead_call: int  # "dead call msg (discarded)"


def screen_counts(result: SippResult) -> ScreenCounts:
    blocks = result.screen.split("Scenario Screen")
    assert len(blocks) > 1, f"no scenario screen in SIPp's output:\n{result.screen[-2000:]}"
    last = blocks[-1].split("Statistics Screen")[0]
    unexpected = 0
    for line in last.splitlines():
        # "  401 <----------   10000   0   0   0": Messages, Retrans, Timeout, Unexpected-Msg
        m = re.match(r"^\s*\S+\s+<-+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", line)
        if m:
            unexpected += int(m[4])
    ooc = re.search(r"(\d+) out-of-call msg", last)
    dead = re.search(r"(\d+) dead call msg", last)
    assert ooc and dead, last
    return ScreenCounts(unexpected, int(ooc[1]), int(dead[1]))


def report(label: str, result: SippResult) -> str:
    sc = screen_counts(result)
    return (f"{label}: {result.successful} ok, {result.failed} failed, "
            f"{result.retransmissions} retransmissions, {sc.unexpected} unexpected, "
            f"{sc.out_of_call} out-of-call, {sc.dead_call} dead-call msgs, "
            f"{result.elapsed:.1f}s ({result.call_rate:.0f} registrations/s)")


def assert_clean(result: SippResult, calls: int) -> None:
    assert result.returncode == 0 and not result.timed_out, result.describe()
    assert result.failed == 0, result.describe()
    assert result.counter("FailedUnexpectedMessage") == 0, result.describe()
    sc = screen_counts(result)
    assert sc.unexpected == 0 and sc.out_of_call == 0, (sc, result.describe())
    assert result.successful == calls, result.describe()


@pytest.mark.parametrize(
    ("transport", "users", "rate"),
    [("u1", 10_000, 1500), ("t1", 2000, 1000)],
    ids=["udp-10000", "tcp-2000"],
)
async def test_sipp_registers_directory(
    switch_factory, tmp_path: Path, transport: str, users: int, rate: int  # noqa: ANN001
) -> None:
    sw = await switch_factory(users)
    before = await api_status(sw)
    assert before["users"] == users and before["registered_users"] == 0, before

    csv = write_users_csv(tmp_path / "users.csv", users_for(users, first=FIRST))
    result = await run_sipp_async(
        "register_auth", f"127.0.0.1:{sw.sip_port}", users_csv=csv, rate=rate,
        max_calls=users, transport=transport, timeout=45, workdir=tmp_path,
    )
    print(report(f"{transport} x{users}", result))
    assert_clean(result, users)

    status = await api_status(sw)
    assert status["registered_users"] == users, {k: status[k] for k in status
                                                 if k != "registrations"}
    regs = status["registrations"]
    assert len(regs) == users
    assert {r["user"] for r in regs} == {str(FIRST + i) for i in range(users)}
    proto = "udp" if transport.startswith("u") else "tcp"
    assert all(r["received"].startswith(f"{proto}:127.0.0.1:") for r in regs)
    assert all(r["user_agent"] == "SIPp" for r in regs)
    assert sw.proc.returncode is None, sw.log_tail()
