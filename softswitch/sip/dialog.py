"""RFC 3261 §12 dialogs, sans-I/O: creation on both sides, in-dialog requests, the 2xx/ACK.

A `Dialog` is plain state plus the rules for it: `from_request` (we are the UAS) and
`from_response` (we are the UAC) create one, `new_request` builds the next request we send in
it, `receive_request` / `receive_response` apply what the peer sent. Nothing here touches a
socket or reads a clock; the transaction layer carries the messages.

`AckWait` is the UAS core's 2xx retransmission (RFC 3261 §13.3.1.4): `handle_timer(now)` and
`get_timer()` as every core in this project.

Choices the RFC leaves open:
- The secure flag (§12.1.1) is taken from the ``sips`` scheme of the Request-URI only; the
  transport the request came over is not this layer's to know.
- A target refresh request replaces the remote target when it is received (§12.2.2) and when
  its 2xx arrives (§12.2.1.2); RFC 6141's "only once accepted" refinement is left to the caller.
- The local CSeq of a UAS dialog is empty until the first request we send, which then draws
  a random start below 2**31 (§8.1.1.5, §12.2.1.1) unless the caller gave one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from softswitch.sip.errors import SipError
from softswitch.sip.message import Request, Response
from softswitch.sip.timers import Timers
from softswitch.sip.transaction import new_branch
from softswitch.sip.uri import URI, NameAddr, SipURI, Via, parse_name_addr

__all__ = [
    "TARGET_REFRESH",
    "AckTimedOut",
    "AckWait",
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogStateError",
    "RetransmitResponse",
]

Role = Literal["uac", "uas"]

# RFC 3261 §12.2 (re-INVITE) and RFC 3311 §5.1 (UPDATE) modify the remote target.
TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})
# Methods that carry our Contact when we send them (§12.2.1.1 SHOULD, §8.1.1.8 MUST for INVITE).
_CONTACT_METHODS = TARGET_REFRESH | {"SUBSCRIBE", "NOTIFY", "REFER"}
# RFC 3261 §13.2.2.4: the 2xx ACK carries the INVITE's credentials.
_AUTH_HEADERS = ("Authorization", "Proxy-Authorization")


class DialogState(Enum):
    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


EARLY = DialogState.EARLY
CONFIRMED = DialogState.CONFIRMED
TERMINATED = DialogState.TERMINATED

# RFC 3261 §12.1: an early dialog is confirmed by a 2xx or ends with a failure response;
# either may end with BYE (§15) or a 481/408 to an in-dialog request (§12.2.1.2).
_TRANSITIONS: dict[DialogState, frozenset[DialogState]] = {
    EARLY: frozenset({CONFIRMED, TERMINATED}),
    CONFIRMED: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}


class DialogStateError(Exception):
    """The caller asked for something the dialog's state does not allow."""


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 §12: Call-ID, local tag, remote tag (None for an RFC 2543 peer without tags)."""

    call_id: str
    local_tag: str
    remote_tag: str | None

    @classmethod
    def of_request(cls, request: Request) -> DialogId:
        """The dialog a received request belongs to: To tag ours, From tag theirs (§12.2.2)."""
        local = request.to.tag
        if local is None:
            raise ValueError("a request without To tag is outside any dialog")
        return cls(request.call_id, local, request.from_.tag)

    @classmethod
    def of_response(cls, response: Response) -> DialogId:
        """The dialog a response to our request belongs to: From tag ours, To tag theirs."""
        local = response.from_.tag
        if local is None:
            raise ValueError("our requests always carry a From tag")
        return cls(response.call_id, local, response.to.tag)


def _party(na: NameAddr, tag: str | None) -> NameAddr:
    """The dialog's local or remote URI (with display name): only the tag is kept (§12.2.1.1)."""
    return NameAddr(na.display, na.uri_text, {"tag": tag} if tag is not None else {})


def _route_set(values: list[str]) -> list[NameAddr]:
    """Record-Route values as routes; each must be a SIP URI (§20.30, §20.34)."""
    routes = []
    for value in values:
        try:
            route = parse_name_addr(value)
            uri = route.uri
        except SipError:
            raise SipError(400, "Bad Record-Route header") from None
        if not isinstance(uri, SipURI):
            raise SipError(400, "Bad Record-Route header")
        routes.append(NameAddr(route.display, uri, dict(route.params)))
    return routes


def _contact(message: Request | Response) -> str | None:
    """The first Contact URI (the remote target, §12.1); SipError(400) when malformed."""
    contacts = message.contacts
    if not contacts:
        return None
    try:
        contacts[0].uri  # noqa: B018 - parsed now, so a bad target fails here, not later
    except SipError:
        raise SipError(400, "Bad Contact header") from None
    return contacts[0].uri_text


class Dialog:
    """The state of one dialog (RFC 3261 §12) and the rules that change it."""

    __slots__ = ("id", "role", "state", "local_seq", "remote_seq", "local_party",
                 "remote_party", "remote_target", "route_set", "secure", "local_contact")

    def __init__(self, id: DialogId, role: Role, state: DialogState, *,
                 local_party: NameAddr, remote_party: NameAddr, remote_target: str,
                 route_set: list[NameAddr], local_seq: int | None, remote_seq: int | None,
                 secure: bool = False, local_contact: str | None = None) -> None:
        self.id = id
        self.role: Role = role
        self.state = state
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_party = local_party  # From of our requests (local URI + local tag)
        self.remote_party = remote_party  # To of our requests (remote URI + remote tag)
        self.remote_target = remote_target  # Request-URI of our requests (peer's Contact)
        self.route_set = route_set
        self.secure = secure
        self.local_contact = local_contact  # URI for the Contact of our target refreshes

    def __repr__(self) -> str:
        return f"<Dialog {self.role} {self.state.value} {self.id.call_id!r}>"

    # -- creation (§12.1) ------------------------------------------------------------------

    @classmethod
    def from_request(cls, request: Request, response: Response, *,
                     local_seq: int | None = None) -> Dialog:
        """The UAS dialog of a dialog-creating `request` and our `response` to it (§12.1.1).

        `response` is a 2xx (confirmed) or a 101-199 with a To tag (early). Its Contact, if
        any, is kept as our Contact for later requests. Raises SipError(400) when the request
        lacks the Contact a dialog needs or has a malformed Record-Route.
        """
        tag = response.to.tag
        if not 100 < response.status < 300 or tag is None:
            raise ValueError("only a tagged 101-299 response creates a dialog (§12.1)")
        target = _contact(request)
        if target is None:
            raise SipError(400, "Missing Contact header")  # §8.1.1.8
        uri = request.uri
        return cls(
            DialogId(request.call_id, tag, request.from_.tag), "uas",
            CONFIRMED if response.status >= 200 else EARLY,
            local_party=_party(request.to, tag),
            remote_party=_party(request.from_, request.from_.tag),
            remote_target=target,
            # §12.1.1: the Record-Route URIs of the request, in order, parameters kept
            route_set=_route_set(request.headers.values("Record-Route")),
            local_seq=local_seq,
            remote_seq=request.cseq.seq,
            secure=isinstance(uri, SipURI) and uri.scheme == "sips",
            local_contact=_contact(response),
        )

    @classmethod
    def from_response(cls, request: Request, response: Response) -> Dialog:
        """The UAC dialog our `request` forms with a tagged 101-299 `response` (§12.1.2).

        A 1xx without Contact gets the Request-URI as remote target until the 2xx brings one;
        a 2xx without Contact raises SipError(400): the caller ACKs and hangs up.
        """
        tag = response.to.tag
        if not 100 < response.status < 300 or (tag is None and response.status < 200):
            raise ValueError("only a 101-299 response with To tag creates a dialog (§12.1)")
        target = _contact(response)
        if target is None:
            if response.status >= 200:
                raise SipError(400, "Missing Contact header")
            target = request.uri_text
        routes = _route_set(response.headers.values("Record-Route"))
        routes.reverse()  # §12.1.2: the UAC sees the route set in reverse order
        uri = request.uri
        local_tag = request.from_.tag
        if local_tag is None:
            raise ValueError("our request has no From tag")
        return cls(
            DialogId(request.call_id, local_tag, tag), "uac",
            CONFIRMED if response.status >= 200 else EARLY,
            local_party=_party(request.from_, local_tag),
            remote_party=_party(request.to, tag),
            remote_target=target,
            route_set=routes,
            local_seq=request.cseq.seq,
            remote_seq=None,  # §12.1.2: empty until the peer sends a request
            secure=isinstance(uri, SipURI) and uri.scheme == "sips",
            local_contact=_contact(request),
        )

    def _move(self, new: DialogState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise DialogStateError(f"dialog {self.state.value} -> {new.value}")
        self.state = new

    def confirm(self, response: Response | None = None) -> None:
        """Early -> confirmed: the UAS sent its 2xx, or the UAC (`response`) received one.

        For the UAC, the 2xx recomputes the route set and remote target (§12.1.2, §13.2.2.4).
        """
        if self.state is not EARLY:
            raise DialogStateError(f"cannot confirm a {self.state.value} dialog")
        if self.role == "uac":
            if response is None or not 200 <= response.status < 300:
                raise ValueError("a UAC dialog is confirmed by the 2xx it received")
            target = _contact(response)
            if target is None:
                raise SipError(400, "Missing Contact header")
            routes = _route_set(response.headers.values("Record-Route"))
            routes.reverse()
            self.route_set = routes
            self.remote_target = target
        self._move(CONFIRMED)

    def terminate(self) -> None:
        """The dialog ends: failure final response to the INVITE, BYE, 481/408 (§12.3)."""
        if self.state is not TERMINATED:
            self._move(TERMINATED)

    # -- sending (§12.2.1) -----------------------------------------------------------------

    def request_target(self) -> tuple[str, list[str]]:
        """Request-URI and Route values for our next request (§12.2.1.1).

        A loose router (``lr``) first in the route set: the remote target is the Request-URI
        and the route set the Route. A strict router: its URI becomes the Request-URI (stripped
        of what a Request-URI may not carry, §19.1.1) and the remote target goes last in the
        Route, so that the strict router can restore it (§16.12.1.2 shows the exchange).
        """
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = routes[0].uri
        assert isinstance(first, SipURI)  # checked by _route_set
        if "lr" in first.params:
            return self.remote_target, [str(r) for r in routes]
        params = {k: v for k, v in first.params.items() if k != "method"}
        request_uri = SipURI(first.scheme, first.user, first.password, first.host, first.port,
                             params, {})
        rest = [str(r) for r in routes[1:]]
        rest.append(f"<{self.remote_target}>")
        return str(request_uri), rest

    def next_hop(self) -> URI:
        """Where our next request goes (§8.1.2): the first route, else the remote target."""
        if self.route_set:
            return self.route_set[0].uri
        return parse_name_addr(f"<{self.remote_target}>").uri

    def _headers(self, method: str, seq: int, via: Via,
                 max_forwards: int) -> tuple[str, list[tuple[str, str]]]:
        request_uri, routes = self.request_target()
        # §8.1.1.7 / §12.2.1.1: every request but the non-2xx ACK and CANCEL gets a new branch
        branch_via = Via(via.transport, via.host, via.port, {**via.params, "branch": new_branch()})
        items = [("Via", str(branch_via)), ("Max-Forwards", str(max_forwards))]
        items.extend(("Route", route) for route in routes)
        items += [
            ("From", str(self.local_party)),
            ("To", str(self.remote_party)),
            ("Call-ID", self.id.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        return request_uri, items

    def new_request(self, method: str, via: Via, *, headers: Iterable[tuple[str, str]] = (),
                    body: bytes = b"", max_forwards: int = 70) -> Request:
        """The next request we send in this dialog (§12.2.1.1); `via` is our sent-by.

        The CSeq goes up by one. Sending BYE ends the dialog (§15.1.1). ACK is `ack()`, and
        CANCEL belongs to the INVITE's transaction, not the dialog (§9.1).
        """
        method = method.upper()
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not built by new_request (see ack(), §9.1)")
        if self.state is TERMINATED:
            raise DialogStateError(f"cannot send {method} in a terminated dialog")
        if method == "BYE" and self.role == "uas" and self.state is EARLY:
            raise DialogStateError("the callee must not send BYE in an early dialog (§15)")
        if self.local_seq is None:
            self.local_seq = secrets.randbelow(2**30) + 1  # §8.1.1.5: below 2**31
        else:
            self.local_seq += 1
        request_uri, items = self._headers(method, self.local_seq, via, max_forwards)
        if method in _CONTACT_METHODS and self.local_contact is not None:
            items.append(("Contact", f"<{self.local_contact}>"))
        items.extend(headers)
        if method == "BYE":
            self._move(TERMINATED)
        return Request(method, request_uri, items, body)

    def ack(self, invite: Request, via: Via, *, headers: Iterable[tuple[str, str]] = (),
            body: bytes = b"") -> Request:
        """The ACK for a 2xx to `invite`, built by the UAC core (§13.2.2.4).

        Same CSeq number as the INVITE with method ACK, routed like any in-dialog request,
        a branch of its own, and the INVITE's credentials. The local CSeq does not move.
        """
        if self.role != "uac":
            raise DialogStateError("only the UAC acknowledges a 2xx")
        max_forwards = invite.max_forwards
        request_uri, items = self._headers(
            "ACK", invite.cseq.seq, via, 70 if max_forwards is None else max_forwards)
        for name in _AUTH_HEADERS:
            items.extend((name, value) for value in invite.headers.getall(name))
        items.extend(headers)
        return Request("ACK", request_uri, items, body)

    # -- receiving (§12.2.2, §12.2.1.2) ----------------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Apply a request the peer sent in this dialog (§12.2.2); raises SipError to answer.

        481 when it is not ours or the dialog is over, 500 when its CSeq is lower than the
        last one (out of order). A target refresh replaces the remote target; a BYE ends the
        dialog (the caller answers 200). An ACK is only matched: it carries the INVITE's CSeq.
        """
        if request.call_id != self.id.call_id or request.to.tag != self.id.local_tag or (
                request.from_.tag != self.id.remote_tag):
            raise SipError(481, "Call/Transaction Does Not Exist")
        if self.state is TERMINATED:
            raise SipError(481, "Call/Transaction Does Not Exist")
        if request.method == "ACK":
            return
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            raise SipError(500, "Server Internal Error")  # out of order
        self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            target = _contact(request)
            if target is not None:
                self.remote_target = target
        elif request.method == "BYE":
            self._move(TERMINATED)  # §15.1.2

    def receive_response(self, request: Request, response: Response) -> None:
        """Apply the response to a request we sent in this dialog (§12.2.1.2)."""
        status = response.status
        if status in (408, 481):
            self.terminate()  # §12.2.1.2: the dialog SHOULD end
        elif 200 <= status < 300 and request.method in TARGET_REFRESH:
            target = _contact(response)
            if target is not None:
                self.remote_target = target


# ---------------------------------------------------------------------------
# The UAS 2xx retransmission (§13.3.1.4)


@dataclass(frozen=True, slots=True)
class RetransmitResponse:
    """Pass `response` to the transport again (through the Accepted server transaction)."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """No ACK for 64*T1: the dialog is confirmed but the session SHOULD end with BYE."""

    response: Response


AckWaitEvent = RetransmitResponse | AckTimedOut


class AckWait:
    """A 2xx to an INVITE waiting for its ACK (RFC 3261 §13.3.1.4), on any transport.

    The 2xx goes out again after T1, then at intervals doubling up to T2; after 64*T1
    without ACK it gives up (`AckTimedOut`). `now` is when the 2xx was first sent.
    """

    __slots__ = ("response", "seq", "done", "_interval", "_next", "_give_up", "_t2")

    def __init__(self, response: Response, now: float, timers: Timers | None = None) -> None:
        timers = timers if timers is not None else Timers()
        self.response = response
        self.seq = response.cseq.seq
        self.done = False  # acknowledged, or given up
        self._interval = timers.t1
        self._t2 = timers.t2
        self._next = now + timers.t1
        self._give_up = now + timers.timeout

    def get_timer(self) -> float | None:
        if self.done:
            return None
        return min(self._next, self._give_up)

    def handle_timer(self, now: float) -> list[AckWaitEvent]:
        if self.done:
            return []
        if now >= self._give_up:
            self.done = True
            return [AckTimedOut(self.response)]
        if now < self._next:
            return []
        self._interval = min(2 * self._interval, self._t2)
        self._next += self._interval
        if self._next <= now:
            self._next = now + self._interval  # a late adapter gets one copy, not a burst
        return [RetransmitResponse(self.response)]

    def receive_ack(self, ack: Request) -> bool:
        """True when `ack` acknowledges this 2xx (same CSeq number, §13.2.2.4); stops it."""
        if self.done or ack.method != "ACK" or ack.cseq.seq != self.seq:
            return False
        self.done = True
        return True
