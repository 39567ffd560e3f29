"""The SIP core: bytes in, bytes out, no sockets and no clock (the adapter passes both times).

``now`` is the monotonic time that drives transaction timers; ``wall`` is Unix time for
bindings and nonces. Each input returns the ``SendMessage`` events the adapter must send.
Malformed input is answered as RFC 3261 prescribes where a response can be formed, otherwise
dropped and counted; nothing a peer sends can raise out of ``receive_*``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from softswitch.registrar import Registrar
from softswitch.sip.errors import SipError
from softswitch.sip.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    TransactionTimedOut,
)
from softswitch.sip.message import (
    Peer,
    Request,
    Response,
    _answerable,
    make_response,
    parse_message,
    response_destination,
    stamp_via,
)
from softswitch.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from softswitch.sip.validate import check_request
from softswitch.trace import Tracer

if TYPE_CHECKING:
    from softswitch.b2bua import B2bua

__all__ = ["ALLOWED", "SUPPORTED", "SipCore", "SipCounters"]

log = logging.getLogger("softswitch.sip")

# What this switch serves; UPDATE and INFO only inside a call's dialog (RFC 3311, RFC 6086).
ALLOWED = frozenset("REGISTER OPTIONS ACK CANCEL INVITE BYE UPDATE INFO REFER".split())
_CALL_METHODS = frozenset({"INVITE", "BYE", "UPDATE", "INFO", "REFER"})
SUPPORTED = frozenset({"path", "outbound"})
ACCEPT = "application/sdp"


class SipCounters:
    """Plain integer counters (cheaper than a Prometheus client call per message)."""

    __slots__ = (
        "requests", "responses_sent", "responses_received", "parse_errors", "dropped",
        "auth_failures", "auth_challenges", "blocked", "registrations", "unregistrations",
    )

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.responses_sent: Counter[str] = Counter()
        self.responses_received: Counter[str] = Counter()
        self.parse_errors: Counter[int] = Counter()
        self.dropped = 0
        self.auth_failures = 0
        self.auth_challenges = 0
        self.blocked = 0
        self.registrations = 0
        self.unregistrations = 0


class SipCore:
    """Parses, validates, runs transactions and dispatches requests to their handlers."""

    def __init__(
        self,
        registrar: Registrar,
        transactions: TransactionLayer,
        *,
        server: str = "softswitch",
        max_message_bytes: int = 65535,
        tracer: Tracer | None = None,
        on_registration: Callable[[str, str, Peer, tuple[str, ...]], None] | None = None,
    ) -> None:
        self.registrar = registrar
        self.transactions = transactions
        self.server = server
        self.max_message_bytes = max_message_bytes
        self.tracer = tracer or Tracer()
        self.counters = SipCounters()
        self.on_registration = on_registration
        # Calls (set by the app); None answers INVITE and friends 405 as before.
        self.b2bua: B2bua | None = None
        # B2BUA commands other than SendMessage (media, CDR) for the adapter to carry out.
        self.commands: list[object] = []
        self._allow = ", ".join(sorted(ALLOWED))
        self._supported = ", ".join(sorted(SUPPORTED))

    # -- inputs -----------------------------------------------------------------------------
    def receive_datagram(
        self, data: bytes, source: Peer, now: float, wall: float
    ) -> list[SendMessage]:
        if self.tracer.active:
            self.tracer.received(data, source)
        try:
            msg = parse_message(data, max_size=self.max_message_bytes)
        except SipError as exc:
            return self.malformed(exc, source, data)
        return self.receive_message(msg, source, now, wall)

    def malformed(self, exc: SipError, source: Peer, data: bytes = b"") -> list[SendMessage]:
        """Answer (or drop) input that failed to parse or validate."""
        c = self.counters
        c.parse_errors[exc.status] += 1
        req = exc.message
        if req is None or req.method == "ACK":
            # Nothing to address a response to (or an ACK, which is never answered).
            c.dropped += 1
            log.debug("dropped unanswerable message from %s:%d: %s", source.host, source.port, exc)
            return []
        try:
            stamp_via(req, source.host, source.port)
            resp = make_response(req, exc.status, exc.reason, to_tag=_local_tag(req),
                                 headers=exc.headers)
            dest = response_destination(req.top_via, source)
        except SipError:
            c.dropped += 1
            return []
        log.info("answered %d %s to %s:%d", exc.status, exc.reason, source.host, source.port)
        return [self._send_stateless(resp, dest)]

    def receive_message(
        self, msg: Request | Response, source: Peer, now: float, wall: float
    ) -> list[SendMessage]:
        try:
            if isinstance(msg, Response):
                self.counters.responses_received[_status_class(msg.status)] += 1
                events = self.transactions.receive_response(msg, source, now)
                return self._process(events, now, wall)
            self.counters.requests[msg.method] += 1
            # RFC 3261 §17.2.3: a retransmission belongs to its transaction, which answers it
            # (or absorbs it) without the TU; only requests new to the layer are validated.
            absorbed = self.transactions.absorb(msg)
            if absorbed is not None:
                if self.tracer.active:
                    self.tracer.request(msg, source)
                return self._process(absorbed, now, wall)
            # Validate first: it parses the Vias once, and stamp_via reuses that parse.
            check_request(msg, allowed=ALLOWED, supported=SUPPORTED)
            stamp_via(msg, source.host, source.port)
            if self.tracer.active:
                self.tracer.request(msg, source)
            events = self.transactions.receive_request(msg, source, now)
            return self._process(events, now, wall)
        except SipError as exc:
            if exc.message is None and isinstance(msg, Request):
                # Only answerable with Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2).
                exc.message = _answerable(msg)
            return self.malformed(exc, source)

    def handle_timer(self, now: float, wall: float) -> list[SendMessage]:
        out = self._process(self.transactions.handle_timer(now), now, wall)
        if self.b2bua is not None:
            out.extend(self.split(self.b2bua.handle_timer(now, wall)))
        return out

    def get_timer(self) -> float | None:
        when = self.transactions.get_timer()
        if self.b2bua is not None:
            other = self.b2bua.get_timer()
            if other is not None and (when is None or other < when):
                when = other
        return when

    def split(self, commands: list) -> list[SendMessage]:
        """B2BUA output: what to send now; the rest waits in `commands` for the adapter."""
        out: list[SendMessage] = []
        for c in commands:
            if type(c) is SendMessage:
                out.append(c)
            else:
                self.commands.append(c)
        return out

    # -- dispatch ---------------------------------------------------------------------------
    def _process(self, events: list, now: float, wall: float) -> list[SendMessage]:
        out: list[SendMessage] = []
        for ev in events:
            cls = type(ev)
            if cls is SendMessage:
                out.append(ev)
            elif cls is RequestReceived:
                out.extend(self._on_request(ev.txn, ev.request, ev.source, now, wall))
            elif cls is CancelReceived:
                if self.b2bua is not None and self.b2bua.owns(ev.txn):
                    out.extend(self.split(self.b2bua.on_cancel(ev.txn, now, wall)))
                    continue
                # RFC 3261 §9.2: 487 to the INVITE, tagged like any final response.
                txn = ev.txn
                resp = make_response(txn.request, 487, "Request Terminated",
                                     to_tag=txn.to_tag or _local_tag(txn.request))
                out.extend(self._respond(ev.txn, resp, now))
            elif cls is AckReceived:
                if self.b2bua is not None:  # the ACK for a 2xx belongs to its dialog
                    out.extend(self.split(self.b2bua.on_ack(ev.request, now, wall)))
            elif cls is ResponseReceived:
                if self.b2bua is not None:
                    out.extend(self.split(self.b2bua.on_response(ev.txn, ev.response, now,
                                                                 wall)))
            elif cls is TransactionTimedOut:
                log.debug("transaction timed out: %r", ev.txn)
                if self.b2bua is not None and isinstance(ev.txn, ClientTransaction):
                    out.extend(self.split(self.b2bua.on_timeout(ev.txn, now, wall)))
        return out

    def _on_request(
        self, txn: ServerTransaction, req: Request, source: Peer, now: float, wall: float
    ) -> list[SendMessage]:
        method = req.method
        try:
            if method == "REGISTER":
                resp, outcome = self.registrar.handle(req, source, wall)
                self._count_outcome(outcome.kind)
                if outcome.kind in ("registered", "unregistered") and self.on_registration:
                    self.on_registration(outcome.kind, outcome.aor, source, outcome.contacts)
            elif method in _CALL_METHODS and self.b2bua is not None:
                if req.to.tag is not None:  # RFC 3261 §12.2.2: inside a dialog
                    cmds = self.b2bua.on_in_dialog(txn, req, source, now, wall)
                elif method == "INVITE":
                    cmds = self.b2bua.on_invite(txn, req, source, now, wall)
                else:
                    # RFC 3261 §12.2.2 / §15.1.2: BYE, UPDATE, INFO need a dialog.
                    resp = make_response(req, 481, "Call/Transaction Does Not Exist",
                                         to_tag=_local_tag(req))
                    return self._respond(txn, resp, now)
                return self.split(cmds)
            elif method == "OPTIONS":
                resp = self._options(req)
            else:
                resp = make_response(req, 405, "Method Not Allowed", to_tag=_local_tag(req),
                                     headers=[("Allow", self._allow)])
        except SipError as exc:
            self.counters.parse_errors[exc.status] += 1
            resp = make_response(req, exc.status, exc.reason, to_tag=_local_tag(req),
                                 headers=exc.headers)
        return self._respond(txn, resp, now)

    def _options(self, req: Request) -> Response:
        # RFC 3261 §11.2: capabilities of the switch itself.
        return make_response(req, 200, "OK", to_tag=_local_tag(req), headers=[
            ("Allow", self._allow),
            ("Accept", ACCEPT),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en, id"),
            ("Supported", self._supported),
            ("Server", self.server),
        ])

    def _respond(self, txn: ServerTransaction, resp: Response, now: float) -> list[SendMessage]:
        self.counters.responses_sent[_status_class(resp.status)] += 1
        out = [ev for ev in self.transactions.send_response(txn, resp, now)
               if isinstance(ev, SendMessage)]
        if self.tracer.active and out:
            self.tracer.response(resp, out[0].dest)
        return out

    def _send_stateless(self, resp: Response, dest: Peer) -> SendMessage:
        self.counters.responses_sent[_status_class(resp.status)] += 1
        if self.tracer.active:
            self.tracer.response(resp, dest)
        return SendMessage(resp.to_bytes(), dest)

    def _count_outcome(self, kind: str) -> None:
        c = self.counters
        if kind == "registered":
            c.registrations += 1
        elif kind == "unregistered":
            c.unregistrations += 1
        elif kind == "challenged":
            c.auth_challenges += 1
        elif kind == "auth_failed":
            c.auth_failures += 1
        elif kind == "blocked":
            c.blocked += 1


def _local_tag(request: Request) -> str:
    # RFC 3261 §8.2.6.2: every response but 100 tags To; stable across retransmissions.
    # Raw header values, so a malformed CSeq being answered cannot raise here.
    raw = (request.headers.get("Call-ID"), request.headers.get("CSeq"), "tag")
    return "%08x" % (hash(raw) & 0xFFFFFFFF)


_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx")


def _status_class(status: int) -> str:
    cls = status // 100
    return _CLASSES[cls] if 0 <= cls < 7 else f"{cls}xx"
