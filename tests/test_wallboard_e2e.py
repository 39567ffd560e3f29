"""Acceptance (issue 5, CMS-3/CMS-4/CMS-6), end to end: a real switch with a contact-centre
config and its reporting service, a real pjsua2 caller, headless Chromium.

- A caller dials 1500; no agent is logged in, so the call waits in queue "general". The
  wallboard (opened with a kiosk token, as a TV would) shows the waiting call within 5 s of
  it entering the queue; the SSE stream carries it within 1 s; the ``calls_waiting > 0``
  rule colours the figure amber and the ``longest_wait_s > 3`` rule turns the longest wait
  red once crossed. A screenshot is saved (its path is printed).
- Reports: rows in the store show on /reports as a table, an SVG chart and a CSV link; an
  agent's login gets 403 on queue reports and only its own rows and live figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reporting import events as rep
from softswitch.app import Switch
from softswitch.store.base import ReportRow
from tests.peers.audio import tone
from tests.peers.chromium import CHROMIUM, Browser, Page, browser
from tests.peers.phone import Phone
from tests.switchkit import running_switch
from tests.test_calls_phones import USERS, Setup, write_config
from tests.test_contact_centre_phones import PROMPTS

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                       reason="chromium not installed"),
]

KIOSK = "lobby-tv-token-0123456789"
PASSWORDS = {"sup": "sup-secret", "ag1": "agent-secret"}
CONFIG = (
    f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
    '[[agents]]\nid = "2001"\nname = "Ani"\npin = "1234"\nqueues = { general = 0 }\n'
    '[[agents]]\nid = "2002"\nname = "Budi"\npin = "1234"\nqueues = { general = 0 }\n'
    '[[queues]]\nname = "general"\nring_timeout_s = 10\n'
    '[[services]]\nnumber = "1500"\nqueue = "general"\n'
    '[reporting]\nrefresh_s = 1\n'
    '[[reporting.thresholds]]\nname = "waiting_any"\nmetric = "calls_waiting"\nop = ">"\n'
    'value = 0\nseverity = "warning"\n'
    '[[reporting.thresholds]]\nname = "wait_over_3s"\nmetric = "longest_wait_s"\nop = ">"\n'
    'value = 3\nseverity = "critical"\n'
    '[web]\ntimezone = "Asia/Jakarta"\nlanguage = "en"\n'
    f'kiosk_tokens = ["{KIOSK}"]\n'
    f'[[web.users]]\nname = "sup"\nrole = "supervisor"\npassword = "{PASSWORDS["sup"]}"\n'
    f'[[web.users]]\nname = "ag1"\nrole = "agent"\nagent = "2001"\n'
    f'password = "{PASSWORDS["ag1"]}"\n')


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = write_config(tmp_path)
    with s.config.open("a") as fh:
        fh.write(CONFIG)
    return s


@pytest.fixture
async def switch(setup: Setup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        assert sw.reporting is not None, "the switch runs its reporting service (embedded)"
        yield sw


@pytest.fixture
async def chrome(tmp_path: Path) -> AsyncIterator[Browser]:
    async with browser(tmp_path) as b:
        yield b


def http_base(setup: Setup) -> str:
    m = re.search(r'\[http\]\nlisten = "([^"]+)"', setup.config.read_text())
    assert m is not None
    return f"http://{m[1]}"


class SseReader:
    """Reads /api/live/stream and notes when (loop time) each snapshot arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=30)) as client, \
                client.stream("GET", self.url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    self.received.append((loop.time(), json.loads(line[6:])))
                    self.arrived.set()

    async def first(self, check: Any, timeout: float) -> tuple[float, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for at, snap in self.received:
                if check(snap):
                    return at, snap
            self.arrived.clear()
            left = deadline - loop.time()
            assert left > 0, f"no such snapshot in {timeout}s"
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass


def fig(field: str) -> str:
    return f"document.querySelector('section[data-queue=\"general\"] .fig[data-field=\"{field}\"]')"


async def test_wallboard_shows_waiting_call_and_turns_red(
        setup: Setup, switch: Switch, chrome: Browser, tmp_path: Path) -> None:
    cc = switch.contact_centre
    assert cc is not None
    loop = asyncio.get_running_loop()
    base = http_base(setup)
    queued_at: list[float] = []

    def on_reports(reports: list[rep.ReportEvent]) -> None:
        if any(isinstance(r, rep.CallQueued) for r in reports) and not queued_at:
            queued_at.append(loop.time())

    cc.report_listeners.append(on_reports)
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        # Not open, no token: refused. With the kiosk token: the board.
        assert (await client.get("/wallboard")).status_code == 403
        assert (await client.get("/wallboard", params={"token": KIOSK})).status_code == 200

    page = await chrome.new_page()
    await page.goto(f"{base}/wallboard?token={KIOSK}")
    waiting = fig("waiting")
    await page.wait_for(f"!!{waiting} && {waiting}.querySelector('.v').textContent === '0'", 5)
    await page.wait_for("document.getElementById('conn').className === 'conn live'", 5)
    assert await page.eval("document.getElementById('refresh').textContent") == "1"

    sse = SseReader(f"{base}/api/live/stream?token={KIOSK}")
    sse.task = asyncio.create_task(sse.run())
    caller = Phone("caller")
    try:
        await sse.first(lambda s: True, 5)
        await caller.start()
        ev = await caller.register("1001", USERS["1001"], setup.registrar)
        assert ev["event"] == "registered", ev
        cid = await caller.make_call(setup.uri("1500"), play=tone(tmp_path / "a.wav", 440))
        await caller.wait_call_state(cid, "confirmed", 10)
        # After the greeting the call enters the queue (no agent logged in: it waits).
        deadline = loop.time() + 30
        while not queued_at:
            assert loop.time() < deadline, "the call never entered the queue"
            await asyncio.sleep(0.02)
        t0 = queued_at[0]

        # SSE: the change is pushed within 1 s of the event.
        at, snap = await sse.first(lambda s: s["queues"][0]["waiting"] == 1, 2)
        assert at - t0 < 1.0, f"SSE {at - t0:.3f}s after the call queued"
        assert snap["agents"] == []  # a kiosk sees no agent rows

        # The wallboard shows it within 5 s (in practice well under 1 s).
        await page.wait_for(f"{waiting}.querySelector('.v').textContent === '1'", 5)
        shown = loop.time() - t0
        assert shown < 5.0, shown
        # calls_waiting > 0 is a warning: amber.
        await page.wait_for(f"{waiting}.classList.contains('warning')", 3)
        # longest_wait_s > 3 is critical: red once the wait passes 3 s, not before.
        longest = fig("longest_wait")
        assert not await page.eval(f"{longest}.classList.contains('critical')")
        await page.wait_for(f"{longest}.classList.contains('critical')", 3 + 3)
        red_after = loop.time() - t0
        assert 3.0 <= red_after < 6.0, red_after
        assert await page.eval(f"getComputedStyle({longest}).backgroundColor") \
            == "rgb(198, 40, 40)"
        alerts = await page.eval("Array.from(document.querySelectorAll('#alerts li'))"
                                 ".map(li => li.dataset.rule + ':' + li.className)")
        assert "wait_over_3s:critical" in alerts and "waiting_any:warning" in alerts
        shot = await page.screenshot(tmp_path / "wallboard-e2e.png")
        kept = Path(os.environ.get("SOFTSWITCH_TEST_OUTPUT", tmp_path)) / "wallboard-e2e.png"
        if kept != shot:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, kept)
        print(f"wallboard screenshot: {kept}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # The caller gives up: abandoned today, nobody waiting, alerts cleared.
        await caller.hangup(cid)
        await page.wait_for(f"{waiting}.querySelector('.v').textContent === '0' && "
                            f"{fig('abandoned')}.querySelector('.v').textContent === '1'", 5)
        await page.wait_for(f"!{longest}.classList.contains('alert') && "
                            "document.querySelectorAll('#alerts li').length === 0", 5)
    finally:
        await caller.close()
        if sse.task is not None:
            sse.task.cancel()
            await asyncio.gather(sse.task, return_exceptions=True)


# -- reports and roles -----------------------------------------------------------------------

DAY = "2026-03-10"
START = 1773100800.0  # 2026-03-10 07:00 WIB (00:00 UTC)


def report_rows() -> list[ReportRow]:
    from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS

    q0 = dict.fromkeys(QUEUE_COUNTS, 0.0)
    a0 = dict.fromkeys(AGENT_COUNTS, 0.0)
    rows = []
    for i, (offered, answered, in_t) in enumerate([(10, 9, 8), (6, 5, 3), (4, 4, 4)]):
        rows.append(ReportRow("queue", "general", DAY, START + i * 900, 900.0, {
            **q0, "offered": offered, "queued": offered, "answered": answered,
            "answered_in_t": in_t, "abandoned": offered - answered, "handled": answered,
            "wait_sum": 10.0 * answered, "talk": 120.0 * answered}))
        for agent, handled in (("2001", 3 + i), ("2002", 2)):
            rows.append(ReportRow("agent", agent, DAY, START + i * 900, 900.0, {
                **a0, "staffed": 900, "available": 300, "talk": 120.0 * handled,
                "acw": 600 - 120.0 * handled, "handled": handled, "offered": handled}))
    return rows


async def login_page(page: Page, base: str, name: str) -> None:
    await page.goto(f"{base}/login?lang=en")
    await page.eval(
        f"document.querySelector('input[name=name]').value = {json.dumps(name)};"
        f"document.querySelector('input[name=password]').value = "
        f"{json.dumps(PASSWORDS[name])}; document.querySelector('form.login').submit(); true")
    await page.wait_for("location.pathname === '/supervisor' && "
                        "document.readyState === 'complete'", 10)


async def test_reports_page_and_agent_sees_only_own_figures(
        setup: Setup, switch: Switch, chrome: Browser, tmp_path: Path) -> None:
    assert switch.store is not None
    await switch.store.write_report_rows(report_rows())
    base = http_base(setup)
    query = f"from={DAY}&to={DAY}&group=interval"

    # A supervisor: queue report as table, chart and CSV.
    sup = await chrome.new_page()
    await login_page(sup, base, "sup")
    await sup.goto(f"{base}/reports?kind=queues&{query}&lang=en")
    await sup.wait_for("document.getElementById('report').dataset.ready === '1'", 10)
    rows = await sup.eval("Array.from(document.querySelectorAll('#report-rows tr'))"
                          ".map(r => [r.dataset.name, r.dataset.period])")
    assert rows == [["general", f"{DAY}T07:00"], ["general", f"{DAY}T07:15"],
                    ["general", f"{DAY}T07:30"]]
    head = await sup.eval("Array.from(document.querySelectorAll('#report-head th'))"
                          ".map(th => th.textContent)")
    assert head[:4] == ["Queue", "Period", "Offered", "Queued"]
    sl = head.index("Service level")
    first = await sup.eval("Array.from(document.querySelector('#report-rows tr').cells)"
                           ".map(c => c.textContent)")
    assert first[2] == "10" and first[sl] == "80.0%"  # 8 of 10 (no short abandons)
    # The chart: one bar per interval of the chosen metric.
    await sup.eval("const s = document.getElementById('chart-metric'); s.value = 'offered';"
                   "s.dispatchEvent(new Event('change')); true")
    bars = await sup.eval("Array.from(document.querySelectorAll('#chart rect.bar'))"
                          ".map(b => b.getAttribute('height'))")
    heights = [float(h) for h in bars]
    assert len(heights) == 3 and heights[0] > heights[1] > heights[2] > 0
    csv_href = await sup.eval("document.getElementById('csv').getAttribute('href')")
    assert csv_href.startswith("/api/reports/queues?") and "format=csv" in csv_href
    assert "limit=" not in csv_href  # the CSV has every row
    assert await sup.eval("document.getElementById('more').hidden") is True
    # A longer report than the page asks for: the first page, then more on demand.
    await sup.goto(f"{base}/reports?kind=queues&{query}&lang=en&limit=2")
    await sup.wait_for("document.getElementById('report').dataset.ready === '1'", 10)
    shown = ("Array.from(document.querySelectorAll('#report-rows tr'))"
             ".map(r => r.dataset.period)")
    assert await sup.eval(shown) == [f"{DAY}T07:00", f"{DAY}T07:15"]
    assert "more rows follow" in await sup.eval(
        "document.getElementById('report-status').textContent")
    await sup.eval("document.getElementById('more').click(); true")
    await sup.wait_for("document.querySelectorAll('#report-rows tr').length === 3", 5)
    assert await sup.eval(shown) == [f"{DAY}T07:00", f"{DAY}T07:15", f"{DAY}T07:30"]
    assert await sup.eval("document.getElementById('more').hidden") is True
    assert "limit=" not in await sup.eval("document.getElementById('csv').getAttribute('href')")
    await sup.screenshot(tmp_path / "reports.png")
    cookie = await sup.eval("document.cookie")
    assert "softswitch_session" not in cookie  # HttpOnly: scripts cannot read it

    # An agent: its own rows only, 403 on queues, its own live row only.
    async with httpx.AsyncClient(base_url=base, timeout=5) as agent:
        r = await agent.post("/login", data={"name": "ag1", "password": PASSWORDS["ag1"]})
        assert r.status_code == 303
        assert (await agent.get("/api/reports/queues", params={"from": DAY})).status_code \
            == 403
        mine = await agent.get("/api/reports/agents", params={"from": DAY, "to": DAY,
                                                              "group": "day"})
        assert mine.status_code == 200, mine.text
        assert [(row["agent"], row["handled"]) for row in mine.json()["rows"]] == [
            ("2001", 12)]
        others = await agent.get("/api/reports/agents", params={"from": DAY, "agents": "2002"})
        assert [row["agent"] for row in others.json()["rows"]] in ([], ["2001"])
        live = (await agent.get("/api/live")).json()
        assert [a["agent"] for a in live["agents"]] == ["2001"]
        assert live["queues"] == [] and list(live["totals"]["agents"]) == ["2001"]
        # The supervisor's live view has everyone.
    async with httpx.AsyncClient(base_url=base, timeout=5) as boss:
        await boss.post("/login", data={"name": "sup", "password": PASSWORDS["sup"]})
        everyone = (await boss.get("/api/live")).json()
        assert sorted(a["agent"] for a in everyone["agents"]) == ["2001", "2002"]
        assert [q["name"] for q in everyone["queues"]] == ["general"]

    # The agent's report page in the browser: agents report of 2001 only.
    ag = await chrome.new_page()
    await login_page(ag, base, "ag1")
    await ag.goto(f"{base}/reports?{query}&lang=id")
    await ag.wait_for("document.getElementById('report').dataset.ready === '1'", 10)
    names = await ag.eval("Array.from(document.querySelectorAll('#report-rows tr'))"
                          ".map(r => r.dataset.name)")
    assert names == ["2001", "2001", "2001"]
    assert await ag.eval("document.querySelector('h1').textContent") == "Laporan"


async def test_supervisor_view_follows_agent_login_by_phone(
        setup: Setup, switch: Switch, chrome: Browser) -> None:
    base = http_base(setup)
    page = await chrome.new_page()
    await login_page(page, base, "sup")
    row = "document.querySelector('#agent-rows tr[data-agent=\"2001\"]')"
    await page.wait_for(f"!!{row} && {row}.cells[2].textContent === 'logged out'", 5)
    assert await page.eval(f"{row}.cells[1].textContent") == "Ani"
    phone = Phone("agent")
    try:
        await phone.start()
        ev = await phone.register("1002", USERS["1002"], setup.registrar)
        assert ev["event"] == "registered", ev
        # *11, agent id and PIN: the agent logs in on this phone.
        cid = await phone.make_call(setup.uri("*11"))
        await phone.wait_call_state(cid, "confirmed", 10)
        await phone.wait_event("media_active", 10, where=lambda e: e["call"] == cid)
        await phone.send_dtmf(cid, "2001#1234#")
        await phone.wait_call_state(cid, "disconnected", 30)
        # Pushed to the open page: available, time in state counting from 0 in the browser.
        await page.wait_for(f"{row}.cells[2].textContent === 'available'", 3)
        first = await page.eval(f"{row}.cells[4].textContent")
        assert first in ("0:00", "0:01"), first
        await page.wait_for(f"{row}.cells[4].textContent !== {first!r}", 3)
        staffed = await page.eval("document.querySelector('#queue-rows tr[data-queue=\"general\"]')"
                                  ".cells[9].textContent")
        assert staffed == "1"
    finally:
        await phone.close()
