"""RFC 3261 §17.1 / RFC 6026 client transactions on virtual time, and the timer queues."""

from __future__ import annotations

import pytest

from softswitch.sip.events import (
    ResponseReceived,
    SendMessage,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from softswitch.sip.message import Peer, Request, Response, make_response, parse_message
from softswitch.sip.timers import DeadlineQueues
from softswitch.sip.transaction import (
    ClientTransaction,
    State,
    Timers,
    TransactionLayer,
    make_ack,
    new_branch,
)

UDP_DEST = Peer("udp", "10.0.0.2", 5060)
TCP_DEST = Peer("tcp", "10.0.0.2", 5060)


def request(method: str = "INVITE", *, branch: str = "z9hG4bKc1", transport: str = "UDP",
            cseq: int = 7, extra: str = "") -> Request:
    text = (
        f"{method} sip:bob@example.com;transport={transport.lower()} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.1:5060;branch={branch};rport\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.5:5070;branch=z9hG4bKupstream\r\n"
        "Max-Forwards: 69\r\n"
        f"{extra}"
        "From: Alice <sip:alice@example.com>;tag=a1\r\n"
        "To: Bob <sip:bob@example.com>\r\n"
        "Call-ID: cid-9@10.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@10.0.0.1>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 4\r\n\r\nv=0\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def reply(req: Request, status: int, tag: str | None = "b1") -> Response:
    message = parse_message(make_response(req, status, to_tag=tag).to_bytes())
    assert isinstance(message, Response)
    return message


def start(layer: TransactionLayer, req: Request, dest: Peer = UDP_DEST,
          now: float = 0.0) -> ClientTransaction:
    txn, events = layer.send_request(req, dest, now)
    assert events == [SendMessage(req.to_bytes(), dest)]
    return txn


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, list[TransactionEvent]]]:
    out = []
    while (at := layer.get_timer()) is not None and at <= until:
        out.append((at, layer.handle_timer(at)))
    return out


# -- INVITE client (§17.1.1) ---------------------------------------------------------------


def test_invite_timer_a_doubles_without_t2_cap_until_timer_b() -> None:
    layer = TransactionLayer(Timers(t1=0.5, t2=4.0))
    req = request()
    txn = start(layer, req, now=50.0)
    assert txn.state is State.CALLING
    fired = run_timers(layer, 200)
    # Timer A: T1, 2T1, 4T1, 8T1, 16T1, 32T1 (Timer B bounds it, not T2); Timer B at 64*T1
    assert [round(at - 50, 6) for at, _ in fired] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0]
    for _, events in fired[:-1]:
        assert events == [SendMessage(req.to_bytes(), UDP_DEST)]
    assert fired[-1][1] == [TransactionTimedOut(txn), TransactionTerminated(txn)]
    assert txn.state is State.TERMINATED and len(layer) == 0


def test_invite_timers_scale_with_t1() -> None:
    layer = TransactionLayer(Timers(t1=0.1, t2=4.0))
    start(layer, request())
    times = [round(at, 6) for at, _ in run_timers(layer, 100)]
    assert times == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 6.4]  # B = 64 * 0.1


def test_invite_provisional_stops_timers_a_and_b() -> None:
    layer = TransactionLayer()
    req = request()
    txn = start(layer, req)
    run_timers(layer, 0.5)  # one retransmission
    ringing = reply(req, 180)
    assert layer.receive_response(ringing, UDP_DEST, 0.7) == [ResponseReceived(txn, ringing)]
    assert txn.state is State.PROCEEDING and layer.get_timer() is None
    again = reply(req, 183)
    assert layer.receive_response(again, UDP_DEST, 5) == [ResponseReceived(txn, again)]


def test_invite_non_2xx_generates_ack_and_timer_d() -> None:
    layer = TransactionLayer()
    req = request(extra="Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n")
    txn = start(layer, req)
    busy = reply(req, 486, tag="uas-tag")
    events = layer.receive_response(busy, UDP_DEST, 1.0)
    assert len(events) == 2 and events[1] == ResponseReceived(txn, busy)
    assert isinstance(events[0], SendMessage) and events[0].dest == UDP_DEST
    ack = parse_message(events[0].data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    # §17.1.1.3: Request-URI, Call-ID, From as in the INVITE; To from the response (its tag);
    # one Via, the INVITE's top one; CSeq number kept with method ACK; Route copied
    assert ack.uri_text == req.uri_text
    assert ack.call_id == "cid-9@10.0.0.1"
    assert ack.headers.get("From") == req.headers.get("From")
    assert ack.to.tag == "uas-tag" and ack.headers.get("To") == busy.headers.get("To")
    assert len(ack.vias) == 1 and ack.top_via == req.top_via
    assert ack.top_via.branch == "z9hG4bKc1"
    assert ack.cseq == (7, "ACK")
    assert ack.headers.getall("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.max_forwards == 69
    assert ack.body == b"" and "Contact" not in ack.headers and "Content-Type" not in ack.headers
    assert txn.state is State.COMPLETED
    # a retransmitted final response gets the same ACK again and does not reach the TU
    assert layer.receive_response(reply(req, 486, tag="uas-tag"), UDP_DEST, 2.0) == [events[0]]
    assert layer.get_timer() == pytest.approx(33.0)  # Timer D = 32 s, independent of T1
    assert run_timers(layer, 100) == [(pytest.approx(33.0), [TransactionTerminated(txn)])]


def test_timer_d_is_its_own_setting() -> None:
    layer = TransactionLayer(Timers(t1=0.1, d=40.0))
    req = request()
    start(layer, req)
    layer.receive_response(reply(req, 404), UDP_DEST, 0.05)
    assert layer.get_timer() == pytest.approx(40.05)


def test_invite_reliable_no_timer_a_and_zero_timer_d() -> None:
    layer = TransactionLayer()
    req = request(transport="TCP")
    txn = start(layer, req, TCP_DEST)
    assert layer.get_timer() == pytest.approx(32.0)  # Timer B only
    events = layer.receive_response(reply(req, 503), TCP_DEST, 1.0)
    assert [type(e) for e in events] == [SendMessage, ResponseReceived, TransactionTerminated]
    assert isinstance(events[0], SendMessage) and events[0].dest == TCP_DEST
    assert len(layer) == 0 and layer.get_timer() is None
    assert txn.state is State.TERMINATED


def test_invite_reliable_timer_b() -> None:
    layer = TransactionLayer()
    txn = start(layer, request(transport="TCP"), TCP_DEST)
    assert run_timers(layer, 100) == [
        (pytest.approx(32.0), [TransactionTimedOut(txn), TransactionTerminated(txn)])]


def test_invite_accepted_state_rfc6026() -> None:
    layer = TransactionLayer()
    req = request()
    txn = start(layer, req)
    ok = reply(req, 200, tag="fork1")
    assert layer.receive_response(ok, UDP_DEST, 1.0) == [ResponseReceived(txn, ok)]
    assert txn.state is State.ACCEPTED
    assert layer.get_timer() == pytest.approx(33.0)  # Timer M = 64*T1; A and B stopped
    # 2xx retransmissions and 2xx from other forks reach the TU (it ACKs each); no ACK here
    ok2 = reply(req, 200, tag="fork2")
    assert layer.receive_response(ok, UDP_DEST, 1.5) == [ResponseReceived(txn, ok)]
    assert layer.receive_response(ok2, UDP_DEST, 1.6) == [ResponseReceived(txn, ok2)]
    assert layer.receive_response(reply(req, 180), UDP_DEST, 1.7) == []
    assert layer.receive_response(reply(req, 486), UDP_DEST, 1.8) == []
    assert run_timers(layer, 100) == [(pytest.approx(33.0), [TransactionTerminated(txn)])]
    # after Timer M a copy matches nothing and is dropped (RFC 6026 §8.9)
    assert layer.receive_response(ok, UDP_DEST, 40) == [] and layer.stray_responses == 1


def test_send_request_rejects_ack_bad_branch_and_duplicates() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError):
        layer.send_request(request("ACK"), UDP_DEST, 0)
    with pytest.raises(ValueError):
        layer.send_request(request(branch="1234"), UDP_DEST, 0)
    start(layer, request())
    with pytest.raises(ValueError):
        layer.send_request(request(), UDP_DEST, 0)


def test_new_branch_is_unique_and_cookied() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") for b in branches)


# -- non-INVITE client (§17.1.2) -----------------------------------------------------------


def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    layer = TransactionLayer()
    req = request("REGISTER")
    txn = start(layer, req)
    assert txn.state is State.TRYING
    fired = run_timers(layer, 100)
    times = [round(at, 6) for at, _ in fired]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(events == [SendMessage(req.to_bytes(), UDP_DEST)] for _, events in fired[:-1])
    assert fired[-1][1] == [TransactionTimedOut(txn), TransactionTerminated(txn)]


def test_non_invite_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    txn = start(layer, req)
    run_timers(layer, 0.5)  # E fired at 0.5, next due at 1.5
    trying = reply(req, 100, tag=None)
    assert layer.receive_response(trying, UDP_DEST, 1.0) == [ResponseReceived(txn, trying)]
    assert txn.state is State.PROCEEDING
    times = [round(at, 6) for at, _ in run_timers(layer, 100)]
    # the pending E still fires at 1.5, then every T2 (§17.1.2.2); F still ends it at 32
    assert times == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5, 32.0]


def test_non_invite_final_then_timer_k() -> None:
    layer = TransactionLayer()
    req = request("BYE")
    txn = start(layer, req)
    ok = reply(req, 200)
    assert layer.receive_response(ok, UDP_DEST, 2.0) == [ResponseReceived(txn, ok)]
    assert txn.state is State.COMPLETED
    assert layer.receive_response(reply(req, 200), UDP_DEST, 2.5) == []  # absorbed
    assert run_timers(layer, 100) == [(pytest.approx(7.0), [TransactionTerminated(txn)])]


def test_non_invite_reliable_zero_timer_k() -> None:
    layer = TransactionLayer()
    req = request("REGISTER", transport="TCP")
    txn = start(layer, req, TCP_DEST)
    assert layer.get_timer() == pytest.approx(32.0)  # Timer F, no Timer E
    ok = reply(req, 200)
    assert layer.receive_response(ok, TCP_DEST, 1) == [ResponseReceived(txn, ok),
                                                       TransactionTerminated(txn)]
    assert len(layer) == 0


def test_client_matching_by_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    invite = request()
    inv_txn = start(layer, invite)
    cancel = request("CANCEL")  # §9.1: same branch as the INVITE, its own transaction
    cancel_txn = start(layer, cancel)
    assert layer.client_count == 2
    ok_cancel = reply(cancel, 200)
    assert layer.receive_response(ok_cancel, UDP_DEST, 0.1) == [
        ResponseReceived(cancel_txn, ok_cancel)]
    assert inv_txn.state is State.CALLING  # untouched by the CANCEL's response
    terminated = reply(invite, 487)
    assert layer.receive_response(terminated, UDP_DEST, 0.2)[1] == ResponseReceived(
        inv_txn, terminated)
    other = reply(request(branch="z9hG4bKother"), 200)
    assert layer.receive_response(other, UDP_DEST, 0.3) == [] and layer.stray_responses == 1


def test_malformed_response_is_dropped() -> None:
    layer = TransactionLayer()
    req = request()
    txn = start(layer, req)
    no_to = parse_message(reply(req, 486).to_bytes().replace(b"To: ", b"X-To: "))
    assert isinstance(no_to, Response)
    assert layer.receive_response(no_to, UDP_DEST, 1) == []
    assert txn.state is State.CALLING and layer.get_timer() == pytest.approx(0.5)  # still on


def test_client_transport_error() -> None:
    layer = TransactionLayer()
    txn = start(layer, request("MESSAGE"), TCP_DEST)
    assert layer.transport_error(txn, 0.1) == [TransportError(txn), TransactionTerminated(txn)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_make_ack_matches_layer_output() -> None:
    req = request()
    busy = reply(req, 480, tag="t")
    layer = TransactionLayer()
    start(layer, req)
    (ack, _) = layer.receive_response(busy, UDP_DEST, 0)
    assert isinstance(ack, SendMessage) and ack.data == make_ack(req, busy).to_bytes()


# -- timer queues ----------------------------------------------------------------------------


class _Owner:
    def __init__(self) -> None:
        self.timeout_at: float | None = None
        self.rtx_at: float | None = None


def test_deadline_queues_order_and_lazy_cancel() -> None:
    queues = DeadlineQueues()
    a, b, c = _Owner(), _Owner(), _Owner()
    for owner, duration, now in ((a, 32.0, 0.0), (b, 0.5, 1.0), (c, 32.0, 0.2)):
        owner.timeout_at = now + duration
        queues.push(duration, owner, False, now + duration)
    b.rtx_at = 3.0
    queues.push(2.0, b, True, 3.0)
    assert queues.earliest() == 1.5
    b.timeout_at = None  # cancelled: the entry is skipped, not searched for
    assert queues.earliest() == 3.0
    assert queues.pop_due(2.9) is None
    assert queues.pop_due(100) == (3.0, b, True)
    assert queues.pop_due(100) == (32.0, a, False)
    c.timeout_at = 40.0  # re-armed elsewhere: the old entry is stale
    assert queues.pop_due(100) is None and queues.earliest() is None and len(queues) == 0


def test_timers_replaced_at_runtime_apply_to_new_timers() -> None:
    layer = TransactionLayer()
    start(layer, request("OPTIONS"))
    assert [at for at, _ in run_timers(layer, 0.5)] == [0.5]  # re-armed for 1.5
    layer.timers = Timers(t1=1.0, t2=8.0)  # e.g. a config reload
    start(layer, request("OPTIONS", branch="z9hG4bKc2"), now=0.6)
    times = [round(at, 6) for at, _ in run_timers(layer, 16.0)]
    # the first keeps its armed deadline, then doubles up to the new T2 (not 11.5 with the
    # old cap of 4 s); the second starts at the new T1
    assert times == [1.5, 1.6, 3.5, 3.6, 7.5, 7.6, 15.5, 15.6]
    assert layer.timers.t1 == 1.0


def test_timers_validation() -> None:
    with pytest.raises(ValueError):
        Timers(t1=5, t2=4)
    assert Timers(t1=0.25).timeout == 16.0
