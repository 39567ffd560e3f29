"""Acceptance: real pjsua2 phones register with the switch (started in this process).

Each test gets its own switch on free 127.0.0.1 ports (UDP+TCP SIP, HTTP) with a SQLite store
in ``tmp_path`` and the users 1001/pw1001 and 1002/pw1002. What the switch holds is checked
the way an operator sees it: through the real ``softswitch status`` console script.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from softswitch.app import Switch
from softswitch.sip.digest import DigestAuthenticator
from tests.peers import REPO_ROOT, free_port
from tests.peers.phone import Phone
from tests.switchkit import running_switch

pytestmark = pytest.mark.peers

SOFTSWITCH = REPO_ROOT / ".venv" / "bin" / "softswitch"
USERS = {"1001": "pw1001", "1002": "pw1002"}
PJSIP_EFAILEDCREDENTIAL = 171100  # pj_status_t: "Credential failed to authenticate"


@dataclass
class SwitchSetup:
    config: Path
    sip_port: int
    http_port: int

    @property
    def registrar(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def write_config(tmp_path: Path) -> SwitchSetup:
    sip_port = free_port("both")
    http_port = free_port("tcp")
    users = "".join(
        f'\n[[users]]\nextension = "{ext}"\npassword = "{pw}"\n' for ext, pw in USERS.items()
    )
    config = tmp_path / "softswitch.toml"
    config.write_text(
        "[sip]\n"
        f'listen = ["udp:127.0.0.1:{sip_port}", "tcp:127.0.0.1:{sip_port}"]\n'
        'domain = "127.0.0.1"\n'
        "[http]\n"
        f'listen = "127.0.0.1:{http_port}"\n'
        "[store]\n"
        f'url = "sqlite:///{tmp_path / "switch.db"}"\n'
        "[log]\n"
        'level = "info"\n' + users
    )
    return SwitchSetup(config, sip_port, http_port)


@pytest.fixture
def setup(tmp_path: Path) -> SwitchSetup:
    return write_config(tmp_path)


@pytest.fixture
async def switch(setup: SwitchSetup) -> AsyncIterator[Switch]:
    async with running_switch(setup.config) as sw:
        yield sw


# -- what the operator sees -----------------------------------------------------------------

@dataclass
class StatusLine:
    user: str
    expires: int
    contact: str
    received: str


async def softswitch_status(setup: SwitchSetup) -> tuple[str, list[StatusLine]]:
    """Run the real console script (asynchronously: the switch answers from this loop)."""
    proc = await asyncio.create_subprocess_exec(
        str(SOFTSWITCH), "status", "--url", setup.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30.0)
    assert proc.returncode == 0, (proc.returncode, out, err)
    text = out.decode()
    lines = []
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)s\s+(\S+)\s+(\S+)$", line)
        if m:
            lines.append(StatusLine(m[1], int(m[2]), m[3], m[4]))
    return text, lines


def contact_of(lines: list[StatusLine], user: str) -> list[StatusLine]:
    return [line for line in lines if line.user == user]


def sip_host_port(contact: str) -> tuple[str, int, str]:
    """(host, port, transport) of a contact such as sip:1001@127.0.0.1:5062;transport=TCP;ob."""
    m = re.match(r"^sips?:(?:[^@]+@)?([^:;>]+):(\d+)((?:;[^;]*)*)$", contact)
    assert m, contact
    params = dict(
        (p.split("=", 1) + [""])[:2] for p in m[3].split(";") if p
    )
    return m[1], int(m[2]), params.get("transport", "udp").lower()


async def stderr_line(phone: Phone, needle: str, timeout: float) -> str:
    """The first PJSIP log line holding `needle` (the log has no event: poll it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for line in phone.stderr_tail:
            if needle in line:
                return line
        if loop.time() > deadline:
            raise TimeoutError(f"{phone.name}: no log line with {needle!r} in {timeout}s")
        await asyncio.sleep(0.05)


def tcp_connections(pid: int) -> set[tuple[int, int]]:
    """(local port, remote port) of the established IPv4 TCP connections process `pid` holds."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[3] == "01" and cols[9] in inodes:  # 01 = ESTABLISHED
            found.add((int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)))
    return found


async def auth_failures(setup: SwitchSetup) -> float:
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"{setup.url}/metrics", timeout=10.0)
    resp.raise_for_status()
    m = re.search(r"^softswitch_auth_failures_total (\S+)$", resp.text, re.MULTILINE)
    assert m, "softswitch_auth_failures_total missing from /metrics"
    return float(m[1])


# -- tests ----------------------------------------------------------------------------------

async def test_register_udp_and_tcp_listed_then_unregistered(
    setup: SwitchSetup, switch: Switch
) -> None:
    # Log level 4 makes PJSIP say whether it considers RFC 5626 outbound active.
    async with Phone("udp-phone") as udp_phone, Phone("tcp-phone", log_level=4) as tcp_phone:
        ev_udp = await udp_phone.register("1001", "pw1001", setup.registrar, transport="udp")
        ev_tcp = await tcp_phone.register("1002", "pw1002", setup.registrar, transport="tcp")
        assert ev_udp["event"] == "registered" and ev_udp["code"] == 200, ev_udp
        assert ev_tcp["event"] == "registered" and ev_tcp["code"] == 200, ev_tcp
        assert ev_udp["expires"] > 0 and ev_tcp["expires"] > 0
        # Over TCP PJSIP binds an RFC 5626 flow (+sip.instance, reg-id); the switch supports
        # outbound and must confirm it with Require: outbound (RFC 5626 §6).
        line = await stderr_line(tcp_phone, "SIP outbound status for acc", timeout=5.0)
        assert line.rstrip().endswith("is active"), line

        text, lines = await softswitch_status(setup)
        assert "users: 2, registered: 2" in text, text
        [u1] = contact_of(lines, "1001")
        [u2] = contact_of(lines, "1002")
        assert sip_host_port(u1.contact) == ("127.0.0.1", udp_phone.udp_port, "udp"), text
        # Over TCP, PJSIP puts its connection's local port in Contact: the port the phone
        # holds open towards the switch, so requests for it reuse that connection.
        host, port, transport = sip_host_port(u2.contact)
        assert (host, transport) == ("127.0.0.1", "tcp"), text
        assert tcp_phone.proc is not None
        assert (port, setup.sip_port) in tcp_connections(tcp_phone.proc.pid), text
        # The request really came over that transport, from that address.
        assert u1.received == f"udp:127.0.0.1:{udp_phone.udp_port}", text
        assert u2.received == f"tcp:127.0.0.1:{port}", text
        assert 0 < u1.expires <= 300 and 0 < u2.expires <= 300, text

        gone = await udp_phone.unregister()
        assert gone["event"] == "unregistered" and gone["code"] == 200, gone
        text, lines = await softswitch_status(setup)
        assert contact_of(lines, "1001") == [], text
        assert len(contact_of(lines, "1002")) == 1, text
        assert "registered: 1" in text, text

        gone = await tcp_phone.unregister()
        assert gone["event"] == "unregistered" and gone["code"] == 200, gone
        text, lines = await softswitch_status(setup)
        assert lines == [], text
        assert "registered: 0" in text, text


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_wrong_password_never_registers(
    setup: SwitchSetup, switch: Switch, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert switch.core is not None
    # Nonces carry a millisecond stamp; on loopback two challenges may share one. Give every
    # challenge its own, as on any real network (round trip > 1 ms).
    make_nonce = DigestAuthenticator.make_nonce
    step = itertools.count()
    monkeypatch.setattr(DigestAuthenticator, "make_nonce",
                        lambda self, now: make_nonce(self, now + next(step) * 0.002))
    before = await auth_failures(setup)
    async with Phone("intruder") as phone:
        ev = await phone.register("1002", "not-pw1002", setup.registrar, transport=transport)
        assert ev["event"] == "reg_failed", ev
        assert ev["code"] in (401, 403), ev
        # PJSIP knew the password was refused (not a stale-nonce loop that it gave up on).
        assert ev["status"] == PJSIP_EFAILEDCREDENTIAL, ev
        text, lines = await softswitch_status(setup)
        assert contact_of(lines, "1002") == [], text
        assert "registered: 0" in text, text
    # Never bound, not even for a moment: no registration was counted, no binding is held.
    assert switch.core.counters.registrations == 0
    assert len(switch.location) == 0
    # One digest answer, refused once: PJSIP does not retry it (under the throttle's limit).
    assert await auth_failures(setup) == before + 1


async def test_bindings_survive_restart(setup: SwitchSetup) -> None:
    first = Switch(setup.config)
    try:
        await first.start()
        async with Phone("sticky") as phone:
            ev = await phone.register("1001", "pw1001", setup.registrar, expires=600)
            assert ev["event"] == "registered" and ev["code"] == 200, ev
            _, before = await softswitch_status(setup)
            [binding] = contact_of(before, "1001")
            await first.stop()

            second = Switch(setup.config)
            try:
                await second.start()
                text, after = await softswitch_status(setup)
                [restored] = contact_of(after, "1001")
                assert restored.contact == binding.contact, text
                assert restored.received == binding.received, text
                assert 0 < restored.expires <= binding.expires, text
                assert sip_host_port(restored.contact)[1] == phone.udp_port
                # The phone did not register again: the binding came from the store.
                assert second.core is not None
                assert second.core.counters.requests["REGISTER"] == 0
                assert [e["event"] for e in phone.history
                        if e.get("event") in ("registered", "reg_failed")] == ["registered"]
                await phone.close()  # its un-REGISTER on exit reaches a running switch
            finally:
                await second.stop()
    finally:
        await first.stop()


async def test_reload_adds_a_user_a_phone_can_register_as(
    setup: SwitchSetup, switch: Switch
) -> None:
    """`softswitch reload` (the real console script) makes a new user live; a broken file is
    refused with its errors while the phones already registered keep refreshing."""
    async with Phone("early") as early, Phone("newcomer") as newcomer:
        ev = await early.register("1001", "pw1001", setup.registrar)
        assert ev["event"] == "registered", ev
        ev = await newcomer.register("1003", "pw1003", setup.registrar)
        assert ev["event"] == "reg_failed" and ev["code"] in (401, 403), ev

        text = setup.config.read_text()
        setup.config.write_text(text + '\n[[users]]\nextension = "1003"\npassword = "pw1003"\n')
        out = await run_cli(setup, "reload")
        assert out[0] == 0 and "users +1" in out[1], out
        ev = await newcomer.register("1003", "pw1003", setup.registrar)
        assert ev["event"] == "registered" and ev["code"] == 200, ev

        setup.config.write_text(setup.config.read_text().replace(
            'extension = "1003"', 'extension = "10 03"'
        ) + "\n[registrar]\nmin_expires = -5\n")
        code, out_text, err_text = await run_cli(setup, "reload")
        assert code == 1, (out_text, err_text)
        assert "refused" in err_text and "users[2].extension" in err_text, err_text
        assert "registrar.min_expires" in err_text, err_text
        # The running config stays: 1003 still authenticates, 1001 refreshes.
        ev = await early.register("1001", "pw1001", setup.registrar)
        assert ev["event"] == "registered" and ev["code"] == 200, ev
        text, lines = await softswitch_status(setup)
        assert {line.user for line in lines} == {"1001", "1003"}, text


async def run_cli(setup: SwitchSetup, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SOFTSWITCH), *args, "--url", setup.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30.0)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
