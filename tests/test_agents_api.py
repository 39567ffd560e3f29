"""The agents' REST API (issue 4): login by PIN (lockout like *11), logout, aux with a reason,
available, acw-end, GET /api/agents and /api/queues, the admin guard; and the per-agent
`auto_answer` deciding the offer's headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from acd import commands as cmd
from acd import events as ev
from softswitch.app import Switch
from softswitch.config import ConfigError, load_config
from softswitch.contact_centre import AUTO_ANSWER_HEADERS, ContactCentre
from softswitch.http import make_http_app
from tests.switchkit import SwitchFiles, http_get, http_post, running_switch, write_config

PROMPTS = Path(__file__).resolve().parent.parent / "conf" / "prompts"

CENTRE = (
    f'\n[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\npin_failures = 3\n'
    'lockout_s = 300\n'
    '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\nauto_answer = false\n'
    '[[agents]]\nid = "2002"\npin = "5678"\nqueues = { general = 0 }\n'
    '[[agents]]\nid = "2003"\npin = "4321"\nqueues = { general = 0 }\nauto_answer = true\n'
    '[[queues]]\nname = "general"\nring_timeout_s = 10\nauto_answer = true\n'
    '[[queues]]\nname = "sales"\nauto_answer = false\n'
    '[[services]]\nnumber = "1500"\nqueue = "general"\n'
)


def centre_config(tmp_path: Path, **kw: Any) -> SwitchFiles:
    files = write_config(tmp_path, **kw)
    with files.path.open("a") as fh:
        fh.write(CENTRE)
    return files


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SwitchFiles, Switch]]:
    files = centre_config(tmp_path)
    async with running_switch(files) as switch:
        yield files, switch


def centre(switch: Switch) -> ContactCentre:
    assert switch.contact_centre is not None
    return switch.contact_centre


async def agent(files: SwitchFiles, agent_id: str) -> dict[str, Any]:
    r = await http_get(files, "/api/agents")
    assert r.status_code == 200
    return next(a for a in r.json()["agents"] if a["id"] == agent_id)


async def test_login_aux_available_logout(env: tuple[SwitchFiles, Switch]) -> None:
    files, switch = env
    cc = centre(switch)
    r = await http_get(files, "/api/agents")
    assert r.status_code == 200
    assert [(a["id"], a["state"]) for a in r.json()["agents"]] == [
        ("2001", "logged_out"), ("2002", "logged_out"), ("2003", "logged_out")]

    r = await http_post(files, "/api/agents/2001/login", json={"device": "1002", "pin": "9999"})
    assert r.status_code == 403 and r.json()["kind"] == "bad_pin"
    assert (await agent(files, "2001"))["state"] == "logged_out"
    r = await http_post(files, "/api/agents/2001/login", json={"device": "1002", "pin": "1234"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "available" and r.json()["device"] == "1002"
    assert cc.agent_of_device == {"1002": "2001"}  # *12/*13/*14 from 1002 act on 2001
    a = await agent(files, "2001")
    assert a["state"] == "available" and a["device"] == "1002" and a["since"] > 0
    # Logging in twice is an illegal transition.
    r = await http_post(files, "/api/agents/2001/login", json={"device": "1002", "pin": "1234"})
    assert r.status_code == 409

    r = await http_post(files, "/api/agents/2001/aux", json={"reason": "7"})
    assert r.status_code == 200 and r.json()["state"] == "aux" and r.json()["reason"] == "7"
    a = await agent(files, "2001")
    assert (a["state"], a["reason"]) == ("aux", "7")
    assert (await http_post(files, "/api/agents/2001/aux", json={})).status_code == 400
    # Not in after-call work: acw-end is refused.
    assert (await http_post(files, "/api/agents/2001/acw-end")).status_code == 409

    r = await http_post(files, "/api/agents/2001/available")
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert (await agent(files, "2001"))["reason"] == ""
    assert (await http_post(files, "/api/agents/2001/available")).status_code == 409

    r = await http_post(files, "/api/agents/2001/logout")
    assert r.status_code == 200 and r.json()["state"] == "logged_out"
    assert cc.agent_of_device == {}
    assert (await agent(files, "2001"))["state"] == "logged_out"
    assert (await http_post(files, "/api/agents/2001/logout")).status_code == 409

    # Errors: unknown agent, unknown device, bad bodies.
    r = await http_post(files, "/api/agents/9999/login", json={"device": "1002", "pin": "1234"})
    assert r.status_code == 404
    assert (await http_post(files, "/api/agents/9999/aux", json={"reason": "1"})
            ).status_code == 404
    r = await http_post(files, "/api/agents/2002/login", json={"device": "7777", "pin": "5678"})
    assert r.status_code == 400
    r = await http_post(files, "/api/agents/2002/login", json={"device": "1003"})
    assert r.status_code == 400
    async with httpx.AsyncClient(base_url=files.http) as c:
        r = await c.post("/api/agents/2002/login", content=b"{not json")
        assert r.status_code == 400


async def test_wrong_pins_lock_the_source_out(env: tuple[SwitchFiles, Switch]) -> None:
    _, switch = env
    app = make_http_app(switch)
    one = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    other = httpx.ASGITransport(app=app, client=("127.0.0.2", 40000))
    async with httpx.AsyncClient(transport=one, base_url="http://sw") as c:
        for _ in range(2):
            r = await c.post("/api/agents/2002/login", json={"device": "1003", "pin": "0000"})
            assert r.status_code == 403
        r = await c.post("/api/agents/2002/login", json={"device": "1003", "pin": "0000"})
        assert r.status_code == 429 and r.headers["retry-after"] == "300"
        # Locked: even the right PIN is refused from this source, without being checked.
        r = await c.post("/api/agents/2002/login", json={"device": "1003", "pin": "5678"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) <= 300
    assert centre(switch).engine.agent_state("2002")[0].value == "logged_out"
    async with httpx.AsyncClient(transport=other, base_url="http://sw") as c:
        r = await c.post("/api/agents/2002/login", json={"device": "1003", "pin": "5678"})
        assert r.status_code == 200 and r.json()["state"] == "available"


async def test_remote_needs_token_or_own_pin(env: tuple[SwitchFiles, Switch]) -> None:
    _, switch = env
    app = make_http_app(switch)
    remote = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://sw") as c:
        assert (await c.get("/api/agents")).status_code == 403
        assert (await c.get("/api/queues")).status_code == 403
        assert (await c.post("/api/agents/2001/logout")).status_code == 403
        assert (await c.post("/api/agents/2001/aux", json={"reason": "3"})).status_code == 403
        # The agent's own PIN: login, then aux on itself.
        r = await c.post("/api/agents/2001/login", json={"device": "1002", "pin": "1234"})
        assert r.status_code == 200
        r = await c.post("/api/agents/2001/aux", json={"reason": "3", "pin": "0000"})
        assert r.status_code == 403
        r = await c.post("/api/agents/2001/aux", json={"reason": "3", "pin": "1234"})
        assert r.status_code == 200 and r.json()["reason"] == "3"
        r = await c.post("/api/agents/2001/logout", json={"pin": "1234"})
        assert r.status_code == 200 and r.json()["state"] == "logged_out"
    assert centre(switch).engine.agent_state("2001")[0].value == "logged_out"


async def test_admin_token(tmp_path: Path) -> None:
    files = centre_config(tmp_path, http={"admin_token": "s3cret"})
    async with running_switch(files) as switch:
        app = make_http_app(switch)
        for host in ("192.0.2.10", "127.0.0.1"):
            transport = httpx.ASGITransport(app=app, client=(host, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://sw") as c:
                assert (await c.get("/api/agents")).status_code == 401
                good = {"Authorization": "Bearer s3cret"}
                r = await c.get("/api/agents", headers=good)
                assert r.status_code == 200 and len(r.json()["agents"]) == 3
                r = await c.post("/api/agents/2002/login", headers=good,
                                 json={"device": "1004", "pin": "5678"})
                assert r.status_code == 200
                r = await c.post("/api/agents/2002/logout", headers=good)
                assert r.status_code == 200 and r.json()["state"] == "logged_out"


async def test_queues_waiting_and_longest_wait(env: tuple[SwitchFiles, Switch]) -> None:
    files, switch = env
    r = await http_get(files, "/api/queues")
    assert r.status_code == 200
    assert r.json()["queues"] == [{"name": "general", "waiting": 0, "longest_wait_s": 0.0},
                                  {"name": "sales", "waiting": 0, "longest_wait_s": 0.0}]
    cc = centre(switch)
    cc._engine(ev.CallArrived("c1", "general", caller="1001"))  # nobody logged in: it waits
    await asyncio.sleep(0.2)
    cc._engine(ev.CallArrived("c2", "general", caller="1001"))
    q = (await http_get(files, "/api/queues")).json()["queues"][0]
    assert q["name"] == "general" and q["waiting"] == 2 and q["longest_wait_s"] >= 0.2
    cc._engine(ev.CallAbandoned("c1"))
    cc._engine(ev.CallAbandoned("c2"))
    assert (await http_get(files, "/api/queues")).json()["queues"][0]["waiting"] == 0


async def test_agent_auto_answer_overrides_queue(tmp_path: Path) -> None:
    config = load_config(centre_config(tmp_path).path)
    offers: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def offer_leg(call: object, device: str, now: float, wall: float, *,
                  headers: tuple[tuple[str, str], ...] = ()) -> list[object]:
        offers.append((device, tuple(headers)))
        return []

    b2bua: Any = SimpleNamespace(offer_leg=offer_leg)
    clock: Any = SimpleNamespace()
    cc = ContactCentre(config, b2bua, relay=None,  # type: ignore[arg-type]
                       media_clock=clock, sink=lambda commands: None,
                       loop=asyncio.get_running_loop())
    try:
        cc._by_acd["c1"] = SimpleNamespace(call=object(), offered=None)  # type: ignore[assignment]
        cases = [("2001", True, ()),  # agent says no: the queue's yes is overridden
                 ("2002", True, AUTO_ANSWER_HEADERS),  # no agent setting: the queue's
                 ("2002", False, ()),
                 ("2003", False, AUTO_ANSWER_HEADERS)]  # agent says yes over the queue's no
        for agent_id, queue_auto, want in cases:
            offers.clear()
            cc._command(cmd.OfferCall("c1", agent_id, "1002", "general", 10.0, queue_auto,
                                      "1001"), 0.0, 0.0)
            assert offers == [("1002", want)], agent_id
        assert cc.auto_answer("9999", True) is True  # unknown agent: the queue's
    finally:
        cc.close()


def test_agent_auto_answer_validated(tmp_path: Path) -> None:
    files = write_config(tmp_path)
    with files.path.open("a") as fh:
        fh.write(CENTRE.replace("auto_answer = false\n[[agents]]",
                                'auto_answer = "yes"\n[[agents]]', 1))
    with pytest.raises(ConfigError, match="auto_answer"):
        load_config(files.path)


@pytest.mark.parametrize("bus", ["local", "nats"])
async def test_agent_state_changes_reach_the_event_log(tmp_path: Path, bus: str) -> None:
    """A running switch publishes the ACD's events on its bus and writes them to the store's
    event log with wall-clock times (issue 5's rebuild reads this log)."""
    import os
    import time

    import reporting.events as rep

    if bus == "nats":
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 4222), 2)
            w.close()
        except OSError:
            if os.environ.get("CI") == "true":
                pytest.fail("NATS is not running at 127.0.0.1:4222 on CI")
            pytest.skip("NATS is not running at 127.0.0.1:4222")
    files = centre_config(tmp_path)
    with files.path.open("a") as fh:
        fh.write(f'[events]\nbus = "{bus}"\n')
    before = time.time()
    async with running_switch(files) as switch:
        r = await http_post(files, "/api/agents/2002/login", json={"device": "1003", "pin": "5678"})
        assert r.status_code == 200, r.text
        assert switch.store is not None
        store = switch.store

        async def logged() -> list[rep.ReportEvent]:
            return [e.event() for e in await store.read_events()]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while True:
            events = [e for e in await logged()
                      if isinstance(e, rep.AgentStateChanged) and e.agent == "2002"]
            if events or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert events, "the login never reached the event log"
        assert events[-1].state == "available"
        assert before - 1 <= events[-1].ts <= time.time() + 1  # wall clock, not loop time
