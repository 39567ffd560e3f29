"""A long random simulation: two transaction layers over a lossy network on virtual time.

UDP loses and duplicates datagrams and reorders them; TCP delivers everything. The TUs on
both sides behave like a simple UA (provisional and final answers after random delays,
CANCELs, 2xx retransmission until the ACK, ACK for every 2xx). At the end every transaction
must have terminated exactly once and both tables must be empty.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable

import pytest

from softswitch.sip.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
)
from softswitch.sip.message import Peer, Request, Response, make_response, parse_message
from softswitch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    State,
    Timers,
    Transaction,
    TransactionLayer,
    new_branch,
)

UAC_HOST = "10.0.0.1"
UAS_HOST = "10.0.0.2"
DEAD_HOST = "10.0.0.3"  # swallows everything: Timers B and F must end what goes there


def build(method: str, branch: str, transport: str, call_id: str, cseq: int,
          cseq_method: str | None = None) -> Request:
    text = (
        f"{method} sip:bob@{UAS_HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {UAC_HOST}:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


class Simulation:
    def __init__(self, seed: int, loss: float, count: int) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.count = count
        self.timers = Timers()
        self.uac = TransactionLayer(self.timers)
        self.uas = TransactionLayer(self.timers)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.clients: list[ClientTransaction] = []
        self.servers: list[ServerTransaction] = []
        self.terminated: Counter[int] = Counter()
        self.timed_out: Counter[int] = Counter()
        self.finals: dict[int, list[int]] = {}  # client txn -> final statuses the TU saw
        self.answered: dict[tuple[str, str], list[int]] = {}  # what the UAS TU sent
        self.requests_seen: Counter[tuple[str, str]] = Counter()
        self.acked: set[int] = set()
        self.cancelled: set[int] = set()
        self.abandoned = 0
        self.sends = 0

    # -- plumbing --------------------------------------------------------------------------

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def send(self, data: bytes, dest: Peer) -> None:
        self.sends += 1
        if dest.host == DEAD_HOST:
            return
        copies = 1
        if dest.transport == "udp":
            if self.rng.random() < self.loss:
                return
            if self.rng.random() < 0.05:
                copies = 2  # the network duplicates
        for _ in range(copies):
            self.at(self.now + self.rng.uniform(0.001, 0.2),
                    lambda: self.arrive(data, dest))

    def arrive(self, data: bytes, dest: Peer) -> None:
        message = parse_message(data)
        to_uas = dest.host == UAS_HOST
        layer = self.uas if to_uas else self.uac
        source = Peer(dest.transport, UAC_HOST if to_uas else UAS_HOST, 5060)
        if isinstance(message, Request):
            events = layer.receive_request(message, source, self.now)
        else:
            events = layer.receive_response(message, source, self.now)
        (self.uas_events if to_uas else self.uac_events)(events)

    def run(self) -> None:
        for i in range(self.count):
            self.at(self.rng.uniform(0, 120), functools.partial(self.start, i))
        while True:
            candidates = [(t, n) for n, t in (
                (0, self._heap[0][0] if self._heap else None),
                (1, self.uac.get_timer()), (2, self.uas.get_timer())) if t is not None]
            if not candidates:
                break
            when, which = min(candidates)
            assert when >= self.now
            self.now = when
            if which == 0:
                heapq.heappop(self._heap)[2]()
            elif which == 1:
                self.uac_events(self.uac.handle_timer(when))
            else:
                self.uas_events(self.uas.handle_timer(when))

    # -- the UAC TU ------------------------------------------------------------------------

    def start(self, i: int) -> None:
        method = self.rng.choice(["INVITE", "INVITE", "REGISTER", "OPTIONS", "BYE"])
        transport = "udp" if self.rng.random() < 0.8 else "tcp"
        req = build(method, new_branch(), transport, f"call-{i}", i + 1)
        dest = Peer(transport, DEAD_HOST if self.rng.random() < 0.05 else UAS_HOST, 5060)
        txn, events = self.uac.send_request(req, dest, self.now)
        self.clients.append(txn)
        self.finals[id(txn)] = []
        self.uac_events(events)
        if txn.invite:
            # RFC 3261 §9.1: an INVITE still unanswered long after is abandoned by the TU
            self.at(self.now + 200, lambda: self.abandon(txn))

    def abandon(self, txn: ClientTransaction) -> None:
        if txn.state is not State.TERMINATED:
            self.abandoned += 1
            self.uac_events(self.uac.terminate(txn, self.now))

    def cancel(self, txn: ClientTransaction) -> None:
        if txn.state is not State.PROCEEDING or id(txn) in self.cancelled:
            return
        self.cancelled.add(id(txn))
        req = txn.request
        assert req is not None
        cancel = build("CANCEL", req.top_via.branch or "", txn.dest.transport, req.call_id,
                       req.cseq.seq)
        cancel_txn, events = self.uac.send_request(cancel, txn.dest, self.now)
        self.clients.append(cancel_txn)
        self.finals[id(cancel_txn)] = []
        self.uac_events(events)

    def uac_events(self, events: list[TransactionEvent]) -> None:
        for event in events:
            if isinstance(event, SendMessage):
                self.send(event.data, event.dest)
            elif isinstance(event, ResponseReceived):
                txn, status = event.txn, event.response.status
                if status >= 200:
                    self.finals[id(txn)].append(status)
                if txn.invite and 200 <= status < 300:
                    self.ack_2xx(txn, event.response)
                elif txn.invite and status < 200 and self.rng.random() < 0.3:
                    self.at(self.now + self.rng.uniform(0, 2), functools.partial(self.cancel, txn))
            elif isinstance(event, TransactionTimedOut):
                self.timed_out[id(event.txn)] += 1
            elif isinstance(event, TransactionTerminated):
                self.terminated[id(event.txn)] += 1
            else:
                raise AssertionError(f"unexpected UAC event {event!r}")

    def ack_2xx(self, txn: ClientTransaction, response: Response) -> None:
        # RFC 3261 §13.2.2.4: the TU sends the 2xx ACK itself, outside any transaction
        req = txn.request
        assert req is not None
        ack = build("ACK", new_branch(), txn.dest.transport, req.call_id, req.cseq.seq)
        self.send(ack.to_bytes(), txn.dest)

    # -- the UAS TU ------------------------------------------------------------------------

    def uas_events(self, events: list[TransactionEvent]) -> None:
        for event in events:
            if isinstance(event, SendMessage):
                self.send(event.data, event.dest)
            elif isinstance(event, RequestReceived):
                self.servers.append(event.txn)
                request = event.request
                key = (request.top_via.branch or "", request.method)
                self.requests_seen[key] += 1
                self.answered[key] = []
                self.schedule_answers(event.txn, request, key)
            elif isinstance(event, CancelReceived):
                assert event.txn.state is State.PROCEEDING
                invite = event.txn.request
                assert invite is not None
                self.respond(event.txn, invite, 487, (invite.top_via.branch or "", "INVITE"))
            elif isinstance(event, AckReceived):
                self.acked.add(event.request.cseq.seq)
            elif isinstance(event, TransactionTimedOut):
                self.timed_out[id(event.txn)] += 1
            elif isinstance(event, TransactionTerminated):
                self.terminated[id(event.txn)] += 1
                if isinstance(event.txn, ServerTransaction) and event.txn.method == "CANCEL":
                    self.servers.append(event.txn)  # the layer made it; the TU never saw it
            else:
                raise AssertionError(f"unexpected UAS event {event!r}")

    def schedule_answers(self, txn: ServerTransaction, request: Request,
                         key: tuple[str, str]) -> None:
        rng = self.rng
        delay = rng.uniform(0, 3)
        if rng.random() < 0.5:
            self.at(self.now + delay / 2, lambda: self.respond(txn, request, 180, key))
        if request.method == "INVITE":
            status = rng.choice([200, 200, 486, 603])
            delay += rng.uniform(0, 4)
        else:
            status = rng.choice([200, 404])
        self.at(self.now + delay, lambda: self.respond(txn, request, status, key))

    def respond(self, txn: ServerTransaction, request: Request, status: int,
                key: tuple[str, str]) -> None:
        if txn.state not in (State.TRYING, State.PROCEEDING):
            return  # cancelled, or terminated by the layer meanwhile
        response = make_response(request, status, to_tag="uas")
        if status >= 200:
            self.answered[key].append(status)
        self.uas_events(self.uas.send_response(txn, response, self.now))
        if 200 <= status < 300 and txn.invite:
            self.retransmit_2xx(txn, response, request.cseq.seq, self.timers.t1)

    def retransmit_2xx(self, txn: ServerTransaction, response: Response, seq: int,
                       interval: float) -> None:
        # RFC 3261 §13.3.1.4: the UAS core resends its 2xx until the ACK arrives
        def again() -> None:
            if seq in self.acked or txn.state is not State.ACCEPTED:
                return
            self.uas_events(self.uas.send_response(txn, response, self.now))
            self.retransmit_2xx(txn, response, seq, min(2 * interval, self.timers.t2))

        self.at(self.now + interval, again)


@pytest.mark.parametrize(("seed", "loss"), [(1, 0.25), (2, 0.25), (3, 0.5)])
def test_random_simulation_every_transaction_terminates(seed: int, loss: float) -> None:
    sim = Simulation(seed, loss=loss, count=700)
    sim.run()

    assert len(sim.uac) == 0 and len(sim.uas) == 0
    assert sim.uac.get_timer() is None and sim.uas.get_timer() is None
    everything: list[Transaction] = [*sim.clients, *sim.servers]
    assert len(sim.clients) >= 700 and len(sim.servers) >= 600
    for txn in everything:
        assert txn.state is State.TERMINATED, txn
        assert sim.terminated[id(txn)] == 1, txn  # exactly once
        assert sim.timed_out[id(txn)] <= 1
    # retransmissions were absorbed: the UAS TU saw each request at most once
    assert max(sim.requests_seen.values()) == 1
    for txn in sim.clients:
        finals = sim.finals[id(txn)]
        req = txn.request
        assert req is not None
        sent = sim.answered.get((req.top_via.branch or "", txn.method), [])
        if txn.method == "CANCEL":
            sent = [200, 481]  # answered by the UAS transaction layer itself (§9.2)
        if txn.invite:
            # several copies of one 2xx may reach the TU (RFC 6026); anything else once
            assert len(set(finals)) <= 1 and (not finals or finals[0] == 200 or len(finals) == 1)
        else:
            assert len(finals) <= 1
        assert set(finals) <= set(sent)  # only what the server really answered
        if sim.timed_out[id(txn)]:
            assert not finals  # Timer B/F fire only without a final response
    # the network did lose things: the timers really had work to do
    assert sim.sends > 2 * len(sim.clients)
    timeouts = sum(sim.timed_out.values())
    assert 0 < timeouts < len(everything) // 10
    assert sim.cancelled and any(487 in finals for finals in sim.finals.values())
