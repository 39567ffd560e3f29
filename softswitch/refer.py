"""Blind transfer inside an answered call, sans-I/O (REFER, RFC 3515; RFC 5589 §6).
A mixin of `B2bua`, like `midcall.py`.

The leg that sends REFER (the transferor: an agent, or the callee of a call between two
phones) names the new party in Refer-To (an extension, or for a call the switch answered a
service number). The switch:

1. checks the REFER before accepting it: no usable Refer-To (none, several, unparseable, no
   number) → 400; Refer-To with an embedded Replaces header (attended transfer, RFC 3891) or a
   method other than INVITE → 501 (not implemented yet); a number the dialplan does not know
   → 404 and a feature code → 403, answered *to the REFER itself*. RFC 3515 §2.4.2 lets the
   recipient refuse a REFER with a final non-2xx; the dialplan lookup is synchronous, so the
   transferor learns at once and its call stays exactly as it was (RFC 5589 §6: the
   transferor keeps the transferee when the transfer cannot be made). A REFER from the
   caller's leg (A) gets 501: only the answering side can transfer for now. One transfer at a
   time per call (491 while one is pending or while an offer is in progress);
2. accepts with 202 and sends the implicit subscription's first NOTIFY (Event: refer,
   Subscription-State active, message/sipfrag ``SIP/2.0 100 Trying``, §2.4.4-§2.4.5);
3. detaches the transferor's leg from the call (its relay port is released, the caller is the
   switch's alone: `Call.local`) and keeps its dialog aside (`Transferor`) to NOTIFY and BYE;
4. rings the target: for a call the switch answered, the application does (`Transferred`,
   then `B2bua.offer_leg` or a queue) and reports the outcome with `refer_result`; for a
   call between two phones the B2BUA rings the extension itself and bridges the caller when
   it answers (`Bridge`), or hangs the caller up when it does not;
5. sends the final NOTIFY (``SIP/2.0 200 OK`` or the failure, Subscription-State
   terminated;reason=noresource) and, once the transferor answered it, BYE to the transferor
   (a transferor that hung up meanwhile just gets 200 to its BYE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from softswitch.dialplan import Application, NotFound
from softswitch.sip.dialog import Dialog, DialogId, DialogState
from softswitch.sip.errors import SipError
from softswitch.sip.events import SendMessage
from softswitch.sip.message import Peer, Request, default_reason, make_response
from softswitch.sip.transaction import ClientTransaction, ServerTransaction
from softswitch.sip.uri import SipURI, TelURI, parse_name_addr

if TYPE_CHECKING:
    from softswitch.b2bua import Call, Command
    from softswitch.dialplan import Dialplan
    from softswitch.sip.message import Response
    from softswitch.sip.transaction import TransactionLayer
    from softswitch.sip.uri import Via

__all__ = ["Refer", "Transferor"]

@dataclass(eq=False, slots=True)
class Transferor:
    """The leg that sent REFER, kept until its final NOTIFY is answered, then sent BYE."""

    call: Call
    dialog: Dialog
    dest: Peer
    target: str
    auto: bool = False  # the B2BUA rings the target itself (a call between two phones)
    notified: bool = False  # the final NOTIFY went out


class Refer:
    """Mixin: REFER / NOTIFY / transferor BYE. Needs the attributes of `B2bua`."""

    if TYPE_CHECKING:
        transactions: TransactionLayer
        dialplan: Dialplan

        def _send_response(self, txn: ServerTransaction, resp: Response,
                           now: float) -> list[Command]: ...
        def _send_bye(self, dialog: Dialog, dest: Peer, now: float) -> list[Command]: ...
        def _contact(self, transport: str) -> str: ...
        def _via(self, transport: str) -> Via: ...
        def _drop_b_leg(self, call: Call, dialog_id: DialogId) -> list[Command]: ...
        def offer_leg(self, call: Call, aor: str, now: float, wall: float, *,
                      headers: tuple[tuple[str, str], ...] = ()) -> list[Command]: ...

    def _init_refer(self) -> None:
        self._transferors: dict[DialogId, Transferor] = {}
        self._notifies: dict[ClientTransaction, tuple[Transferor, bool]] = {}
        self.transfers = 0  # REFERs accepted

    # -- the REFER -------------------------------------------------------------------------
    def _refer(self, call: Call, leg: str, dialog: Dialog, txn: ServerTransaction,
               req: Request, now: float, wall: float) -> list[Command]:
        def refuse(status: int, reason: str) -> list[Command]:
            return self._send_response(txn, make_response(req, status, reason), now)

        if leg == "a":
            return refuse(501, "Transfer By The Caller Not Implemented")
        values = req.headers.getall("Refer-To")
        if len(values) != 1:
            return refuse(400, "Missing Or Multiple Refer-To")  # RFC 3515 §2.4.1
        try:
            uri = parse_name_addr(values[0]).uri
        except SipError:
            return refuse(400, "Bad Refer-To")
        if isinstance(uri, SipURI):
            if any(k.lower() == "replaces" for k in uri.headers):
                return refuse(501, "Attended Transfer Not Implemented")  # RFC 3891
            method = uri.params.get("method")
            if method is not None and method.upper() != "INVITE":
                return refuse(501, "Refer-To Method Not Implemented")
            number = uri.user
        elif isinstance(uri, TelURI):
            number = uri.number
        else:
            return refuse(400, "Bad Refer-To")
        if not number:
            return refuse(400, "Bad Refer-To")
        if call.transferor is not None or call.reoffer is not None:
            return refuse(491, "Request Pending")
        route = self.dialplan.resolve(number)
        if isinstance(route, NotFound):
            return refuse(404, "Not Found")
        if isinstance(route, Application):
            if route.kind != "service" or not call.local:
                return refuse(403, "Forbidden")
            kind, target = "service", route.number
        else:
            kind, target = "extension", route.user
        assert call.winner is not None
        dest = call.winner.dest
        out = self._send_response(txn, make_response(
            req, 202, "Accepted", headers=[("Contact", self._contact(dest.transport))]), now)
        tr = Transferor(call, dialog, dest, target, auto=not call.local)
        out.extend(self._notify(tr, 100, "Trying", now, final=False))
        out.extend(self._detach(call, tr))
        self.transfers += 1
        if tr.auto:
            out.extend(self.offer_leg(call, target, now, wall))
        else:
            from softswitch.b2bua import Transferred
            out.append(Transferred(call, kind, target))
        return out

    def _detach(self, call: Call, tr: Transferor) -> list[Command]:
        """The transferor's leg leaves the call; the caller is the switch's alone."""
        from softswitch.midcall import StopMoh
        out: list[Command] = []
        self._transferors[tr.dialog.id] = tr
        call.transferor = tr
        if call.held_by == "b":
            out.append(StopMoh(call.a_port))
        out.extend(self._drop_b_leg(call, tr.dialog.id))
        call.local = True  # rung by offer_leg from now on
        return out

    # -- the outcome -----------------------------------------------------------------------
    def refer_result(self, call: Call, status: int, now: float,
                     reason: str | None = None) -> list[Command]:
        """The transfer of `call` succeeded (2xx: the target answered or the call was queued)
        or failed (`status`): the final NOTIFY, then BYE to the transferor."""
        tr = call.transferor
        if tr is None:
            return []
        call.transferor = None
        return self._notify(tr, status, reason or default_reason(status), now, final=True)

    def _refer_ended(self, call: Call, now: float) -> list[Command]:
        """The call ended while its transfer was pending (the caller hung up)."""
        return self.refer_result(call, 487, now)

    def _notify(self, tr: Transferor, status: int, reason: str, now: float, *,
                final: bool) -> list[Command]:
        if tr.notified or tr.dialog.state is not DialogState.CONFIRMED:
            if final:
                self._transferors.pop(tr.dialog.id, None)
            return []
        state = "terminated;reason=noresource" if final else "active;expires=60"
        tr.notified = final
        req = tr.dialog.new_request(
            "NOTIFY", self._via(tr.dest.transport),
            headers=[("Event", "refer"), ("Subscription-State", state),
                     ("Content-Type", "message/sipfrag;version=2.0")],
            body=f"SIP/2.0 {status} {reason}\r\n".encode())
        client, events = self.transactions.send_request(req, tr.dest, now)
        self._notifies[client] = (tr, final)
        return [e for e in events if isinstance(e, SendMessage)]

    def _refer_response(self, client: ClientTransaction, resp: object,
                        now: float) -> list[Command] | None:
        found = self._notifies.get(client)
        if found is None:
            return None
        if resp.status < 200:  # type: ignore[attr-defined]
            return []
        return self._refer_timeout(client, now)

    def _refer_timeout(self, client: ClientTransaction, now: float) -> list[Command] | None:
        """A NOTIFY's final response or its timeout: after the final NOTIFY, BYE."""
        found = self._notifies.pop(client, None)
        if found is None:
            return None
        tr, final = found
        return self._bye_transferor(tr, now) if final else []

    def _bye_transferor(self, tr: Transferor, now: float) -> list[Command]:
        self._transferors.pop(tr.dialog.id, None)
        return self._send_bye(tr.dialog, tr.dest, now)

    def _transferor_request(self, txn: ServerTransaction, req: Request,
                            now: float) -> list[Command] | None:
        """A request in a transferor's dialog (its BYE, a refresh); None when not one."""
        tr = self._transferors.get(DialogId.of_request(req))
        if tr is None:
            return None
        try:
            tr.dialog.receive_request(req)
        except SipError as exc:
            return self._send_response(txn, make_response(req, exc.status, exc.reason), now)
        if req.method == "BYE":
            self._transferors.pop(tr.dialog.id, None)
            if tr.call.transferor is tr:
                tr.notified = True  # nobody left to tell
            return self._send_response(txn, make_response(req, 200, "OK"), now)
        if req.method in ("INVITE", "UPDATE", "REFER"):
            # The leg has left the call: no new offer, no second transfer (§14.1).
            return self._send_response(txn, make_response(req, 488 if req.method != "REFER"
                                                          else 403, None), now)
        return self._send_response(txn, make_response(req, 200, "OK"), now)
