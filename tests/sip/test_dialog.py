"""RFC 3261 §12 dialogs, both sides, on real parsed messages; the 2xx/ACK on virtual time."""

from __future__ import annotations

import re

import pytest

from softswitch.sip.dialog import (
    AckTimedOut,
    AckWait,
    Dialog,
    DialogId,
    DialogState,
    DialogStateError,
    RetransmitResponse,
)
from softswitch.sip.errors import SipError
from softswitch.sip.events import AckReceived, RequestReceived, SendMessage
from softswitch.sip.message import Peer, Request, Response, make_response, parse_message
from softswitch.sip.timers import Timers
from softswitch.sip.transaction import MAGIC_COOKIE, TransactionLayer
from softswitch.sip.uri import SipURI, Via

OUR_VIA = Via("UDP", "203.0.113.5", 5060, {"rport": None})
OUR_CONTACT = "<sip:switch@203.0.113.5:5060>"


def req(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def resp(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


def reparse(message: Response) -> Response:
    out = parse_message(message.to_bytes())
    assert isinstance(out, Response)
    return out


def lines(message: Request) -> list[str]:
    """The request as text lines, the random branch replaced by a fixed one."""
    text = message.to_bytes().decode()
    return re.sub(r"branch=z9hG4bK[0-9a-f]+", "branch=z9hG4bKX", text).split("\r\n")


# An INVITE that reached the switch through two record-routing proxies.
INVITE_IN = """\
INVITE sip:switch@203.0.113.5 SIP/2.0
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr;transport=tcp>
Max-Forwards: 68
From: "Alice" <sip:alice@example.com>;tag=a1
To: <sip:1000@example.com>
Call-ID: c1@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
Content-Length: 0

"""


def uas_dialog(status: int = 200, **kw: int) -> tuple[Request, Response, Dialog]:
    invite = req(INVITE_IN)
    answer = reparse(make_response(invite, status, to_tag="s1",
                                   headers=[("Contact", OUR_CONTACT)]))
    return invite, answer, Dialog.from_request(invite, answer, **kw)


# -- UAS side (§12.1.1) --------------------------------------------------------------------


def test_uas_dialog_from_invite_and_2xx() -> None:
    _, _, d = uas_dialog(local_seq=1000)
    assert d.id == DialogId("c1@192.0.2.10", "s1", "a1")
    assert d.role == "uas" and d.state is DialogState.CONFIRMED
    assert [str(r) for r in d.route_set] == [
        "<sip:p2.example.com;lr>", "<sip:p1.example.com;lr;transport=tcp>"]  # in order
    assert d.remote_target == "sip:alice@192.0.2.10:5060"
    assert (d.remote_seq, d.local_seq) == (314159, 1000)
    assert str(d.local_party) == "<sip:1000@example.com>;tag=s1"
    assert str(d.remote_party) == '"Alice" <sip:alice@example.com>;tag=a1'
    assert d.local_contact == "sip:switch@203.0.113.5:5060"
    assert not d.secure


def test_uas_early_dialog_from_tagged_1xx_then_confirmed() -> None:
    _, _, d = uas_dialog(180)
    assert d.state is DialogState.EARLY
    with pytest.raises(DialogStateError):
        d.new_request("BYE", OUR_VIA)  # §15: the callee must not BYE an early dialog
    d.confirm()
    assert d.state is DialogState.CONFIRMED
    with pytest.raises(DialogStateError):
        d.confirm()


def test_uas_dialog_needs_tag_contact_and_good_record_route() -> None:
    invite = req(INVITE_IN)
    with pytest.raises(ValueError):
        Dialog.from_request(invite, reparse(make_response(invite, 180)))  # no To tag
    with pytest.raises(ValueError):
        Dialog.from_request(invite, reparse(make_response(invite, 486, to_tag="s1")))
    no_contact = req(INVITE_IN.replace("Contact: <sip:alice@192.0.2.10:5060>\n", ""))
    with pytest.raises(SipError) as exc:
        Dialog.from_request(no_contact, reparse(make_response(no_contact, 200, to_tag="s")))
    assert exc.value.status == 400
    bad_contact = req(INVITE_IN.replace("<sip:alice@192.0.2.10:5060>", "<sip:alice@[::1>"))
    with pytest.raises(SipError):
        Dialog.from_request(bad_contact, reparse(make_response(bad_contact, 200, to_tag="s")))
    bad_rr = req(INVITE_IN.replace("<sip:p2.example.com;lr>", "<tel:+123>"))
    with pytest.raises(SipError):
        Dialog.from_request(bad_rr, reparse(make_response(bad_rr, 200, to_tag="s")))


def test_uas_in_dialog_request_headers_exactly() -> None:
    _, _, d = uas_dialog(local_seq=1000)
    bye = d.new_request("BYE", OUR_VIA)
    assert lines(bye) == [
        "BYE sip:alice@192.0.2.10:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 203.0.113.5:5060;rport;branch=z9hG4bKX",
        "Max-Forwards: 70",
        "Route: <sip:p2.example.com;lr>",
        "Route: <sip:p1.example.com;lr;transport=tcp>",
        "From: <sip:1000@example.com>;tag=s1",
        'To: "Alice" <sip:alice@example.com>;tag=a1',
        "Call-ID: c1@192.0.2.10",
        "CSeq: 1001 BYE",
        "Content-Length: 0",
        "", "",
    ]
    assert bye.top_via.branch.startswith(MAGIC_COOKIE)  # type: ignore[union-attr]
    assert d.state is DialogState.TERMINATED  # §15.1.1: ended once the BYE is sent
    with pytest.raises(DialogStateError):
        d.new_request("INFO", OUR_VIA)


def test_reinvite_carries_contact_and_extra_headers_and_fresh_branches() -> None:
    _, _, d = uas_dialog(local_seq=7)
    one = d.new_request("INVITE", OUR_VIA, headers=[("Content-Type", "application/sdp")],
                        body=b"v=0\r\n")
    two = d.new_request("INFO", OUR_VIA)
    assert one.cseq.seq == 8 and two.cseq.seq == 9
    assert one.headers.get("Contact") == OUR_CONTACT
    assert "Contact" not in two.headers  # not a target refresh
    assert one.headers.get("Content-Type") == "application/sdp" and one.body == b"v=0\r\n"
    assert one.top_via.branch != two.top_via.branch
    with pytest.raises(ValueError):
        d.new_request("ACK", OUR_VIA)
    with pytest.raises(ValueError):
        d.new_request("CANCEL", OUR_VIA)


def test_uas_local_seq_starts_random_below_2_31() -> None:
    _, _, d = uas_dialog()
    assert d.local_seq is None
    seq = d.new_request("OPTIONS", OUR_VIA).cseq.seq
    assert 0 < seq < 2**31 and d.local_seq == seq


# -- strict routing (§12.2.1.1, §16.12.1.2) ------------------------------------------------


def test_strict_route_example_of_12_2_1_1() -> None:
    # The RFC's example: route set proxy1, proxy2, proxy3;lr, proxy4; remote target
    # sip:user@remoteua. proxy1 is a strict router.
    invite = req(INVITE_IN.replace(
        "Record-Route: <sip:p2.example.com;lr>\nRecord-Route: <sip:p1.example.com;lr;"
        "transport=tcp>\n",
        "Record-Route: <sip:proxy1>, <sip:proxy2>\nRecord-Route: <sip:proxy3;lr>,<sip:proxy4>\n",
    ).replace("<sip:alice@192.0.2.10:5060>", "<sip:user@remoteua>"))
    d = Dialog.from_request(invite, reparse(make_response(invite, 200, to_tag="s1")),
                            local_seq=1)
    assert d.request_target() == ("sip:proxy1", [
        "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"])
    info = d.new_request("INFO", OUR_VIA)
    assert lines(info)[0] == "INFO sip:proxy1 SIP/2.0"
    assert info.headers.getall("Route") == [
        "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"]
    assert d.next_hop() == SipURI("sip", None, None, "proxy1")


def test_strict_router_uri_loses_what_a_request_uri_may_not_carry() -> None:
    invite = req(INVITE_IN.replace("<sip:p2.example.com;lr>",
                                   "<sip:p2.example.com;method=INVITE;maddr=10.1.1.1?x=y>"))
    d = Dialog.from_request(invite, reparse(make_response(invite, 200, to_tag="s1")))
    uri, routes = d.request_target()
    assert uri == "sip:p2.example.com;maddr=10.1.1.1"
    assert routes == ["<sip:p1.example.com;lr;transport=tcp>", "<sip:alice@192.0.2.10:5060>"]


def test_no_route_set_goes_to_remote_target() -> None:
    invite = req(re.sub(r"Record-Route: .*\n", "", INVITE_IN))
    d = Dialog.from_request(invite, reparse(make_response(invite, 200, to_tag="s1")))
    assert d.request_target() == ("sip:alice@192.0.2.10:5060", [])
    assert "Route" not in d.new_request("BYE", OUR_VIA).headers
    assert d.next_hop() == SipURI("sip", "alice", None, "192.0.2.10", 5060)


# -- receiving in the dialog (§12.2.2) -----------------------------------------------------


def in_dialog(method: str, seq: int, *, contact: str | None = None, to_tag: str = "s1",
              from_tag: str = "a1") -> Request:
    contact_line = f"Contact: <{contact}>\n" if contact else ""
    return req(f"""\
{method} sip:switch@203.0.113.5:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{method}{seq}
Max-Forwards: 70
From: "Alice" <sip:alice@example.com>;tag={from_tag}
To: <sip:1000@example.com>;tag={to_tag}
Call-ID: c1@192.0.2.10
CSeq: {seq} {method}
{contact_line}Content-Length: 0

""")


def test_cseq_ordering_500_for_lower() -> None:
    _, _, d = uas_dialog()
    d.receive_request(in_dialog("INFO", 314160))
    assert d.remote_seq == 314160
    with pytest.raises(SipError) as exc:
        d.receive_request(in_dialog("INFO", 314159))
    assert exc.value.status == 500
    assert d.remote_seq == 314160  # unchanged by the rejected one
    d.receive_request(in_dialog("INFO", 314170))  # gaps are fine (§12.2.2)
    assert d.remote_seq == 314170
    d.receive_request(in_dialog("ACK", 314159))  # an ACK carries the INVITE's CSeq
    assert DialogId.of_request(in_dialog("INFO", 1)) == d.id


def test_uac_dialog_takes_the_first_remote_cseq() -> None:
    d = uac_dialog()
    assert d.remote_seq is None
    d.receive_request(uac_in_dialog("INFO", 5))
    assert d.remote_seq == 5


@pytest.mark.parametrize(("to_tag", "from_tag"), [("zz", "a1"), ("s1", "zz")])
def test_foreign_tags_are_481(to_tag: str, from_tag: str) -> None:
    _, _, d = uas_dialog()
    with pytest.raises(SipError) as exc:
        d.receive_request(in_dialog("INFO", 314160, to_tag=to_tag, from_tag=from_tag))
    assert exc.value.status == 481


@pytest.mark.parametrize(("method", "refreshes"), [
    ("INVITE", True), ("UPDATE", True), ("INFO", False), ("NOTIFY", False)])
def test_target_refresh(method: str, refreshes: bool) -> None:
    _, _, d = uas_dialog()
    d.receive_request(in_dialog(method, 314160, contact="sip:alice@192.0.2.99:5070"))
    expected = "sip:alice@192.0.2.99:5070" if refreshes else "sip:alice@192.0.2.10:5060"
    assert d.remote_target == expected


def test_bye_received_ends_dialog_then_481() -> None:
    _, _, d = uas_dialog()
    d.receive_request(in_dialog("BYE", 314160))
    assert d.state is DialogState.TERMINATED
    with pytest.raises(SipError) as exc:
        d.receive_request(in_dialog("INFO", 314161))
    assert exc.value.status == 481


@pytest.mark.parametrize(("status", "state", "target"), [
    (200, DialogState.CONFIRMED, "sip:alice@192.0.2.77"),
    (491, DialogState.CONFIRMED, "sip:alice@192.0.2.10:5060"),
    (481, DialogState.TERMINATED, "sip:alice@192.0.2.10:5060"),
    (408, DialogState.TERMINATED, "sip:alice@192.0.2.10:5060"),
])
def test_responses_to_our_requests(status: int, state: DialogState, target: str) -> None:
    _, _, d = uas_dialog(local_seq=1)
    reinvite = d.new_request("INVITE", OUR_VIA)
    answer = reparse(make_response(reinvite, status,
                                   headers=[("Contact", "<sip:alice@192.0.2.77>")]))
    d.receive_response(reinvite, answer)
    assert d.state is state and d.remote_target == target


# -- UAC side (§12.1.2, §13.2.2.4) ---------------------------------------------------------

INVITE_OUT = """\
INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 203.0.113.5:5060;rport;branch=z9hG4bKout1
Max-Forwards: 70
From: <sip:1000@example.com>;tag=u1
To: "Bob" <sip:bob@example.org>
Call-ID: out1@203.0.113.5
CSeq: 20 INVITE
Contact: <sip:switch@203.0.113.5:5060>
Proxy-Authorization: Digest username="sw", realm="example.org", nonce="n", uri="sip:bob@example.org", response="r"
Content-Length: 0

"""  # noqa: E501


def answer_to_invite(status: int, *, contact: str | None = "sip:bob@192.0.2.20:5062",
                     rr: str = "<sip:q2.example.org;lr>, <sip:q1.example.org;lr>") -> Response:
    reason = {180: "Ringing", 183: "Session Progress", 200: "OK"}[status]
    contact_line = f"Contact: <{contact}>\n" if contact else ""
    return resp(f"""\
SIP/2.0 {status} {reason}
Via: SIP/2.0/UDP 203.0.113.5:5060;rport=5060;branch=z9hG4bKout1
Record-Route: {rr}
From: <sip:1000@example.com>;tag=u1
To: "Bob" <sip:bob@example.org>;tag=b7
Call-ID: out1@203.0.113.5
CSeq: 20 INVITE
{contact_line}Content-Length: 0

""")


def uac_dialog() -> Dialog:
    return Dialog.from_response(req(INVITE_OUT), answer_to_invite(200))


def uac_in_dialog(method: str, seq: int) -> Request:
    return req(f"""\
{method} sip:switch@203.0.113.5:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKb{seq}
Max-Forwards: 70
From: "Bob" <sip:bob@example.org>;tag=b7
To: <sip:1000@example.com>;tag=u1
Call-ID: out1@203.0.113.5
CSeq: {seq} {method}
Content-Length: 0

""")


def test_uac_dialog_from_2xx_reverses_route_set() -> None:
    d = uac_dialog()
    assert d.id == DialogId("out1@203.0.113.5", "u1", "b7")
    assert DialogId.of_response(answer_to_invite(200)) == d.id
    assert d.role == "uac" and d.state is DialogState.CONFIRMED
    assert [str(r) for r in d.route_set] == ["<sip:q1.example.org;lr>", "<sip:q2.example.org;lr>"]
    assert d.remote_target == "sip:bob@192.0.2.20:5062"
    assert (d.local_seq, d.remote_seq) == (20, None)
    assert str(d.local_party) == "<sip:1000@example.com>;tag=u1"
    assert str(d.remote_party) == '"Bob" <sip:bob@example.org>;tag=b7'
    bye = d.new_request("BYE", OUR_VIA)
    assert lines(bye) == [
        "BYE sip:bob@192.0.2.20:5062 SIP/2.0",
        "Via: SIP/2.0/UDP 203.0.113.5:5060;rport;branch=z9hG4bKX",
        "Max-Forwards: 70",
        "Route: <sip:q1.example.org;lr>",
        "Route: <sip:q2.example.org;lr>",
        "From: <sip:1000@example.com>;tag=u1",
        'To: "Bob" <sip:bob@example.org>;tag=b7',
        "Call-ID: out1@203.0.113.5",
        "CSeq: 21 BYE",
        "Content-Length: 0",
        "", "",
    ]


def test_uac_early_dialog_then_2xx_recomputes_route_set_and_target() -> None:
    invite = req(INVITE_OUT)
    early = Dialog.from_response(invite, answer_to_invite(183, contact=None,
                                                          rr="<sip:q1.example.org;lr>"))
    assert early.state is DialogState.EARLY
    assert early.remote_target == "sip:bob@example.org"  # no Contact yet: the Request-URI
    assert [str(r) for r in early.route_set] == ["<sip:q1.example.org;lr>"]
    early.confirm(answer_to_invite(200))
    assert early.state is DialogState.CONFIRMED
    assert early.remote_target == "sip:bob@192.0.2.20:5062"
    assert [str(r) for r in early.route_set] == [
        "<sip:q1.example.org;lr>", "<sip:q2.example.org;lr>"]
    with pytest.raises(DialogStateError):
        early.confirm(answer_to_invite(200))  # a 2xx copy does not confirm twice


def test_uac_early_dialog_may_bye_and_2xx_without_contact_is_refused() -> None:
    invite = req(INVITE_OUT)
    early = Dialog.from_response(invite, answer_to_invite(180))
    assert early.new_request("BYE", OUR_VIA).cseq.seq == 21  # §15: the caller may
    with pytest.raises(SipError):
        Dialog.from_response(invite, answer_to_invite(200, contact=None))
    untagged = parse_message(answer_to_invite(180).to_bytes().replace(b";tag=b7", b""))
    assert isinstance(untagged, Response)
    with pytest.raises(ValueError):
        Dialog.from_response(invite, untagged)


def test_ack_for_2xx_exactly() -> None:
    d = uac_dialog()
    invite = req(INVITE_OUT)
    ack = d.ack(invite, OUR_VIA)
    assert lines(ack) == [
        "ACK sip:bob@192.0.2.20:5062 SIP/2.0",
        "Via: SIP/2.0/UDP 203.0.113.5:5060;rport;branch=z9hG4bKX",
        "Max-Forwards: 70",
        "Route: <sip:q1.example.org;lr>",
        "Route: <sip:q2.example.org;lr>",
        "From: <sip:1000@example.com>;tag=u1",
        'To: "Bob" <sip:bob@example.org>;tag=b7',
        "Call-ID: out1@203.0.113.5",
        "CSeq: 20 ACK",
        'Proxy-Authorization: Digest username="sw", realm="example.org", nonce="n", '
        'uri="sip:bob@example.org", response="r"',
        "Content-Length: 0",
        "", "",
    ]
    assert ack.top_via.branch != invite.top_via.branch  # the 2xx ACK is a transaction alone
    assert d.local_seq == 20  # the ACK does not move the CSeq
    _, _, uas = uas_dialog()
    with pytest.raises(DialogStateError):
        uas.ack(invite, OUR_VIA)


# -- 2xx retransmission until the ACK (§13.3.1.4) ------------------------------------------


def run(wait: AckWait, until: float = 100.0) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    while (at := wait.get_timer()) is not None and at <= until:
        for event in wait.handle_timer(at):
            out.append((at, type(event).__name__))
    return out


def test_2xx_retransmits_doubling_to_t2_and_gives_up_at_64_t1() -> None:
    _, ok, _ = uas_dialog()
    wait = AckWait(ok, now=10.0)
    events = run(wait)
    times = [t - 10.0 for t, name in events if name == "RetransmitResponse"]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert events[-1] == (42.0, "AckTimedOut")  # 64*T1 after the first send
    assert wait.done and wait.get_timer() is None and wait.handle_timer(99.0) == []


def test_2xx_retransmission_with_other_timers() -> None:
    _, ok, _ = uas_dialog()
    wait = AckWait(ok, now=0.0, timers=Timers(t1=0.1, t2=0.3))
    times = [round(t, 3) for t, _ in run(wait)]
    assert times[:5] == [0.1, 0.3, 0.6, 0.9, 1.2]
    assert times[-1] == 6.4


def test_ack_stops_retransmission() -> None:
    _, ok, _ = uas_dialog()
    wait = AckWait(ok, now=0.0)
    assert wait.handle_timer(0.2) == []  # not due yet
    assert wait.handle_timer(0.5) == [RetransmitResponse(ok)]
    assert not wait.receive_ack(in_dialog("ACK", 314158))  # another CSeq
    assert not wait.receive_ack(in_dialog("INFO", 314159))
    assert wait.receive_ack(in_dialog("ACK", 314159))
    assert wait.done and wait.get_timer() is None
    assert not wait.receive_ack(in_dialog("ACK", 314159))  # a copy is not news


def test_late_adapter_gets_one_copy_not_a_burst() -> None:
    _, ok, _ = uas_dialog()
    wait = AckWait(ok, now=0.0)
    assert wait.handle_timer(9.0) == [RetransmitResponse(ok)]
    assert wait.get_timer() == 10.0  # now + the doubled interval, not in the past
    assert wait.handle_timer(40.0) == [AckTimedOut(ok)]


def test_retransmissions_pass_through_the_accepted_server_transaction() -> None:
    # The whole UAS path: RFC 6026 Accepted lets the TU's 2xx copies out until Timer L.
    layer = TransactionLayer()
    src = Peer("udp", "192.0.2.10", 5060)
    invite = req(INVITE_IN.replace("Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\n"
                                   "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\n", ""))
    received = [e for e in layer.receive_request(invite, src, 0.0)
                if isinstance(e, RequestReceived)]
    txn = received[0].txn
    ok = reparse(make_response(invite, 200, to_tag="s1", headers=[("Contact", OUR_CONTACT)]))
    dialog = Dialog.from_request(invite, ok)
    layer.send_response(txn, ok, 0.0)
    wait = AckWait(ok, now=0.0)
    sent = 0
    while (at := wait.get_timer()) is not None and at < 5:
        for event in wait.handle_timer(at):
            assert isinstance(event, RetransmitResponse)
            out = layer.send_response(txn, event.response, at)
            assert isinstance(out[0], SendMessage) and out[0].dest == src
            sent += 1
    assert sent == 3
    ack = dialog_ack_from_alice()
    events = layer.receive_request(ack, src, 4.0)
    assert isinstance(events[0], AckReceived)
    dialog.receive_request(events[0].request)
    assert wait.receive_ack(events[0].request)


def dialog_ack_from_alice() -> Request:
    return in_dialog("ACK", 314159)
