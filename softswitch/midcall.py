"""What happens inside an answered call, sans-I/O: re-INVITE/UPDATE, hold with music, session
timers. A mixin of `B2bua` (one concept per module; the B2BUA keeps call set-up and teardown).

- A new offer from one leg (re-INVITE or UPDATE, RFC 3261 §14, RFC 3311) goes to the other
  leg re-anchored at the switch's port for that leg, under the origin we use there (RFC 3264
  §8: version + 1); the answer comes back re-anchored the same way. One offer/answer at a
  time per call: a second while one is pending gets 491 (RFC 3261 §14.2, RFC 3311 §5.2).
- Hold (sendonly / inactive / c=0.0.0.0, RFC 3264 §8.4) is answered by the switch itself
  (recvonly / inactive): the held party's leg stays sendrecv and the switch plays music on
  hold to it (`PlayMoh`); resume stops it (`StopMoh`) and bridges the relay again.
- Session timers (RFC 4028) on the A leg when the caller asks for them: refreshes from the
  caller restart the timer; when we are the refresher we send UPDATE at half the interval;
  no refresh by the deadline ends the call with BYE (§10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from softswitch.offer_answer import (
    Capabilities,
    Negotiated,
    accept_answer,
    answer_direction,
    answer_offer,
)
from softswitch.sdp import (
    SdpError,
    SessionDescription,
    anchor,
    effective_direction,
    is_hold,
    make_origin,
    next_origin,
    parse_sdp,
)
from softswitch.sip.dialog import Dialog, DialogState
from softswitch.sip.errors import SipError
from softswitch.sip.events import SendMessage
from softswitch.sip.message import Peer, Request, Response, make_response
from softswitch.sip.session_timer import (
    RefreshDue,
    SessionExpired,
    SessionExpires,
    SessionTimer,
    negotiate_uac,
    negotiate_uas,
    response_headers,
    session_expires_of,
)
from softswitch.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from softswitch.sip.uri import Via

if TYPE_CHECKING:
    from softswitch.b2bua import Bridge, Call, Command

__all__ = ["MidCall", "PlayMoh", "StopMoh"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER"


@dataclass(frozen=True, slots=True)
class PlayMoh:
    """Play music on hold to relay leg `port` (G.711 `payload_type`); stop forwarding
    between it and `holder_port`, the leg of the party that put it on hold."""

    port: int
    payload_type: int
    holder_port: int


@dataclass(frozen=True, slots=True)
class StopMoh:
    """Stop the music on relay leg `port` (a `Bridge` follows to reconnect the legs)."""

    port: int


@dataclass(eq=False, slots=True)
class Reoffer:
    """An offer from leg `leg` passed to the other leg, waiting for its answer."""

    call: Call
    leg: str  # where the offer came from: "a" or "b"
    txn: ServerTransaction  # the offerer's request, answered when the other leg answers
    request: Request
    offer: SessionDescription  # as the offerer sent it
    sent: Request  # our request to the other leg
    sent_offer: SessionDescription
    dest: Peer
    extra: list[tuple[str, str]]  # headers for the offerer's 2xx (Session-Expires)
    done: bool = False


class MidCall:
    """Mixin: in-dialog offers, hold, session timers. Needs the attributes of `B2bua`."""

    if TYPE_CHECKING:
        transactions: TransactionLayer
        media_address: str
        capabilities: Capabilities

        def _send_response(self, txn: ServerTransaction, resp: Response,
                           now: float) -> list[Command]: ...
        def _contact(self, transport: str) -> str: ...
        def _via(self, transport: str) -> Via: ...
        def _bridge(self, call: Call) -> Bridge: ...
        def _legs(self, call: Call, leg: str) -> tuple[Dialog, Dialog, Peer]: ...
        def _arm(self, call: Call, when: float) -> None: ...
        def hangup(self, call: Call, cause: str, now: float,
                   wall: float) -> list[Command]: ...

    def _init_midcall(self, *, min_se: int = 90, session_interval: int = 1800) -> None:
        self.min_se = min_se  # RFC 4028 §5: never below 90 s
        self.session_interval = session_interval  # the longest interval we grant
        self._reoffers: dict[ClientTransaction, Reoffer] = {}
        self._refreshes: dict[ClientTransaction, Call] = {}

    # -- session timer (RFC 4028) on the A leg ---------------------------------------------
    def _negotiate_session(self, call: Call, req: Request) -> None:
        """The caller's INVITE asked for a session timer: settle it (SipError 422 if too
        small, RFC 4028 §9); the timer runs once the call is answered."""
        if session_expires_of(req) is not None:
            call.session = negotiate_uas(req, min_se=self.min_se,
                                         interval=self.session_interval)

    def _session_headers(self, call: Call) -> list[tuple[str, str]]:
        return [] if call.session is None else response_headers(call.session)

    def _start_session_timer(self, call: Call, now: float) -> None:
        if call.session is not None:
            call.session_timer = SessionTimer(call.session, "uas", now)
            when = call.session_timer.get_timer()
            if when is not None:
                self._arm(call, when)

    def _session_timer_due(self, call: Call, now: float, wall: float) -> list[Command]:
        timer = call.session_timer
        if timer is None or call.state != "answered":
            return []
        out: list[Command] = []
        for ev in timer.handle_timer(now):
            if isinstance(ev, SessionExpired):
                # RFC 4028 §10: no refresh in time, the session is over: BYE.
                return self.hangup(call, "session_expired", now, wall)
            if isinstance(ev, RefreshDue):
                out.extend(self._send_refresh(call, now))
        when = timer.get_timer()
        if when is not None:
            self._arm(call, when)
        return out

    def _send_refresh(self, call: Call, now: float) -> list[Command]:
        """We are the refresher: an UPDATE without a body (RFC 4028 §7.4, RFC 3311 §5.1)."""
        assert call.a_dialog is not None and call.session is not None
        if call.a_dialog.state is not DialogState.CONFIRMED:
            return []
        asked = SessionExpires(call.session.interval, "uac")
        req = call.a_dialog.new_request(
            "UPDATE", self._via(call.a_peer.transport),
            headers=[("Session-Expires", str(asked)), ("Supported", "timer"),
                     ("Contact", self._contact(call.a_peer.transport))])
        txn, events = self.transactions.send_request(req, call.a_peer, now)
        self._refreshes[txn] = call
        return [e for e in events if isinstance(e, SendMessage)]

    def _refresh_response(self, call: Call, resp: Response, now: float,
                          wall: float) -> list[Command]:
        if resp.status < 200 or call.state != "answered" or call.session_timer is None:
            return []
        if resp.status < 300:
            assert call.session is not None
            settled = negotiate_uac(resp, SessionExpires(call.session.interval, "uac"))
            if settled is not None:
                # Our refresh, so we are the UAC of it (RFC 4028 §7.2).
                call.session = settled
                call.session_timer.refreshed(settled, "uac", now)
                when = call.session_timer.get_timer()
                if when is not None:
                    self._arm(call, when)
            return []
        if resp.status in (408, 481):
            # RFC 4028 §10 / RFC 5057 §5.1: the dialog is gone.
            return self.hangup(call, "session_refresh_failed", now, wall)
        return []  # other failures: the timer decides (BYE at expiry)

    def _refreshed_by_caller(self, call: Call, req: Request,
                             now: float) -> list[tuple[str, str]]:
        """A refresh from the A leg restarts the timer (RFC 4028 §9); raises 422."""
        if call.session_timer is None:
            return []
        negotiated = negotiate_uas(req, min_se=self.min_se, interval=self.session_interval)
        call.session = negotiated
        call.session_timer.refreshed(negotiated, "uas", now)
        when = call.session_timer.get_timer()
        if when is not None:
            self._arm(call, when)
        return response_headers(negotiated)

    # -- offers inside the dialog ----------------------------------------------------------
    def _offer(self, call: Call, leg: str, txn: ServerTransaction, req: Request,
               now: float) -> list[Command]:
        """An in-dialog INVITE or UPDATE from `leg` (RFC 3261 §14.2, RFC 3311 §5.2)."""
        if call.reoffer is not None or call.a_offer is not None:
            # RFC 3261 §14.2: an offer while ours is pending (a re-offer, or the offer in our
            # 2xx to a delayed-offer caller, answered only by its ACK): 491, retry later.
            return self._send_response(txn, make_response(req, 491, "Request Pending"), now)
        try:
            extra = self._refreshed_by_caller(call, req, now) if leg == "a" else []
        except SipError as exc:
            return self._send_response(
                txn, make_response(req, exc.status, exc.reason, headers=exc.headers), now)
        local = call.a_local if leg == "a" else call.b_local
        if not req.body:
            # A refresh without SDP: UPDATE is just answered; an offerless re-INVITE gets
            # our current description, same version (RFC 3261 §14.1, RFC 3264 §8).
            body = local.to_bytes() if req.method == "INVITE" and local is not None else b""
            return self._ok(call, leg, txn, req, body, extra, now)
        try:
            offer = parse_sdp(req.body)
        except SdpError:
            return self._send_response(txn, make_response(req, 400, "Bad SDP"), now)
        previous = call.a_remote if leg == "a" else call.b_remote
        if (previous is not None and local is not None
                and offer.origin.session_id == previous.origin.session_id
                and offer.origin.version == previous.origin.version):
            # RFC 3264 §8: the same version, nothing changed (a session refresh): our
            # answer is the one we gave, unchanged.
            return self._ok(call, leg, txn, req, local.to_bytes(), extra, now)
        if is_hold(offer) or call.held_by is not None:
            return self._answer_here(call, leg, txn, req, offer, extra, now)
        return self._pass_offer(call, leg, txn, req, offer, extra, now)

    def _ok(self, call: Call, leg: str, txn: ServerTransaction, req: Request, body: bytes,
            extra: list[tuple[str, str]], now: float) -> list[Command]:
        peer = call.a_peer if leg == "a" else call.winner.dest  # type: ignore[union-attr]
        headers = [("Contact", self._contact(peer.transport)), ("Allow", ALLOW), *extra]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return self._send_response(txn, make_response(req, 200, "OK", headers=headers,
                                                      body=body), now)

    def _answer_here(self, call: Call, leg: str, txn: ServerTransaction, req: Request,
                     offer: SessionDescription, extra: list[tuple[str, str]],
                     now: float) -> list[Command]:
        """Hold or resume: the switch answers; the other party hears music meanwhile."""
        neg = call.a_neg if leg == "a" else call.b_neg
        port = call.a_port if leg == "a" else call.b_port
        local = call.a_local if leg == "a" else call.b_local
        assert neg is not None
        answered = answer_offer(
            offer, address=self.media_address, port=port,
            origin=local.origin if local is not None else make_origin(self.media_address),
            capabilities=Capabilities((neg.codec,), self.capabilities.telephone_event,
                                      self.capabilities.ptime))
        if answered is None:
            return self._send_response(txn, make_response(req, 488, "Not Acceptable Here"),
                                       now)
        answer, new = answered
        answer = next_origin(local, answer)  # RFC 3264 §8
        held = is_hold(offer)
        if leg == "a":
            call.a_neg, call.a_local, call.a_remote = new, answer, offer
        else:
            call.b_neg, call.b_local, call.b_remote = new, answer, offer
        out: list[Command] = []
        other_port = call.b_port if leg == "a" else call.a_port
        other_neg = call.b_neg if leg == "a" else call.a_neg
        if held and call.held_by is None:
            assert other_neg is not None
            call.held_by = leg
            out.append(PlayMoh(other_port, other_neg.codec.payload_type, port))
        elif not held and call.held_by == leg:
            call.held_by = None
            out.append(StopMoh(other_port))
            out.append(self._bridge(call))
        out.extend(self._ok(call, leg, txn, req, answer.to_bytes(), extra, now))
        return out

    def _pass_offer(self, call: Call, leg: str, txn: ServerTransaction, req: Request,
                    offer: SessionDescription, extra: list[tuple[str, str]],
                    now: float) -> list[Command]:
        """The offer goes to the other leg re-anchored at our port there (RFC 3264 §8)."""
        _dialog, other, dest = self._legs(call, leg)
        other_port = call.b_port if leg == "a" else call.a_port
        other_local = call.b_local if leg == "a" else call.a_local
        stream = _audio_stream(offer)
        if stream is None or other.state is not DialogState.CONFIRMED:
            return self._send_response(txn, make_response(req, 488, "Not Acceptable Here"),
                                       now)
        ports = [other_port if i == stream else 0 for i in range(len(offer.media))]
        out_sdp = anchor(offer, self.media_address, ports)
        # Only what the relay can carry (RFC 3264 §5: an offer lists what we can receive).
        media = out_sdp.media[stream]
        usable = [c for c in media.codecs() if c.name.lower() == "telephone-event"
                  or any(c.same_format(m) for m in self.capabilities.codecs)]
        if not any(c.name.lower() != "telephone-event" for c in usable):
            return self._send_response(txn, make_response(req, 488, "Not Acceptable Here"),
                                       now)
        media.set_codecs(usable)
        out_sdp = next_origin(other_local, out_sdp)
        sent = other.new_request(
            req.method, self._via(dest.transport),
            headers=[("Contact", self._contact(dest.transport)), ("Allow", ALLOW),
                     ("Content-Type", "application/sdp")],
            body=out_sdp.to_bytes())
        client, events = self.transactions.send_request(sent, dest, now)
        call.reoffer = Reoffer(call, leg, txn, req, offer, sent, out_sdp, dest, extra)
        self._reoffers[client] = call.reoffer
        return [e for e in events if isinstance(e, SendMessage)]

    def _reoffer_response(self, client: ClientTransaction, resp: Response,
                          now: float) -> list[Command]:
        pending = self._reoffers[client]
        call = pending.call
        if resp.status < 200:
            return []
        out: list[Command] = []
        other = call.winner.dialog if pending.leg == "a" else call.a_dialog  # type: ignore[union-attr]
        if 200 <= resp.status < 300 and pending.sent.method == "INVITE" and other is not None:
            # RFC 3261 §13.2.2.4: we ACK every 2xx of our re-INVITE, copies included.
            ack = other.ack(pending.sent, self._via(pending.dest.transport))
            out.append(SendMessage(ack.to_bytes(), pending.dest))
        if pending.done:
            return out
        pending.done = True
        if pending.sent.method != "INVITE" or resp.status >= 300:
            self._reoffers.pop(client, None)
        if call.reoffer is pending:
            call.reoffer = None
        if call.state != "answered":
            return out
        req = pending.request
        if resp.status >= 300:
            # RFC 3261 §14.1: a failed re-INVITE leaves the session as it was; the offerer
            # hears the same answer (491 included: it retries after a random wait).
            out.extend(self._send_response(
                pending.txn, make_response(req, resp.status, resp.reason), now))
            return out
        try:
            answer = parse_sdp(resp.body) if resp.body else None
            theirs = accept_answer(pending.sent_offer, answer) if answer else None
        except SdpError:
            answer, theirs = None, None
        port = call.a_port if pending.leg == "a" else call.b_port
        local = call.a_local if pending.leg == "a" else call.b_local
        stream = _audio_stream(answer) if answer is not None else None
        if answer is None or theirs is None or stream is None:
            out.extend(self._send_response(
                pending.txn, make_response(req, 488, "Not Acceptable Here"), now))
            return out
        ports = [port if i == stream else 0 for i in range(len(answer.media))]
        to_offerer = next_origin(local, anchor(answer, self.media_address, ports))
        mine = _offerer_side(pending.offer, to_offerer, stream)
        if mine is None:
            out.extend(self._send_response(
                pending.txn, make_response(req, 488, "Not Acceptable Here"), now))
            return out
        if pending.leg == "a":
            call.a_neg, call.a_local, call.a_remote = mine, to_offerer, pending.offer
            call.b_neg, call.b_local, call.b_remote = theirs, pending.sent_offer, answer
        else:
            call.b_neg, call.b_local, call.b_remote = mine, to_offerer, pending.offer
            call.a_neg, call.a_local, call.a_remote = theirs, pending.sent_offer, answer
        try:
            bridge = self._bridge(call)
        except ValueError:
            bridge = None
        if bridge is not None:
            out.append(bridge)
        out.extend(self._ok(call, pending.leg, pending.txn, req, to_offerer.to_bytes(),
                            pending.extra, now))
        return out

    def _reoffer_timeout(self, client: ClientTransaction, now: float) -> list[Command]:
        pending = self._reoffers.pop(client)
        if pending.call.reoffer is pending:
            pending.call.reoffer = None
        if pending.done:
            return []
        pending.done = True
        return self._send_response(
            pending.txn, make_response(pending.request, 408, "Request Timeout"), now)

    def _midcall_response(self, client: ClientTransaction, resp: Response, now: float,
                          wall: float) -> list[Command] | None:
        """Responses to our in-dialog requests; None when `client` is not one of them."""
        if client in self._reoffers:
            return self._reoffer_response(client, resp, now)
        call = self._refreshes.get(client)
        if call is not None:
            if resp.status >= 200:
                del self._refreshes[client]
            return self._refresh_response(call, resp, now, wall)
        return None

    def _midcall_timeout(self, client: ClientTransaction, now: float,
                         wall: float) -> list[Command] | None:
        if client in self._reoffers:
            return self._reoffer_timeout(client, now)
        call = self._refreshes.pop(client, None)
        if call is not None:
            # RFC 4028 §10: a refresh that timed out ends the session.
            return self.hangup(call, "session_refresh_failed", now, wall)
        return None

    def _forget_midcall(self, call: Call) -> None:
        for client in [c for c, p in self._reoffers.items() if p.call is call]:
            del self._reoffers[client]
        for client in [c for c, owner in self._refreshes.items() if owner is call]:
            del self._refreshes[client]
        call.reoffer = None


def _audio_stream(sdp: SessionDescription) -> int | None:
    """The first active audio stream: the one the switch carries."""
    for i, media in enumerate(sdp.media):
        if media.kind == "audio" and not media.rejected:
            return i
    return None


def _offerer_side(offer: SessionDescription, answer: SessionDescription,
                  stream: int) -> Negotiated | None:
    """What the offerer of `offer` uses once it gets `answer` (RFC 3264 §7): it sends to us
    with the answer's first codec (payload types as in its offer, §6.1), we send to the
    address of its offer."""
    if stream >= len(offer.media) or offer.media[stream].rejected:
        return None
    conn = offer.connection_for(stream)
    if conn is None:
        return None
    codecs = answer.media[stream].codecs()
    codec = next((c for c in codecs if c.name.lower() != "telephone-event"), None)
    if codec is None:
        return None
    dtmf = next((c for c in codecs if c.name.lower() == "telephone-event"), None)
    direction = answer_direction(effective_direction(offer, stream),
                                 effective_direction(answer, stream))
    return Negotiated(stream, codec, dtmf, direction, conn.host, offer.media[stream].port,
                      offer.media[stream].ptime)
