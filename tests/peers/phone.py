"""Async driver for a pjsua2 phone process (tests/peers/pjphone.py).

    async with Phone("alice") as alice:
        ev = await alice.register("1001", "pw1001", "127.0.0.1:5060")
        assert ev["event"] == "registered"

Events are kept in arrival order until a ``wait_event`` consumes them, so an event that
arrives before the test starts waiting is not lost.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tests.peers import REPO_ROOT

Event = dict[str, Any]


class PhoneError(Exception):
    """A command was refused by the phone, or the phone process died."""


class Phone:
    """One pjsua2 phone in a subprocess; SIP (UDP+TCP) and RTP bound to 127.0.0.1."""

    def __init__(self, name: str = "phone", *, auto_answer: int = 0, log_level: int = 1,
                 tsx_timeout_ms: int = 0, codecs: str = "PCMU/8000,PCMA/8000",
                 start_timeout: float = 15.0) -> None:
        self.name = name
        self.auto_answer = auto_answer
        self.log_level = log_level
        self.tsx_timeout_ms = tsx_timeout_ms
        self.codecs = codecs
        self.start_timeout = start_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.udp_port = 0
        self.tcp_port = 0
        self.events: list[Event] = []  # unconsumed, in arrival order
        self.history: list[Event] = []  # everything ever received
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._changed = asyncio.Event()
        self._replies: dict[int, asyncio.Future[Event]] = {}
        self._next_req = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._eof = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the process and wait for its ``ready`` event."""
        argv = [sys.executable, "-m", "tests.peers.pjphone", "--name", self.name,
                "--log-level", str(self.log_level), "--auto-answer", str(self.auto_answer),
                "--tsx-timeout", str(self.tsx_timeout_ms), "--codecs", self.codecs]
        self.proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(REPO_ROOT), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._tasks = [asyncio.create_task(self._read_stdout()),
                       asyncio.create_task(self._read_stderr())]
        ready = await self.wait_event("ready", self.start_timeout)
        self.udp_port = int(ready["udp_port"])
        self.tcp_port = int(ready["tcp_port"])

    async def close(self, timeout: float = 5.0) -> int | None:
        """Ask the phone to quit; kill it if it does not exit within ``timeout``."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b'{"cmd": "quit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return proc.returncode

    async def __aenter__(self) -> Phone:
        try:
            await self.start()
        except BaseException:
            await self.close(timeout=1.0)
            raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def uri(self) -> str:
        """Where a direct (serverless) call to this phone goes."""
        return f"sip:{self.name}@127.0.0.1:{self.udp_port}"

    # -- plumbing -----------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                try:
                    ev: Event = json.loads(line)
                except ValueError:
                    self.stderr_tail.append("stdout garbage: " + line.decode(errors="replace"))
                    continue
                self.history.append(ev)
                if ev.get("event") == "reply" and ev.get("req") in self._replies:
                    fut = self._replies.pop(ev["req"])
                    if not fut.done():
                        fut.set_result(ev)
                else:
                    self.events.append(ev)
                self._changed.set()
        finally:
            self._eof = True
            for fut in self._replies.values():
                if not fut.done():
                    fut.set_exception(PhoneError(f"{self.name}: process exited"))
            self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    async def command(self, cmd: str, timeout: float = 10.0, **fields: Any) -> Event:
        """Send one command and return its reply; raise PhoneError if refused."""
        if self.proc is None or self.proc.stdin is None or self._eof:
            raise PhoneError(f"{self.name}: not running")
        self._next_req += 1
        req = self._next_req
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._replies[req] = fut
        self.proc.stdin.write((json.dumps({"cmd": cmd, "req": req, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._replies.pop(req, None)
            raise PhoneError(f"{self.name}: no reply to {cmd} in {timeout}s") from None
        if not reply.get("ok"):
            raise PhoneError(f"{self.name}: {cmd}: {reply.get('error')}")
        return reply

    async def wait_event(self, kind: str | tuple[str, ...], timeout: float = 10.0, *,
                         where: Callable[[Event], bool] | None = None) -> Event:
        """Consume and return the first pending event of ``kind`` (and matching ``where``)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("event") in kinds and (where is None or where(ev)):
                    del self.events[i]
                    return ev
            if self._eof:
                raise PhoneError(f"{self.name}: exited while waiting for {kinds}; "
                                 f"stderr tail: {list(self.stderr_tail)[-5:]}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no {kinds} event in {timeout}s; "
                                   f"pending: {self.events}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    # -- registration -------------------------------------------------------------------------

    async def register(self, user: str, password: str, registrar: str, *,
                       transport: str = "udp", expires: int = 300, domain: str | None = None,
                       timeout: float = 10.0) -> Event:
        """REGISTER and return the final event: ``registered`` or ``reg_failed``."""
        fields: dict[str, Any] = {"user": user, "password": password, "registrar": registrar,
                                  "transport": transport, "expires": expires}
        if domain is not None:
            fields["domain"] = domain
        await self.command("register", **fields)
        return await self.wait_event(("registered", "reg_failed"), timeout)

    async def unregister(self, timeout: float = 10.0) -> Event:
        """REGISTER with Expires: 0; returns ``unregistered`` (or ``reg_failed``)."""
        await self.command("unregister")
        return await self.wait_event(("unregistered", "reg_failed"), timeout)

    # -- calls --------------------------------------------------------------------------------

    async def make_call(self, uri: str, *, play: str | None = None,
                        record: str | None = None, delayed_offer: bool = False) -> int:
        """INVITE ``uri``; returns the phone's call index. Media files start once active.
        ``delayed_offer``: no SDP in the INVITE (the answer goes in the ACK)."""
        fields: dict[str, Any] = {"uri": uri}
        if delayed_offer:
            fields["delayed_offer"] = True
        if play:
            fields["play"] = play
        if record:
            fields["record"] = record
        return int((await self.command("make_call", **fields))["call"])

    async def wait_call_state(self, call: int, state: str, timeout: float = 10.0) -> Event:
        """Wait for ``state`` (calling, incoming, early, connecting, confirmed,
        disconnected) on ``call``."""
        return await self.wait_event(
            "call_state", timeout, where=lambda e: e["call"] == call and e["state"] == state)

    async def answer(self, call: int, code: int = 200) -> None:
        await self.command("answer", call=call, code=code)

    async def hangup(self, call: int, code: int | None = None) -> None:
        fields: dict[str, Any] = {"call": call}
        if code is not None:
            fields["code"] = code
        await self.command("hangup", **fields)

    async def send_dtmf(self, call: int, digits: str, *, method: str = "rfc4733") -> None:
        await self.command("send_dtmf", call=call, digits=digits, method=method)

    async def play(self, call: int, path: str, *, loop: bool = True) -> None:
        await self.command("play", call=call, file=path, loop=loop)

    async def record(self, call: int, path: str) -> None:
        await self.command("record", call=call, file=path)

    async def stop_record(self, call: int) -> None:
        await self.command("stop_record", call=call)

    async def hold(self, call: int) -> None:
        await self.command("hold", call=call)

    async def unhold(self, call: int) -> None:
        await self.command("unhold", call=call)

    async def xfer(self, call: int, uri: str) -> None:
        """Blind-transfer ``call`` to ``uri`` (REFER); the NOTIFYs come as
        ``transfer_status`` events (code, reason, final)."""
        await self.command("xfer", call=call, uri=uri)
