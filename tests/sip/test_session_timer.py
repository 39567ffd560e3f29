"""RFC 4028 session timers: header parsing, negotiation both ways, 422, refresh arithmetic."""

from __future__ import annotations

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.message import Request, Response, make_response, parse_message
from softswitch.sip.session_timer import (
    RefreshDue,
    SessionExpired,
    SessionExpires,
    SessionTimer,
    negotiate_uac,
    negotiate_uas,
    parse_min_se,
    parse_session_expires,
    response_headers,
    retry_after_422,
)


def invite(extra: str = "") -> Request:
    text = (
        "INVITE sip:1000@203.0.113.5 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKst\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:1000@example.com>\r\n"
        "Call-ID: st1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@192.0.2.10>\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def answer(request: Request, status: int = 200, headers: list[tuple[str, str]] | None = None,
           ) -> Response:
    message = parse_message(make_response(request, status, to_tag="s1",
                                          headers=headers or []).to_bytes())
    assert isinstance(message, Response)
    return message


@pytest.mark.parametrize(("value", "parsed"), [
    ("1800", SessionExpires(1800)),
    ("1800;refresher=uac", SessionExpires(1800, "uac")),
    (" 90 ; refresher=UAS ", SessionExpires(90, "uas")),
    ("4000;foo=bar;refresher=uas", SessionExpires(4000, "uas")),
])
def test_parse_session_expires(value: str, parsed: SessionExpires) -> None:
    assert parse_session_expires(value) == parsed


@pytest.mark.parametrize("value", ["", "abc", "-5", "0", "1800;refresher=proxy",
                                   "1800;refresher", "1800;;", "١٨٠٠"])
def test_bad_session_expires_is_400(value: str) -> None:
    with pytest.raises(SipError) as exc:
        parse_session_expires(value)
    assert exc.value.status == 400


def test_parse_min_se_and_str() -> None:
    assert parse_min_se("120;x=1") == 120
    with pytest.raises(SipError):
        parse_min_se("soon")
    assert str(SessionExpires(1800, "uac")) == "1800;refresher=uac"
    assert str(SessionExpires(600)) == "600"


def test_compact_form_x_is_read() -> None:
    assert negotiate_uas(invite("x: 600;refresher=uac\r\n")) == SessionExpires(600, "uac")


@pytest.mark.parametrize(("extra", "negotiated"), [
    # the request's refresher stands (§9)
    ("Session-Expires: 600;refresher=uac\r\nSupported: timer\r\n", SessionExpires(600, "uac")),
    ("Session-Expires: 600;refresher=uas\r\nSupported: timer\r\n", SessionExpires(600, "uas")),
    # none given: the UAC supports timer, so it refreshes
    ("Session-Expires: 600\r\nSupported: 100rel, timer\r\n", SessionExpires(600, "uac")),
    # a proxy inserted Session-Expires, the UAC knows nothing of timers: we refresh
    ("Session-Expires: 600\r\n", SessionExpires(600, "uas")),
    # longer than we like: shortened to our interval
    ("Session-Expires: 7200\r\nSupported: timer\r\n", SessionExpires(1800, "uac")),
    # shortened, but never below the request's Min-SE
    ("Session-Expires: 7200\r\nMin-SE: 3600\r\nSupported: timer\r\n",
     SessionExpires(3600, "uac")),
    # nobody asked: we run the timer and refresh ourselves
    ("", SessionExpires(1800, "uas")),
    ("Supported: timer\r\n", SessionExpires(1800, "uas")),
])
def test_negotiate_uas(extra: str, negotiated: SessionExpires) -> None:
    assert negotiate_uas(invite(extra)) == negotiated


def test_too_small_is_422_with_min_se() -> None:
    with pytest.raises(SipError) as exc:
        negotiate_uas(invite("Session-Expires: 60\r\n"))
    assert (exc.value.status, exc.value.reason) == (422, "Session Interval Too Small")
    assert exc.value.headers == [("Min-SE", "90")]
    with pytest.raises(SipError) as exc:
        negotiate_uas(invite("Session-Expires: 200\r\n"), min_se=300)
    assert exc.value.headers == [("Min-SE", "300")]
    # our Min-SE never goes below the RFC's floor of 90 s
    with pytest.raises(SipError):
        negotiate_uas(invite("Session-Expires: 60\r\n"), min_se=30)
    assert negotiate_uas(invite("Session-Expires: 90\r\n")) == SessionExpires(90, "uas")


def test_response_headers() -> None:
    assert response_headers(SessionExpires(600, "uac")) == [
        ("Session-Expires", "600;refresher=uac"), ("Require", "timer")]
    assert response_headers(SessionExpires(600, "uas")) == [
        ("Session-Expires", "600;refresher=uas")]


def test_negotiate_uac() -> None:
    request = invite("Session-Expires: 1800\r\nSupported: timer\r\n")
    asked = SessionExpires(1800)
    got = answer(request, headers=[("Session-Expires", "900;refresher=uas")])
    assert negotiate_uac(got, asked) == SessionExpires(900, "uas")
    # the peer knows no timers: we refresh at the interval we asked for (§7.2)
    assert negotiate_uac(answer(request), asked) == SessionExpires(1800, "uac")
    assert negotiate_uac(answer(request), None) is None
    bare = answer(request, headers=[("Session-Expires", "900")])
    assert negotiate_uac(bare, asked) == SessionExpires(900, "uac")


def test_retry_after_422() -> None:
    request = invite("Session-Expires: 60\r\n")
    too_small = answer(request, 422, [("Min-SE", "300")])
    assert retry_after_422(too_small, SessionExpires(60, "uac")) == SessionExpires(300, "uac")
    assert retry_after_422(too_small, None) == SessionExpires(300)
    with pytest.raises(SipError):
        retry_after_422(answer(request, 422), None)


def drive(timer: SessionTimer, until: float) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    while (at := timer.get_timer()) is not None and at <= until:
        out.extend((at, type(e).__name__) for e in timer.handle_timer(at))
    return out


def test_refresher_refreshes_at_half() -> None:
    timer = SessionTimer(SessionExpires(1800, "uac"), "uac", now=100.0)
    assert timer.we_refresh
    assert timer.get_timer() == 1000.0  # 100 + 1800/2
    assert drive(timer, 1000.0) == [(1000.0, "RefreshDue")]
    # the refresh (a re-INVITE we sent) succeeded at 1001: the clock restarts
    timer.refreshed(SessionExpires(1800, "uac"), "uac", 1001.0)
    assert timer.get_timer() == 1901.0
    # no refresh got through: the session ends slightly before it would expire (§10)
    assert drive(timer, 10_000.0) == [(1901.0, "RefreshDue"), (2769.0, "SessionExpired")]
    assert timer.expired and timer.get_timer() is None and timer.handle_timer(9e9) == []


@pytest.mark.parametrize(("interval", "bye_after"), [
    (1800, 1800 - 32),  # min(32, 600) = 32
    (90, 60),  # min(32, 30) = 30
    (120, 88),  # min(32, 40) = 32
])
def test_non_refresher_expiry(interval: int, bye_after: float) -> None:
    timer = SessionTimer(SessionExpires(interval, "uac"), "uas", now=0.0)
    assert not timer.we_refresh and timer.refresh_at is None
    assert timer.get_timer() == bye_after
    assert timer.handle_timer(bye_after - 0.001) == []
    assert timer.handle_timer(bye_after) == [SessionExpired()]


def test_refresh_by_the_peer_restarts_and_roles_follow_the_transaction() -> None:
    # We answered the INVITE with refresher=uac: the caller refreshes.
    timer = SessionTimer(SessionExpires(600, "uac"), "uas", now=0.0)
    assert timer.get_timer() == 568.0
    timer.refreshed(SessionExpires(600, "uac"), "uas", 300.0)  # its re-INVITE at 300
    assert timer.get_timer() == 868.0
    # Now we send a refresh ourselves asking to refresh (uac in that transaction).
    timer.refreshed(SessionExpires(600, "uac"), "uac", 400.0)
    assert timer.we_refresh and timer.get_timer() == 700.0
    assert timer.handle_timer(700.0) == [RefreshDue()]
    assert timer.handle_timer(700.0) == []  # once per refresh
    assert timer.get_timer() == 968.0
