"""Headless Chromium driven over the DevTools protocol (CDP) on a pipe, for page tests.

``--remote-debugging-pipe``: Chromium reads CDP commands on fd 3 and writes answers and
events on fd 4, each a JSON text ended by a NUL byte; no port, no WebSocket library needed.
`Page.wait_for(js, timeout)` polls an expression in the page until it is truthy or the
deadline passes (the page's own state is the event awaited; no fixed sleeps).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "Browser", "Page", "browser"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASH = shutil.which("bash") or "/bin/bash"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
         "--remote-debugging-pipe")


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._write_fd = -1
        self._task: asyncio.Task[None] | None = None
        self.console: list[str] = []  # console messages and page errors, for failure output

    async def start(self) -> None:
        assert CHROMIUM is not None, "chromium not installed (scripts/install-peers)"
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # bash (dash cannot redirect fds above 9) moves the pipe ends to the fds Chromium
        # expects (3: commands in, 4: answers out).
        script = f'exec 3<&{to_chrome_r} 4>&{from_chrome_w}; exec "$@"'
        self.proc = await asyncio.create_subprocess_exec(
            BASH, "-c", script, "bash", CHROMIUM, *FLAGS,
            f"--user-data-dir={self.profile}", "about:blank",
            pass_fds=(to_chrome_r, from_chrome_w), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._write_fd = to_chrome_w
        loop = asyncio.get_running_loop()
        reader = self._reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(from_chrome_r, "rb", buffering=0))
        self._task = asyncio.create_task(self._read_loop())
        await self.send("Browser.getVersion", timeout=30)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                raw = await self._reader.readuntil(b"\0")
                msg = json.loads(raw[:-1])
                if "id" in msg and msg["id"] in self._pending:
                    self._pending.pop(msg["id"]).set_result(msg)
                elif msg.get("method") == "Runtime.consoleAPICalled":
                    args = msg["params"].get("args", [])
                    self.console.append(" ".join(str(a.get("value", a.get("description")))
                                                 for a in args))
                elif msg.get("method") == "Runtime.exceptionThrown":
                    details = msg["params"]["exceptionDetails"]
                    self.console.append("exception: " + str(
                        details.get("exception", {}).get("description", details.get("text"))))
        except (asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(CdpError("chromium closed the pipe"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session: str | None = None, timeout: float = 15) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        os.write(self._write_fd, json.dumps(msg).encode() + b"\0")
        answer = await asyncio.wait_for(fut, timeout)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def new_page(self, width: int = 1600, height: int = 900) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1,
                         "mobile": False})
        return page

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(CdpError, TimeoutError, OSError):
                await self.send("Browser.close", timeout=5)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   timeout: float = 15) -> dict[str, Any]:
        return await self.browser.send(method, params, session=self.session, timeout=timeout)

    async def goto(self, url: str, timeout: float = 15) -> None:
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigate {url}: {result['errorText']}")
        await self.wait_for("document.readyState === 'complete' && location.href !== "
                            "'about:blank'", timeout)

    async def eval(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """The value of `expression` once truthy; fails at the deadline with the last one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        value: Any = None
        while True:
            try:
                value = await self.eval(expression)
            except CdpError as exc:  # the page is navigating: try again
                value = exc
            if value and not isinstance(value, CdpError):
                return value
            if loop.time() > deadline:
                raise AssertionError(
                    f"not true after {timeout}s: {expression} (last: {value!r}); "
                    f"console: {self.browser.console[-10:]}")
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", {"format": "png"}, timeout=30)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def browser(tmp: Path) -> AsyncIterator[Browser]:
    b = Browser(tmp / f"chromium-profile-{os.getpid()}-{id(tmp) & 0xFFFF:x}")
    try:
        await b.start()
        yield b
    finally:
        await b.close()
