"""check_request: RFC 3261 §8.2 / §16.3 request validation, and the RFC 4475 invalid messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.message import Request, parse_message
from softswitch.sip.validate import KNOWN_METHODS, check_request

TORTURE = Path(__file__).resolve().parent.parent / "vectors" / "torture"
ALLOWED = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"})
SUPPORTED = frozenset({"replaces", "timer"})


def build(
    method: str = "INVITE",
    *extra: str,
    uri: str = "sip:bob@example.com",
    cseq: str | None = None,
    drop: tuple[str, ...] = (),
) -> Request:
    lines = {
        "Via": "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
        "Max-Forwards": "70",
        "From": "<sip:alice@example.com>;tag=1",
        "To": "<sip:bob@example.com>",
        "Call-ID": "cid@192.0.2.1",
        "CSeq": cseq or f"1 {method}",
    }
    head = [f"{method} {uri} SIP/2.0"]
    head += [f"{k}: {v}" for k, v in lines.items() if k not in drop]
    head += list(extra)
    data = ("\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n").encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def fault(
    request: Request, allowed: frozenset[str] = ALLOWED, supported: frozenset[str] = SUPPORTED
) -> SipError:
    with pytest.raises(SipError) as info:
        check_request(request, allowed=allowed, supported=supported)
    return info.value


def test_valid_request_passes() -> None:
    check_request(build(), allowed=ALLOWED, supported=SUPPORTED)
    check_request(build(drop=("Max-Forwards",)), allowed=ALLOWED, supported=SUPPORTED)
    check_request(build(uri="tel:+15551234567"), allowed=ALLOWED, supported=SUPPORTED)
    check_request(build("INVITE", "Require: timer"), allowed=ALLOWED, supported=SUPPORTED)


def test_version_505() -> None:
    req = build()
    req.version = "SIP/3.0"
    err = fault(req)
    assert (err.status, err.reason) == (505, "Version Not Supported")


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(header: str) -> None:
    err = fault(build(drop=(header,)))
    assert err.status == 400 and header in err.reason
    assert err.message is None  # cannot form a response without it


@pytest.mark.parametrize(
    "header",
    [
        "From: <sip:x@y>;tag=2",
        "To: <sip:x@y>",
        "Call-ID: other",
        "CSeq: 2 INVITE",
        "Max-Forwards: 10",
        "Content-Type: text/plain",
    ],
)
def test_duplicated_single_valued_header(header: str) -> None:
    extra = [header, header] if header.startswith("Content-Type") else [header]
    err = fault(build("INVITE", *extra))
    assert err.status == 400 and "Duplicate" in err.reason
    assert err.message is not None


def test_duplicate_content_length() -> None:
    req = build()
    req.headers.add("Content-Length", "0")
    err = fault(req)
    assert err.status == 400 and "Content-Length" in err.reason


@pytest.mark.parametrize(
    "cseq",
    [
        "x INVITE",
        "1",
        "-1 INVITE",
        "2147483648 INVITE",
        "1 INVITE extra",
        "1.5 INVITE",
        '1 INV"ITE',
    ],
)
def test_bad_cseq(cseq: str) -> None:
    err = fault(build(cseq=cseq))
    assert err.status == 400 and "CSeq" in err.reason


def test_cseq_method_must_match() -> None:
    assert "CSeq method" in fault(build(cseq="1 BYE")).reason
    check_request(build("ACK", cseq="1 ACK"), allowed=ALLOWED, supported=SUPPORTED)
    check_request(build("CANCEL", cseq="1 CANCEL"), allowed=ALLOWED, supported=SUPPORTED)
    # RFC 3261 §17.1.1.3 / §9.1: never the INVITE's method.
    assert fault(build("ACK", cseq="1 INVITE")).status == 400
    assert fault(build("CANCEL", cseq="1 INVITE")).status == 400


@pytest.mark.parametrize("value", ["x", "-1", "256", "1 2", ""])
def test_bad_max_forwards(value: str) -> None:
    req = build()
    req.headers.set("Max-Forwards", value)
    err = fault(req)
    assert err.status == 400 and "Max-Forwards" in err.reason


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("From", '"unbalanced <sip:a@b>;tag=1'),
        ("To", "<sip:bob@example.com"),
        ("Contact", "<sip:a@b>, <sip:c@d"),
        ("Contact", "Bell, Alexander <sip:a@b>"),
        ("Via", "SIP/2.0/UDP"),
        ("Via", "SIP/2.0/UDP h;;"),
        ("From", "sip:a@b?x=y;tag=1"),
    ],
)
def test_malformed_address_headers(header: str, value: str) -> None:
    req = build()
    req.headers.set(header, value)
    err = fault(req)
    assert err.status == 400 and header in err.reason


def test_second_via_malformed() -> None:
    err = fault(build("INVITE", "Via: SIP/2.0/UDP ;branch=x"))
    assert err.status == 400 and "Via" in err.reason


def test_from_and_to_without_tag_are_fine() -> None:
    req = build()
    req.headers.set("From", "<sip:alice@example.com>")
    check_request(req, allowed=ALLOWED, supported=SUPPORTED)


def test_bad_call_id() -> None:
    req = build()
    req.headers.set("Call-ID", "a b")
    assert fault(req).status == 400


def test_request_uri_problems() -> None:
    assert fault(build(uri="sip:bob@example.com?Route=x")).status == 400
    assert fault(build(uri="sip:@example.com")).status == 400
    err = fault(build(uri="http://example.com/"))
    assert (err.status, err.reason) == (416, "Unsupported URI Scheme")
    assert err.message is not None


def test_max_forwards_zero() -> None:
    req = build()
    req.headers.set("Max-Forwards", "0")
    err = fault(req)
    assert (err.status, err.reason) == (483, "Too Many Hops")
    opts = build("OPTIONS")
    opts.headers.set("Max-Forwards", "0")
    check_request(opts, allowed=ALLOWED, supported=SUPPORTED)  # RFC 3261 §11


def test_unknown_method_501_known_method_405() -> None:
    err = fault(build("FOO"))
    assert (err.status, err.reason) == (501, "Not Implemented")
    assert err.headers == [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER")]
    err = fault(build("SUBSCRIBE"))
    assert (err.status, err.reason) == (405, "Method Not Allowed")
    assert err.headers[0][0] == "Allow" and "SUBSCRIBE" not in err.headers[0][1]
    assert set(KNOWN_METHODS) >= {
        "PRACK",
        "UPDATE",
        "MESSAGE",
        "REFER",
        "PUBLISH",
        "INFO",
        "NOTIFY",
    }
    check_request(build("X-CUSTOM"), allowed=ALLOWED | {"X-CUSTOM"}, supported=SUPPORTED)


def test_bad_extension_lists_each_unsupported_option() -> None:
    err = fault(build("INVITE", "Require: timer, 100rel", "Require: gruu", "Proxy-Require: x"))
    assert (err.status, err.reason) == (420, "Bad Extension")
    assert err.headers == [("Unsupported", "100rel, gruu")]
    # RFC 3261 §8.2.2.3: not for ACK or CANCEL.
    check_request(build("ACK", "Require: 100rel"), allowed=ALLOWED, supported=SUPPORTED)
    check_request(build("CANCEL", "Require: 100rel"), allowed=ALLOWED, supported=SUPPORTED)


def test_checks_happen_in_rfc_order() -> None:
    # 400 before 416, 416 before 483, 483 before 405/501, 405 before 420.
    req = build("SUBSCRIBE", "Require: nope", uri="http://x", cseq="1 SUBSCRIBE")
    req.headers.set("Max-Forwards", "0")
    req.headers.add("To", "<sip:dup@x>")
    assert fault(req).status == 400
    req.headers.set("To", "<sip:bob@example.com>")
    assert fault(req).status == 416
    req.uri = "sip:bob@example.com"
    assert fault(req).status == 483
    req.headers.set("Max-Forwards", "5")
    assert fault(req).status == 405
    assert fault(req, allowed=ALLOWED | {"SUBSCRIBE"}).status == 420


# --- RFC 4475 messages ------------------------------------------------------------

INVALID = {
    # name: (status from parse_message or check_request, answerable)
    "badinv01": (400, False),  # empty Via params: the response could not be routed
    "clerr": (400, True),
    "ncl": (400, True),
    "scalar02": (400, True),
    "quotbal": (400, True),
    "ltgtruri": (400, True),
    "lwsruri": (400, True),
    "lwsstart": (400, True),
    "trws": (400, True),
    "escruri": (400, True),
    "regbadct": (400, True),
    "badaspec": (400, True),
    "baddn": (400, True),
    "badvers": (505, True),
    "mismatch01": (400, True),
    "mismatch02": (400, True),  # RFC 4475 §3.1.2.18 accepts 400 (or 501)
    "bigcode": (400, False),
    "insuf": (400, False),
    "unkscm": (416, True),
    "novelsc": (416, True),
    "bext01": (420, True),
    "multi01": (400, True),
    "mcl01": (400, True),
}
VALID = [
    "wsinv",
    "esc01",
    "escnull",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "inv2543",
    "cparam01",
    "cparam02",
    "regescrt",
    "zeromf",
    "unksm2",
]
ALL_KNOWN = frozenset(KNOWN_METHODS)


@pytest.mark.parametrize(("name", "expected"), sorted(INVALID.items()))
def test_torture_invalid(name: str, expected: tuple[int, bool]) -> None:
    status, answerable = expected
    data = (TORTURE / f"{name}.sip").read_bytes()
    with pytest.raises(SipError) as info:
        msg = parse_message(data)
        assert isinstance(msg, Request)
        check_request(msg, allowed=ALL_KNOWN, supported=frozenset())
    assert info.value.status == status, info.value.reason
    assert (info.value.message is not None) is answerable
    if name == "bext01":
        assert info.value.headers == [("Unsupported", "nothingSupportedHere")]


@pytest.mark.parametrize("name", VALID)
def test_torture_valid_requests_pass(name: str) -> None:
    msg = parse_message((TORTURE / f"{name}.sip").read_bytes())
    assert isinstance(msg, Request)
    check_request(msg, allowed=ALL_KNOWN, supported=frozenset())


@pytest.mark.parametrize("name", ["intmeth", "esc02"])
def test_torture_unknown_methods_get_501(name: str) -> None:
    msg = parse_message((TORTURE / f"{name}.sip").read_bytes())
    assert isinstance(msg, Request)
    err = fault(msg, allowed=ALL_KNOWN)
    assert err.status == 501
