"""StreamParser: TCP/TLS framing (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.message import KEEPALIVE, KeepAlive, Request, Response, StreamParser

BODY = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\n\r\n"  # CRLFCRLF inside the body


def request(n: int, body: bytes = BODY) -> bytes:
    return (
        f"MESSAGE sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{n}\r\n"
        f"From: <sip:alice@example.com>;tag={n}\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{n}\r\nCSeq: {n} MESSAGE\r\nMax-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


RESPONSE = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKr\r\nFrom: <sip:a@h>;tag=1\r\n"
    b"To: <sip:b@h>;tag=2\r\nCall-ID: r\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def drain(parser: StreamParser) -> list[Request | Response | KeepAlive]:
    out = []
    while (item := parser.next_message()) is not None:
        out.append(item)
    return out


def test_one_message_in_one_chunk() -> None:
    parser = StreamParser()
    parser.feed(request(1))
    (msg,) = drain(parser)
    assert isinstance(msg, Request) and msg.body == BODY and msg.cseq.seq == 1
    assert parser.buffered == 0


def test_byte_by_byte() -> None:
    data = request(1) + RESPONSE + request(2, b"")
    parser = StreamParser()
    got: list[Request | Response | KeepAlive] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        got += drain(parser)
    assert [type(m) for m in got] == [Request, Response, Request]
    assert got[0].body == BODY and got[2].body == b""  # type: ignore[union-attr]
    assert got[2].call_id == "call-2"  # type: ignore[union-attr]


def test_split_at_every_position() -> None:
    data = request(7) + request(8)
    for cut in range(1, len(data)):
        parser = StreamParser()
        parser.feed(data[:cut])
        first = drain(parser)
        parser.feed(data[cut:])
        msgs = first + drain(parser)
        assert [m.call_id for m in msgs] == ["call-7", "call-8"], cut  # type: ignore[union-attr]
        assert all(m.body == BODY for m in msgs)  # type: ignore[union-attr]


def test_several_messages_and_keepalives_in_one_chunk() -> None:
    parser = StreamParser()
    parser.feed(b"\r\n\r\n" + request(1) + b"\r\n\r\n\r\n\r\n" + RESPONSE + b"\r\n\r\n")
    items = drain(parser)
    assert [type(i).__name__ for i in items] == [
        "KeepAlive",
        "Request",
        "KeepAlive",
        "KeepAlive",
        "Response",
        "KeepAlive",
    ]
    assert items[0] is KEEPALIVE


def test_keepalive_split_across_reads() -> None:
    parser = StreamParser()
    parser.feed(b"\r\n")
    assert parser.next_message() is None
    parser.feed(b"\r")
    assert parser.next_message() is None
    parser.feed(b"\n")
    assert parser.next_message() is KEEPALIVE
    assert parser.next_message() is None


def test_single_crlf_before_message_is_ignored() -> None:
    parser = StreamParser()
    parser.feed(b"\r\n" + request(3))
    (msg,) = drain(parser)
    assert isinstance(msg, Request) and msg.call_id == "call-3"


def test_incomplete_body_waits() -> None:
    parser = StreamParser()
    data = request(4)
    parser.feed(data[:-1])
    assert parser.next_message() is None
    assert parser.next_message() is None
    parser.feed(data[-1:])
    msg = parser.next_message()
    assert isinstance(msg, Request) and msg.body == BODY


def test_missing_content_length_is_fatal() -> None:
    parser = StreamParser()
    parser.feed(request(5).replace(f"Content-Length: {len(BODY)}\r\n".encode(), b""))
    with pytest.raises(SipError) as info:
        parser.next_message()
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)  # answerable before closing
    parser.feed(request(6))
    with pytest.raises(SipError):  # the stream stays broken: the adapter closes it
        parser.next_message()


def test_headers_without_end_exceed_limit() -> None:
    parser = StreamParser(max_size=1000)
    parser.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X-Filler: " + b"a" * 1000)
    with pytest.raises(SipError) as info:
        parser.next_message()
    assert info.value.status == 513


def test_declared_body_exceeds_limit_before_it_arrives() -> None:
    parser = StreamParser(max_size=2000)
    parser.feed(request(9, b"").replace(b"Content-Length: 0", b"Content-Length: 5000"))
    with pytest.raises(SipError) as info:
        parser.next_message()
    assert info.value.status == 513


def test_bad_content_length_on_stream() -> None:
    parser = StreamParser()
    parser.feed(request(9, b"").replace(b"Content-Length: 0", b"Content-Length: x"))
    with pytest.raises(SipError) as info:
        parser.next_message()
    assert info.value.status == 400


def test_garbage_start_line() -> None:
    parser = StreamParser()
    parser.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")  # TLS on a TCP port
    with pytest.raises(SipError) as info:
        parser.next_message()
    assert info.value.status == 400 and info.value.message is None
