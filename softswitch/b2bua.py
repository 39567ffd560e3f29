"""The back-to-back user agent, sans-I/O: each call is two legs with dialogs of their own.

The A leg is the caller's INVITE (we are its UAS); the B leg is one INVITE per registered
contact of the callee, sent in parallel (we are their UAC). The first 2xx wins; the other
branches get CANCEL (RFC 3261 §9.1, §16.7 step 10). Media is anchored: each leg gets an RTP
port pair on the switch (`allocate`), the SDP each side sees names the switch (RFC 3264 §5,
§6), and the relay bridges the two ports.

Inputs are the transaction layer's events plus `now` (monotonic, for timers) and `wall`
(Unix time, for the CDR); every input returns commands: `SendMessage` for the transport,
`Bridge` / `ReleaseMedia` for the relay, `WriteCdr` for the store. One timer per B2BUA:
`get_timer()` / `handle_timer(now, wall)` (ring timeouts and 2xx retransmissions).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address

from media.relay import LegMedia
from softswitch.dialplan import Application, Dialplan, NotFound
from softswitch.location import LocationService
from softswitch.midcall import MidCall, PlayMoh, Reoffer, StopMoh
from softswitch.offer_answer import (
    Capabilities,
    Negotiated,
    accept_answer,
    answer_offer,
    make_offer,
)
from softswitch.refer import Refer, Transferor
from softswitch.registrar import Registrar
from softswitch.sdp import Codec, SdpError, SessionDescription, make_origin, parse_sdp
from softswitch.sip.dialog import AckWait, Dialog, DialogId, DialogState, RetransmitResponse
from softswitch.sip.errors import SipError
from softswitch.sip.events import SendMessage
from softswitch.sip.message import Peer, Request, Response, make_response
from softswitch.sip.session_timer import SessionExpires, SessionTimer
from softswitch.sip.timers import Timers
from softswitch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TransactionLayer,
    new_branch,
)
from softswitch.sip.uri import NameAddr, SipURI, TelURI, Via, parse_name_addr, parse_uri
from softswitch.store.base import Cdr

__all__ = ["B2bua", "Bridge", "Call", "Command", "LegAnswered", "LegFailed", "LocalCall",
           "LegEnded", "LocalEnded", "PlayMoh", "ReleaseMedia", "StopMoh", "Transferred",
           "WriteCdr"]

log = logging.getLogger("softswitch.b2bua")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER"


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect relay ports `port_a` (facing the caller) and `port_b` (facing the callee)."""

    port_a: int
    a: LegMedia
    port_b: int
    b: LegMedia


@dataclass(frozen=True, slots=True)
class ReleaseMedia:
    ports: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WriteCdr:
    cdr: Cdr


# A call the switch answers itself (service number, feature code): the A leg is anchored at
# `a_port` and nothing is bridged until the application offers it to someone (`offer_leg`).
@dataclass(frozen=True, slots=True)
class LocalCall:
    call: Call
    kind: str  # "service" or "feature" (softswitch.dialplan.Application)
    number: str
    a: LegMedia  # what the caller's leg negotiated (where generated audio goes)


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """The leg `offer_leg` rang answered (ACKed; bridged only by `connect`)."""

    call: Call


@dataclass(frozen=True, slots=True)
class LegFailed:
    """Every branch `offer_leg` rang failed (best final status) or nobody was registered."""

    call: Call
    status: int


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The answered leg of a call the switch answered hung up, and the call asked to keep
    the caller (`Call.keep_a`): the caller is the switch's alone again (a survey, ACC-8)."""

    call: Call


@dataclass(frozen=True, slots=True)
class LocalEnded:
    """A call answered by the switch ended (either side, or the switch)."""

    call: Call
    side: str


@dataclass(frozen=True, slots=True)
class Transferred:
    """The answered leg of a call the switch answered sent REFER (blind transfer, RFC 3515):
    it was answered 202 and detached; the caller is the switch's alone until the application
    rings `number` (`offer_leg`) and reports the outcome with `refer_result`.
    `kind` is "extension" or "service" (softswitch.dialplan)."""

    call: Call
    kind: str
    number: str


Command = (SendMessage | Bridge | ReleaseMedia | WriteCdr | PlayMoh | StopMoh | LocalCall
           | LegAnswered | LegFailed | LegEnded | LocalEnded | Transferred)


@dataclass(eq=False, slots=True)
class Branch:
    """One INVITE of the B leg, to one registered contact."""

    call: Call
    dest: Peer
    invite: Request
    txn: ClientTransaction | None = None
    provisional: bool = False
    done: bool = False
    cancel_pending: bool = False
    final: int = 0
    dialog: Dialog | None = None


@dataclass(eq=False, slots=True)
class Call:
    """Both legs of one call and what the CDR needs."""

    id: int
    a_txn: ServerTransaction
    a_invite: Request
    a_peer: Peer
    a_tag: str
    caller: str
    callee: str
    started_at: float
    state: str = "routing"  # routing, ringing, answered, ended
    caller_display: str = ""
    # RFC 3323 §4.2 / RFC 3325 §7: the caller asked to be anonymous (Privacy: id, user or
    # header): callees see "Anonymous"; only a trusted peer gets the asserted identity.
    private: bool = False
    a_port: int = 0
    b_port: int = 0
    a_answer: SessionDescription | None = None
    a_neg: Negotiated | None = None
    b_offer: SessionDescription | None = None
    b_neg: Negotiated | None = None
    a_dialog: Dialog | None = None
    a_ack: AckWait | None = None
    a_last_2xx: Response | None = None
    # The 2xx we sent to an in-dialog INVITE (re-INVITE), waiting for its ACK: the AckWait,
    # the leg it went to and where (RFC 3261 §13.3.1.4 holds for re-INVITEs too, §14.2).
    reinvite_ack: tuple[AckWait, str, Peer] | None = None
    # A caller whose INVITE had no SDP (RFC 3261 §13.2.1, "delayed offer") gets our offer in
    # the 2xx and answers in its ACK: the offer until then, and the service waiting for it.
    a_offer: SessionDescription | None = None
    local_route: Application | None = None
    branches: list[Branch] = field(default_factory=list)
    winner: Branch | None = None
    ring_deadline: float | None = None
    sent_provisional: set[int] = field(default_factory=set)
    answered_at: float | None = None
    answered_mono: float | None = None
    ended_at: float | None = None
    disposition: str = ""
    cause: str = ""
    side: str = ""
    # Inside the answered call (softswitch/midcall.py): the last SDP we sent to / got from
    # each leg (RFC 3264 §8), the leg holding the other, the offer in progress, RFC 4028.
    a_local: SessionDescription | None = None
    a_remote: SessionDescription | None = None
    b_local: SessionDescription | None = None
    b_remote: SessionDescription | None = None
    held_by: str | None = None
    reoffer: Reoffer | None = None
    session: SessionExpires | None = None
    session_timer: SessionTimer | None = None
    local: bool = False  # answered by the switch (LocalCall); B leg rung by offer_leg
    keep_a: bool = False  # local: a BYE from the B leg ends only that leg (LegEnded)
    transferor: Transferor | None = None  # a blind transfer in progress (softswitch/refer.py)

    @property
    def call_id(self) -> str:
        return self.a_invite.call_id


# Best final response among failed branches (RFC 3261 §16.7 step 6, simplified): a 6xx
# ends the search; busy beats "not there"; otherwise the lowest status.
def _rank(status: int) -> tuple[int, int]:
    if status >= 600:
        return (0, status)
    if status == 486:
        return (1, status)
    return (2, status)


_DISPOSITIONS = {486: "busy", 600: "busy", 603: "rejected", 404: "not_found",
                 480: "unavailable", 408: "no_answer", 487: "cancelled", 488: "not_acceptable"}


class B2bua(MidCall, Refer):
    """Every call of the switch; see the module docstring for the I/O contract."""

    def __init__(
        self,
        transactions: TransactionLayer,
        registrar: Registrar,
        dialplan: Dialplan,
        location: LocationService,
        allocate: Callable[[], int | None],
        *,
        domain: str,
        media_address: str,
        ring_timeout: float = 30.0,
        timers: Timers | None = None,
        server: str = "softswitch",
        capabilities: Capabilities | None = None,
    ) -> None:
        self.transactions = transactions
        self.registrar = registrar
        self.dialplan = dialplan
        self.location = location
        self.allocate = allocate
        self.domain = domain
        self.media_address = media_address
        self.ring_timeout = ring_timeout
        self.timers = timers or Timers()
        self.server = server
        self.capabilities = capabilities or Capabilities()
        # Source networks whose INVITEs are not challenged and whose P-Asserted-Identity
        # is believed (RFC 3325 §2 "trust domain"): gateways, SBCs, a benchmark's SIPp.
        self.trusted: tuple[IPv4Network | IPv6Network, ...] = ()
        # Host names of static contacts -> the address they resolved to (the adapter resolves
        # them: the B2BUA does no I/O). A name missing here is not rung.
        self.resolved: dict[str, str] = {}
        # Our sent-by per transport ("udp" -> (host, port)); set once listeners are bound.
        self.local: dict[str, tuple[str, int]] = {}
        self.calls: dict[int, Call] = {}
        self._ids = itertools.count(1)
        self._by_a_txn: dict[ServerTransaction, Call] = {}
        self._by_client: dict[ClientTransaction, Branch] = {}
        self._by_dialog: dict[DialogId, tuple[Call, str]] = {}
        self._relayed: dict[ClientTransaction, tuple[ServerTransaction, Call]] = {}
        self._timers: list[tuple[float, int, int]] = []  # (when, seq, call id), lazy
        self._seq = itertools.count()
        self.completed = 0
        self._init_midcall()
        self._init_refer()

    # -- helpers ----------------------------------------------------------------------------
    def _via(self, transport: str) -> Via:
        host, port = self.local.get(transport) or self.local.get("udp") or ("127.0.0.1", 5060)
        return Via(transport.upper(), host, port, {"branch": new_branch(), "rport": None})

    def _contact(self, transport: str) -> str:
        host, port = self.local.get(transport) or self.local.get("udp") or ("127.0.0.1", 5060)
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:switch@{host}:{port}{suffix}>"

    def _respond_a(self, call: Call, status: int, reason: str | None, now: float, *,
                   headers: list[tuple[str, str]] | None = None,
                   body: bytes = b"") -> list[Command]:
        resp = make_response(call.a_invite, status, reason, to_tag=call.a_tag,
                             headers=headers or [], body=body)
        return self._send_response(call.a_txn, resp, now)

    def _send_response(self, txn: ServerTransaction, resp: Response,
                       now: float) -> list[Command]:
        try:
            events = self.transactions.send_response(txn, resp, now)
        except Exception:  # the transaction ended meanwhile (e.g. Timer L)
            return [SendMessage(resp.to_bytes(), txn.dest)]
        if txn.invite and 200 <= resp.status < 300:
            self._await_reinvite_ack(txn, resp, now)
        return [e for e in events if isinstance(e, SendMessage)]

    def _await_reinvite_ack(self, txn: ServerTransaction, resp: Response, now: float) -> None:
        """A 2xx to a re-INVITE is retransmitted until its ACK like the first (RFC 3261
        §13.3.1.4, §14.2): the transaction layer leaves 2xx retransmission to the TU."""
        req = txn.request
        if req is None or req.to.tag is None:
            return  # the initial INVITE: `a_ack` does this
        try:
            found = self._by_dialog.get(DialogId.of_request(req))
        except (ValueError, SipError):
            return
        if found is None:
            return
        call, leg = found
        wait = AckWait(resp, now, self.timers)
        call.reinvite_ack = (wait, leg, txn.dest)
        when = wait.get_timer()
        if when is not None:
            self._arm(call, when)

    def _arm(self, call: Call, when: float) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), call.id))

    def is_trusted(self, host: str) -> bool:
        if not self.trusted:
            return False
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def _static_peer(self, contact: str) -> Peer | None:
        """A static contact ``sip:gw.example:5060;transport=udp`` -> where to send: its IP
        address, or the one its host name resolved to (RFC 3263 §4.2 with A/AAAA records
        only: the transport and port come from the URI, 5060 by default)."""
        uri = _static_uri(contact)
        if uri is None:
            return None
        host = uri.host
        name = _host_name(host)
        if name is not None:
            resolved = self.resolved.get(name)
            if resolved is None:
                log.warning("static contact %s: %s is not resolved, not rung", contact, name)
                return None
            host = resolved
        return Peer(uri.transport or "udp", host, uri.port or 5060)

    def owns(self, txn: ServerTransaction) -> bool:
        return txn in self._by_a_txn

    # -- A leg: new INVITE ------------------------------------------------------------------
    def on_invite(self, txn: ServerTransaction, req: Request, source: Peer, now: float,
                  wall: float) -> list[Command]:
        """An out-of-dialog INVITE from a phone (RFC 3261 §13.3)."""
        if self.is_trusted(source.host):
            # A trusted peer (gateway, SBC) is not challenged; it asserts who calls (RFC 3325).
            username, display = _asserted_identity(req)
        else:
            authenticated, challenge, _ = self.registrar.authenticate(
                req, source, wall, header="Proxy-Authorization")  # RFC 3261 §22.3: 407
            if challenge is not None:
                return self._send_response(txn, challenge, now)
            assert authenticated is not None
            username = authenticated
            # RFC 3325 §5: identity headers from an untrusted source are not believed; the
            # caller is who authenticated, named as the directory names them.
            user = self.registrar.directory.lookup(username)
            display = user.name if user is not None and user.name else _display(req.from_)
        tag = secrets.token_hex(6)
        uri = req.uri
        dialled = getattr(uri, "user", None) or getattr(uri, "number", None) or ""
        call = Call(next(self._ids), txn, req, source, tag, username, dialled, wall)
        call.caller_display = display
        call.private = _wants_privacy(req)
        self.calls[call.id] = call
        self._by_a_txn[txn] = call
        offer: SessionDescription | None = None
        if req.body:
            try:
                offer = parse_sdp(req.body)
            except SdpError:
                # RFC 3261 §13.3.1: what we cannot read we cannot anchor.
                return self._fail(call, 488, "Not Acceptable Here", now, wall)
            call.a_remote = offer
        # else a delayed offer (RFC 3261 §13.2.1): ours goes in the 2xx, the answer in the ACK
        try:
            self._negotiate_session(call, req)  # RFC 4028 §9
        except SipError as exc:
            out_422 = self._respond_a(call, exc.status, exc.reason, now, headers=exc.headers)
            return out_422 + self._end(call, "failed", str(exc.status), "switch", now, wall)
        route = self.dialplan.resolve(dialled)
        if isinstance(route, NotFound):
            return self._fail(call, 404, "Not Found", now, wall)
        if isinstance(route, Application):
            return self._answer_locally(call, route, offer, now, wall)
        call.callee = route.user
        # Registered contacts (where each REGISTER came from), then a static one from config.
        targets: list[tuple[str, Peer, bool]] = []
        for b in self.location.lookup(route.user, wall):
            dest = _peer_of(b.received)
            if dest is not None:
                targets.append((b.contact, dest, True))
        callee = self.dialplan.directory.lookup(route.user)
        if callee is not None and callee.contact:
            dest = self._static_peer(callee.contact)
            if dest is not None:
                # RFC 3325 §4: assert identity only to a trusted network.
                targets.append((callee.contact, dest, self.is_trusted(dest.host)))
        if not targets:
            return self._fail(call, 480, "Temporarily Unavailable", now, wall)
        a_port = self.allocate()
        b_port = self.allocate() if a_port is not None else None
        if a_port is None or b_port is None:
            call.a_port = a_port or 0
            return self._fail(call, 503, "Service Unavailable", now, wall, cause="no_ports")
        call.a_port, call.b_port = a_port, b_port
        caps = self.capabilities
        if offer is not None:
            if not self._answer_caller(call, offer):
                return self._fail(call, 488, "Not Acceptable Here", now, wall)
            assert call.a_neg is not None
            # The callee is offered the caller's codec first, then what else we transcode.
            caps = self._codec_first(call.a_neg.codec)
        call.b_offer = make_offer(address=self.media_address, port=b_port,
                                  origin=make_origin(self.media_address), capabilities=caps)
        out: list[Command] = []
        max_forwards = req.max_forwards
        for contact, dest, assert_id in targets:
            branch = Branch(call, dest, self._b_invite(call, contact, dest, display,
                                                     max_forwards, assert_id=assert_id))
            call.branches.append(branch)
            branch.txn, events = self.transactions.send_request(branch.invite, dest, now)
            self._by_client[branch.txn] = branch
            out.extend(e for e in events if isinstance(e, SendMessage))
        if not call.branches:
            return self._fail(call, 480, "Temporarily Unavailable", now, wall)
        call.state = "ringing"
        call.ring_deadline = now + self.ring_timeout
        self._arm(call, call.ring_deadline)
        log.info("call %d %s -> %s: ringing %d contact(s)", call.id, call.caller, call.callee,
                 len(call.branches))
        return out

    def _b_invite(self, call: Call, contact: str, dest: Peer, display: str,
                  max_forwards: int | None, *, assert_id: bool = True) -> Request:
        via = self._via(dest.transport)
        quoted = display.replace("\\", "\\\\").replace('"', '\\"')
        name = f'"{quoted}" ' if quoted else ""
        identity = f"{name}<sip:{call.caller}@{self.domain}>"
        shown = identity
        if call.private:
            # RFC 3323 §4.1.1.3: the anonymous From; RFC 3325 §7: the asserted identity only
            # to a trusted peer (gateway, SBC), with Privacy: id so that it withholds it too.
            shown = '"Anonymous" <sip:anonymous@anonymous.invalid>'
            assert_id = self.is_trusted(dest.host)
        assert call.b_offer is not None
        items = [
            ("Via", str(via)),
            # RFC 3261 §16.6 step 3 in spirit: a B2BUA loop still ends.
            ("Max-Forwards", str(max(0, (max_forwards if max_forwards is not None else 70) - 1))),
            ("From", f"{shown};tag={secrets.token_hex(6)}"),
            ("To", f"<sip:{call.callee}@{self.domain}>"),
            ("Call-ID", f"{secrets.token_hex(12)}@{self.domain}"),
            ("CSeq", "1 INVITE"),
            ("Contact", self._contact(dest.transport)),
            ("Allow", ALLOW),
            ("User-Agent", self.server),
            ("Content-Type", "application/sdp"),
        ]
        if assert_id:
            # RFC 3325 §9.1: the identity the switch vouches for, to phones it serves.
            items.append(("P-Asserted-Identity", identity))
            if call.private:
                items.append(("Privacy", "id"))
        return Request("INVITE", contact, items, call.b_offer.to_bytes())

    # -- B leg: responses -------------------------------------------------------------------
    def on_response(self, txn: ClientTransaction, resp: Response, now: float,
                    wall: float) -> list[Command]:
        midcall = self._midcall_response(txn, resp, now, wall)
        if midcall is not None:
            return midcall
        refer = self._refer_response(txn, resp, now)
        if refer is not None:
            return refer
        relayed = self._relayed.pop(txn, None)
        if relayed is not None:
            server_txn, call = relayed
            if resp.status < 200:
                self._relayed[txn] = relayed
                return []
            # RFC 3261 §16.7 in spirit: the final answer to a passed-through request.
            assert server_txn.request is not None
            answer = make_response(server_txn.request, resp.status, resp.reason,
                                   headers=[(n, v) for n, v in resp.headers
                                            if n.lower() == "content-type"], body=resp.body)
            return self._send_response(server_txn, answer, now)
        branch = self._by_client.get(txn)
        if branch is None or txn.method != "INVITE":
            return []
        call = branch.call
        status = resp.status
        out: list[Command] = []
        if status < 200:
            if status == 100:
                branch.provisional = True
            else:
                branch.provisional = True
                if call.state == "ringing":
                    out.extend(self._early(call, branch, resp, now))
            if branch.cancel_pending:
                out.extend(self._cancel_branch(branch, now))
            return out
        if status < 300:
            return self._answered(call, branch, resp, now, wall)
        # A failure: this branch is over (the layer has ACKed it, RFC 3261 §17.1.1.3).
        branch.done = True
        branch.final = status
        self._by_client.pop(txn, None)
        return self._branch_failed(call, now, wall)

    def on_timeout(self, txn: ClientTransaction, now: float, wall: float) -> list[Command]:
        """Timer B/F (RFC 3261 §17.1.1.2): as a 408 from that branch."""
        midcall = self._midcall_timeout(txn, now, wall)
        if midcall is not None:
            return midcall
        refer = self._refer_timeout(txn, now)
        if refer is not None:
            return refer
        relayed = self._relayed.pop(txn, None)
        if relayed is not None:
            server_txn, _call = relayed
            assert server_txn.request is not None
            return self._send_response(
                server_txn, make_response(server_txn.request, 408, "Request Timeout"), now)
        branch = self._by_client.pop(txn, None)
        if branch is None or branch.done:
            return []
        branch.done = True
        branch.final = 408
        return self._branch_failed(branch.call, now, wall)

    def _early(self, call: Call, branch: Branch, resp: Response, now: float) -> list[Command]:
        """180/183 go to the caller; an SDP answer in them starts early media (RFC 3960)."""
        out: list[Command] = []
        status = resp.status
        body = b""
        headers: list[tuple[str, str]] = []
        if resp.body and call.b_offer is not None:
            try:
                neg = accept_answer(call.b_offer, parse_sdp(resp.body))
            except SdpError:
                neg = None
            if neg is not None:
                call.b_neg = neg
                if call.a_answer is not None:  # a delayed offer gets no early media
                    out.append(self._bridge(call))
                    body = call.a_answer.to_bytes()
                    headers = [("Contact", self._contact(call.a_peer.transport)),
                               ("Content-Type", "application/sdp")]
        if status in call.sent_provisional and not body:
            return out
        call.sent_provisional.add(status)
        out.extend(self._respond_a(call, status, resp.reason, now, headers=headers, body=body))
        return out

    def _bridge(self, call: Call) -> Bridge:
        a, b = call.a_neg, call.b_neg
        assert a is not None and b is not None
        return Bridge(call.a_port, _leg_media(a), call.b_port, _leg_media(b))

    def _answered(self, call: Call, branch: Branch, resp: Response, now: float,
                  wall: float) -> list[Command]:
        out: list[Command] = []
        # RFC 3261 §13.2.2.4: every 2xx is ACKed by the UAC core, retransmissions included.
        if branch.dialog is None:
            try:
                branch.dialog = Dialog.from_response(branch.invite, resp)
            except SipError:
                return out
        dialog = branch.dialog
        ack = dialog.ack(branch.invite, self._via(branch.dest.transport))
        out.append(SendMessage(ack.to_bytes(), branch.dest))
        if call.winner is branch or branch.done:
            return out  # a retransmitted 2xx: ACKed again, nothing else
        branch.done = True
        branch.final = resp.status
        if call.local and call.winner is None and call.state == "answered" and (
                branch in call.branches):
            return out + self._leg_answered(call, branch, resp, now, wall)
        if call.state != "ringing":
            # Answered too late (after a CANCEL, another branch, or the caller's CANCEL):
            # RFC 3261 §9.1 — the dialog is ended with BYE.
            out.extend(self._send_bye(dialog, branch.dest, now))
            return out
        neg = None
        if resp.body and call.b_offer is not None:
            try:
                neg = accept_answer(call.b_offer, parse_sdp(resp.body))
            except SdpError:
                neg = None
        if neg is None and call.b_neg is None:
            out.extend(self._send_bye(dialog, branch.dest, now))
            out.extend(self._fail(call, 488, "Not Acceptable Here", now, wall, cause="488"))
            return out
        if neg is not None:
            call.b_neg = neg
            call.b_remote = _sdp_or_none(resp.body)
        call.winner = branch
        self._by_dialog[dialog.id] = (call, "b")
        if call.a_answer is None:
            # Delayed offer: ours to the caller, the callee's codec first (no transcoding if
            # it takes it); the bridge waits for the answer in the ACK.
            assert call.b_neg is not None
            call.a_offer = call.a_answer = make_offer(
                address=self.media_address, port=call.a_port,
                origin=make_origin(self.media_address),
                capabilities=self._codec_first(call.b_neg.codec))
        else:
            out.append(self._bridge(call))
        # RFC 3261 §16.7 step 10 (what a forking proxy does): CANCEL the other branches.
        for other in call.branches:
            if other is not branch:
                out.extend(self._cancel_branch(other, now))
        assert call.a_answer is not None
        resp_a = make_response(
            call.a_invite, 200, "OK", to_tag=call.a_tag,
            headers=[("Contact", self._contact(call.a_peer.transport)), ("Allow", ALLOW),
                     ("Server", self.server), ("Content-Type", "application/sdp"),
                     *self._session_headers(call)],  # RFC 4028 §9
            body=call.a_answer.to_bytes())
        call.a_local, call.b_local = call.a_answer, call.b_offer
        call.a_dialog = Dialog.from_request(call.a_invite, resp_a)
        self._by_dialog[call.a_dialog.id] = (call, "a")
        call.a_ack = AckWait(resp_a, now, self.timers)  # RFC 3261 §13.3.1.4
        call.a_last_2xx = resp_a
        self._arm(call, now + self.timers.t1)
        out.extend(self._send_response(call.a_txn, resp_a, now))
        call.state = "answered"
        call.answered_at = wall
        call.answered_mono = now
        self._start_session_timer(call, now)
        call.ring_deadline = None
        log.info("call %d %s -> %s answered", call.id, call.caller, call.callee)
        return out

    def _branch_failed(self, call: Call, now: float, wall: float) -> list[Command]:
        if call.local:
            if (call.state != "answered" or call.winner is not None or not call.branches
                    or any(not b.done for b in call.branches)):
                return []
            best = min((b.final for b in call.branches), key=_rank)
            call.branches = []
            return self._leg_outcome(LegFailed(call, best), now, wall)
        if call.state != "ringing" or any(not b.done for b in call.branches):
            return []
        best = min((b.final for b in call.branches), key=_rank)
        reason = {408: "Request Timeout", 487: "Request Terminated"}.get(best)
        if best == 408:
            best, reason = 480, "Temporarily Unavailable"  # nobody there (RFC 3261 §21.4.18)
            return self._fail(call, best, reason, now, wall, disposition="no_answer",
                              cause="408")
        return self._fail(call, best, reason, now, wall)

    def _cancel_branch(self, branch: Branch, now: float) -> list[Command]:
        """RFC 3261 §9.1: CANCEL a pending branch; not before a provisional response."""
        if branch.done:
            return []
        if not branch.provisional:
            branch.cancel_pending = True
            return []
        branch.cancel_pending = False
        inv = branch.invite
        items = [("Via", inv.headers.values("Via")[0]), ("Max-Forwards", "70")]
        items.extend(("Route", r) for r in inv.headers.getall("Route"))
        items += [("From", inv.headers.get("From") or ""), ("To", inv.headers.get("To") or ""),
                  ("Call-ID", inv.call_id), ("CSeq", f"{inv.cseq.seq} CANCEL")]
        cancel = Request("CANCEL", inv.uri_text, items)
        try:
            _txn, events = self.transactions.send_request(cancel, branch.dest, now)
        except ValueError:
            return []  # already cancelled
        return [e for e in events if isinstance(e, SendMessage)]

    def _send_bye(self, dialog: Dialog, dest: Peer, now: float) -> list[Command]:
        if dialog.state is DialogState.TERMINATED:
            return []
        bye = dialog.new_request("BYE", self._via(dest.transport))
        _txn, events = self.transactions.send_request(bye, dest, now)
        return [e for e in events if isinstance(e, SendMessage)]

    # -- A leg: CANCEL, ACK -----------------------------------------------------------------
    def on_cancel(self, txn: ServerTransaction, now: float, wall: float) -> list[Command]:
        """The caller gave up (RFC 3261 §9.2): 487 to its INVITE, CANCEL every branch."""
        call = self._by_a_txn.get(txn)
        if call is None or call.state != "ringing":
            return []
        out: list[Command] = []
        for branch in call.branches:
            out.extend(self._cancel_branch(branch, now))
        out.extend(self._fail(call, 487, "Request Terminated", now, wall,
                              disposition="cancelled", side="caller"))
        return out

    def on_ack(self, ack: Request, now: float, wall: float) -> list[Command]:
        try:
            found = self._by_dialog.get(DialogId.of_request(ack))
        except (ValueError, SipError):
            return []
        if found is None:
            return []
        call, leg = found
        if leg == "a" and call.a_ack is not None and call.a_ack.receive_ack(ack) and (
                call.a_offer is not None):
            return self._late_answer(call, ack, now, wall)
        pending = call.reinvite_ack
        if pending is not None and pending[1] == leg and pending[0].receive_ack(ack):
            call.reinvite_ack = None
        return []

    # -- in-dialog requests -----------------------------------------------------------------
    def on_in_dialog(self, txn: ServerTransaction, req: Request, source: Peer, now: float,
                     wall: float) -> list[Command]:
        found = self._by_dialog.get(DialogId.of_request(req))
        if found is None:
            gone = self._transferor_request(txn, req, now)
            if gone is not None:
                return gone
            # RFC 3261 §12.2.2: a request in a dialog we do not know.
            return self._send_response(
                txn, make_response(req, 481, "Call/Transaction Does Not Exist"), now)
        call, leg = found
        if call.winner is None:
            return self._local_in_dialog(call, txn, req, now, wall)
        dialog, other, other_dest = self._legs(call, leg)
        try:
            dialog.receive_request(req)
        except SipError as exc:
            return self._send_response(txn, make_response(req, exc.status, exc.reason), now)
        method = req.method
        if method == "BYE" and leg == "b" and call.local and call.keep_a:
            return self._b_leg_ended(call, dialog, txn, req, now)
        if method == "BYE":
            out = self._send_response(txn, make_response(req, 200, "OK"), now)
            out.extend(self._send_bye(other, other_dest, now))
            out.extend(self._end(call, "answered", "bye", "caller" if leg == "a" else "callee",
                                 now, wall))
            return out
        if method in ("INVITE", "UPDATE"):
            return self._offer(call, leg, txn, req, now)
        if method == "REFER":
            return self._refer(call, leg, dialog, txn, req, now, wall)
        if method == "INFO" and other.state is DialogState.CONFIRMED:
            # Passed through to the other leg (DTMF as SIP INFO, RFC 6086); its final
            # response comes back as ours.
            headers = [(n, v) for n, v in req.headers if n.lower() == "content-type"]
            info = other.new_request("INFO", self._via(other_dest.transport), headers=headers,
                                     body=req.body)
            client, events = self.transactions.send_request(info, other_dest, now)
            self._relayed[client] = (txn, call)
            return [e for e in events if isinstance(e, SendMessage)]
        return self._send_response(txn, make_response(req, 200, "OK"), now)

    def _b_leg_ended(self, call: Call, dialog: Dialog, txn: ServerTransaction, req: Request,
                     now: float) -> list[Command]:
        """The agent's leg hung up; the caller stays answered by the switch alone."""
        out = self._send_response(txn, make_response(req, 200, "OK"), now)
        out.extend(self._drop_b_leg(call, dialog.id))
        out.append(LegEnded(call))
        return out

    def _drop_b_leg(self, call: Call, dialog_id: DialogId) -> list[Command]:
        """The answered leg (`dialog_id`) leaves `call`: its dialog no longer routes to the
        call, an offer between the legs is forgotten (nobody to finish it), the leg's state
        and relay port are released; the caller stays, the switch's alone."""
        self._by_dialog.pop(dialog_id, None)
        for client in [c for c, p in self._reoffers.items() if p.call is call]:
            del self._reoffers[client]
        call.winner, call.branches, call.keep_a = None, [], False
        call.b_neg = call.b_offer = call.b_local = call.b_remote = None
        call.held_by, call.reoffer = None, None
        if not call.b_port:
            return []
        port, call.b_port = call.b_port, 0
        return [ReleaseMedia((port,))]

    def _legs(self, call: Call, leg: str) -> tuple[Dialog, Dialog, Peer]:
        assert call.a_dialog is not None and call.winner is not None
        assert call.winner.dialog is not None
        if leg == "a":
            return call.a_dialog, call.winner.dialog, call.winner.dest
        return call.winner.dialog, call.a_dialog, call.a_peer

    # -- ends -------------------------------------------------------------------------------
    def _fail(self, call: Call, status: int, reason: str | None, now: float, wall: float, *,
              disposition: str | None = None, cause: str | None = None,
              side: str = "callee") -> list[Command]:
        out = self._respond_a(call, status, reason, now)
        if call.state == "ringing":
            for branch in call.branches:
                out.extend(self._cancel_branch(branch, now))
        if status in (404, 480, 488, 503) and call.state == "routing":
            side = "switch"
        out.extend(self._end(call, disposition or _DISPOSITIONS.get(status, "failed"),
                             cause or str(status), side, now, wall))
        return out

    def _end(self, call: Call, disposition: str, cause: str, side: str, now: float,
             wall: float) -> list[Command]:
        if call.state == "ended":
            return []
        call.state = "ended"
        call.ended_at = wall
        call.disposition, call.cause, call.side = disposition, cause, side
        self._by_a_txn.pop(call.a_txn, None)
        self.calls.pop(call.id, None)
        self._forget_midcall(call)
        out_refer = self._refer_ended(call, now)
        for branch in call.branches:
            if branch.txn is not None and (branch.done or call.winner is not None):
                self._by_client.pop(branch.txn, None)
        if call.a_dialog is not None:
            self._by_dialog.pop(call.a_dialog.id, None)
            if call.a_dialog.state is not DialogState.TERMINATED:
                call.a_dialog.terminate()
        if call.winner is not None and call.winner.dialog is not None:
            self._by_dialog.pop(call.winner.dialog.id, None)
        if call.a_ack is not None:
            call.a_ack.done = True
        self.completed += 1
        out: list[Command] = out_refer
        if call.local:
            if call.winner is None:
                for branch in call.branches:
                    out.extend(self._cancel_branch(branch, now))
            out.append(LocalEnded(call, side))
        ports = tuple(p for p in (call.a_port, call.b_port) if p)
        if ports:
            out.append(ReleaseMedia(ports))
        duration = wall - call.started_at
        billable = 0.0 if call.answered_at is None else wall - call.answered_at
        out.append(WriteCdr(Cdr(
            call_id=call.call_id, caller=call.caller, callee=call.callee,
            started_at=call.started_at, answered_at=call.answered_at, ended_at=wall,
            duration=round(duration, 3), billable=round(billable, 3),
            disposition=disposition, hangup_cause=cause, hangup_side=side)))
        log.info("call %d %s -> %s ended: %s (%s, %s)", call.id, call.caller, call.callee,
                 disposition, cause, side)
        return out

    def hangup(self, call: Call, cause: str, now: float, wall: float) -> list[Command]:
        """The switch ends `call` (RTP inactivity, shutdown): BYE both legs or refuse it."""
        if call.state == "answered" and call.winner is None:
            assert call.a_dialog is not None
            out_a = self._send_bye(call.a_dialog, call.a_peer, now)
            return out_a + self._end(call, "answered", cause, "switch", now, wall)
        if call.state == "answered":
            out: list[Command] = []
            a, b, b_dest = self._legs(call, "a")
            out.extend(self._send_bye(a, call.a_peer, now))
            out.extend(self._send_bye(b, b_dest, now))
            out.extend(self._end(call, "answered", cause, "switch", now, wall))
            return out
        if call.state == "ringing":
            return self._fail(call, 503, "Service Unavailable", now, wall,
                              disposition="failed", cause=cause, side="switch")
        return []

    def hangup_all(self, cause: str, now: float, wall: float) -> list[Command]:
        out: list[Command] = []
        for call in list(self.calls.values()):
            out.extend(self.hangup(call, cause, now, wall))
        return out

    # -- calls the switch answers (contact centre) ------------------------------------------
    def _answer_locally(self, call: Call, route: Application,
                        offer: SessionDescription | None, now: float,
                        wall: float) -> list[Command]:
        """RFC 3261 §13.3.1.4: the switch is the UAS; media anchored at one relay port."""
        call.callee = route.number
        call.local = True
        a_port = self.allocate()
        if a_port is None:
            return self._fail(call, 503, "Service Unavailable", now, wall, cause="no_ports")
        call.a_port = a_port
        if offer is None:
            # Delayed offer: ours in the 2xx; the service starts once the ACK answers it.
            call.a_offer = call.a_answer = make_offer(
                address=self.media_address, port=a_port,
                origin=make_origin(self.media_address), capabilities=self.capabilities)
            call.local_route = route
        elif not self._answer_caller(call, offer):
            return self._fail(call, 488, "Not Acceptable Here", now, wall)
        assert call.a_answer is not None
        resp_a = make_response(
            call.a_invite, 200, "OK", to_tag=call.a_tag,
            headers=[("Contact", self._contact(call.a_peer.transport)), ("Allow", ALLOW),
                     ("Server", self.server), ("Content-Type", "application/sdp"),
                     *self._session_headers(call)],
            body=call.a_answer.to_bytes())
        call.a_local = call.a_answer
        call.a_dialog = Dialog.from_request(call.a_invite, resp_a)
        self._by_dialog[call.a_dialog.id] = (call, "a")
        call.a_ack = AckWait(resp_a, now, self.timers)
        call.a_last_2xx = resp_a
        self._arm(call, now + self.timers.t1)
        out = self._send_response(call.a_txn, resp_a, now)
        call.state = "answered"
        call.answered_at = wall
        call.answered_mono = now
        self._start_session_timer(call, now)
        log.info("call %d %s -> %s answered by the switch (%s)", call.id, call.caller,
                 call.callee, route.kind)
        if call.a_neg is not None:
            out.append(LocalCall(call, route.kind, route.number, _leg_media(call.a_neg)))
        return out

    def _answer_caller(self, call: Call, offer: SessionDescription) -> bool:
        """RFC 3264 §6: our answer to the caller's offer, at our port facing it; False when
        nothing in it is acceptable (488)."""
        answered = answer_offer(offer, address=self.media_address, port=call.a_port,
                                origin=make_origin(self.media_address),
                                capabilities=self.capabilities)
        if answered is None:
            return False
        call.a_answer, call.a_neg = answered
        return True

    def _codec_first(self, first: Codec) -> Capabilities:
        others = tuple(c for c in self.capabilities.codecs if not c.same_format(first))
        return Capabilities((first, *others), self.capabilities.telephone_event,
                            self.capabilities.ptime)

    def _late_answer(self, call: Call, ack: Request, now: float,
                     wall: float) -> list[Command]:
        """The caller's answer to the offer in our 2xx, in its ACK (RFC 3261 §13.2.1)."""
        offer = call.a_offer
        assert offer is not None
        call.a_offer = None
        try:
            answer = parse_sdp(ack.body) if ack.body else None
            neg = accept_answer(offer, answer) if answer is not None else None
        except SdpError:
            answer, neg = None, None
        if answer is None or neg is None:
            # RFC 3261 §13.2.1: the ACK MUST carry the answer; without one (or with one we
            # cannot use) there is no session to bridge: end the call.
            log.info("call %d: no usable SDP answer in the caller's ACK, hanging up", call.id)
            return self.hangup(call, "no_answer_in_ack", now, wall)
        call.a_neg, call.a_remote = neg, answer
        route = call.local_route
        if call.local and route is not None and call.winner is None:
            call.local_route = None
            return [LocalCall(call, route.kind, route.number, _leg_media(neg))]
        if call.b_neg is not None and call.winner is not None:
            return [self._bridge(call)]
        return []

    def offer_leg(self, call: Call, aor: str, now: float, wall: float, *,
                  headers: tuple[tuple[str, str], ...] = ()) -> list[Command]:
        """Ring the registered contacts of `aor` for a call the switch answered (in parallel;
        the first 2xx is reported as `LegAnswered`, all failing as `LegFailed`)."""
        if call.state != "answered" or call.winner is not None or call.a_neg is None:
            return []
        targets = [(b.contact, dest) for b in self.location.lookup(aor, wall)
                   if (dest := _peer_of(b.received)) is not None]
        if not targets:
            return self._leg_outcome(LegFailed(call, 480), now, wall)
        if not call.b_port:
            b_port = self.allocate()
            if b_port is None:
                return self._leg_outcome(LegFailed(call, 503), now, wall)
            call.b_port = b_port
        caps = self._codec_first(call.a_neg.codec)
        call.b_offer = make_offer(address=self.media_address, port=call.b_port,
                                  origin=make_origin(self.media_address), capabilities=caps)
        out: list[Command] = []
        call.branches = []
        for contact, dest in targets:
            invite = self._b_invite(call, contact, dest, call.caller_display, None)
            invite.headers.set("To", f"<sip:{aor}@{self.domain}>")
            for name, value in headers:
                invite.headers.add(name, value)
            branch = Branch(call, dest, invite)
            call.branches.append(branch)
            branch.txn, events = self.transactions.send_request(invite, dest, now)
            self._by_client[branch.txn] = branch
            out.extend(e for e in events if isinstance(e, SendMessage))
        return out

    def cancel_leg(self, call: Call, now: float) -> list[Command]:
        """Stop ringing the leg `offer_leg` started (RFC 3261 §9.1)."""
        out: list[Command] = []
        if call.winner is None:
            for branch in call.branches:
                out.extend(self._cancel_branch(branch, now))
            call.branches = []
        return out

    def connect(self, call: Call) -> list[Command]:
        """Bridge the caller with the answered leg."""
        if call.state != "answered" or call.winner is None:
            return []
        return [self._bridge(call)]

    def _leg_outcome(self, report: LegAnswered | LegFailed, now: float,
                     wall: float) -> list[Command]:
        """`report` goes to the application, unless the B2BUA rings a transfer target itself
        (a call between two phones, softswitch/refer.py): then it bridges or hangs up."""
        call = report.call
        tr = call.transferor
        if tr is None or not tr.auto:
            return [report]
        if isinstance(report, LegAnswered):
            out = self.connect(call)
            return out + self.refer_result(call, 200, now)
        out = self.refer_result(call, report.status, now)
        return out + self.hangup(call, "transfer_failed", now, wall)

    def _leg_answered(self, call: Call, branch: Branch, resp: Response,
                      now: float, wall: float) -> list[Command]:
        assert branch.dialog is not None and call.b_offer is not None
        try:
            neg = accept_answer(call.b_offer, parse_sdp(resp.body)) if resp.body else None
        except SdpError:
            neg = None
        if neg is None:
            call.branches = [b for b in call.branches if b is not branch]
            refused = self._send_bye(branch.dialog, branch.dest, now)
            if not call.branches:
                refused.extend(self._leg_outcome(LegFailed(call, 488), now, wall))
            return refused
        call.b_neg, call.b_remote, call.b_local = neg, _sdp_or_none(resp.body), call.b_offer
        call.winner = branch
        self._by_dialog[branch.dialog.id] = (call, "b")
        out: list[Command] = []
        for other in call.branches:
            if other is not branch:
                out.extend(self._cancel_branch(other, now))
        out.extend(self._leg_outcome(LegAnswered(call), now, wall))
        return out

    def _local_in_dialog(self, call: Call, txn: ServerTransaction, req: Request, now: float,
                         wall: float) -> list[Command]:
        """A request from the caller of a call nobody else is in yet."""
        assert call.a_dialog is not None
        try:
            call.a_dialog.receive_request(req)
        except SipError as exc:
            return self._send_response(txn, make_response(req, exc.status, exc.reason), now)
        if req.method == "BYE":
            out = self._send_response(txn, make_response(req, 200, "OK"), now)
            return out + self._end(call, "answered", "bye", "caller", now, wall)
        if req.method == "REFER":
            # Nobody but the switch in the call: nothing to transfer (RFC 3515 §2.4.2).
            return self._send_response(txn, make_response(req, 403, "Forbidden"), now)
        if req.method in ("INVITE", "UPDATE") and req.body:
            # A new offer with nobody to pass it to: the session stays as it is (§14.1).
            return self._send_response(txn, make_response(req, 488, "Not Acceptable Here"),
                                       now)
        body = b""
        if req.method == "INVITE" and call.a_local is not None:
            body = call.a_local.to_bytes()
        return self._ok(call, "a", txn, req, body, [], now)

    # -- timers -----------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        heap = self._timers
        while heap and heap[0][2] not in self.calls:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _ack_wait_due(self, call: Call, wait: AckWait, dest: Peer, now: float,
                      wall: float) -> list[Command]:
        """A 2xx waiting for its ACK (the first INVITE's or a re-INVITE's): sent again when
        due; after 64*T1 without an ACK the session SHOULD end with BYE (RFC 3261 §13.3.1.4)."""
        out: list[Command] = []
        for ev in wait.handle_timer(now):
            if isinstance(ev, RetransmitResponse):
                out.append(SendMessage(ev.response.to_bytes(), dest))
            else:
                log.info("call %d: no ACK for a 2xx in 64*T1, hanging up", call.id)
                out.extend(self.hangup(call, "ack_timeout", now, wall))
        nxt = wait.get_timer()
        if nxt is not None and call.state == "answered":
            self._arm(call, nxt)
        return out

    def handle_timer(self, now: float, wall: float) -> list[Command]:
        out: list[Command] = []
        heap = self._timers
        while heap and heap[0][0] <= now:
            _, _, cid = heapq.heappop(heap)
            call = self.calls.get(cid)
            if call is None:
                continue
            if call.state == "ringing" and call.ring_deadline is not None and (
                    now >= call.ring_deadline):
                # No answer within the ring time: CANCEL the branches, tell the caller.
                out.extend(self._fail(call, 480, "No Answer", now, wall,
                                      disposition="no_answer", cause="ring_timeout"))
                continue
            wait = call.a_ack
            if wait is not None and not wait.done:
                out.extend(self._ack_wait_due(call, wait, call.a_txn.dest, now, wall))
            pending = call.reinvite_ack
            if pending is not None and call.state == "answered":
                out.extend(self._ack_wait_due(call, pending[0], pending[2], now, wall))
            timer = call.session_timer
            if timer is not None and call.state == "answered":
                when = timer.get_timer()
                if when is not None and when <= now:
                    out.extend(self._session_timer_due(call, now, wall))
        return out


def _sdp_or_none(body: bytes) -> SessionDescription | None:
    try:
        return parse_sdp(body) if body else None
    except SdpError:
        return None


def _leg_media(neg: Negotiated) -> LegMedia:
    return LegMedia(neg.remote_address, neg.remote_port, neg.codec.name,
                    neg.codec.payload_type,
                    neg.telephone_event.payload_type if neg.telephone_event else None)


def _display(addr: NameAddr) -> str:
    return (addr.display or "").strip().strip('"')


def _user_of(uri: object) -> str | None:
    if isinstance(uri, SipURI):
        return uri.user
    if isinstance(uri, TelURI):
        return uri.number
    return None


_PRIVATE = frozenset({"id", "user", "header"})


def _wants_privacy(req: Request) -> bool:
    """RFC 3323 §4.2 Privacy = priv-value *(";" priv-value), in one header or several; `id`
    (RFC 3325 §9.3), `user` or `header` ask that the caller's identity be withheld."""
    for value in req.headers.values("Privacy"):
        for token in value.replace(",", ";").split(";"):
            if token.strip().lower() in _PRIVATE:
                return True
    return False


def _asserted_identity(req: Request) -> tuple[str, str]:
    """(number, display) a trusted peer asserts: P-Asserted-Identity, else From (RFC 3325 §9.1).

    Remote-Party-ID (a pre-standard draft) is not read: PAI is what trusted peers send now.
    """
    for value in req.headers.values("P-Asserted-Identity"):
        try:
            addr = parse_name_addr(value)
            user = _user_of(addr.uri)
        except SipError:
            continue
        if user:
            return user, _display(addr)
    return _user_of(req.from_.uri) or "anonymous", _display(req.from_)


def _static_uri(contact: str) -> SipURI | None:
    try:
        uri = parse_uri(contact)
    except SipError:
        return None
    return uri if isinstance(uri, SipURI) else None


def _host_name(host: str) -> str | None:
    """`host` lower-cased when it is a name to resolve; None for an IP address."""
    try:
        ip_address(host)
    except ValueError:
        return host.lower()
    return None


def static_contact_host(contact: str) -> str | None:
    """The host name of a static contact that needs resolving; None for an IP address."""
    uri = _static_uri(contact)
    return None if uri is None else _host_name(uri.host)


def _peer_of(received: str | None) -> Peer | None:
    """ "udp:127.0.0.1:5062" (where the REGISTER came from) -> Peer (RFC 5626 §5.3 flow)."""
    if not received:
        return None
    transport, _, rest = received.partition(":")
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        return None
    return Peer(transport, host.strip("[]"), int(port))
