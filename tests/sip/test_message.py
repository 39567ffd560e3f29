"""Parsing, views, serialization and responses (RFC 3261 §7, §8.2.6, §18, §20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.message import (
    REASONS,
    CSeq,
    Headers,
    Peer,
    Request,
    Response,
    canonical_name,
    make_response,
    parse_message,
    response_destination,
    stamp_via,
)
from softswitch.sip.uri import SipURI, Via, parse_uri

TORTURE = Path(__file__).resolve().parent.parent / "vectors" / "torture"

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def invite(*extra: str, body: bytes = SDP, content_length: int | None = None) -> bytes:
    head = [
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com:5062;branch=z9hG4bK776asdhds;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
        "To: Bob <sip:bob@biloxi.example.com>",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        "Content-Type: application/sdp",
        *extra,
        f"Content-Length: {len(body) if content_length is None else content_length}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def parse_request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.sip").read_bytes()


# --- requests and views -------------------------------------------------------------


def test_request_start_line_and_views() -> None:
    req = parse_request(invite())
    assert req.method == "INVITE"
    assert req.version == "SIP/2.0"
    assert req.uri == SipURI("sip", "bob", None, "biloxi.example.com")
    assert req.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert req.cseq == CSeq(314159, "INVITE")
    assert req.top_via.branch == "z9hG4bK776asdhds"
    assert req.top_via.sent_by == ("pc33.atlanta.example.com", 5062)
    assert req.from_.display == "Alice" and req.from_.tag == "1928301774"
    assert req.to.display == "Bob" and req.to.tag is None
    assert req.max_forwards == 70
    assert [c.uri_text for c in req.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert req.expires is None
    assert req.body == SDP


def test_views_are_cached_until_headers_change() -> None:
    req = parse_request(invite())
    assert req.from_ is req.from_
    req.headers.set("From", "<sip:carol@example.com>;tag=zz")
    assert req.from_.tag == "zz"


def test_missing_and_malformed_views_raise_sip_error() -> None:
    req = parse_request(invite())
    req.headers.remove("Call-ID")
    req.headers.set("CSeq", "abc INVITE")
    req.headers.set("Max-Forwards", "seventy")
    req.headers.set("Expires", "-1")
    for view in ("call_id", "cseq", "max_forwards", "expires"):
        with pytest.raises(SipError) as info:
            getattr(req, view)
        assert info.value.status == 400
    req.headers.remove("Max-Forwards")
    assert req.max_forwards is None  # absent is tolerated (RFC 3261 §8.2, treated as 70)


def test_cseq_limits() -> None:
    req = parse_request(invite())
    req.headers.set("CSeq", "2147483647 INVITE")
    assert req.cseq.seq == 2**31 - 1
    req.headers.set("CSeq", "2147483648 INVITE")
    with pytest.raises(SipError):
        req.cseq  # noqa: B018
    req.headers.set("CSeq", "0009   INVITE")
    assert req.cseq == CSeq(9, "INVITE")


def test_compact_forms_and_case_insensitive_names() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n"
        b"f: <sip:a@example.com>;tag=1\r\n"
        b"t: <sip:x@example.com>\r\n"
        b"i: cid-1\r\n"
        b"CSEQ: 1 OPTIONS\r\n"
        b"max-forwards: 70\r\n"
        b"m: <sip:a@h.example.com>\r\n"
        b"k: path, outbound\r\n"
        b"o: presence\r\nu: dialog\r\nr: <sip:z@example.com>\r\nb: <sip:y@example.com>\r\n"
        b"x: 1800\r\na: *;audio\r\nj: *;video\r\nd: proxy\r\ny: abc\r\nn: <https://x/y>\r\n"
        b'e: gzip\r\ns: hello\r\nc: text/plain\r\nwww-authenticate: Digest realm="a"\r\n'
        b"l: 2\r\n\r\nhi"
    )
    req = parse_request(data)
    assert [name for name, _ in req.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Contact",
        "Supported",
        "Event",
        "Allow-Events",
        "Refer-To",
        "Referred-By",
        "Session-Expires",
        "Accept-Contact",
        "Reject-Contact",
        "Request-Disposition",
        "Identity",
        "Identity-Info",
        "Content-Encoding",
        "Subject",
        "Content-Type",
        "WWW-Authenticate",
        "Content-Length",
    ]
    assert req.headers.get("call-id") == req.headers.get("I") == "cid-1"
    assert req.headers.values("Supported") == ["path", "outbound"]
    assert req.body == b"hi"
    assert canonical_name("cseq") == "CSeq" and canonical_name("x-custom") == "x-custom"


def test_folding_joins_with_single_space() -> None:
    data = invite("Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!")
    req = parse_request(data)
    assert req.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"


def test_headers_multimap_api() -> None:
    h = Headers([("Route", "<sip:p1;lr>"), ("Via", "a"), ("route", "<sip:p2;lr>, <sip:p3;lr>")])
    assert h.getall("Route") == ["<sip:p1;lr>", "<sip:p2;lr>, <sip:p3;lr>"]
    assert h.values("Route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert "ROUTE" in h and "Record-Route" not in h
    assert h.get("Record-Route") is None and h.get("Record-Route", "x") == "x"
    h.add("v", "b")
    assert h.getall("Via") == ["a", "b"]
    h.set("Via", "c")
    assert list(h) == [
        ("Route", "<sip:p1;lr>"),
        ("Via", "c"),
        ("Route", "<sip:p2;lr>, <sip:p3;lr>"),
    ]
    h.remove("route")
    assert list(h) == [("Via", "c")] and len(h) == 1
    h.set("X-New", "1")
    assert list(h)[-1] == ("X-New", "1")
    with pytest.raises(SipError):
        h.add("Bad Name", "x")


def test_values_does_not_split_non_list_headers() -> None:
    h = Headers(
        [
            ("Authorization", 'Digest username="a", realm="b", nonce="c"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Contact", '"Doe, John" <sip:j@h>, <sip:k@h>'),
        ]
    )
    assert h.values("Authorization") == ['Digest username="a", realm="b", nonce="c"']
    assert h.values("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert h.values("Contact") == ['"Doe, John" <sip:j@h>', "<sip:k@h>"]


def test_contact_star_and_multiple_contacts() -> None:
    req = parse_request(invite('Contact: <sip:b@h>;expires=60, "x, y" <sip:c@h>'))
    assert [c.uri_text for c in req.contacts] == [
        "sip:alice@pc33.atlanta.example.com",
        "sip:b@h",
        "sip:c@h",
    ]
    assert req.contacts[1].params == {"expires": "60"}
    req.headers.remove("Contact")
    req.headers.add("Contact", "*")
    assert req.contact_star and req.contacts == []


# --- Content-Length and framing (RFC 3261 §18.3) ------------------------------------


def test_body_shorter_than_content_length_is_400_with_message() -> None:
    with pytest.raises(SipError) as info:
        parse_message(invite(content_length=len(SDP) + 1))
    assert (info.value.status, info.value.reason) == (400, "Content-Length larger than body")
    partial = info.value.message
    assert isinstance(partial, Request) and partial.call_id.startswith("a84b4c76")


def test_trailing_bytes_beyond_content_length_are_dropped() -> None:
    req = parse_request(invite() + b"garbage after the body")
    assert req.body == SDP


def test_missing_content_length_body_is_rest_of_datagram() -> None:
    data = invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    req = parse_request(data)
    assert req.body == SDP
    with pytest.raises(SipError) as info:
        parse_message(data, stream=True)
    assert info.value.status == 400


@pytest.mark.parametrize("value", ["-1", "abc", "1 2", "", "12345678901", "٣"])
def test_bad_content_length(value: str) -> None:
    data = invite().replace(
        f"Content-Length: {len(SDP)}".encode(), f"Content-Length: {value}".encode()
    )
    with pytest.raises(SipError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_size_and_count_limits() -> None:
    with pytest.raises(SipError) as info:
        parse_message(invite(body=b"x" * 70000))
    assert (info.value.status, info.value.reason) == (513, "Message Too Large")
    assert isinstance(info.value.message, Request)  # the header section fits: answer 513
    with pytest.raises(SipError) as info:
        parse_message(invite("X-Big: " + "b" * 70000))
    assert info.value.status == 513 and info.value.message is None
    assert parse_message(invite(body=b"x" * 1000), max_size=2000)
    with pytest.raises(SipError) as info:
        parse_message(invite(body=b"x" * 1000), max_size=1000)
    assert info.value.status == 513
    many = invite(*[f"X-H{i}: {i}" for i in range(250)])
    with pytest.raises(SipError) as info:
        parse_message(many)
    assert info.value.status == 400
    assert parse_message(many, max_headers=300)
    vias = invite(*[f"Via: SIP/2.0/UDP h{i}.example.com;branch=z9hG4bK{i}" for i in range(70)])
    with pytest.raises(SipError) as info:
        parse_message(vias)
    assert info.value.reason == "Too Many Via Values"
    req = parse_request(
        invite("Via: " + ", ".join(f"SIP/2.0/UDP h{i};branch=b{i}" for i in range(70)))
    )
    with pytest.raises(SipError):
        req.vias  # noqa: B018


def test_leading_crlf_ignored_and_missing_empty_line_tolerated() -> None:
    assert parse_request(b"\r\n\r\n" + invite()).method == "INVITE"
    head_only = invite(body=b"").split(b"\r\n\r\n")[0] + b"\r\n"
    assert parse_request(head_only).body == b""
    with pytest.raises(SipError):
        parse_message(b"\r\n\r\n")
    with pytest.raises(SipError):
        parse_message(b"INVITE sip:a@b SIP/2.0")


def test_malformed_header_line_keeps_partial_request() -> None:
    with pytest.raises(SipError) as info:
        parse_message(invite("This line has no colon"))
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)
    with pytest.raises(SipError) as info:
        parse_message(invite("Bad Name: x"))
    assert info.value.status == 400 and info.value.message is not None


def test_partial_request_needs_the_five_headers() -> None:
    data = invite("no colon").replace(b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", b"")
    with pytest.raises(SipError) as info:
        parse_message(data)
    assert info.value.message is None


def test_version_not_supported() -> None:
    with pytest.raises(SipError) as info:
        parse_message(invite().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1))
    assert info.value.status == 505
    assert info.value.message is not None
    assert parse_request(invite().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)).method == "INVITE"


@pytest.mark.parametrize(
    "line",
    [
        "INVITE  sip:a@b SIP/2.0",
        "INVITE sip:a@b SIP/2.0 ",
        "INVITE sip:a@b",
        "INVITE",
        "IN VITE sip:a@b SIP/2.0",
        "INV\x00ITE sip:a@b SIP/2.0",
        "<x> sip:a@b SIP/2.0",
    ],
)
def test_malformed_request_line(line: str) -> None:
    data = invite().replace(b"INVITE sip:bob@biloxi.example.com SIP/2.0", line.encode(), 1)
    with pytest.raises(SipError) as info:
        parse_message(data)
    assert info.value.status == 400


# --- responses ------------------------------------------------------------------


def response_bytes(status_line: str) -> bytes:
    return (
        f"{status_line}\r\n"
        "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"
        "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_response_parsing() -> None:
    resp = parse_message(response_bytes("SIP/2.0 180 Ringing"))
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason, resp.cseq) == (180, "Ringing", CSeq(1, "INVITE"))
    assert resp.to.tag == "2"
    empty = parse_message(response_bytes("SIP/2.0 100 "))
    assert isinstance(empty, Response) and (empty.status, empty.reason) == (100, "")
    bare = parse_message(response_bytes("SIP/2.0 100"))
    assert isinstance(bare, Response) and bare.reason == ""


@pytest.mark.parametrize(
    "line",
    [
        "SIP/2.0 4294967301 better not break",
        "SIP/2.0 20 OK",
        "SIP/2.0 OK",
        "SIP/2.0 099 x",
        "SIP/2.0 2x0 x",
        "SIP/",
    ],
)
def test_malformed_status_line(line: str) -> None:
    with pytest.raises(SipError) as info:
        parse_message(response_bytes(line))
    assert info.value.status == 400 and info.value.message is None


# --- serialization -----------------------------------------------------------------


def test_to_bytes_recomputes_content_length_and_canonical_names() -> None:
    req = parse_request(invite().replace(b"Call-ID:", b"i:").replace(b"CSeq:", b"cseq:"))
    req.body = b"changed"
    out = req.to_bytes()
    assert b"\r\nCall-ID: a84b4c76e66710" in out and b"\r\nCSeq: 314159 INVITE" in out
    assert out.endswith(b"Content-Length: 7\r\n\r\nchanged")
    again = parse_request(out)
    assert again.body == b"changed"


def test_to_bytes_adds_content_length_when_absent() -> None:
    req = Request("OPTIONS", "sip:a@b", [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")])
    assert req.to_bytes() == (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    req.uri = parse_uri("sip:x@y;lr")
    assert req.to_bytes().startswith(b"OPTIONS sip:x@y;lr SIP/2.0\r\n")


@pytest.mark.parametrize(
    "name",
    [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
        "inv2543",
        "cparam01",
        "bcast",
    ],
)
def test_round_trip_keeps_every_view(name: str) -> None:
    first = parse_message(load(name))
    second = parse_message(first.to_bytes())
    assert second == first
    for view in ("call_id", "cseq", "vias", "from_", "to", "contacts", "max_forwards"):
        assert getattr(second, view) == getattr(first, view)
    if isinstance(first, Request):
        assert isinstance(second, Request) and second.uri == first.uri


# --- torture messages that must parse (RFC 4475 §3.1.1, §3.3, §3.4) -----------------


def test_torture_wsinv() -> None:
    req = parse_request(load("wsinv"))
    assert req.uri == SipURI("sip", "carol", None, "switch.example.org", None, {"oddparam": None})
    assert req.to.tag == "7731ab" and req.to.uri_text == "sip:carol@switch.example.org"
    assert req.from_.display == 'Dave "The Rock"' and req.from_.tag == "55xq"
    assert req.max_forwards == 68
    assert req.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in req.vias] == [
        ("UDP", "198.51.100.2", "z9hG4bKwsinv1"),
        ("TCP", "relay.example.org", "z9hG4bKwsinv2"),
        ("UDP", "203.0.113.111", "z9hG4bKwsinv3"),
    ]
    assert "rport" in req.top_via.params
    assert req.headers.get("NoSuchHeader") == "a value continued on the next line"
    assert req.headers.get("StrangeHeaderValue") == ";;,,;;,;"
    assert req.headers.get("Subject") == "" and req.headers.get("Reject-Contact") == ""
    (contact,) = req.contacts
    assert contact.display == "Quoted String"
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(req.body) == 150


def test_torture_intmeth() -> None:
    req = parse_request(load("intmeth"))
    assert req.method == "!odd-Method0123456789_*+`.%indeed'~"
    assert req.cseq.method == req.method
    assert req.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.from_.display == "token1~` token2'+_ token3*%!.-"
    assert req.from_.tag == "_token~1'+`*%!-."
    assert req.from_.params["fromparam''~+*_!.-%"] == '"работа"'
    assert req.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert req.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert isinstance(req.uri, SipURI) and req.uri.password is not None


def test_torture_escapes() -> None:
    req = parse_request(load("esc01"))
    assert isinstance(req.uri, SipURI) and req.uri.user == "sips:user@example.org"
    assert req.to.uri == SipURI("sip", "user", None, "example.org")
    assert req.contacts[0].uri == SipURI(
        "sip", "caller", None, "host5.example.net", None, {"lr": None, "name": "value%41"}
    )
    nul = parse_request(load("escnull"))
    assert [c.uri.user for c in nul.contacts] == ["\x00", "\x00\x00"]  # type: ignore[union-attr]
    esc2 = parse_request(load("esc02"))
    assert esc2.method == "RE%47IST%45R" and esc2.to.display == "%Z%45"
    assert esc2.headers.getall("C%6Fntact") == ["<sip:alias2@host2.example.org>"]


def test_torture_misc_valid() -> None:
    assert parse_request(load("lwsdisp")).from_.display == "caller"
    long = parse_request(load("longreq"))
    assert len(long.vias) == 35 and long.top_via.received == "192.0.2.35"
    dbl = parse_request(load("dblreq"))
    assert dbl.method == "REGISTER" and dbl.body == b""
    semi = parse_request(load("semiuri"))
    assert semi.uri == SipURI("sip", "user;par=u@example.net", None, "example.org")
    assert parse_request(load("transports")).vias[3].transport == "UNKNOWN"
    mpart = parse_request(load("mpart01"))
    assert bytes(range(256)) in mpart.body
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, Response) and unreason.reason.endswith("простое")
    old = parse_request(load("inv2543"))
    assert old.top_via.branch is None and old.from_.tag is None and old.max_forwards is None
    c1 = parse_request(load("cparam01")).contacts[0]
    c2 = parse_request(load("cparam02")).contacts[0]
    assert c1.params == {"unknownparam": None} and c2.params == {}
    route = parse_request(load("regescrt")).contacts[0].uri
    assert isinstance(route, SipURI) and route.headers == {"Route": "<sip:sip.example.org>"}


def test_torture_scalarlg_response_views_fail() -> None:
    resp = parse_message(load("scalarlg"))
    assert isinstance(resp, Response) and resp.status == 503
    with pytest.raises(SipError):
        resp.cseq  # noqa: B018


# --- make_response (RFC 3261 §8.2.6) -------------------------------------------------


def test_make_response_copies_and_tags() -> None:
    req = parse_request(
        invite("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", "Timestamp: 54")
    )
    resp = make_response(req, 180, to_tag="abc")
    assert resp.reason == "Ringing"
    assert resp.headers.getall("Via") == req.headers.getall("Via")
    assert resp.headers.get("From") == req.headers.get("From")
    assert resp.headers.get("Call-ID") == req.call_id and resp.cseq == req.cseq
    assert resp.to.tag == "abc"
    assert "Timestamp" not in resp.headers
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"
    tagged = parse_request(
        invite().replace(b"To: Bob <sip:bob@biloxi.example.com>", b"To: <sip:b@h>;tag=old")
    )
    assert make_response(tagged, 200, to_tag="new").to.tag == "old"
    out = make_response(
        req, 200, "Fine", headers=[("Contact", "<sip:b@h>"), ("c", "application/sdp")], body=SDP
    )
    data = out.to_bytes()
    assert data.startswith(b"SIP/2.0 200 Fine\r\n")
    assert (
        f"Content-Length: {len(SDP)}\r\n".encode() in data
        and b"Content-Type: application/sdp" in data
    )
    reparsed = parse_message(data)
    assert isinstance(reparsed, Response) and reparsed.body == SDP


def test_make_response_on_partial_request() -> None:
    req = parse_request(
        invite().replace(b"To: Bob <sip:bob@biloxi.example.com>", b'To: "broken <sip:b@h>')
    )
    resp = make_response(req, 400, to_tag="t")  # must not raise although To is malformed
    assert resp.status == 400 and resp.reason == "Bad Request"


def test_reason_table() -> None:
    assert REASONS[423] == "Interval Too Brief"
    assert REASONS[481] == "Call/Transaction Does Not Exist"
    for code in (
        100,
        180,
        181,
        182,
        183,
        200,
        300,
        301,
        302,
        305,
        380,
        400,
        401,
        402,
        403,
        404,
        405,
        406,
        407,
        408,
        410,
        413,
        414,
        415,
        416,
        420,
        421,
        423,
        480,
        481,
        482,
        483,
        484,
        485,
        486,
        487,
        488,
        491,
        493,
        500,
        501,
        502,
        503,
        504,
        505,
        513,
        600,
        603,
        604,
        606,
    ):
        assert code in REASONS
    assert Response(499).reason == "Bad Request"  # unknown codes read as x00 (§8.1.3.2)


# --- stamp_via / response_destination (RFC 3261 §18.2, RFC 3581) -------------------


def test_stamp_via_received_when_host_differs() -> None:
    req = parse_request(invite().replace(b";rport", b""))
    stamp_via(req, "198.51.100.9", 5062)
    assert req.top_via.received == "198.51.100.9"
    assert "rport" not in req.top_via.params
    assert make_response(req, 200).top_via.received == "198.51.100.9"


def test_stamp_via_nothing_when_same_host_and_no_rport() -> None:
    data = invite().replace(
        b"pc33.atlanta.example.com:5062;branch=z9hG4bK776asdhds;rport",
        b"192.0.2.4:5062;branch=z9hG4bK776asdhds",
    )
    req = parse_request(data)
    stamp_via(req, "192.0.2.4", 5062)
    assert req.to_bytes() == data


def test_stamp_via_rport_sets_received_even_if_equal() -> None:
    data = invite("Via: SIP/2.0/UDP second.example.com;branch=z9hG4bKs").replace(
        b"pc33.atlanta.example.com:5062;branch=z9hG4bK776asdhds;rport",
        b"192.0.2.4:5060;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP other;branch=z9hG4bKo",
    )
    req = parse_request(data)
    stamp_via(req, "192.0.2.4", 40123)
    top = req.top_via
    assert (top.received, top.rport, top.branch) == ("192.0.2.4", 40123, "z9hG4bK776asdhds")
    assert [v.host for v in req.vias] == ["192.0.2.4", "other", "second.example.com"]
    resp = make_response(req, 200)
    assert resp.headers.getall("Via")[0].startswith(
        "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK776asdhds;rport=40123;received=192.0.2.4,"
    )


def test_stamp_via_ipv6_same_address() -> None:
    data = (
        invite()
        .replace(b"pc33.atlanta.example.com:5062", b"[2001:db8::1]:5062")
        .replace(b";rport", b"")
    )
    req = parse_request(data)
    stamp_via(req, "2001:DB8:0::1", 5062)
    assert req.top_via.received is None


def test_response_destination() -> None:
    src = Peer("udp", "198.51.100.9", 40123)
    via = Via("UDP", "pc33.example.com", 5062, {"branch": "b"})
    assert response_destination(via, src) == Peer("udp", "pc33.example.com", 5062)
    via.params["received"] = "198.51.100.9"
    assert response_destination(via, src) == Peer("udp", "198.51.100.9", 5062)
    via.params["rport"] = "40123"
    assert response_destination(via, src) == Peer("udp", "198.51.100.9", 40123)
    assert response_destination(Via("UDP", "h"), src) == Peer("udp", "h", 5060)
    assert response_destination(Via("UDP", "h", None, {"rport": None}), src) == Peer(
        "udp", "h", 5060
    )
    maddr = Via("UDP", "h", 5070, {"maddr": "224.0.1.75"})
    assert response_destination(maddr, src) == Peer("udp", "h", 5070)
    tcp = Peer("tcp", "198.51.100.9", 51000)
    assert response_destination(Via("TCP", "h", 5060), tcp) == tcp
    assert response_destination(Via("TLS", "h"), Peer("tls", "x", 1)) == Peer("tls", "x", 1)
    assert response_destination(Via("WSS", "h.invalid"), Peer("ws", "x", 2)) == Peer("ws", "x", 2)
