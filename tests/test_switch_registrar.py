"""The registrar end to end over UDP and TCP on a running switch, and bindings persisting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from softswitch.app import Switch
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.registrar import AuthThrottle, Registrar, RegistrarSettings
from softswitch.sip.digest import DigestAuthenticator
from softswitch.sip.message import Peer, Request, parse_message
from tests.switchkit import (
    HOST,
    SwitchFiles,
    UdpClient,
    answer_challenge,
    challenge_params,
    contact_expires,
    http_get,
    metric,
    metrics,
    open_client,
    options,
    register,
    register_request,
    running_switch,
    unique,
    wait_for,
    write_config,
)

TRANSPORTS = ["udp", "tcp"]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SwitchFiles, Switch]]:
    files = write_config(tmp_path, registrar={"min_expires": 60, "max_expires": 7200,
                                              "default_expires": 3600})
    async with running_switch(files) as switch:
        yield files, switch


def contact(user: str, port: int, n: int = 0) -> str:
    return f"sip:{user}@{HOST}:{port + n}"


async def status(files: SwitchFiles) -> dict[str, Any]:
    r = await http_get(files, "/api/status")
    assert r.status_code == 200
    return r.json()


def near(value: int, expected: int) -> bool:
    return abs(value - expected) <= 1


# --------------------------------------------------------------------------- challenge / auth


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_challenge_then_md5_and_sha256(env: tuple[SwitchFiles, Switch], kind: str) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        c1, c2 = contact("1001", 40000), contact("1001", 40001)
        reg = await register(client, files.sip_port, user="1001", contacts=[f"<{c1}>"],
                             expires=600, algorithm="MD5")
        challenges = [challenge_params(v) for v in reg.challenge.headers.getall("WWW-Authenticate")]
        # RFC 7616 §3.7: one challenge per algorithm, strongest first.
        assert [c["algorithm"] for c in challenges] == ["SHA-256", "MD5"]
        assert all(c["realm"] == HOST and c["qop"] == "auth" and c["nonce"] for c in challenges)
        assert "stale" not in challenges[0]
        assert reg.challenge.to.tag
        assert reg.final.status == 200, reg.final.to_bytes()
        assert contact_expires(reg.final) == {c1: 600}
        assert reg.final.to.tag

        reg2 = await register(client, files.sip_port, user="1001", contacts=[f"<{c2}>"],
                              expires=300, algorithm="SHA-256")
        assert reg2.final.status == 200
        got = contact_expires(reg2.final)
        assert set(got) == {c1, c2} and near(got[c1], 600) and got[c2] == 300
        st = await status(files)
        assert st["registered_users"] == 1
        assert {r["contact"] for r in st["registrations"]} == {c1, c2}
        assert all(r["received"].startswith(f"{kind}:127.0.0.1:") for r in st["registrations"])
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_query_several_contacts_and_expires_rules(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        a, b, c, d = (contact("1002", 41000, n) for n in range(4))
        reg = await register(
            client, files.sip_port, user="1002", expires=900,
            # Two Contact header fields, one holding two values; params override the header.
            contacts=[f"<{a}>", f"<{b}>;expires=120, <{c}>;expires=99999"],
        )
        assert reg.final.status == 200
        assert contact_expires(reg.final) == {a: 900, b: 120, c: 7200}  # c clamped to max

        # No Expires anywhere: the default applies.
        reg = await register(client, files.sip_port, user="1002", contacts=[f"<{d}>"])
        assert contact_expires(reg.final)[d] == 3600

        # Without Contact: a query listing every binding, changing none.
        q = await register(client, files.sip_port, user="1002", contacts=[])
        assert q.final.status == 200
        got = contact_expires(q.final)
        assert set(got) == {a, b, c, d}
        assert near(got[a], 900) and near(got[b], 120) and near(got[c], 7200)
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_interval_too_brief_is_423_with_min_expires(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        reg = await register(client, files.sip_port, user="1003", expires=59)
        assert reg.final.status == 423
        assert reg.final.headers.get("Min-Expires") == "60"
        reg = await register(client, files.sip_port, user="1003",
                             contacts=[f"<{contact('1003', 42000)}>;expires=30"], expires=600)
        assert reg.final.status == 423
        assert (await status(files))["registrations"] == []
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_star_removes_all_and_needs_expires_zero(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        cs = [f"<{contact('1004', 43000, n)}>" for n in range(3)]
        first = await register(client, files.sip_port, user="1004", contacts=cs)
        assert first.final.status == 200
        other = await register(client, files.sip_port, user="1005")
        assert other.final.status == 200

        bad = await register(client, files.sip_port, user="1004", contacts=["*"], expires=300)
        assert bad.final.status == 400
        assert len(contact_expires((await register(
            client, files.sip_port, user="1004", contacts=[])).final)) == 3

        gone = await register(client, files.sip_port, user="1004", contacts=["*"], expires=0)
        assert gone.final.status == 200
        assert gone.final.headers.getall("Contact") == []
        users = {r["user"] for r in (await status(files))["registrations"]}
        assert users == {"1005"}  # only 1004's bindings went
        text = await metrics(files)
        assert metric(text, "softswitch_registered_contacts") == 1
        assert metric(text, "softswitch_unregistrations_total") == 1
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_lower_cseq_same_call_id_is_refused(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        c1 = contact("1001", 44000)
        reg = await register(client, files.sip_port, user="1001", contacts=[f"<{c1}>"],
                             expires=3600, cseq=10)
        assert reg.final.status == 200  # bound with CSeq 11
        auth = answer_challenge(reg.challenge, user="1001", password="pw1001",
                                uri=f"sip:{HOST}:{files.sip_port}")
        old = await client.request(register_request(
            client, files.sip_port, user="1001", contacts=[f"<{c1}>"], expires=600,
            call_id=reg.call_id, cseq=5, authorization=auth))
        assert old.status == 400 and "cseq" in old.reason.lower()
        # RFC 3261 §10.3 step 7: the binding is unchanged.
        regs = (await status(files))["registrations"]
        assert len(regs) == 1 and regs[0]["expires_in"] > 3500

        # The same Call-ID with a higher CSeq updates it.
        auth = answer_challenge(reg.challenge, user="1001", password="pw1001",
                                uri=f"sip:{HOST}:{files.sip_port}")
        new = await client.request(register_request(
            client, files.sip_port, user="1001", contacts=[f"<{c1}>"], expires=600,
            call_id=reg.call_id, cseq=12, authorization=auth))
        assert new.status == 200 and contact_expires(new)[c1] == 600
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["udp"])  # a UAC never retransmits over TCP (§17.1.2.1)
async def test_retransmitted_register_gets_identical_bytes(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        reg = await register(client, files.sip_port, user="1002")
        auth = answer_challenge(reg.challenge, user="1002", password="pw1002",
                                uri=f"sip:{HOST}:{files.sip_port}")
        data = register_request(
            client, files.sip_port, user="1002", contacts=[f"<{contact('1002', 45000)}>"],
            expires=120, call_id=reg.call_id, cseq=reg.cseq + 1, authorization=auth,
            branch="z9hG4bK" + unique("retx"))
        await client.send(data)
        first = await client.recv()
        registrations = metric(await metrics(files), "softswitch_registrations_total")
        await client.send(data)
        again = await client.recv()
        assert again == first
        assert first.startswith(b"SIP/2.0 200 ")
        # Absorbed by the transaction: the registrar did not run twice.
        assert metric(await metrics(files), "softswitch_registrations_total") == registrations
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_wrong_password_and_unknown_user_look_alike(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        wrong = await register(client, files.sip_port, user="1001", password="nope")
        unknown = await register(client, files.sip_port, user="9999", password="nope")
        for r in (wrong.final, unknown.final):
            assert r.status not in (200, 404)
        assert wrong.final.status == unknown.final.status == 401
        assert wrong.final.reason == unknown.final.reason
        assert [n.lower() for n, _ in wrong.final.headers] == [
            n.lower() for n, _ in unknown.final.headers]
        for r in (wrong.final, unknown.final):
            params = [challenge_params(v) for v in r.headers.getall("WWW-Authenticate")]
            assert [p["algorithm"] for p in params] == ["SHA-256", "MD5"]
            assert all("stale" not in p for p in params)
        # The unknown user's first (credential-less) answer is the same too.
        assert wrong.challenge.status == unknown.challenge.status == 401
        text = await metrics(files)
        assert metric(text, "softswitch_auth_failures_total") == 2
        assert (await status(files))["registrations"] == []
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_registering_another_users_aor_is_403(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        reg = await register(client, files.sip_port, user="1001", to_user="1002")
        assert reg.final.status == 403
        assert (await status(files))["registrations"] == []
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_stale_nonce_is_401_with_stale_true(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, switch = env
    client = await open_client(kind, files.sip_port)
    try:
        assert switch.core is not None
        old_nonce = switch.core.registrar.auth.make_nonce(time.time() - 1000)  # ttl is 300
        call_id = unique("stale") + "@test"
        first = await client.request(register_request(
            client, files.sip_port, user="1001", contacts=[f"<{contact('1001', 46000)}>"],
            call_id=call_id, cseq=1))
        auth = answer_challenge(first, user="1001", password="pw1001", nonce=old_nonce,
                                uri=f"sip:{HOST}:{files.sip_port}")
        resp = await client.request(register_request(
            client, files.sip_port, user="1001", contacts=[f"<{contact('1001', 46000)}>"],
            call_id=call_id, cseq=2, authorization=auth))
        assert resp.status == 401
        params = [challenge_params(v) for v in resp.headers.getall("WWW-Authenticate")]
        assert params and all(p.get("stale") == "true" for p in params)
        assert all(p["nonce"] != old_nonce for p in params)
        # A stale nonce with the right password is not a failure (RFC 7616 §3.3).
        assert metric(await metrics(files), "softswitch_auth_failures_total") == 0
        # Answering the fresh challenge works.
        auth = answer_challenge(resp, user="1001", password="pw1001",
                                uri=f"sip:{HOST}:{files.sip_port}")
        ok = await client.request(register_request(
            client, files.sip_port, user="1001", contacts=[f"<{contact('1001', 46000)}>"],
            call_id=call_id, cseq=3, authorization=auth))
        assert ok.status == 200
    finally:
        await client.close()


# --------------------------------------------------------------------------- throttling


async def test_throttle_blocks_source_after_failure_limit(tmp_path: Path) -> None:
    files = write_config(tmp_path, auth={"failure_limit": 3, "failure_window_s": 60,
                                         "block_s": 300})
    async with running_switch(files) as switch:
        client = await UdpClient.open(files.sip_port)
        try:
            for _ in range(3):
                r = await register(client, files.sip_port, user="1001", password="bad")
                assert r.final.status == 401
            # The right password over a valid nonce: still refused while blocked.
            auth = answer_challenge(r.final, user="1001", password="pw1001",
                                    uri=f"sip:{HOST}:{files.sip_port}")
            good = await client.request(register_request(
                client, files.sip_port, user="1001", contacts=[f"<{contact('1001', 40500)}>"],
                call_id=r.call_id, cseq=r.cseq + 1, authorization=auth))
            assert good.status == 403
            # Blocked before authentication: even a credential-less REGISTER is refused.
            first = await client.request(register_request(
                client, files.sip_port, user="1002", call_id=unique("b") + "@test"))
            assert first.status == 403
            assert switch.throttle.blocked() == ["127.0.0.1"]
            text = await metrics(files)
            assert metric(text, "softswitch_auth_blocked_addresses") == 1
            assert metric(text, "softswitch_auth_blocked_requests_total") == 2
            assert (await status(files))["registrations"] == []
            # OPTIONS is not authenticated and still answered.
            assert (await client.request(options(client, files.sip_port))).status == 200
        finally:
            await client.close()


def _unit_register(registrar: Registrar, wall: float, *, password: str,
                   challenge_wall: float) -> int:
    """REGISTER answered with `password` over a nonce issued at `challenge_wall`."""
    nonce = registrar.auth.make_nonce(challenge_wall)
    data = (
        f"REGISTER sip:{HOST} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:5099;branch=z9hG4bK{unique()}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:1001@{HOST}>;tag=a\r\nTo: <sip:1001@{HOST}>\r\n"
        f"Call-ID: {unique()}\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@{HOST}:5099>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    from softswitch.sip.digest import Credentials, compute_ha1, compute_response

    creds = Credentials("1001", HOST, nonce, f"sip:{HOST}", "", "MD5", "auth", "00000001", "c")
    resp = compute_response("REGISTER", creds, compute_ha1("MD5", "1001", HOST, password))
    data = data.replace(b"Content-Length", (
        f'Authorization: Digest username="1001", realm="{HOST}", nonce="{nonce}", '
        f'uri="sip:{HOST}", response="{resp}", algorithm=MD5, qop=auth, nc=00000001, '
        'cnonce="c"\r\nContent-Length').encode())
    req = parse_message(data)
    assert isinstance(req, Request)
    answer, _ = registrar.handle(req, Peer("udp", "192.0.2.7", 5099), wall)
    return answer.status


def test_throttle_block_expires_on_virtual_time() -> None:
    class U:
        extension = "1001"
        name = ""
        password = "pw1001"
        ha1 = None
        ha1_sha256 = None

    throttle = AuthThrottle(limit=3, window=60, block=300)
    registrar = Registrar(
        Directory.from_users([U()], HOST), LocationService(),
        DigestAuthenticator(HOST, secret=b"k" * 32, nonce_ttl=3600), RegistrarSettings(),
        throttle,
    )
    t0 = 1_700_000_000.0
    assert [_unit_register(registrar, t0 + i, password="bad", challenge_wall=t0)
            for i in range(3)] == [401, 401, 401]
    assert throttle.blocked() == ["192.0.2.7"]
    assert _unit_register(registrar, t0 + 10, password="pw1001", challenge_wall=t0 + 10) == 403
    assert _unit_register(registrar, t0 + 301.9, password="pw1001",
                          challenge_wall=t0 + 301.9) == 403
    # block_s counts from the failure that tripped it (t0 + 2).
    assert _unit_register(registrar, t0 + 302, password="pw1001", challenge_wall=t0 + 302) == 200
    assert throttle.blocked() == []
    # Failures outside the window do not add up to a block.
    for i in range(5):
        assert _unit_register(registrar, t0 + 400 + 61 * i, password="bad",
                              challenge_wall=t0 + 400 + 61 * i) == 401
    assert throttle.blocked() == []


# --------------------------------------------------------------------------- expiry, metrics


async def test_expiry_sweep_removes_binding(tmp_path: Path) -> None:
    files = write_config(tmp_path, registrar={"min_expires": 1, "max_expires": 7200,
                                              "default_expires": 3600})
    async with running_switch(files):
        client = await UdpClient.open(files.sip_port)
        try:
            keep = await register(client, files.sip_port, user="1002", expires=3600)
            short = await register(client, files.sip_port, user="1001", expires=1)
            assert keep.final.status == short.final.status == 200
            assert metric(await metrics(files), "softswitch_registered_contacts") == 2

            async def swept() -> bool:
                return metric(await metrics(files), "softswitch_registered_contacts") == 1

            await wait_for(swept, timeout=5, what="expired binding swept")
            regs = (await status(files))["registrations"]
            assert [r["user"] for r in regs] == ["1002"]
            assert metric(await metrics(files), "softswitch_registered_users") == 1
        finally:
            await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_status_and_metrics_reflect_registrations(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        text0 = await metrics(files)
        assert metric(text0, "softswitch_registered_contacts") == 0
        assert metric(text0, "softswitch_directory_users") == 5
        await register(client, files.sip_port, user="1001",
                       contacts=[f"<{contact('1001', 47000, n)}>" for n in range(2)])
        await register(client, files.sip_port, user="1003")
        # One malformed REGISTER (bad Expires) is a parse error answered 400.
        bad = await client.request(register_request(
            client, files.sip_port, user="1001", call_id=unique() + "@t",
            extra=[("Require", "nope")]))
        assert bad.status == 420
        text = await metrics(files)
        assert metric(text, "softswitch_registered_contacts") == 3
        assert metric(text, "softswitch_registered_users") == 2
        assert metric(text, "softswitch_sip_requests_total", {"method": "REGISTER"}) == 5
        assert metric(text, "softswitch_sip_responses_sent_total", {"class": "2xx"}) == 2
        assert metric(text, "softswitch_sip_responses_sent_total", {"class": "4xx"}) == 3
        assert metric(text, "softswitch_sip_parse_errors_total", {"status": "420"}) == 1
        assert metric(text, "softswitch_auth_challenges_total") == 2
        assert metric(text, "softswitch_registrations_total") == 2
        st = await status(files)
        assert st["users"] == 5 and st["registered_users"] == 2
        by_user: dict[str, list[dict[str, Any]]] = {}
        for r in st["registrations"]:
            by_user.setdefault(r["user"], []).append(r)
        assert sorted(by_user) == ["1001", "1003"] and len(by_user["1001"]) == 2
        assert all(3590 <= r["expires_in"] <= 3600 for r in st["registrations"])
        assert st["listen"] == [f"udp:{HOST}:{files.sip_port}", f"tcp:{HOST}:{files.sip_port}"]
        r = await http_get(files, "/api/registrations")
        assert r.status_code == 200 and len(r.json()) == 3
    finally:
        await client.close()


# --------------------------------------------------------------------------- persistence


async def test_bindings_survive_restart(tmp_path: Path, store_url: str) -> None:
    files = write_config(tmp_path, store_url=store_url)
    c1 = contact("1001", 48000)
    async with running_switch(files) as switch:
        client = await UdpClient.open(files.sip_port)
        try:
            reg = await register(client, files.sip_port, user="1001", contacts=[f"<{c1}>"],
                                 expires=1800)
            assert reg.final.status == 200
            # Wait for the write-behind to reach the store (not only the flush at stop).
            assert switch.store is not None
            store = switch.store
            await wait_for(lambda: not switch.location.has_changes(), what="flushed")

            async def in_store() -> bool:
                return any(b.contact == c1 for b in await store.load_bindings())

            await wait_for(in_store, what="binding in store")
        finally:
            await client.close()
    async with running_switch(files) as again:
        regs = again.status()["registrations"]
        assert [(r["user"], r["contact"]) for r in regs] == [("1001", c1)]
        assert 1790 <= regs[0]["expires_in"] <= 1800
        assert metric(await metrics(files), "softswitch_registered_contacts") == 1
        # Unregistering after the restart removes it from the store too.
        client = await UdpClient.open(files.sip_port)
        try:
            gone = await register(client, files.sip_port, user="1001", contacts=["*"], expires=0)
            assert gone.final.status == 200
        finally:
            await client.close()
    async with running_switch(files) as third:
        assert third.status()["registrations"] == []


async def test_binding_written_just_before_stop_is_flushed(
    tmp_path: Path, store_url: str
) -> None:
    files = write_config(tmp_path, store_url=store_url)
    c1 = contact("1002", 49000)
    async with running_switch(files) as switch:
        client = await UdpClient.open(files.sip_port)
        try:
            reg = await register(client, files.sip_port, user="1002", contacts=[f"<{c1}>"])
            assert reg.final.status == 200
            assert switch.location.has_changes()  # not yet written behind
        finally:
            await client.close()
    async with running_switch(files) as again:
        assert [r["contact"] for r in again.status()["registrations"]] == [c1]


async def test_write_interrupted_by_stop_is_not_lost(tmp_path: Path) -> None:
    """A flush cancelled mid-write by stop() must leave its changes for the final flush."""
    files = write_config(tmp_path)
    c1 = contact("1003", 50000)
    async with running_switch(files) as switch:
        assert switch.store is not None
        real = switch.store.upsert_bindings
        entered = asyncio.Event()
        calls = 0

        async def stuck_once(bindings: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                entered.set()
                await asyncio.Event().wait()  # a slow disk: cancelled by stop()
            await real(bindings)

        switch.store.upsert_bindings = stuck_once  # type: ignore[method-assign]
        client = await UdpClient.open(files.sip_port)
        try:
            reg = await register(client, files.sip_port, user="1003", contacts=[f"<{c1}>"])
            assert reg.final.status == 200
        finally:
            await client.close()
        await asyncio.wait_for(entered.wait(), 3)
    async with running_switch(files) as again:
        assert [r["contact"] for r in again.status()["registrations"]] == [c1]


@pytest.mark.parametrize("cancel_after", [0, 1, 2, 3])
async def test_cancelled_store_write_leaves_store_usable(
    store_url: str, cancel_after: int
) -> None:
    """stop() cancels the write-behind mid-write; the next write (the final flush) must work."""
    from softswitch.store import open_store
    from softswitch.store.base import Binding

    def binding(contact: str) -> Binding:
        return Binding(aor="1001", contact=contact, expires_at=time.time() + 600, q=None,
                       call_id="c", cseq=1, received="udp:127.0.0.1:5060", user_agent="t",
                       instance_id=None, reg_id=None)

    store = open_store(store_url)
    await store.open()
    try:
        task = asyncio.create_task(store.upsert_bindings([binding("sip:a@h")]))
        for _ in range(cancel_after):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.wait_for(store.upsert_bindings([binding("sip:b@h")]), 5)
        contacts = {b.contact for b in await store.load_bindings()}
        assert "sip:b@h" in contacts
    finally:
        await store.close()
