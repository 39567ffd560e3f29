"""Live reload of a running switch (API, HTTP, SIGHUP), message trace and the admin API guard."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from softswitch.app import Switch
from softswitch.http import make_http_app
from tests.switchkit import (
    DEFAULT_USERS,
    HOST,
    SwitchFiles,
    UdpClient,
    contact_expires,
    http_get,
    http_post,
    metric,
    metrics,
    register,
    running_switch,
    wait_for,
    write_config,
)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SwitchFiles, Switch, UdpClient]]:
    files = write_config(tmp_path)
    async with running_switch(files) as switch:
        client = await UdpClient.open(files.sip_port)
        try:
            yield files, switch, client
        finally:
            await client.close()


async def assert_cannot_register(files: SwitchFiles, client: UdpClient, user: str) -> None:
    reg = await register(client, files.sip_port, user=user, password=f"pw{user}")
    assert reg.final.status == 401  # unknown user: challenged again, never 200 or 404


async def test_reload_adds_user_via_api(env: tuple[SwitchFiles, Switch, UdpClient]) -> None:
    files, switch, client = env
    await assert_cannot_register(files, client, "2001")
    files.write_users({**DEFAULT_USERS, "2001": "pw2001"})
    result = await switch.reload()
    assert result["applied"] is True and result["errors"] == []
    assert result["changes"] == ["users +1 -0 ~0"]
    reg = await register(client, files.sip_port, user="2001", password="pw2001")
    assert reg.final.status == 200
    st = switch.status()
    assert st["users"] == 6 and st["reloads"]["applied"] == 1
    assert st["reloads"]["last"]["applied"] is True
    text = await metrics(files)
    assert metric(text, "softswitch_config_reloads_total", {"result": "applied"}) == 1
    assert metric(text, "softswitch_directory_users") == 6


async def test_reload_via_http(env: tuple[SwitchFiles, Switch, UdpClient]) -> None:
    files, switch, client = env
    files.write_users({**DEFAULT_USERS, "2002": "pw2002"})
    r = await http_post(files, "/api/admin/reload")
    assert r.status_code == 200
    assert r.json() == {"applied": True, "errors": [], "changes": ["users +1 -0 ~0"],
                        "warnings": [], "restart_required": []}
    assert (await register(client, files.sip_port, user="2002",
                           password="pw2002")).final.status == 200
    # Reloading an unchanged file applies nothing.
    r = await http_post(files, "/api/admin/reload")
    assert r.status_code == 200 and r.json()["changes"] == []


async def test_reload_on_sighup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # run_forever writes its pid file under ./var
    files = write_config(tmp_path)
    switch = Switch(files.path)
    task = asyncio.create_task(switch.run_forever())
    try:
        # Signal handlers are installed before start(): once running, the signals are ours.
        await wait_for(lambda: switch.running or task.done(), what="switch running")
        assert not task.done()
        assert (tmp_path / "var" / f"softswitch-{files.http_port}.pid").read_text().strip() == str(
            os.getpid())
        files.write_users({**DEFAULT_USERS, "2003": "pw2003"})
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: switch.reloads_applied == 1, what="SIGHUP reload")
        client = await UdpClient.open(files.sip_port)
        try:
            reg = await register(client, files.sip_port, user="2003", password="pw2003")
            assert reg.final.status == 200
        finally:
            await client.close()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 5)
        assert not switch.running
        assert not (tmp_path / "var" / f"softswitch-{files.http_port}.pid").exists()
    finally:
        if not task.done():
            task.cancel()
            await switch.stop()


async def test_invalid_reload_is_refused_and_running_config_stays(
    env: tuple[SwitchFiles, Switch, UdpClient],
) -> None:
    files, switch, client = env
    first = await register(client, files.sip_port, user="1001", expires=600)
    assert first.final.status == 200
    config_before = switch.config
    files.users_path.write_text(
        '[[users]]\nextension = "bad ext!"\npassword = "x"\n\n'
        '[[users]]\nextension = "1001"\n\n'
        '[[users]]\nextension = "1002"\npassword = "pw1002"\ncolour = "red"\n'
    )
    result = await switch.reload()
    assert result["applied"] is False and result["changes"] == []
    errors = result["errors"]
    assert any(e.startswith("users.toml: users[0].extension:") for e in errors), errors
    assert any(e.startswith("users.toml: users[1]") and "password" in e for e in errors), errors
    assert any(e.startswith("users.toml: users[2].colour:") for e in errors), errors
    assert switch.config is config_before and len(switch.directory) == 5

    # Over HTTP: 422 with the same errors.
    r = await http_post(files, "/api/admin/reload")
    assert r.status_code == 422 and r.json()["errors"] == errors
    st = (await http_get(files, "/api/status")).json()
    assert st["reloads"]["refused"] == 2 and st["reloads"]["last"]["errors"] == errors
    assert metric(await metrics(files), "softswitch_config_reloads_total",
                  {"result": "refused"}) == 2

    # The existing registration still refreshes, and other users still register.
    again = await register(client, files.sip_port, user="1001", expires=900,
                           call_id=first.call_id, cseq=first.cseq + 1)
    assert again.final.status == 200 and list(contact_expires(again.final).values()) == [900]
    assert (await register(client, files.sip_port, user="1003")).final.status == 200


async def test_invalid_main_file_syntax_refused(
    env: tuple[SwitchFiles, Switch, UdpClient],
) -> None:
    files, switch, client = env
    files.rewrite(registrar={"min_expires": 600, "max_expires": 60})
    result = await switch.reload()
    assert result["applied"] is False
    assert any(e.startswith("registrar.max_expires:") for e in result["errors"]), result
    files.path.write_text(files.path.read_text() + "\n[sip\n")
    result = await switch.reload()
    assert result["applied"] is False
    assert any("TOML syntax error" in e for e in result["errors"]), result
    assert switch.config.registrar.min_expires == 60
    assert (await register(client, files.sip_port, user="1001", expires=60)).final.status == 200


async def test_reload_removing_user_drops_bindings(
    env: tuple[SwitchFiles, Switch, UdpClient],
) -> None:
    files, switch, client = env
    assert (await register(client, files.sip_port, user="1002")).final.status == 200
    assert (await register(client, files.sip_port, user="1003")).final.status == 200
    users = dict(DEFAULT_USERS)
    del users["1002"]
    files.write_users(users)
    result = await switch.reload()
    assert result["applied"] and result["changes"] == ["users +0 -1 ~0"]
    assert [r["user"] for r in switch.status()["registrations"]] == ["1003"]
    assert metric(await metrics(files), "softswitch_registered_contacts") == 1
    await assert_cannot_register(files, client, "1002")
    # The removal reaches the store.
    assert switch.store is not None
    store = switch.store

    async def gone_from_store() -> bool:
        return {b.aor for b in await store.load_bindings()} == {"1003"}

    await wait_for(gone_from_store, what="binding deleted from store")


async def test_reload_applies_registrar_settings(
    env: tuple[SwitchFiles, Switch, UdpClient],
) -> None:
    files, switch, client = env
    files.rewrite(registrar={"min_expires": 120, "max_expires": 600, "default_expires": 300})
    result = await switch.reload()
    assert result["applied"], result
    short = await register(client, files.sip_port, user="1001", expires=100)
    assert short.final.status == 423 and short.final.headers.get("Min-Expires") == "120"
    long = await register(client, files.sip_port, user="1001", expires=5000)
    assert list(contact_expires(long.final).values()) == [600]


# --------------------------------------------------------------------------- trace


async def test_trace_add_and_remove_via_admin_api(
    env: tuple[SwitchFiles, Switch, UdpClient], caplog: pytest.LogCaptureFixture
) -> None:
    files, switch, client = env
    caplog.set_level(logging.INFO, logger="softswitch.trace")

    def traced() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "softswitch.trace"]

    r = await http_post(files, "/api/admin/trace", json={"add": ["1001"]})
    assert r.status_code == 200 and r.json() == {"targets": ["1001"]}
    assert (await http_get(files, "/api/admin/trace")).json() == {"targets": ["1001"]}

    reg = await register(client, files.sip_port, user="1001")
    assert reg.final.status == 200
    lines = traced()
    # Full messages: both REGISTERs in and both answers out, headers included.
    recv = [m for m in lines if m.startswith("recv ")]
    sent = [m for m in lines if m.startswith("send ")]
    assert len(recv) == 2 and len(sent) == 2, lines
    assert all(f"Call-ID: {reg.call_id}" in m for m in recv + sent)
    assert "REGISTER sip:" in recv[1] and "Authorization: Digest" in recv[1]
    assert "SIP/2.0 401" in sent[0] and "WWW-Authenticate:" in sent[0]
    assert "SIP/2.0 200 OK" in sent[1] and "Contact: <sip:1001@" in sent[1]

    caplog.clear()
    assert (await register(client, files.sip_port, user="1002")).final.status == 200
    assert traced() == []  # another user is not traced

    r = await http_post(files, "/api/admin/trace", json={"remove": ["1001"]})
    assert r.json() == {"targets": []}
    caplog.clear()
    assert (await register(client, files.sip_port, user="1001")).final.status == 200
    assert traced() == []
    assert switch.status()["trace"] == []

    r = await http_post(files, "/api/admin/trace", json=["not", "an", "object"])
    assert r.status_code == 400


async def test_trace_by_address_and_from_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="softswitch.trace")
    files = write_config(tmp_path, log={"trace": ["1003"]})
    async with running_switch(files) as switch:
        assert switch.tracer.targets() == ["1003"]
        client = await UdpClient.open(files.sip_port)
        try:
            await register(client, files.sip_port, user="1003")
            assert sum(r.name == "softswitch.trace" for r in caplog.records) == 4
            # Reload clears the configured trace; an address target catches raw datagrams.
            files.rewrite(log={"trace": [HOST]})
            assert (await switch.reload())["applied"]
            caplog.clear()
            await client.send(b"garbage that never parses\r\n\r\n")
            await register(client, files.sip_port, user="1004")
            msgs = [r.getMessage() for r in caplog.records if r.name == "softswitch.trace"]
            assert any("garbage that never parses" in m for m in msgs)
            assert sum("SIP/2.0 200 OK" in m for m in msgs) == 1
        finally:
            await client.close()


# --------------------------------------------------------------------------- admin guard


async def test_admin_api_loopback_only_without_token(
    env: tuple[SwitchFiles, Switch, UdpClient],
) -> None:
    _, switch, _ = env
    app = make_http_app(switch)
    remote = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://sw") as c:
        assert (await c.post("/api/admin/reload")).status_code == 403
        assert (await c.get("/api/admin/trace")).status_code == 403
        assert (await c.post("/api/admin/trace", json={"add": ["1001"]})).status_code == 403
        assert (await c.get("/api/status")).status_code == 200  # read-only stays open
    assert switch.tracer.targets() == [] and switch.reloads_applied == 0
    async with httpx.AsyncClient(transport=local, base_url="http://sw") as c:
        assert (await c.post("/api/admin/reload")).status_code == 200
    v6 = httpx.ASGITransport(app=app, client=("::1", 40000))
    async with httpx.AsyncClient(transport=v6, base_url="http://sw") as c:
        assert (await c.get("/api/admin/trace")).status_code == 200


async def test_admin_api_token(env: tuple[SwitchFiles, Switch, UdpClient]) -> None:
    files, switch, _ = env
    files.rewrite(http={"admin_token": "s3cret-token"})
    assert (await switch.reload())["applied"]
    app = make_http_app(switch)
    for host in ("192.0.2.10", "127.0.0.1"):
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sw") as c:
            # With a token set, loopback needs it too.
            assert (await c.get("/api/admin/trace")).status_code == 401
            bad = {"Authorization": "Bearer wrong"}
            assert (await c.get("/api/admin/trace", headers=bad)).status_code == 401
            basic = {"Authorization": "s3cret-token"}
            assert (await c.get("/api/admin/trace", headers=basic)).status_code == 401
            good = {"Authorization": "Bearer s3cret-token"}
            r = await c.post("/api/admin/trace", json={"add": ["1005"]}, headers=good)
            assert r.status_code == 200 and r.json() == {"targets": ["1005"]}
            r = await c.post("/api/admin/reload", headers=good)
            assert r.status_code == 200 and r.json()["applied"] is True
    # And over the real socket.
    r = await http_post(files, "/api/admin/trace", json={"clear": True})
    assert r.status_code == 401
    r = await http_post(files, "/api/admin/trace", json={"clear": True},
                        headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and r.json() == {"targets": []}
