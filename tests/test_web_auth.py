"""Web logins (issue 5): `[web]` users with hashed passwords, sessions that expire, login
throttling, roles (an agent sees only its own figures), the wallboard's kiosk token.

The HTTP tests run a real switch in this process (UDP/TCP SIP, HTTP on 127.0.0.1) with a
contact-centre config (an agent 2001 exists for the agent login) and talk to it over HTTP.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from reporting.webauth import COOKIE, MAX_FAILURES, LoginThrottled, WebAuth
from softswitch.acd_config import hash_pin, verify_pin
from softswitch.app import Switch
from softswitch.config import ConfigError, load_config
from tests.switchkit import running_switch
from tests.test_calls_phones import Setup, write_config
from tests.test_contact_centre_phones import PROMPTS

KIOSK = "tv-lobby-0123456789abcdef"
PASSWORDS = {"sup": "sup-secret", "boss": "boss-secret", "ag1": "agent-secret"}


def web_toml(ttl: float = 3600, wallboard_open: bool = False, users: bool = True) -> str:
    text = (f'[web]\ntimezone = "Asia/Jakarta"\nlanguage = "en"\nsession_ttl_s = {ttl}\n'
            f'wallboard_open = {"true" if wallboard_open else "false"}\n'
            f'kiosk_tokens = ["{KIOSK}"]\n')
    if users:
        text += (
            f'[[web.users]]\nname = "sup"\nrole = "supervisor"\npassword = "{PASSWORDS["sup"]}"\n'
            f'[[web.users]]\nname = "boss"\nrole = "manager"\n'
            f'password_hash = "{hash_pin(PASSWORDS["boss"])}"\n'
            f'[[web.users]]\nname = "ag1"\nrole = "agent"\nagent = "2001"\n'
            f'password = "{PASSWORDS["ag1"]}"\n')
    return text


CENTRE = (f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
          '[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n'
          '[[agents]]\nid = "2002"\npin = "1234"\nqueues = { general = 0 }\n'
          '[[queues]]\nname = "general"\n'
          '[[services]]\nnumber = "1500"\nqueue = "general"\n')


def centre_config(tmp: Path, **web: Any) -> Setup:
    s = write_config(tmp)
    with s.config.open("a") as fh:
        fh.write(CENTRE + web_toml(**web))
    return s


def http_base(setup: Setup) -> str:
    text = setup.config.read_text()
    m = re.search(r'\[http\]\nlisten = "([^"]+)"', text)
    assert m is not None
    return f"http://{m[1]}"


# -- configuration ----------------------------------------------------------------------------

def test_web_users_keep_only_a_hash_and_validate_by_key_path(tmp_path: Path) -> None:
    s = centre_config(tmp_path)
    config = load_config(s.config)
    web = config.web
    assert (web.language, web.session_ttl_s, web.wallboard_open) == ("en", 3600, False)
    assert web.kiosk_tokens == (KIOSK,)
    by_name = {u.name: u for u in web.users}
    assert by_name["ag1"].role == "agent" and by_name["ag1"].agent == "2001"
    for name, password in PASSWORDS.items():
        stored = by_name[name].password_hash
        assert stored.startswith("scrypt$") and password not in stored
        assert verify_pin(password, stored) and not verify_pin(password + "x", stored)
    # Nothing of the plain password survives in the model or its repr.
    assert PASSWORDS["sup"] not in repr(config) and PASSWORDS["sup"] not in str(
        config.model_dump())

    (tmp_path / "bad").mkdir()
    bad = write_config(tmp_path / "bad")
    with bad.config.open("a") as fh:
        fh.write(CENTRE + '[web]\nlanguage = "fr"\nsession_ttl_s = 0\nkiosk_tokens = ["tv"]\n'
                 '[[web.users]]\nname = "a"\nrole = "agent"\npassword = "pw-long"\n'
                 '[[web.users]]\nname = "b"\nrole = "boss"\npassword = "pw-long"\n'
                 '[[web.users]]\nname = "c"\nrole = "manager"\npassword = "pw-long"\n'
                 'password_hash = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(bad.config)
    text = "\n".join(err.value.errors)
    for where in ("web.language", "web.session_ttl_s", "web.kiosk_tokens[0]", "web.users[0]",
                  "web.users[1].role", "web.users[2]"):
        assert f"{where}:" in text, (where, text)

    (tmp_path / "dup").mkdir()
    dup = write_config(tmp_path / "dup")
    with dup.config.open("a") as fh:
        fh.write(CENTRE + '[web]\n[[web.users]]\nname = "a"\nrole = "manager"\npassword = "pw-1"\n'
                 '[[web.users]]\nname = "a"\nrole = "agent"\nagent = "9999"\n'
                 'password = "pw-2"\n')
    with pytest.raises(ConfigError) as err:
        load_config(dup.config)
    assert any(e.startswith("web.users[1].name: duplicate") for e in err.value.errors)
    assert any(e.startswith("web.users[1].agent: no such agent") for e in err.value.errors)


def test_demo_config_has_web_section() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "conf" / "softswitch.toml")
    # The demo listens on 127.0.0.1: its wallboard is open, its pages need no login there.
    assert config.web.wallboard_open is True
    assert config.web.language == "id"


# -- sessions on an injected clock ------------------------------------------------------------

def _request(cookie: str = "", host: str = "192.0.2.7", query: str = "") -> Request:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
                    "headers": headers, "client": (host, 40000), "scheme": "http",
                    "server": ("127.0.0.1", 8080)})


async def test_sessions_expire_and_logins_are_throttled_on_injected_clock() -> None:
    now = [1000.0]
    user = SimpleNamespace(name="sup", role="supervisor", agent=None,
                           password_hash=hash_pin("right-pw"))
    web = SimpleNamespace(session_ttl_s=60, wallboard_open=False, kiosk_tokens=(KIOSK,),
                          users=[user])
    auth = WebAuth(lambda: web, clock=lambda: now[0])
    assert await auth.login("sup", "wrong", "192.0.2.7") is None
    assert await auth.login("nobody", "right-pw", "192.0.2.7") is None
    session = await auth.login("sup", "right-pw", "192.0.2.7")
    assert session is not None and session.expires == 1060.0
    assert len(session.token) >= 40
    viewer = auth.viewer(_request(session.token))
    assert viewer is not None and viewer.role == "supervisor" and viewer.sees_all
    now[0] = 1059.9
    assert auth.viewer(_request(session.token)) is not None
    now[0] = 1060.0  # absolute expiry: ttl after the login, used or not
    assert auth.viewer(_request(session.token)) is None
    assert session.token not in auth.sessions
    # Not loopback and users configured: no implicit access.
    assert auth.viewer(_request()) is None
    # The wallboard: kiosk token, not a guessed one.
    assert auth.wallboard_viewer(_request(query=f"token={KIOSK}")) is not None
    assert auth.wallboard_viewer(_request(query="token=guess")) is None
    web.wallboard_open = True
    assert auth.wallboard_viewer(_request()) is not None

    # A user removed by a reload loses its session at once.
    again = await auth.login("sup", "right-pw", "192.0.2.7")
    assert again is not None
    web.users = []
    assert auth.viewer(_request(again.token)) is None
    web.users = [user]

    # Throttling: MAX_FAILURES wrong passwords block that address (not others) for a while.
    for _ in range(MAX_FAILURES):
        assert await auth.login("sup", "bad", "198.51.100.1") is None
    with pytest.raises(LoginThrottled):
        await auth.login("sup", "right-pw", "198.51.100.1")
    assert await auth.login("sup", "right-pw", "198.51.100.2") is not None
    now[0] += 301
    assert await auth.login("sup", "right-pw", "198.51.100.1") is not None


# -- over HTTP, against a running switch ------------------------------------------------------

@pytest.fixture
async def centre(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[
        tuple[Setup, Switch]]:
    s = centre_config(tmp_path, **getattr(request, "param", {}))
    async with running_switch(s.config) as sw:
        yield s, sw


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post("/login", data={"name": name, "password": password,
                                             "next": "/supervisor"})


@pytest.mark.parametrize("centre", [{"ttl": 1}], indirect=True)
async def test_login_wrong_password_fails_right_one_sets_expiring_cookie(
        centre: tuple[Setup, Switch]) -> None:
    setup, _ = centre
    async with httpx.AsyncClient(base_url=http_base(setup), timeout=5) as client:
        # Users are configured: even loopback must log in.
        page = await client.get("/supervisor")
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
        assert (await client.get("/api/cdr")).status_code == 401
        form = await client.get("/login")
        assert form.status_code == 200 and 'name="password"' in form.text

        wrong = await login(client, "sup", "not-it")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        assert COOKIE not in client.cookies and "set-cookie" not in wrong.headers

        right = await login(client, "sup", PASSWORDS["sup"])
        assert right.status_code == 303 and right.headers["location"] == "/supervisor"
        cookie = right.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Max-Age=1" in cookie and "Path=/" in cookie
        ok = await client.get("/supervisor")
        assert ok.status_code == 200 and "<h1>Supervisor</h1>" in ok.text
        assert (await client.get("/api/cdr")).status_code == 200

        # ttl 1 s: the server forgets the session by itself (the cookie is sent anyway here).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while (await client.get("/supervisor")).status_code == 200:
            assert loop.time() < deadline, "session did not expire"
            await asyncio.sleep(0.05)
        assert (await client.get("/supervisor")).headers["location"].startswith("/login")
        assert (await client.get("/api/cdr")).status_code == 401

        # Guessing: after MAX_FAILURES wrong passwords this address is blocked, even for the
        # right password, with Retry-After.
        for _ in range(MAX_FAILURES):
            assert (await login(client, "sup", "guess")).status_code == 401
        blocked = await login(client, "sup", PASSWORDS["sup"])
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "set-cookie" not in blocked.headers


async def test_roles_agent_sees_only_own_figures(centre: tuple[Setup, Switch]) -> None:
    setup, _ = centre
    base = http_base(setup)
    async with httpx.AsyncClient(base_url=base, timeout=5) as agent, \
            httpx.AsyncClient(base_url=base, timeout=5) as manager:
        assert (await login(agent, "ag1", PASSWORDS["ag1"])).status_code == 303
        assert (await login(manager, "boss", PASSWORDS["boss"])).status_code == 303
        # CDRs are everyone's calls: supervisors and managers only.
        assert (await agent.get("/api/cdr")).status_code == 403
        assert (await agent.get("/cdr")).status_code == 403
        assert (await manager.get("/api/cdr")).status_code == 200
        assert (await manager.get("/cdr")).status_code == 200
        # The agent's pages: its own figures, reports of agents (its own id, fixed).
        mine = await agent.get("/supervisor")
        assert mine.status_code == 200 and "My figures" in mine.text
        reports = await agent.get("/reports")
        assert reports.status_code == 200
        assert 'value="2001" readonly' in reports.text and 'value="queues"' not in reports.text
        # Logout ends the session on the server.
        out = await agent.post("/logout")
        assert out.status_code == 303
        assert (await agent.get("/supervisor")).status_code == 303


async def test_wallboard_needs_kiosk_token_unless_open(centre: tuple[Setup, Switch]) -> None:
    setup, _ = centre
    async with httpx.AsyncClient(base_url=http_base(setup), timeout=5) as client:
        refused = await client.get("/wallboard")
        assert refused.status_code == 403
        assert (await client.get("/wallboard", params={"token": "guess-guess-guess"})
                ).status_code == 403
        assert (await client.get("/api/live")).status_code == 401
        tv = await client.get("/wallboard", params={"token": KIOSK})
        assert tv.status_code == 200 and "Waiting" in tv.text and 'id="board"' in tv.text
        # The page's live stream carries the token on.
        assert f"/api/live/stream?token={KIOSK}" in tv.text
        # No login links or user menu on a TV; Indonesian on ?lang=id.
        assert 'action="/logout' not in tv.text
        tv_id = await client.get("/wallboard", params={"token": KIOSK, "lang": "id"})
        assert "Menunggu" in tv_id.text and 'lang="id"' in tv_id.text


@pytest.mark.parametrize("centre", [{"wallboard_open": True, "users": False}],
                         indirect=True)
async def test_open_wallboard_and_loopback_demo(centre: tuple[Setup, Switch]) -> None:
    setup, _ = centre
    async with httpx.AsyncClient(base_url=http_base(setup), timeout=5) as client:
        assert (await client.get("/wallboard")).status_code == 200
        # No [[web.users]]: loopback is the demo, every page opens without a login.
        sup = await client.get("/supervisor")
        assert sup.status_code == 200 and 'action="/logout' not in sup.text
        assert (await client.get("/cdr")).status_code == 200
        assert (await client.get("/reports")).status_code == 200


async def test_open_live_stream_does_not_hold_switch_stop(tmp_path: Path) -> None:
    s = centre_config(tmp_path, wallboard_open=True, users=False)
    switch = Switch(s.config)
    await switch.start()
    stopped = False
    try:
        first = asyncio.Event()
        lines: list[str] = []

        async def read() -> None:
            async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client, \
                    client.stream("GET", f"{http_base(s)}/api/live/stream") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith("data: "):
                        first.set()

        reader = asyncio.create_task(read())
        await asyncio.wait_for(first.wait(), 5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(switch.stop(), 5)
        stopped = True
        assert loop.time() - began < 3
        await asyncio.wait_for(reader, 5)  # the server ended the stream
        assert any(line.startswith("retry: ") for line in lines)
    finally:
        if not stopped:
            await switch.stop()
