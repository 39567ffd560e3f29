"""Blind transfer (REFER, RFC 3515) on virtual time, through SipCore with messages in memory:
a call 1001 -> 1002 answered by B2; B2 (the transferor) REFERs the caller to 1003 (B3)."""

from __future__ import annotations

import pytest

from softswitch.b2bua import Bridge, ReleaseMedia, WriteCdr
from softswitch.config import UserConfig
from softswitch.core import SipCore
from softswitch.sip.message import Peer, Request, make_response
from tests.test_b2bua_unit import (
    B2,
    OFFER,
    REALM,
    WALL,
    A,
    b2bua_core,
    requests_to,
    responses_to,
)
from tests.test_midcall_unit import answered, in_dialog_from_a

B3 = Peer("udp", "127.0.0.1", 5203)


def make_core() -> SipCore:
    users = [UserConfig(extension=e, password=f"pw{e}") for e in ("1001", "1002", "1003")]
    return b2bua_core(users, [("1002", B2), ("1003", B3)], ring=5.0)


def refer_from_b(inv2: Request, cseq: int, refer_to: list[str]) -> Request:
    """A REFER from the callee (B2) inside its dialog with the switch."""
    headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:5202;branch=z9hG4bK-ref{cseq}"),
               ("Max-Forwards", "70"), ("From", f"<sip:1002@{REALM}>;tag=t5202"),
               ("To", inv2.headers.get("From") or ""), ("Call-ID", inv2.call_id),
               ("CSeq", f"{cseq} REFER"), ("Contact", "<sip:1002@127.0.0.1:5202>")]
    headers += [("Refer-To", value) for value in refer_to]
    return Request("REFER", "sip:switch@127.0.0.1:5060", headers)


def sipfrag(req: Request) -> str:
    assert req.method == "NOTIFY"
    assert req.headers.get("Event") == "refer"
    assert (req.headers.get("Content-Type") or "").startswith("message/sipfrag")
    return req.body.decode().strip()


def test_blind_transfer_bridges_the_caller_to_the_target_and_ends_the_transferor() -> None:
    core = make_core()
    assert core.b2bua is not None
    a_invite, inv2 = answered(core)
    (call,) = core.b2bua.calls.values()
    old_b_port = call.b_port
    out = core.receive_message(refer_from_b(inv2, 10, [f"<sip:1003@{REALM}>"]), B2, 5.0,
                               WALL + 5)
    assert [r.status for r in responses_to(out, B2)] == [202]
    (notify,) = [r for r in requests_to(out, B2)]
    assert sipfrag(notify) == "SIP/2.0 100 Trying"
    assert (notify.headers.get("Subscription-State") or "").startswith("active")
    (inv3,) = requests_to(out, B3)
    assert inv3.method == "INVITE" and "1003" in (inv3.headers.get("To") or "")
    assert ReleaseMedia((old_b_port,)) in core.commands  # the transferor's media is gone
    assert requests_to(out, A) == []  # the caller stays
    core.receive_message(make_response(notify, 200, "OK"), B2, 5.01, WALL + 5.01)
    core.commands.clear()
    ok3 = make_response(inv3, 200, "OK", to_tag="t5203", body=OFFER.replace(b"4000", b"7000"),
                        headers=[("Contact", "<sip:1003@127.0.0.1:5203>"),
                                 ("Content-Type", "application/sdp")])
    out = core.receive_message(ok3, B3, 6.0, WALL + 6)
    assert [r.method for r in requests_to(out, B3)] == ["ACK"]
    (bridge,) = [c for c in core.commands if isinstance(c, Bridge)]
    assert (bridge.a.remote_port, bridge.b.remote_port) == (4000, 7000)
    (final,) = requests_to(out, B2)
    assert sipfrag(final) == "SIP/2.0 200 OK"
    assert (final.headers.get("Subscription-State") or "").startswith("terminated")
    # The transferor answered the NOTIFY: now its leg ends with BYE.
    out = core.receive_message(make_response(final, 200, "OK"), B2, 6.1, WALL + 6.1)
    assert [r.method for r in requests_to(out, B2)] == ["BYE"]
    assert not any(isinstance(c, WriteCdr) for c in core.commands)  # the call goes on
    # The caller hangs up: the new party gets BYE; one CDR.
    out = core.receive_message(in_dialog_from_a(a_invite, "BYE", 9), A, 60.0, WALL + 60)
    assert [r.method for r in requests_to(out, B3)] == ["BYE"]
    assert [c.cdr.disposition for c in core.commands if isinstance(c, WriteCdr)] == ["answered"]
    assert core.b2bua.transfers == 1


@pytest.mark.parametrize(("refer_to", "status"), [
    ([], 400),
    (["<sip:1003@example.com>", "<sip:1001@example.com>"], 400),
    (["<not a uri"], 400),
    (["<sip:1003@example.com?Replaces=abc%3Bto-tag%3Dx%3Bfrom-tag%3Dy>"], 501),
    (["<sip:4711@example.com>"], 404),
])
def test_refused_refer_leaves_the_call_as_it_was(refer_to: list[str], status: int) -> None:
    core = make_core()
    assert core.b2bua is not None
    a_invite, inv2 = answered(core)
    out = core.receive_message(refer_from_b(inv2, 10, refer_to), B2, 5.0, WALL + 5)
    assert [r.status for r in responses_to(out, B2)] == [status]
    assert requests_to(out, B2) == [] and requests_to(out, B3) == []
    (call,) = core.b2bua.calls.values()
    assert call.winner is not None and call.transferor is None
    # Still a call between A and B2: A's BYE reaches B2.
    out = core.receive_message(in_dialog_from_a(a_invite, "BYE", 9), A, 9.0, WALL + 9)
    assert [r.method for r in requests_to(out, B2)] == ["BYE"]


def test_refer_from_the_caller_leg_is_not_implemented() -> None:
    core = make_core()
    a_invite, _ = answered(core)
    refer = in_dialog_from_a(a_invite, "REFER", 3, extra=[("Refer-To", f"<sip:1003@{REALM}>")])
    out = core.receive_message(refer, A, 5.0, WALL + 5)
    assert [r.status for r in responses_to(out, A)] == [501]


def test_refer_outside_a_dialog_is_481() -> None:
    core = make_core()
    answered(core)
    stray = Request("REFER", f"sip:1002@{REALM}", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK-stray"), ("Max-Forwards", "70"),
        ("From", f"<sip:1001@{REALM}>;tag=zz"), ("To", f"<sip:1002@{REALM}>"),
        ("Call-ID", "other@test"), ("CSeq", "1 REFER"), ("Refer-To", f"<sip:1003@{REALM}>")])
    out = core.receive_message(stray, A, 5.0, WALL + 5)
    assert [r.status for r in responses_to(out, A)] == [481]
    # A To tag of no dialog of ours: 481 too (RFC 3261 §12.2.2).
    stray.headers.set("To", f"<sip:1002@{REALM}>;tag=nope")
    stray.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK-stray2")
    out = core.receive_message(stray, A, 5.1, WALL + 5.1)
    assert [r.status for r in responses_to(out, A)] == [481]


def test_failed_target_is_notified_and_the_call_ends_cleanly() -> None:
    core = make_core()
    assert core.b2bua is not None
    a_invite, inv2 = answered(core)
    out = core.receive_message(refer_from_b(inv2, 10, [f"<sip:1003@{REALM}>"]), B2, 5.0,
                               WALL + 5)
    (notify,) = requests_to(out, B2)
    core.receive_message(make_response(notify, 200, "OK"), B2, 5.01, WALL + 5.01)
    (inv3,) = requests_to(out, B3)
    core.commands.clear()
    out = core.receive_message(make_response(inv3, 486, "Busy Here", to_tag="t3"), B3, 6.0,
                               WALL + 6)
    (final,) = [r for r in requests_to(out, B2) if r.method == "NOTIFY"]
    assert sipfrag(final) == "SIP/2.0 486 Busy Here"
    # The caller's call ends cleanly (a call between two phones has nobody to fall back on:
    # the transferor left it when the REFER was accepted).
    assert [r.method for r in requests_to(out, A)] == ["BYE"]
    assert [c.cdr.hangup_cause for c in core.commands if isinstance(c, WriteCdr)] == [
        "transfer_failed"]
    out = core.receive_message(make_response(final, 200, "OK"), B2, 6.1, WALL + 6.1)
    assert [r.method for r in requests_to(out, B2)] == ["BYE"]


def test_transferor_hanging_up_early_gets_200_and_no_bye() -> None:
    core = make_core()
    _a_invite, inv2 = answered(core)
    out = core.receive_message(refer_from_b(inv2, 10, [f"<sip:1003@{REALM}>"]), B2, 5.0,
                               WALL + 5)
    (inv3,) = requests_to(out, B3)
    bye = refer_from_b(inv2, 11, [])
    bye.method = "BYE"
    bye.headers.set("CSeq", "11 BYE")
    bye.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5202;branch=z9hG4bK-bye11")
    out = core.receive_message(bye, B2, 5.5, WALL + 5.5)
    assert [r.status for r in responses_to(out, B2)] == [200]
    assert requests_to(out, A) == []  # the caller still waits for 1003
    ok3 = make_response(inv3, 200, "OK", to_tag="t5203", body=OFFER.replace(b"4000", b"7000"),
                        headers=[("Contact", "<sip:1003@127.0.0.1:5203>"),
                                 ("Content-Type", "application/sdp")])
    out = core.receive_message(ok3, B3, 6.0, WALL + 6)
    assert requests_to(out, B2) == []  # nobody left to NOTIFY
    assert any(isinstance(c, Bridge) for c in core.commands)
