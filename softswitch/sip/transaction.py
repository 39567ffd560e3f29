"""RFC 3261 §17 transactions, with the RFC 6026 "Accepted" states; sans-I/O.

`TransactionLayer` holds every client and server transaction. Its inputs are method calls
that take `now` (a monotonic reading, non-decreasing between calls); its outputs are the
events of `softswitch.sip.events`, to be acted upon in order. The adapter keeps one timer
armed at `get_timer()` and calls `handle_timer(now)` when it fires.

Choices the RFC leaves open:
- The INVITE server transaction sends 100 (Trying) at once rather than after 200 ms
  (§17.2.1 allows either), as Kamailio and Asterisk do: it quenches Timer A at the caller.
- A non-INVITE server transaction ends for the TU when it sends its final response: the
  layer reports `TransactionTerminated` at once, on UDP as on TCP. Over UDP the Completed
  state of RFC 3261 §17.2.2 lives on in a compact table (the response bytes, where they go and
  the Timer J deadline, in tuples of strings and numbers that the cyclic GC does not track),
  which answers retransmissions for 64*T1. At 8,000 registrations/s that is half a million
  transactions at any time; held as objects they made each GC pass of the older generations
  stall the loop for a quarter of a second and set phones retransmitting.
- A CANCEL is matched against INVITE transactions only (RFC 3261 §9.1: non-INVITE requests
  are not cancelled); an unmatched CANCEL gets 481 (§9.2).
"""

from __future__ import annotations

import secrets
from collections import deque
from enum import Enum
from typing import ClassVar, cast

from softswitch.sip.errors import SipError
from softswitch.sip.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from softswitch.sip.message import Peer, Request, Response, make_response, response_destination
from softswitch.sip.timers import DeadlineQueues, Timers

__all__ = [
    "MAGIC_COOKIE",
    "ClientTransaction",
    "ServerTransaction",
    "State",
    "Timers",
    "Transaction",
    "TransactionLayer",
    "TransactionStateError",
    "make_ack",
    "new_branch",
]

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
_UNRELIABLE = frozenset({"udp"})


class State(Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026 §7
    TERMINATED = "Terminated"

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is Python code



CALLING = State.CALLING
TRYING = State.TRYING
PROCEEDING = State.PROCEEDING
COMPLETED = State.COMPLETED
CONFIRMED = State.CONFIRMED
ACCEPTED = State.ACCEPTED
TERMINATED = State.TERMINATED

Table = dict[State, frozenset[State]]

# The four machines as transition tables (RFC 3261 Figures 5-8 as amended by RFC 6026
# Figures 5 and 7). Every state may also end early in Terminated: transport error (§17.1.4,
# §17.2.4) or the TU abandoning the transaction (§9.1).
_INVITE_CLIENT: Table = {
    CALLING: frozenset({PROCEEDING, ACCEPTED, COMPLETED, TERMINATED}),
    PROCEEDING: frozenset({ACCEPTED, COMPLETED, TERMINATED}),
    ACCEPTED: frozenset({TERMINATED}),
    COMPLETED: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}
_NON_INVITE_CLIENT: Table = {
    TRYING: frozenset({PROCEEDING, COMPLETED, TERMINATED}),
    PROCEEDING: frozenset({COMPLETED, TERMINATED}),
    COMPLETED: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}
_INVITE_SERVER: Table = {
    PROCEEDING: frozenset({ACCEPTED, COMPLETED, TERMINATED}),
    ACCEPTED: frozenset({TERMINATED}),
    COMPLETED: frozenset({CONFIRMED, TERMINATED}),
    CONFIRMED: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}
_NON_INVITE_SERVER: Table = _NON_INVITE_CLIENT


class TransactionStateError(Exception):
    """The TU asked for something the transaction's state does not allow."""


# Methods in the keys are canonical str objects, so a key does not keep the parser's copy.
_METHODS = {m: m for m in ("INVITE", "ACK", "CANCEL", "BYE", "REGISTER", "OPTIONS", "INFO",
                           "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
                           "PUBLISH")}


class Transaction:
    """State shared by both kinds; the layer drives it, the TU only reads it.

    `method`, `invite`, `state`, `request`, `dest` (where our messages go) and `reliable`
    (transport of `dest`) are public; the timer fields belong to the layer.
    """

    __slots__ = ("key", "method", "invite", "reliable", "state", "request", "dest",
                 "timeout_at", "rtx_at", "rtx_interval")
    _TABLES: ClassVar[tuple[Table, Table]]  # indexed by `invite`

    def __init__(self, key: tuple[object, ...], method: str, request: Request, dest: Peer,
                 reliable: bool, state: State) -> None:
        self.key = key
        self.method = method
        self.invite = method == "INVITE"
        self.reliable = reliable
        self.state = state
        self.request: Request | None = request
        self.dest = dest
        self.timeout_at: float | None = None  # Timer B, D, F, H, I, J, K, L or M
        self.rtx_at: float | None = None  # Timer A, E or G
        self.rtx_interval = 0.0

    def _move(self, new: State) -> None:
        if new not in self._TABLES[self.invite][self.state]:
            kind = type(self).__name__
            raise TransactionStateError(f"{self.method} {kind}: {self.state.value} -> {new.value}")
        self.state = new

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state.value} {self.key[0]!r}>"


class ServerTransaction(Transaction):
    """Answers one received request (§17.2); the TU responds with `send_response`."""

    __slots__ = ("last_response", "to_tag")
    _TABLES = (_NON_INVITE_SERVER, _INVITE_SERVER)

    def __init__(self, key: tuple[object, ...], method: str, request: Request, dest: Peer,
                 reliable: bool) -> None:
        # fields set here rather than through super(): one is made per request received
        self.key = key
        self.method = method
        self.invite = invite = method == "INVITE"
        self.reliable = reliable
        self.state = PROCEEDING if invite else TRYING
        self.request = request
        self.dest = dest
        self.timeout_at = self.rtx_at = None
        self.rtx_interval = 0.0
        self.last_response: bytes | None = None  # what a retransmitted request gets
        self.to_tag: str | None = None  # of our responses: RFC 2543 ACK matching, §9.2 CANCEL


class ClientTransaction(Transaction):
    """Carries one request of ours (§17.1) until its final response, timeout or abandon."""

    __slots__ = ("data", "ack")
    _TABLES = (_NON_INVITE_CLIENT, _INVITE_CLIENT)

    def __init__(self, key: tuple[object, ...], method: str, request: Request, dest: Peer,
                 reliable: bool, data: bytes) -> None:
        super().__init__(key, method, request, dest, reliable,
                         CALLING if method == "INVITE" else TRYING)
        self.data: bytes | None = data  # the request as sent, for retransmission
        self.ack: bytes | None = None  # ACK for a non-2xx final response (§17.1.1.3)


def new_branch() -> str:
    """A fresh Via branch: the magic cookie plus 96 random bits (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + secrets.token_hex(12)


def _new_tag() -> str:
    return secrets.token_hex(6)  # RFC 3261 §19.3: at least 32 random bits


def _server_key(request: Request, method: str) -> tuple[object, ...]:
    """RFC 3261 §17.2.3 key; `method` is INVITE for an ACK or a CANCEL looking for its INVITE."""
    via = request.top_via
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return (branch, via.host, via.port, method)
    # RFC 2543 peers: Request-URI, From tag, Call-ID, CSeq number and top Via identify the
    # transaction. The To tag joins the key except for the INVITE family, whose ACK carries
    # the tag of our response; that one is checked against `to_tag` on match.
    to_tag = None if method == "INVITE" else request.to.tag
    return (None, request.call_id, request.from_.tag, request.cseq.seq, request.uri_text,
            via.host, via.port, branch, method, to_tag)


class TransactionLayer:
    """Every transaction of one SIP endpoint; see the module docstring for the I/O contract."""

    __slots__ = ("_timers", "_server", "_client", "_queues", "_completed", "_timer_j", "_t1",
                 "_t2", "_t4", "_d", "_timeout", "stray_responses")

    def __init__(self, timers: Timers | None = None) -> None:
        self.timers = timers if timers is not None else Timers()
        self._server: dict[tuple[object, ...], ServerTransaction] = {}
        self._client: dict[tuple[object, ...], ClientTransaction] = {}
        self._queues = DeadlineQueues()
        # Completed non-INVITE server transactions over UDP (see the module docstring):
        # key -> (Timer J deadline, final response, transport, host, port), and the deadlines
        # in the order they were armed (one duration, so a FIFO sorted by deadline).
        self._completed: dict[tuple[object, ...], tuple[float, bytes, str, str, int]] = {}
        self._timer_j: deque[tuple[float, tuple[object, ...]]] = deque()
        self.stray_responses = 0  # responses matching no client transaction, dropped

    @property
    def timers(self) -> Timers:
        return self._timers

    @timers.setter
    def timers(self, timers: Timers) -> None:
        """New values apply to timers armed from now on; armed deadlines stay (config reload)."""
        self._timers = timers
        self._t1 = timers.t1
        self._t2 = timers.t2
        self._t4 = timers.t4
        self._d = timers.d
        self._timeout = timers.timeout

    def __len__(self) -> int:
        return len(self._server) + len(self._completed) + len(self._client)

    @property
    def server_count(self) -> int:
        """Server transactions, the completed ones still absorbing for Timer J included."""
        return len(self._server) + len(self._completed)

    @property
    def client_count(self) -> int:
        return len(self._client)

    # -- timers ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction, or None when nothing is pending."""
        when = self._queues.earliest()
        timer_j = self._timer_j
        if timer_j:
            at = timer_j[0][0]
            if when is None or at < when:
                return at
        return when

    def handle_timer(self, now: float) -> list[TransactionEvent]:
        """Fire every timer due at `now`, earliest first."""
        timer_j = self._timer_j
        if timer_j and timer_j[0][0] <= now:
            self._expire_completed(now)
        events: list[TransactionEvent] = []
        pop_due = self._queues.pop_due
        while (entry := pop_due(now)) is not None:
            txn = cast(Transaction, entry[1])
            if entry[2]:
                txn.rtx_at = None
                self._retransmit(txn, now, events)
            else:
                txn.timeout_at = None
                self._expire(txn, events)
        return events

    def _expire_completed(self, now: float) -> None:
        """Timer J of the compact table: the entries end quietly (the TU heard at once)."""
        timer_j = self._timer_j
        completed = self._completed
        while timer_j and timer_j[0][0] <= now:
            at, key = timer_j.popleft()
            entry = completed.get(key)
            if entry is not None and entry[0] == at:
                del completed[key]

    def _arm_timeout(self, txn: Transaction, duration: float, now: float) -> None:
        at = now + duration
        txn.timeout_at = at
        self._queues.push(duration, txn, False, at)

    def _arm_rtx(self, txn: Transaction, interval: float, now: float) -> None:
        at = now + interval
        txn.rtx_interval = interval
        txn.rtx_at = at
        self._queues.push(interval, txn, True, at)

    def _retransmit(self, txn: Transaction, now: float, events: list[TransactionEvent]) -> None:
        if isinstance(txn, ClientTransaction):
            assert txn.data is not None
            events.append(SendMessage(txn.data, txn.dest))
            if txn.invite:
                # RFC 3261 §17.1.1.2: Timer A doubles with no T2 cap; Timer B bounds it
                interval = 2 * txn.rtx_interval
            elif txn.state is PROCEEDING:
                interval = self._t2  # §17.1.2.2: Timer E runs at T2 once a 1xx arrived
            else:
                interval = min(2 * txn.rtx_interval, self._t2)  # §17.1.2.2
        else:
            # §17.2.1 Timer G: the non-2xx final response again, doubling up to T2
            assert isinstance(txn, ServerTransaction) and txn.last_response is not None
            events.append(SendMessage(txn.last_response, txn.dest))
            interval = min(2 * txn.rtx_interval, self._t2)
        self._arm_rtx(txn, interval, now)

    def _expire(self, txn: Transaction, events: list[TransactionEvent]) -> None:
        state = txn.state
        if isinstance(txn, ClientTransaction):
            # Timer B (§17.1.1.2) or F (§17.1.2.2): no final response; the TU acts as on 408
            failed = state is CALLING or state is TRYING or (
                state is PROCEEDING and not txn.invite)
        else:
            failed = state is COMPLETED and txn.invite  # Timer H (§17.2.1): the ACK never came
        if failed:
            events.append(TransactionTimedOut(txn))
        # D, I, J, K (§17) and L, M (RFC 6026 §8.4, §8.7) end quietly
        events.append(self._terminate(txn))

    def _terminate(self, txn: Transaction) -> TransactionTerminated:
        if txn.state is TERMINATED:  # every other state may end early (see the tables)
            raise TransactionStateError(f"{txn!r} already terminated")
        txn.state = TERMINATED
        txn.timeout_at = txn.rtx_at = None
        table: dict[tuple[object, ...], ServerTransaction] | dict[
            tuple[object, ...], ClientTransaction]
        if type(txn) is ServerTransaction:
            table = self._server
            txn.last_response = None
        else:
            table = self._client
            cast(ClientTransaction, txn).data = cast(ClientTransaction, txn).ack = None
        if table.get(txn.key) is txn:
            del table[txn.key]
        return TransactionTerminated(txn)

    # -- server side (§17.2) ---------------------------------------------------------------

    def receive_request(self, request: Request, source: Peer,
                        now: float) -> list[TransactionEvent]:
        """A request from the transport: a retransmission is absorbed, anything new goes up.

        The request must have passed `validate.check_request` (Via, CSeq, From, To present);
        the lazy header views raise SipError otherwise.
        """
        method = request.method
        method = _METHODS.get(method, method)
        if method == "ACK":
            return self._receive_ack(request, source, now)
        via = request.top_via
        branch = via.branch
        if branch is not None and branch.startswith(MAGIC_COOKIE):
            key: tuple[object, ...] = (branch, via.host, via.port, method)  # §17.2.3
        else:
            key = _server_key(request, method)
        txn = self._server.get(key)
        if txn is not None:
            return self._retransmitted(txn)
        again = self._completed_copy(key)
        if again is not None:
            return again
        dest = response_destination(via, source)
        txn = ServerTransaction(key, method, request, dest, source.transport not in _UNRELIABLE)
        self._server[key] = txn
        if method == "CANCEL":
            return self._receive_cancel(txn, request, now)
        if txn.invite:
            # §17.2.1: 100 (Trying) without a To tag, sent at once (see module docstring)
            trying = txn.last_response = make_response(request, 100).to_bytes()
            return [SendMessage(trying, dest), RequestReceived(txn, request, source)]
        return [RequestReceived(txn, request, source)]

    def absorb(self, request: Request) -> list[TransactionEvent] | None:
        """§17.2.3 matching ahead of the TU: the events for a retransmission of a request
        that has an RFC 3261 server transaction, else None (pass it up as `receive_request`
        would after validation).

        Matching needs only the method and the top Via's branch and sent-by, so a
        retransmission is absorbed without the TU re-validating what it validated once:
        under overload, when phones retransmit, that is most of the cost of each copy.
        ACK (the INVITE's key, RFC 2543 peers, 2xx ACKs) and anything unmatched go on.
        """
        method = request.method
        if method == "ACK":
            return None
        try:
            via = request.top_via
        except SipError:
            return None  # the validator answers it
        branch = via.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            return None
        key = (branch, via.host, via.port, _METHODS.get(method, method))
        txn = self._server.get(key)
        if txn is None:
            return self._completed_copy(key)
        return self._retransmitted(txn)

    def _completed_copy(self, key: tuple[object, ...]) -> list[TransactionEvent] | None:
        """§17.2.2 Completed, from the compact table: the final response again, else None."""
        done = self._completed.get(key)
        if done is None:
            return None
        return [SendMessage(done[1], Peer(done[2], done[3], done[4]))]

    @staticmethod
    def _retransmitted(txn: ServerTransaction) -> list[TransactionEvent]:
        state = txn.state
        # §17.2.1 / §17.2.2: in Proceeding the latest provisional response, in Completed the
        # final one, goes out again. Trying has nothing to send yet; Confirmed and (RFC 6026
        # §7.1) Accepted absorb the retransmission silently.
        if state is PROCEEDING or state is COMPLETED:
            data = txn.last_response
            if data is not None:
                return [SendMessage(data, txn.dest)]
        return []

    def _receive_ack(self, request: Request, source: Peer, now: float) -> list[TransactionEvent]:
        key = _server_key(request, "INVITE")
        txn = self._server.get(key)
        if txn is None or (key[0] is None and request.to.tag != txn.to_tag):
            # §17.2.3: an ACK for a 2xx carries a branch of its own and matches nothing
            return [AckReceived(request, source)]
        state = txn.state
        if state is COMPLETED:
            # §17.2.1: the ACK for our non-2xx; Timer G stops, Timer I soaks up ACK copies
            txn.rtx_at = None
            txn.timeout_at = None
            txn._move(CONFIRMED)
            if txn.reliable:
                return [self._terminate(txn)]  # Timer I is zero on reliable transports
            self._arm_timeout(txn, self._t4, now)
            return []
        if state is ACCEPTED:
            return [AckReceived(request, source)]  # RFC 6026 §8.7: the TU owns 2xx ACKs
        return []  # Confirmed: a copy of the ACK; Proceeding: nothing to acknowledge yet

    def _receive_cancel(self, txn: ServerTransaction, cancel: Request,
                        now: float) -> list[TransactionEvent]:
        # RFC 3261 §9.2: the CANCEL gets its own non-INVITE transaction, answered here
        # The TU never hears of the CANCEL's own transaction, so not of its end either.
        invite = self._server.get(_server_key(cancel, "INVITE"))
        if invite is None:
            response = make_response(cancel, 481, to_tag=_new_tag())
            return self._respond_non_invite(txn, 481, response.to_bytes(), now)[:1]
        # "The To tag of the response to the CANCEL and the To tag in the response to the
        # original request SHOULD be the same."
        response = make_response(cancel, 200, to_tag=invite.to_tag or _new_tag())
        events = self._respond_non_invite(txn, 200, response.to_bytes(), now)[:1]
        if invite.state is PROCEEDING:
            events.append(CancelReceived(invite, cancel))  # the TU answers the INVITE 487
        return events

    def send_response(self, txn: ServerTransaction, response: Response,
                      now: float) -> list[TransactionEvent]:
        """Send the TU's response through `txn`; raises TransactionStateError if not allowed."""
        status = response.status
        if not txn.invite:
            return self._respond_non_invite(txn, status, response.to_bytes(), now)
        state = txn.state
        if state is PROCEEDING:
            tag = response.to.tag
            if tag:
                txn.to_tag = tag
            data = response.to_bytes()
            if status < 200:
                txn.last_response = data  # §17.2.1: no state change, no retransmission
            elif status < 300:
                # RFC 6026 §8.5: a 2xx leads to Accepted; retransmitting it until the ACK
                # arrives is the TU's job (RFC 3261 §13.3.1.4), Timer L keeps absorbing
                # INVITE copies meanwhile
                txn.last_response = None
                txn._move(ACCEPTED)
                self._arm_timeout(txn, self._timeout, now)
            else:
                # §17.2.1: Timer G retransmits over UDP, Timer H waits for the ACK
                txn.last_response = data
                txn._move(COMPLETED)
                if not txn.reliable:
                    self._arm_rtx(txn, self._t1, now)
                self._arm_timeout(txn, self._timeout, now)
            return [SendMessage(data, txn.dest)]
        if state is ACCEPTED and 200 <= status < 300:
            # RFC 6026 §8.6: the TU's 2xx retransmissions (and 2xx of other forks) pass through
            return [SendMessage(response.to_bytes(), txn.dest)]
        raise TransactionStateError(f"cannot send {status} in INVITE server {state.value}")

    def _respond_non_invite(self, txn: ServerTransaction, status: int, data: bytes,
                            now: float) -> list[TransactionEvent]:
        state = txn.state
        if state is not TRYING and state is not PROCEEDING:
            raise TransactionStateError(f"cannot send {status} in {txn.method} server "
                                        f"{state.value}")
        txn.last_response = data
        send = SendMessage(data, txn.dest)
        if status < 200:
            txn.state = PROCEEDING  # §17.2.2: Trying -> Proceeding, or stay
            return [send]
        txn.state = COMPLETED
        txn.request = None
        if not txn.reliable:
            # §17.2.2 Timer J: absorb request retransmissions for 64*T1, in the compact table
            at = now + self._timeout
            key = txn.key
            dest = txn.dest
            self._completed[key] = (at, data, dest.transport, dest.host, dest.port)
            self._timer_j.append((at, key))
        # Timer J is zero on reliable transports; either way the TU is done with it
        return [send, self._terminate(txn)]

    # -- client side (§17.1) ---------------------------------------------------------------

    def send_request(self, request: Request, dest: Peer,
                     now: float) -> tuple[ClientTransaction, list[TransactionEvent]]:
        """Start a client transaction. The top Via must carry a fresh RFC 3261 branch."""
        method = request.method
        method = _METHODS.get(method, method)
        if method == "ACK":
            # §17.1.1.3 / §13.2.2.4: the non-2xx ACK belongs to its INVITE transaction and
            # the 2xx ACK to the dialog; neither starts a transaction
            raise ValueError("an ACK does not start a client transaction")
        branch = request.top_via.branch
        if not branch or not branch.startswith(MAGIC_COOKIE) or branch == MAGIC_COOKIE:
            raise ValueError(f"top Via branch {branch!r} lacks the {MAGIC_COOKIE} cookie")
        key = (branch, method)  # §17.1.3
        if key in self._client:
            raise ValueError(f"a {method} client transaction with branch {branch} exists")
        data = request.to_bytes()
        txn = ClientTransaction(key, method, request, dest, dest.transport not in _UNRELIABLE,
                                data)
        self._client[key] = txn
        # §17.1.1.2 / §17.1.2.2: Timer B or F for any transport, Timer A or E over UDP only
        self._arm_timeout(txn, self._timeout, now)
        if not txn.reliable:
            self._arm_rtx(txn, self._t1, now)
        return txn, [SendMessage(data, dest)]

    def receive_response(self, response: Response, source: Peer,
                         now: float) -> list[TransactionEvent]:
        """A response from the transport; `source` is informational (§17.1.3 ignores it)."""
        try:
            cseq_method = response.cseq.method
            branch = response.top_via.branch
        except SipError:
            self.stray_responses += 1  # nothing to match it by: RFC 6026 §8.9 drops it too
            return []
        txn = self._client.get((branch, _METHODS.get(cseq_method, cseq_method)))
        if txn is None:
            # RFC 6026 §8.9 (updating RFC 3261 §18.1.2): a UA silently drops what matches
            # no client transaction
            self.stray_responses += 1
            return []
        status = response.status
        state = txn.state
        if txn.invite:
            return self._invite_response(txn, state, status, response, now)
        if state is TRYING or state is PROCEEDING:
            if status < 200:
                txn.state = PROCEEDING  # §17.1.2.2; Timer E keeps running
                return [ResponseReceived(txn, response)]
            txn.rtx_at = txn.timeout_at = None
            txn._move(COMPLETED)
            events: list[TransactionEvent] = [ResponseReceived(txn, response)]
            if txn.reliable:
                events.append(self._terminate(txn))  # Timer K is zero on reliable transports
            else:
                self._arm_timeout(txn, self._t4, now)  # Timer K absorbs response copies
            return events
        return []  # Completed: a copy of the final response (§17.1.2.2)

    def _invite_response(self, txn: ClientTransaction, state: State, status: int,
                         response: Response, now: float) -> list[TransactionEvent]:
        if state is CALLING or state is PROCEEDING:
            ack = None
            if status >= 300:
                assert txn.request is not None
                try:
                    ack = make_ack(txn.request, response).to_bytes()
                except SipError:
                    self.stray_responses += 1  # no To to acknowledge: as if never received
                    return []
            # §17.1.1.2: any response stops Timers A and B
            txn.rtx_at = txn.timeout_at = None
            if status < 200:
                txn.state = PROCEEDING
                return [ResponseReceived(txn, response)]
            if ack is None:
                # RFC 6026 §8.4: Accepted, where Timer M lets further 2xx reach the TU
                txn._move(ACCEPTED)
                self._arm_timeout(txn, self._timeout, now)
                return [ResponseReceived(txn, response)]
            txn.ack = ack
            txn._move(COMPLETED)
            events: list[TransactionEvent] = [SendMessage(ack, txn.dest),
                                              ResponseReceived(txn, response)]
            if txn.reliable:
                events.append(self._terminate(txn))  # Timer D is zero on reliable transports
            else:
                self._arm_timeout(txn, self._d, now)  # Timer D absorbs final response copies
            return events
        if state is ACCEPTED:
            # RFC 6026 §8.4: 2xx copies and 2xx of other forks go up; the TU ACKs each
            return [ResponseReceived(txn, response)] if 200 <= status < 300 else []
        if state is COMPLETED and status >= 300 and txn.ack is not None:
            return [SendMessage(txn.ack, txn.dest)]  # §17.1.1.2: ACK again, TU not told
        return []

    # -- either side -----------------------------------------------------------------------

    def transport_error(self, txn: Transaction, now: float) -> list[TransactionEvent]:
        """The adapter could not send for `txn` (§17.1.4, §17.2.4): inform the TU, terminate."""
        if txn.state is TERMINATED:
            return []
        if txn.state is ACCEPTED and isinstance(txn, ServerTransaction):
            # RFC 6026 §7.1: Accepted survives; the dialog decides what the failure means
            return [TransportError(txn)]
        return [TransportError(txn), self._terminate(txn)]

    def terminate(self, txn: Transaction, now: float) -> list[TransactionEvent]:
        """The TU abandons `txn`, e.g. an INVITE still unanswered 64*T1 after CANCEL (§9.1)."""
        if txn.state is TERMINATED:
            return []
        return [self._terminate(txn)]


def _field(message: Request | Response, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise SipError(400, f"Missing {name} header")
    return value


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3)."""
    headers = invite.headers
    # Only the top Via: the ACK is hop-by-hop, sent where the INVITE went, same branch.
    items = [("Via", headers.values("Via")[0])]
    # "If the INVITE request ... had Route header fields, those header fields MUST appear"
    items.extend(("Route", route) for route in headers.getall("Route"))
    max_forwards = invite.max_forwards
    items.append(("Max-Forwards", str(70 if max_forwards is None else max_forwards)))
    # Call-ID, From and Request-URI as in the INVITE; To as in the response (its tag).
    items.append(("From", _field(invite, "From")))
    items.append(("To", _field(response, "To")))
    items.append(("Call-ID", _field(invite, "Call-ID")))
    items.append(("CSeq", f"{invite.cseq.seq} ACK"))  # same number, method ACK
    return Request("ACK", invite.uri_text, items)
