"""The running switch answers malformed and hostile SIP as RFC 3261 prescribes (UDP and TCP),
and keeps answering OPTIONS afterwards."""

from __future__ import annotations

import asyncio
import random
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from softswitch.app import Switch
from softswitch.sip.message import Response
from tests.switchkit import (
    HOST,
    Client,
    SwitchFiles,
    TcpClient,
    UdpClient,
    base_headers,
    build,
    metric,
    metrics,
    open_client,
    options,
    parse_response,
    running_switch,
    unique,
    wait_for,
    write_config,
)

TRANSPORTS = ["udp", "tcp"]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SwitchFiles, Switch]]:
    files = write_config(tmp_path)
    async with running_switch(files) as switch:
        yield files, switch


async def assert_options_ok(client: Client, port: int) -> Response:
    """The server still works: OPTIONS -> 200 with Allow, Accept, Supported."""
    call_id = unique("opt") + "@test"
    resp = await client.request(options(client, port, call_id=call_id))
    assert resp.status == 200, resp.to_bytes()
    assert resp.call_id == call_id
    allow = {m.strip() for m in (resp.headers.get("Allow") or "").split(",")}
    assert {"REGISTER", "OPTIONS"} <= allow
    assert {"INVITE", "ACK", "BYE", "CANCEL"} <= allow  # calls (issue 3)
    assert resp.headers.get("Accept")
    assert resp.headers.get("Supported") is not None
    assert resp.to.tag, "RFC 3261 §8.2.6.2: a UAS response carries a To tag"
    return resp


async def send_then_probe(client: Client, port: int, data: bytes) -> list[Response]:
    """Send `data`, then an OPTIONS; return every response that came before the OPTIONS'."""
    call_id = unique("probe") + "@test"
    await client.send(data)
    await client.send(options(client, port, call_id=call_id))
    before: list[Response] = []
    while True:
        resp = parse_response(await client.recv())
        if resp.headers.get("Call-ID") == call_id and resp.headers.get("CSeq") == "1 OPTIONS":
            assert resp.status == 200
            return before
        before.append(resp)


def request(client: Client, port: int, method: str = "OPTIONS", *, drop: tuple[str, ...] = (),
            add: list[tuple[str, str]] | None = None,
            replace: dict[str, str] | None = None, start: str | None = None,
            body: bytes = b"", content_length: str | None = None) -> bytes:
    hdrs = [(k, (replace or {}).get(k, v)) for k, v in base_headers(client, method)
            if k not in drop]
    hdrs += add or []
    if content_length is not None:
        hdrs.append(("Content-Length", content_length))
    return build(start or f"{method} sip:{HOST}:{port} SIP/2.0", hdrs, body,
                 content_length=content_length is None)


async def answered(files: SwitchFiles, client: Client, data: bytes) -> Response:
    """`data` is answered with exactly one response, and the server still answers OPTIONS."""
    before = await send_then_probe(client, files.sip_port, data)
    assert len(before) == 1, [r.to_bytes() for r in before]
    await assert_options_ok(client, files.sip_port)
    return before[0]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("header", ["Call-ID", "From", "To", "CSeq", "Via"])
async def test_missing_mandatory_header_is_400_naming_it_or_counted_drop(
    env: tuple[SwitchFiles, Switch], kind: str, header: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        dropped0 = metric(await metrics(files), "softswitch_sip_dropped_total")
        before = await send_then_probe(
            client, files.sip_port, request(client, files.sip_port, "REGISTER", drop=(header,))
        )
        text = await metrics(files)
        if before:
            assert len(before) == 1
            assert before[0].status == 400
            assert header.lower() in before[0].reason.lower()
        else:
            # RFC 3261 §8.2.6.2: no response can be formed without it: dropped and counted.
            assert metric(text, "softswitch_sip_dropped_total") == dropped0 + 1
        assert metric(text, "softswitch_sip_parse_errors_total", {"status": "400"}) >= 1
        await assert_options_ok(client, files.sip_port)
    finally:
        await client.close()


def _cases(client: Client, port: int) -> dict[str, tuple[bytes, int, str]]:
    """name -> (request bytes, expected status, text the reason must contain)."""
    return {
        "duplicate CSeq": (request(client, port, add=[("CSeq", "2 OPTIONS")]), 400, "cseq"),
        "bad CSeq": (request(client, port, replace={"CSeq": "abc OPTIONS"}), 400, "cseq"),
        "CSeq method mismatch": (request(client, port, "REGISTER",
                                         replace={"CSeq": "1 OPTIONS"}), 400, "cseq"),
        "unbalanced quote in From": (request(client, port, replace={
            "From": f'"Bob <sip:1001@{HOST}>;tag=x1'}), 400, "from"),
        "unbalanced bracket in From": (request(client, port, replace={
            "From": f"<sip:1001@{HOST};tag=x2"}), 400, "from"),
        "unsupported URI scheme": (request(client, port, "REGISTER",
                                           start="REGISTER http://example.com/ SIP/2.0"),
                                   416, "scheme"),
        "Max-Forwards 0 on REGISTER": (request(client, port, "REGISTER",
                                               replace={"Max-Forwards": "0"}), 483, "hops"),
        "SIP/3.0": (request(client, port, start=f"OPTIONS sip:{HOST}:{port} SIP/3.0"),
                    505, "version"),
    }


CASES = ["duplicate CSeq", "bad CSeq", "CSeq method mismatch", "unbalanced quote in From",
         "unbalanced bracket in From", "unsupported URI scheme", "Max-Forwards 0 on REGISTER",
         "SIP/3.0"]


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("case", CASES)
async def test_bad_request_answered(
    env: tuple[SwitchFiles, Switch], kind: str, case: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        data, status, reason = _cases(client, files.sip_port)[case]
        sent_from = client.local_port
        text0 = await metrics(files)
        if kind == "tcp" and case == "SIP/3.0":
            # The stream parser gives up on a connection whose start line it refuses: the
            # answer comes, then the connection closes; a new one is served.
            await client.send(data)
            resp = parse_response(await client.recv())
            assert await client.closed_by_peer()
            await client.close()
            client = await open_client(kind, files.sip_port)
            await assert_options_ok(client, files.sip_port)
        else:
            resp = await answered(files, client, data)
        assert resp.status == status, resp.to_bytes()
        assert reason in resp.reason.lower(), resp.reason
        # The answer is routed back by the request's own Via, stamped per RFC 3581.
        assert f"rport={sent_from}" in (resp.headers.get("Via") or "")
        # RFC 3261 §8.2.6.2: CSeq copied as received (the first one when duplicated).
        sent_cseq = re.search(rb"\r\nCSeq: ([^\r]*)", data)
        assert sent_cseq is not None
        assert resp.headers.getall("CSeq") == [sent_cseq.group(1).decode()]
        text = await metrics(files)
        key = {"status": str(status)}
        assert metric(text, "softswitch_sip_parse_errors_total", key) == (
            metric(text0, "softswitch_sip_parse_errors_total", key) + 1)
        assert metric(text, "softswitch_sip_responses_sent_total", {"class": f"{status // 100}xx"}
                      ) >= 1
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_require_unknown_extension_is_420_with_unsupported(
    env: tuple[SwitchFiles, Switch], kind: str
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        resp = await answered(files, client, request(
            client, files.sip_port, "REGISTER", add=[("Require", "foo, outbound")]))
        assert resp.status == 420
        # RFC 3261 §8.2.2.3: Unsupported lists exactly the tags not understood.
        assert [v.strip() for v in resp.headers.values("Unsupported")] == ["foo"]
    finally:
        await client.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(("method", "status"), [("SUBSCRIBE", 405), ("FOO", 501)])
async def test_method_not_served_lists_allow(
    env: tuple[SwitchFiles, Switch], kind: str, method: str, status: int
) -> None:
    files, _ = env
    client = await open_client(kind, files.sip_port)
    try:
        resp = await answered(files, client, request(client, files.sip_port, method))
        assert resp.status == status
        allow = {m.strip() for m in (resp.headers.get("Allow") or "").split(",")}
        assert {"REGISTER", "OPTIONS"} <= allow and method not in allow
        assert resp.to.tag, "RFC 3261 §8.2.6.2: final responses carry a To tag"
        text = await metrics(files)
        label = method if method == "SUBSCRIBE" else "other"
        assert metric(text, "softswitch_sip_requests_total", {"method": label}) == 1
    finally:
        await client.close()


async def test_udp_content_length_larger_than_body_is_400(
    env: tuple[SwitchFiles, Switch],
) -> None:
    files, _ = env
    client = await UdpClient.open(files.sip_port)
    try:
        resp = await answered(files, client, request(
            client, files.sip_port, body=b"v=0\r\n", content_length="50"))
        assert resp.status == 400 and "content-length" in resp.reason.lower()
    finally:
        await client.close()


async def test_udp_garbage_is_dropped_and_counted(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await UdpClient.open(files.sip_port)
    rng = random.Random(3261)
    payloads = [rng.randbytes(n) for n in (7, 64, 300, 1400)]
    payloads += [b"\x00" * 100, b"SIP/2.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]
    try:
        dropped0 = metric(await metrics(files), "softswitch_sip_dropped_total")
        for data in payloads:
            assert await send_then_probe(client, files.sip_port, data) == []
        text = await metrics(files)
        assert metric(text, "softswitch_sip_dropped_total") == dropped0 + len(payloads)
        await assert_options_ok(client, files.sip_port)
    finally:
        await client.close()


async def test_udp_oversized_message_513_or_dropped(tmp_path: Path) -> None:
    # A UDP datagram cannot exceed 65507 bytes over IPv4, so the limit is lowered for UDP.
    files = write_config(tmp_path, sip={"max_message_bytes": 8192})
    async with running_switch(files):
        client = await UdpClient.open(files.sip_port)
        try:
            dropped0 = metric(await metrics(files), "softswitch_sip_dropped_total")
            big = request(client, files.sip_port, body=b"x" * 9000)
            before = await send_then_probe(client, files.sip_port, big)
            text = await metrics(files)
            if before:
                assert [r.status for r in before] == [513]
            else:
                assert metric(text, "softswitch_sip_dropped_total") == dropped0 + 1
            assert metric(text, "softswitch_sip_parse_errors_total", {"status": "513"}) == 1
            await assert_options_ok(client, files.sip_port)
        finally:
            await client.close()


# --------------------------------------------------------------------------- TCP framing


async def test_tcp_65k_message_513_then_closed(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        await client.send(request(client, files.sip_port, body=b"x" * (66 * 1024)))
        data = await client.reader.read(65536)
        if data:
            assert parse_response(data).status == 513
        assert await client.closed_by_peer()
        text = await metrics(files)
        assert metric(text, "softswitch_sip_parse_errors_total", {"status": "513"}) == 1
    finally:
        await client.close()
    fresh = await TcpClient.open(files.sip_port)
    try:
        await assert_options_ok(fresh, files.sip_port)
    finally:
        await fresh.close()


async def test_tcp_endless_header_is_dropped_and_closed(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        await client.send(b"OPTIONS sip:x SIP/2.0\r\nX-Junk: " + b"a" * (66 * 1024))
        assert await client.closed_by_peer()
        assert metric(await metrics(files), "softswitch_sip_dropped_total") == 1
    finally:
        await client.close()


async def test_tcp_garbage_is_dropped_counted_and_closed(
    env: tuple[SwitchFiles, Switch],
) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        await client.send(random.Random(5).randbytes(500) + b"\r\n\r\n")
        assert await client.closed_by_peer()
        assert metric(await metrics(files), "softswitch_sip_dropped_total") == 1
    finally:
        await client.close()
    fresh = await TcpClient.open(files.sip_port)
    try:
        await assert_options_ok(fresh, files.sip_port)
    finally:
        await fresh.close()


async def test_tcp_without_content_length_is_400_then_closed(
    env: tuple[SwitchFiles, Switch],
) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        await client.send(request(client, files.sip_port).replace(b"Content-Length: 0\r\n", b""))
        resp = parse_response(await client.recv())
        assert resp.status == 400 and "content-length" in resp.reason.lower()
        # RFC 3261 §18.3: framing is lost, the connection must go.
        assert await client.closed_by_peer()
    finally:
        await client.close()
    fresh = await TcpClient.open(files.sip_port)
    try:
        await assert_options_ok(fresh, files.sip_port)
    finally:
        await fresh.close()


async def test_tcp_message_split_byte_by_byte(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    client.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        call_id = unique("split") + "@test"
        data = options(client, files.sip_port, call_id=call_id)
        for i in range(len(data)):
            await client.send(data[i : i + 1])
        resp = parse_response(await client.recv())
        assert resp.status == 200 and resp.call_id == call_id
        await assert_options_ok(client, files.sip_port)
    finally:
        await client.close()


async def test_tcp_two_messages_in_one_segment(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        ids = [unique("two") + "@test" for _ in range(2)]
        await client.send(b"".join(options(client, files.sip_port, call_id=c) for c in ids))
        got = [parse_response(await client.recv()) for _ in ids]
        assert [r.call_id for r in got] == ids
        assert [r.status for r in got] == [200, 200]
        text = await metrics(files)
        assert metric(text, "softswitch_sip_requests_total", {"method": "OPTIONS"}) == 2
    finally:
        await client.close()


async def test_tcp_crlf_keepalive_answered_with_crlf(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await TcpClient.open(files.sip_port)
    try:
        await client.send(b"\r\n\r\n")
        assert await client.recv_raw(2) == b"\r\n"  # RFC 5626 §3.5.1 pong
        await client.send(b"\r\n\r\n")
        assert await client.recv_raw(2) == b"\r\n"
        await assert_options_ok(client, files.sip_port)
    finally:
        await client.close()


async def test_udp_crlf_keepalive_is_ignored(env: tuple[SwitchFiles, Switch]) -> None:
    files, _ = env
    client = await UdpClient.open(files.sip_port)
    try:
        assert await send_then_probe(client, files.sip_port, b"\r\n\r\n") == []
        text = await metrics(files)
        assert metric(text, "softswitch_sip_dropped_total") == 0
    finally:
        await client.close()


class _Phone(asyncio.Protocol):
    """A TCP listener standing in for a phone: what each connection receives."""

    def __init__(self, received: list[bytes], connections: list[asyncio.Transport]) -> None:
        self.received = received
        self.connections = connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.append(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


async def test_response_for_a_closed_stream_reopens_to_the_sent_by(
    env: tuple[SwitchFiles, Switch],
) -> None:
    """RFC 3261 §18.2.2: the connection a request came on is gone, so the response goes over
    a new one to the Via's received address and sent-by port; an unreachable sent-by is
    counted as unsendable; a request to a peer without a connection opens one (§18.1.1)."""
    from softswitch.sip.message import Peer

    files, switch = env
    assert switch.transports is not None
    transports = switch.transports
    loop = asyncio.get_running_loop()
    received: list[bytes] = []
    accepted: list[asyncio.Transport] = []
    phone = await loop.create_server(lambda: _Phone(received, accepted), HOST, 0)
    phone_port = phone.sockets[0].getsockname()[1]
    try:
        client = await TcpClient.open(files.sip_port)
        gone = client.local_port
        await client.close()
        # The switch learns of the close asynchronously (FIN): wait until it has dropped the
        # connection, as a real late response would find it.
        await wait_for(lambda: ("tcp", HOST, gone) not in transports.connections,
                       what="the switch to see the connection close")

        def response(port: int, n: int) -> bytes:
            return (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.9:{port};branch=z9hG4bK{n}"
                    f";received={HOST}\r\nCall-ID: c{n}\r\nCSeq: 1 OPTIONS\r\n"
                    f"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\n"
                    f"Content-Length: 0\r\n\r\n").encode()

        first, second = response(phone_port, 1), response(phone_port, 2)
        transports.send(first, Peer("tcp", HOST, gone))
        transports.send(second, Peer("tcp", HOST, gone))  # queued behind the connect
        await wait_for(lambda: b"".join(received) == first + second,
                       what="the phone to get both responses over a new connection")
        assert len(accepted) == 1 and ("tcp", HOST, phone_port) in transports.connections
        # a request to the phone now uses that connection
        request = b"OPTIONS sip:p@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        transports.send(request, Peer("tcp", HOST, phone_port))
        await wait_for(lambda: b"".join(received).endswith(request), what="the request")
        assert len(accepted) == 1

        # nothing listens at this sent-by: dropped and counted once the connect fails
        closed = socket.socket()
        closed.bind((HOST, 0))
        dead_port = closed.getsockname()[1]
        closed.close()
        before = metric(await metrics(files), "softswitch_sip_unsendable_total")
        transports.send(response(dead_port, 3), Peer("tcp", HOST, gone))
        await wait_for(lambda: not transports._connecting, what="the connect to fail")
        assert metric(await metrics(files), "softswitch_sip_unsendable_total") == before + 1
        # and a response without a Via cannot be routed anywhere
        transports.send(b"SIP/2.0 200 OK\r\n\r\n", Peer("tcp", HOST, gone))
        assert metric(await metrics(files), "softswitch_sip_unsendable_total") == before + 2
    finally:
        for t in accepted:
            t.close()
        phone.close()
        await phone.wait_closed()
