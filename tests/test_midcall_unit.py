"""Inside an answered call, on virtual time: re-INVITE pass-through, hold with music, 491,
session timers (RFC 4028). Driven through SipCore with messages in memory."""

from __future__ import annotations

import pytest

from softswitch.b2bua import Bridge, PlayMoh, StopMoh, WriteCdr
from softswitch.core import SipCore
from softswitch.sdp import parse_sdp
from softswitch.sip.message import Request, make_response, parse_message
from tests.switchkit import answer_challenge
from tests.test_b2bua_unit import (
    B2,
    OFFER,
    REALM,
    WALL,
    A,
    invite,
    make_core,
    requests_to,
    responses_to,
)


def answered(core: SipCore, session_expires: str | None = None) -> tuple[Request, Request]:
    """A call 1001 -> 1002 answered by B2; (A's INVITE, the switch's INVITE to B2)."""
    extra = b"" if session_expires is None else (
        f"Session-Expires: {session_expires}\r\nSupported: timer\r\n".encode())
    first = invite("1002").replace(b"Content-Type:", extra + b"Content-Type:", 1)
    out = core.receive_datagram(first, A, 0.0, WALL)
    (challenge,) = [r for r in (parse_message(s.data) for s in out) if r.status == 407]
    challenge.headers.set("WWW-Authenticate", challenge.headers.get("Proxy-Authenticate"))
    value = answer_challenge(challenge, user="1001", password="pw1001", method="INVITE",
                             uri=f"sip:1002@{REALM}")
    second = invite("1002", 2, value).replace(b"Content-Type:", extra + b"Content-Type:", 1)
    out = core.receive_datagram(second, A, 0.0, WALL)
    a_invite = parse_message(second)
    assert isinstance(a_invite, Request)
    (inv2,) = requests_to(out, B2)
    ok = make_response(inv2, 200, "OK", to_tag="t5202", body=OFFER.replace(b"4000", b"6000"),
                       headers=[("Contact", "<sip:1002@127.0.0.1:5202>"),
                                ("Content-Type", "application/sdp")])
    out = core.receive_message(ok, B2, 1.0, WALL + 1)
    (final,) = [r for r in responses_to(out, A) if r.status == 200]
    ack = Request("ACK", "sip:switch@127.0.0.1:5060", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK-ack"), ("Max-Forwards", "70"),
        ("From", a_invite.headers.get("From") or ""), ("To", final.headers.get("To") or ""),
        ("Call-ID", a_invite.call_id), ("CSeq", "2 ACK")])
    core.receive_message(ack, A, 1.1, WALL + 1.1)
    core.commands.clear()
    a_invite.headers.set("To", final.headers.get("To") or "")
    return a_invite, inv2


def in_dialog_from_a(a_invite: Request, method: str, cseq: int, body: bytes = b"",
                     extra: list[tuple[str, str]] | None = None) -> Request:
    headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK-r{cseq}"),
               ("Max-Forwards", "70"), ("From", a_invite.headers.get("From") or ""),
               ("To", a_invite.headers.get("To") or ""), ("Call-ID", a_invite.call_id),
               ("CSeq", f"{cseq} {method}"), ("Contact", "<sip:1001@127.0.0.1:5098>"),
               *(extra or [])]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Request(method, "sip:switch@127.0.0.1:5060", headers, body)


def sdp_from_a(version: int, direction: str | None = None, port: int = 4000) -> bytes:
    text = OFFER.replace(b"o=- 1 1 ", f"o=- 1 {version} ".encode())
    text = text.replace(b"4000", str(port).encode())
    if direction:
        text += f"a={direction}\r\n".encode()
    return text


def test_reinvite_passes_through_reanchored_and_answer_comes_back() -> None:
    core = make_core()
    a_invite, inv2 = answered(core)
    out = core.receive_message(in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(2, port=4100)),
                               A, 5.0, WALL + 5)
    (reinvite,) = [r for r in requests_to(out, B2) if r.method == "INVITE"]
    sent = parse_sdp(reinvite.body)
    # Re-anchored at the switch's port facing B, under the origin we use there, version + 1.
    assert sent.media[0].port == 20002 and sent.connection is not None
    assert sent.connection.host == "127.0.0.1"
    offered_b = parse_sdp(inv2.body)
    assert sent.origin.session_id == offered_b.origin.session_id
    assert sent.origin.version == offered_b.origin.version + 1  # RFC 3264 §8
    assert b"4100" not in reinvite.body
    assert all(r.status < 200 for r in responses_to(out, A))  # waits for B's answer
    # A second offer from B meanwhile: glare, 491 (RFC 3261 §14.2).
    glare = Request("INVITE", "sip:switch@127.0.0.1:5060", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5202;branch=z9hG4bK-glare"), ("Max-Forwards", "70"),
        ("From", f"<sip:1002@{REALM}>;tag=t5202"), ("To", reinvite.headers.get("From") or ""),
        ("Call-ID", reinvite.call_id), ("CSeq", "7 INVITE"),
        ("Content-Type", "application/sdp")], OFFER.replace(b"4000", b"6100"))
    out_glare = core.receive_message(glare, B2, 5.1, WALL + 5.1)
    assert [r.status for r in responses_to(out_glare, B2) if r.status >= 200] == [491]
    # B answers: ACKed; A gets the answer re-anchored at the switch's port facing A.
    ok = make_response(reinvite, 200, "OK", body=OFFER.replace(b"4000", b"6200").replace(
        b"o=- 1 1 ", b"o=- 1 2 "), headers=[("Contact", "<sip:1002@127.0.0.1:5202>"),
                                          ("Content-Type", "application/sdp")])
    out = core.receive_message(ok, B2, 5.2, WALL + 5.2)
    assert [r.method for r in requests_to(out, B2)] == ["ACK"]
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert final.status == 200
    answer = parse_sdp(final.body)
    assert answer.media[0].port == 20000 and b"6200" not in final.body
    assert answer.origin.version == 2  # RFC 3264 §8: our first answer to A was version 1
    (bridge,) = [c for c in core.commands if isinstance(c, Bridge)]
    assert (bridge.a.remote_port, bridge.b.remote_port) == (4100, 6200)
    # A 2xx retransmission is ACKed again.
    again = core.receive_message(ok, B2, 5.3, WALL + 5.3)
    assert [r.method for r in requests_to(again, B2)] == ["ACK"]


def test_hold_is_answered_by_the_switch_with_music_and_resume_bridges_again() -> None:
    core = make_core()
    a_invite, _ = answered(core)
    assert core.b2bua is not None
    (call,) = core.b2bua.calls.values()
    out = core.receive_message(
        in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(2, "sendonly")), A, 5.0, WALL + 5)
    assert requests_to(out, B2) == []  # the held party is not re-INVITEd
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert final.status == 200 and parse_sdp(final.body).media[0].direction == "recvonly"
    assert parse_sdp(final.body).origin.version == 2
    (moh,) = [c for c in core.commands if isinstance(c, PlayMoh)]
    assert (moh.port, moh.holder_port, moh.payload_type) == (call.b_port, call.a_port, 8)
    assert not any(isinstance(c, Bridge) for c in core.commands)
    core.commands.clear()
    # Inactive while held: still answered here (inactive), no second PlayMoh.
    out = core.receive_message(
        in_dialog_from_a(a_invite, "INVITE", 4, sdp_from_a(3, "inactive")), A, 6.0, WALL + 6)
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert parse_sdp(final.body).media[0].direction == "inactive"
    assert core.commands == []
    # Resume (sendrecv): music stops, the relay is bridged again.
    out = core.receive_message(
        in_dialog_from_a(a_invite, "INVITE", 5, sdp_from_a(4)), A, 7.0, WALL + 7)
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert parse_sdp(final.body).media[0].direction == "sendrecv"
    assert [type(c) for c in core.commands] == [StopMoh, Bridge]
    assert call.held_by is None


def test_unchanged_offer_is_a_refresh_answered_with_the_same_version() -> None:
    core = make_core()
    a_invite, _ = answered(core)
    out = core.receive_message(in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(1)), A,
                               5.0, WALL + 5)
    assert requests_to(out, B2) == []
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert parse_sdp(final.body).origin.version == 1  # RFC 3264 §8: nothing changed
    out = core.receive_message(in_dialog_from_a(a_invite, "UPDATE", 4), A, 6.0, WALL + 6)
    assert [r.status for r in responses_to(out, A)] == [200]


def test_session_timer_422_below_min_se() -> None:
    core = make_core()
    out = core.receive_datagram(invite("1002").replace(
        b"Content-Type:", b"Session-Expires: 30\r\nContent-Type:", 1), A, 0.0, WALL)
    (challenge,) = [r for r in (parse_message(s.data) for s in out) if r.status == 407]
    challenge.headers.set("WWW-Authenticate", challenge.headers.get("Proxy-Authenticate"))
    value = answer_challenge(challenge, user="1001", password="pw1001", method="INVITE",
                             uri=f"sip:1002@{REALM}")
    out = core.receive_datagram(invite("1002", 2, value).replace(
        b"Content-Type:", b"Session-Expires: 30\r\nContent-Type:", 1), A, 0.0, WALL)
    (resp,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert resp.status == 422 and resp.headers.get("Min-SE") == "90"
    assert requests_to(out, B2) == []


@pytest.mark.parametrize("refresher", ["uac", "uas"])
def test_session_timer_refreshes_or_ends_the_call(refresher: str) -> None:
    core = make_core()
    a_invite, _ = answered(core, f"120;refresher={refresher}")
    assert core.b2bua is not None
    (call,) = core.b2bua.calls.values()
    assert call.session is not None and call.session.interval == 120
    if refresher == "uas":
        # We refresh at half the interval: UPDATE to the caller (RFC 4028 §7.4).
        when = core.get_timer()
        assert when is not None and when <= 61.0
        out = core.handle_timer(61.0, WALL + 61)
        (update,) = [r for r in requests_to(out, A) if r.method == "UPDATE"]
        assert update.headers.get("Session-Expires") == "120;refresher=uac"
        ok = make_response(update, 200, "OK", headers=[("Session-Expires", "120;refresher=uac")])
        core.receive_message(ok, A, 61.1, WALL + 61.1)
        assert call.session_timer is not None and call.session_timer.refresh_at == 121.1
        return
    # The caller refreshes: its re-INVITE at 60 s keeps the call; none after that ends it.
    out = core.receive_message(
        in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(1),
                         [("Session-Expires", "120;refresher=uac"), ("Supported", "timer")]),
        A, 60.0, WALL + 60)
    (final,) = [r for r in responses_to(out, A) if r.status >= 200]
    assert final.headers.get("Session-Expires") == "120;refresher=uac"
    core.receive_message(in_dialog_from_a(a_invite, "ACK", 3), A, 60.1, WALL + 60.1)
    early = core.handle_timer(100.0, WALL + 100)
    assert [r for r in requests_to(early, A) + requests_to(early, B2) if r.method == "BYE"] == []
    # RFC 4028 §10: BYE at interval - min(32, interval/3) after the last refresh.
    out = core.handle_timer(60.0 + 88.0, WALL + 148)
    assert [r.method for r in requests_to(out, A) if r.method == "BYE"] == ["BYE"]
    assert [r.method for r in requests_to(out, B2) if r.method == "BYE"] == ["BYE"]
    (cdr,) = [c.cdr for c in core.commands if isinstance(c, WriteCdr)]
    assert cdr.hangup_cause == "session_expired"


def _fire_timers(core: SipCore, until: float) -> list:
    """Every core timer up to `until`, at its deadline; what was sent, with the time."""
    sent = []
    while (at := core.get_timer()) is not None and at <= until:
        sent.extend((at, m) for m in core.handle_timer(at, WALL + at))
    return sent


def test_2xx_to_a_reinvite_is_retransmitted_until_the_ack() -> None:
    """RFC 3261 §13.3.1.4 / §14.2: the 2xx to a re-INVITE goes out again at T1, 2*T1, ...
    until the ACK comes, over UDP, as the first INVITE's does."""
    core = make_core()
    a_invite, _ = answered(core)
    hold = in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(2, "sendonly"))
    out = core.receive_message(hold, A, 5.0, WALL + 5)
    (ok,) = [m for m in out if m.dest == A and m.data.startswith(b"SIP/2.0 200")]
    sent = [at for at, m in _fire_timers(core, 6.6) if m.data == ok.data and m.dest == A]
    assert [round(at, 3) for at in sent] == [5.5, 6.5]  # T1, then 2*T1 later
    ack = in_dialog_from_a(a_invite, "ACK", 3)
    core.receive_message(ack, A, 6.7, WALL + 6.7)
    assert [m for _, m in _fire_timers(core, 40.0) if m.data == ok.data] == []
    assert core.b2bua is not None and len(core.b2bua.calls) == 1  # the call goes on


def test_2xx_to_a_reinvite_never_acked_ends_the_call() -> None:
    core = make_core()
    a_invite, _ = answered(core)
    core.receive_message(in_dialog_from_a(a_invite, "INVITE", 3, sdp_from_a(2, "sendonly")),
                         A, 5.0, WALL + 5)
    # an ACK for another CSeq (the first INVITE's, again) does not stop it
    core.receive_message(in_dialog_from_a(a_invite, "ACK", 2), A, 5.1, WALL + 5.1)
    sent = _fire_timers(core, 5.0 + 32.0)
    retransmitted = [at for at, m in sent if m.dest == A and m.data.startswith(b"SIP/2.0 200")]
    assert len(retransmitted) >= 8 and retransmitted[-1] < 37.0
    byes = [m.dest for _, m in sent if m.data.startswith(b"BYE ")]
    assert sorted(byes) == sorted([A, B2])  # §13.3.1.4: the session ends with BYE
    assert core.b2bua is not None and core.b2bua.calls == {}


def test_2xx_to_a_reinvite_from_the_callee_is_retransmitted_until_its_ack() -> None:
    core = make_core()
    a_invite, inv2 = answered(core)

    def from_b(method: str, cseq: int, body: bytes = b"") -> Request:
        headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:5202;branch=z9hG4bK-b{cseq}"),
                   ("Max-Forwards", "70"), ("From", f"<sip:1002@{REALM}>;tag=t5202"),
                   ("To", inv2.headers.get("From") or ""), ("Call-ID", inv2.call_id),
                   ("CSeq", f"{cseq} {method}"), ("Contact", "<sip:1002@127.0.0.1:5202>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request(method, "sip:switch@127.0.0.1:5060", headers, body)

    hold = OFFER.replace(b"4000", b"6000").replace(b"o=- 1 1 ", b"o=- 1 2 ") + b"a=sendonly\r\n"
    out = core.receive_message(from_b("INVITE", 7, hold), B2, 5.0, WALL + 5)
    (ok,) = [m for m in out if m.dest == B2 and m.data.startswith(b"SIP/2.0 200")]
    sent = [at for at, m in _fire_timers(core, 6.6) if m.data == ok.data and m.dest == B2]
    assert [round(at, 3) for at in sent] == [5.5, 6.5]
    # the caller's ACK with the same CSeq number is not the callee's
    core.receive_message(in_dialog_from_a(a_invite, "ACK", 7), A, 6.6, WALL + 6.6)
    assert [round(at, 3) for at, m in _fire_timers(core, 8.6) if m.data == ok.data] == [8.5]
    core.receive_message(from_b("ACK", 7), B2, 8.7, WALL + 8.7)
    assert [m for _, m in _fire_timers(core, 40.0) if m.data == ok.data] == []
    assert core.b2bua is not None and len(core.b2bua.calls) == 1
