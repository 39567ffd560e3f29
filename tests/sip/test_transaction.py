"""RFC 3261 §17 / RFC 6026 transactions on virtual time: server side, matching, CANCEL."""

from __future__ import annotations

import pytest

from softswitch.sip.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    SendMessage,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from softswitch.sip.message import Peer, Request, Response, make_response, parse_message
from softswitch.sip.transaction import (
    ServerTransaction,
    State,
    Timers,
    TransactionLayer,
    TransactionStateError,
)

UDP_SRC = Peer("udp", "10.0.0.1", 5060)
TCP_SRC = Peer("tcp", "10.0.0.1", 40000)


def request(method: str = "INVITE", *, branch: str = "z9hG4bKb1", transport: str = "UDP",
            sent_by: str = "10.0.0.1:5060", cseq: int = 1, cseq_method: str | None = None,
            to_tag: str | None = None, call_id: str = "call-1", extra: str = "") -> Request:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    branch_param = f";branch={branch}" if branch else ""
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {sent_by}{branch_param}\r\n"
        "Max-Forwards: 70\r\n"
        "From: Alice <sip:alice@example.com>;tag=a1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def reply(req: Request, status: int, tag: str | None = "b1") -> Response:
    message = parse_message(make_response(req, status, to_tag=tag).to_bytes())
    assert isinstance(message, Response)
    return message


def msg(event: TransactionEvent) -> SendMessage:
    assert isinstance(event, SendMessage)
    return event


def sent(events: list[TransactionEvent]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, SendMessage)]


def status_of(data: bytes) -> int:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message.status


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, list[TransactionEvent]]]:
    """Fire every timer up to `until` exactly at its deadline; the fire times and events."""
    out = []
    while (at := layer.get_timer()) is not None and at <= until:
        out.append((at, layer.handle_timer(at)))
    return out


def new_server(layer: TransactionLayer, req: Request, source: Peer = UDP_SRC,
               now: float = 0.0) -> ServerTransaction:
    events = layer.receive_request(req, source, now)
    received = [e for e in events if isinstance(e, RequestReceived)]
    assert len(received) == 1 and received[0].request is req
    return received[0].txn


# -- non-INVITE server (§17.2.2) ------------------------------------------------------------


def test_non_invite_server_udp_lifecycle_and_timer_j() -> None:
    layer = TransactionLayer(Timers())
    req = request("REGISTER")
    events = layer.receive_request(req, UDP_SRC, 10.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    txn = events[0].txn
    assert txn.state is State.TRYING and events[0].source == UDP_SRC
    # Trying: a retransmission has nothing to be answered with yet
    assert layer.receive_request(request("REGISTER"), UDP_SRC, 10.1) == []
    assert layer.get_timer() is None

    ok = reply(req, 200)
    out = layer.send_response(txn, ok, 10.2)
    # the TU is done with it at once, as on TCP; the layer keeps the Completed state
    assert out == [SendMessage(ok.to_bytes(), Peer("udp", "10.0.0.1", 5060)),
                   TransactionTerminated(txn)]
    assert txn.state is State.TERMINATED and txn.request is None
    assert len(layer) == 1 and layer.server_count == 1
    # Completed: every retransmission gets the very same bytes again, by the same way back
    again = layer.receive_request(request("REGISTER"), UDP_SRC, 15.0)
    assert again == out[:1]
    assert again[0].data is out[0].data  # cached, not re-serialized
    assert layer.absorb(request("REGISTER")) == out[:1]
    # another method with the same branch is another transaction
    assert isinstance(layer.receive_request(request("OPTIONS"), UDP_SRC, 15.1)[0],
                      RequestReceived)

    assert layer.get_timer() == pytest.approx(10.2 + 32.0)  # Timer J = 64*T1
    assert layer.handle_timer(42.19) == []
    assert layer.server_count == 2
    assert layer.handle_timer(42.2) == []  # ends quietly: the TU heard when it answered
    assert layer.server_count == 1 and layer.get_timer() is None
    # a late copy is a new request to the TU
    assert isinstance(layer.receive_request(request("REGISTER"), UDP_SRC, 43)[0], RequestReceived)


def test_timer_j_entries_are_not_tracked_by_the_cyclic_gc() -> None:
    """Half a million completed transactions must cost the GC nothing to walk."""
    import gc

    layer = TransactionLayer()
    for i in range(100):
        req = request("REGISTER", branch=f"z9hG4bKgc{i}")
        txn = new_server(layer, req)
        layer.send_response(txn, reply(req, 200), 0.0)
    del txn
    gc.collect()
    gc.collect()  # a tuple is untracked once what it holds is (one pass may leave the last)
    assert layer.server_count == 100
    held = [*layer._completed, *layer._completed.values(), *layer._timer_j]
    assert len(held) == 300 and not any(gc.is_tracked(x) for x in held)


def test_non_invite_server_proceeding_resends_latest_provisional() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    txn = new_server(layer, req)
    ringing = layer.send_response(txn, reply(req, 183), 0.1)
    assert txn.state is State.PROCEEDING
    assert layer.receive_request(request("OPTIONS"), UDP_SRC, 0.2) == ringing
    second = layer.send_response(txn, reply(req, 182), 0.3)
    assert layer.receive_request(request("OPTIONS"), UDP_SRC, 0.4) == second
    final = layer.send_response(txn, reply(req, 404), 0.5)
    assert txn.state is State.TERMINATED
    assert status_of(layer.receive_request(request("OPTIONS"), UDP_SRC, 0.6)[0].data) == 404
    assert final and layer.get_timer() == pytest.approx(32.5)


def test_non_invite_server_reliable_terminates_at_once() -> None:
    layer = TransactionLayer()
    req = request("REGISTER", transport="TCP")
    txn = new_server(layer, req, TCP_SRC)
    out = layer.send_response(txn, reply(req, 200), 1.0)
    # Timer J is zero on TCP; the response goes back over the connection it came on
    assert out == [SendMessage(reply(req, 200).to_bytes(), TCP_SRC), TransactionTerminated(txn)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_non_invite_server_illegal_second_final_raises() -> None:
    layer = TransactionLayer()
    req = request("BYE")
    txn = new_server(layer, req)
    layer.send_response(txn, reply(req, 200), 0)
    with pytest.raises(TransactionStateError):
        layer.send_response(txn, reply(req, 500), 0)


def test_response_goes_to_received_and_rport() -> None:
    layer = TransactionLayer()
    req = parse_message(request("REGISTER").to_bytes().replace(b";branch=", b";rport;branch="))
    assert isinstance(req, Request)
    source = Peer("udp", "192.0.2.7", 34567)
    from softswitch.sip.message import stamp_via

    stamp_via(req, source.host, source.port)
    txn = new_server(layer, req, source)
    out = layer.send_response(txn, reply(req, 200), 0)
    assert msg(out[0]).dest == Peer("udp", "192.0.2.7", 34567)  # RFC 3581 §4


# -- INVITE server (§17.2.1 + RFC 6026) --------------------------------------------------


def test_invite_server_sends_100_at_once_and_on_retransmission() -> None:
    layer = TransactionLayer()
    req = request("INVITE", extra="Timestamp: 54\r\n")
    events = layer.receive_request(req, UDP_SRC, 0)
    assert isinstance(events[0], SendMessage) and isinstance(events[1], RequestReceived)
    trying = parse_message(msg(events[0]).data)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None  # §17.2.1: no To tag on the 100
    assert trying.headers.get("Timestamp") == "54"  # §8.2.6.1
    txn = events[1].txn
    assert txn.state is State.PROCEEDING
    assert layer.receive_request(request("INVITE"), UDP_SRC, 0.5) == [events[0]]
    ringing = layer.send_response(txn, reply(req, 180), 1)
    assert layer.receive_request(request("INVITE"), UDP_SRC, 1.5) == ringing
    assert txn.state is State.PROCEEDING and layer.get_timer() is None


def test_invite_server_non_2xx_timer_g_doubles_to_t2_and_timer_h_times_out() -> None:
    layer = TransactionLayer(Timers(t1=0.5, t2=4.0, t4=5.0))
    req = request("INVITE")
    txn = new_server(layer, req)
    busy = layer.send_response(txn, reply(req, 486), 100.0)
    assert txn.state is State.COMPLETED and status_of(msg(busy[0]).data) == 486
    fired = run_timers(layer, 200)
    times = [round(at - 100, 6) for at, _ in fired]
    # Timer G: T1, 2T1, 4T1, then capped at T2; Timer H at 64*T1 = 32 s
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    for _, events in fired[:-1]:
        assert events == busy  # the same cached bytes, to the same place
    assert fired[-1][1] == [TransactionTimedOut(txn), TransactionTerminated(txn)]
    assert len(layer) == 0


def test_invite_server_ack_confirms_and_timer_i_ends() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    txn = new_server(layer, req)
    layer.send_response(txn, reply(req, 404, tag="x9"), 0)
    assert run_timers(layer, 0.5)[0][0] == 0.5  # one Timer G retransmission
    ack = request("ACK", to_tag="x9")  # same branch: the ACK for a non-2xx
    assert layer.receive_request(ack, UDP_SRC, 0.7) == []
    assert txn.state is State.CONFIRMED
    assert layer.get_timer() == pytest.approx(5.7)  # Timer I = T4; G and H are gone
    assert layer.receive_request(request("ACK", to_tag="x9"), UDP_SRC, 1) == []  # absorbed
    assert layer.receive_request(request("INVITE"), UDP_SRC, 1.1) == []  # absorbed too
    assert run_timers(layer, 100) == [(pytest.approx(5.7), [TransactionTerminated(txn)])]


def test_invite_server_reliable_no_timer_g_and_zero_timer_i() -> None:
    layer = TransactionLayer()
    req = request("INVITE", transport="TCP")
    txn = new_server(layer, req, TCP_SRC)
    layer.send_response(txn, reply(req, 603), 2.0)
    assert layer.get_timer() == pytest.approx(34.0)  # only Timer H; no G over TCP
    events = layer.receive_request(request("ACK", transport="TCP"), TCP_SRC, 3.0)
    assert events == [TransactionTerminated(txn)] and len(layer) == 0
    assert layer.get_timer() is None


def test_invite_server_accepted_state_rfc6026() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    txn = new_server(layer, req)
    ok = reply(req, 200)
    assert sent(layer.send_response(txn, ok, 1.0)) == [ok.to_bytes()]
    assert txn.state is State.ACCEPTED
    assert layer.get_timer() == pytest.approx(33.0)  # Timer L = 64*T1; no Timer G for 2xx
    assert layer.receive_request(request("INVITE"), UDP_SRC, 1.5) == []  # absorbed, no 200
    # the TU (dialog) retransmits its 2xx through the transaction
    assert sent(layer.send_response(txn, ok, 1.5)) == [ok.to_bytes()]
    with pytest.raises(TransactionStateError):
        layer.send_response(txn, reply(req, 486), 1.6)
    # ACK for the 2xx: own branch, matches nothing -> to the TU
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="b1")
    assert layer.receive_request(ack, UDP_SRC, 2.0) == [AckReceived(ack, UDP_SRC)]
    # even one that reuses the INVITE branch goes to the TU while Accepted (RFC 6026 §8.7)
    same = request("ACK", to_tag="b1")
    assert layer.receive_request(same, UDP_SRC, 2.1) == [AckReceived(same, UDP_SRC)]
    assert txn.state is State.ACCEPTED
    assert run_timers(layer, 100) == [(pytest.approx(33.0), [TransactionTerminated(txn)])]


def test_invite_server_transport_error_keeps_accepted() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    txn = new_server(layer, req)
    layer.send_response(txn, reply(req, 200), 0)
    assert layer.transport_error(txn, 0.1) == [TransportError(txn)]
    assert txn.state is State.ACCEPTED
    other = new_server(layer, request("INVITE", branch="z9hG4bKb2"))
    assert layer.transport_error(other, 0.2) == [TransportError(other),
                                                 TransactionTerminated(other)]
    assert layer.transport_error(other, 0.3) == []


def test_stray_ack_goes_to_tu() -> None:
    layer = TransactionLayer()
    ack = request("ACK", branch="z9hG4bKnothing", to_tag="t")
    assert layer.receive_request(ack, UDP_SRC, 0) == [AckReceived(ack, UDP_SRC)]
    assert len(layer) == 0


# -- matching (§17.2.3) --------------------------------------------------------------------


def test_matching_needs_sent_by_and_method() -> None:
    layer = TransactionLayer()
    first = new_server(layer, request("INVITE"))
    # the same branch from another sent-by is another transaction
    other = new_server(layer, request("INVITE", sent_by="10.0.0.9:5060"))
    # and so is a different method with the same branch (e.g. a BYE reusing it)
    bye = new_server(layer, request("BYE", cseq=2))
    assert len({id(first), id(other), id(bye)}) == 3 and layer.server_count == 3


def test_rfc2543_matching_without_magic_cookie() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="")
    txn = new_server(layer, req)
    trying = layer.receive_request(request("INVITE", branch=""), UDP_SRC, 0.1)
    assert len(trying) == 1 and status_of(msg(trying[0]).data) == 100  # matched: retransmission
    # a different CSeq is a different transaction
    assert isinstance(layer.receive_request(request("INVITE", branch="", cseq=2), UDP_SRC, 0.2)[1],
                      RequestReceived)
    layer.send_response(txn, reply(req, 486, tag="t1"), 0.3)
    stray = request("ACK", branch="", to_tag="wrong")  # To tag must match our response's
    assert layer.receive_request(stray, UDP_SRC, 0.4) == [AckReceived(stray, UDP_SRC)]
    assert txn.state is State.COMPLETED
    assert layer.receive_request(request("ACK", branch="", to_tag="t1"), UDP_SRC, 0.5) == []
    assert txn.state is State.CONFIRMED


def test_rfc2543_non_invite_key_includes_to_tag() -> None:
    layer = TransactionLayer()
    new_server(layer, request("BYE", branch="", to_tag="x"))
    assert isinstance(layer.receive_request(request("BYE", branch="", to_tag="y"), UDP_SRC, 0)[0],
                      RequestReceived)


# -- CANCEL (§9.2) -------------------------------------------------------------------------


def test_cancel_matching_invite_answers_200_and_tells_tu() -> None:
    layer = TransactionLayer()
    inv = request("INVITE")
    txn = new_server(layer, inv)
    layer.send_response(txn, reply(inv, 180, tag="uas7"), 0.1)
    cancel = request("CANCEL", cseq=1)
    events = layer.receive_request(cancel, UDP_SRC, 1.0)
    assert len(events) == 2 and events[1] == CancelReceived(txn, cancel)
    ok = parse_message(msg(events[0]).data)
    assert isinstance(ok, Response) and ok.status == 200
    assert ok.cseq == (1, "CANCEL")
    assert ok.to.tag == "uas7"  # §9.2: SHOULD equal the To tag of the INVITE's responses
    # a retransmitted CANCEL gets the 200 again and does not reach the TU twice
    assert layer.receive_request(request("CANCEL"), UDP_SRC, 1.2) == [events[0]]
    # the TU answers the INVITE 487; the machine goes on as for any non-2xx
    layer.send_response(txn, reply(inv, 487, tag="uas7"), 1.3)
    assert txn.state is State.COMPLETED


def test_cancel_after_final_response_is_answered_without_tu() -> None:
    layer = TransactionLayer()
    inv = request("INVITE")
    txn = new_server(layer, inv)
    layer.send_response(txn, reply(inv, 200), 0.1)
    events = layer.receive_request(request("CANCEL"), UDP_SRC, 0.2)
    assert [status_of(d) for d in sent(events)] == [200]
    assert not any(isinstance(e, CancelReceived) for e in events)


def test_rfc2543_cancel_matches_invite() -> None:
    layer = TransactionLayer()
    txn = new_server(layer, request("INVITE", branch=""))
    cancel = request("CANCEL", branch="")
    events = layer.receive_request(cancel, UDP_SRC, 0.1)
    assert events[-1] == CancelReceived(txn, cancel)


def test_cancel_matching_nothing_gets_481() -> None:
    layer = TransactionLayer()
    events = layer.receive_request(request("CANCEL", branch="z9hG4bKgone"), UDP_SRC, 0)
    assert len(events) == 1
    response = parse_message(msg(events[0]).data)
    assert isinstance(response, Response) and response.status == 481
    assert response.to.tag  # §8.2.6.2: a final response carries a To tag
    # the CANCEL transaction itself lives on for Timer J (a copy gets the 481 again), then ends
    assert layer.server_count == 1
    again = layer.receive_request(request("CANCEL", branch="z9hG4bKgone"), UDP_SRC, 1)
    assert sent(again) == [msg(events[0]).data]
    assert layer.get_timer() == pytest.approx(32.0)
    assert layer.handle_timer(32.0) == [] and len(layer) == 0


def test_cancel_does_not_match_another_sent_by() -> None:
    layer = TransactionLayer()
    new_server(layer, request("INVITE"))
    events = layer.receive_request(request("CANCEL", sent_by="10.9.9.9:5060"), UDP_SRC, 0)
    assert [status_of(d) for d in sent(events)] == [481]


def test_terminate_by_tu() -> None:
    layer = TransactionLayer()
    txn = new_server(layer, request("INVITE"))
    assert layer.terminate(txn, 1) == [TransactionTerminated(txn)]
    assert layer.terminate(txn, 2) == [] and len(layer) == 0
    with pytest.raises(TransactionStateError):
        layer.send_response(txn, reply(txn.request, 200), 3)  # type: ignore[arg-type]
