"""Events the transaction layer hands to its adapter (SendMessage) and to the TU (the rest).

Inputs are method calls on `TransactionLayer`; these are its outputs, in the order they must
be acted upon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from softswitch.sip.message import Peer, Request, Response
    from softswitch.sip.transaction import ClientTransaction, ServerTransaction, Transaction


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Bytes for the transport to send to `dest` (a request, response, ACK or retransmission)."""

    data: bytes
    dest: Peer


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL) for the TU; answer it through `txn`."""

    txn: ServerTransaction
    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK the transaction layer does not absorb: the ACK for a 2xx (RFC 3261 §17.2.3,
    RFC 6026 §8.7), or one matching no transaction. It belongs to the dialog (which drops
    what it does not know), not to any transaction."""

    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched INVITE server transaction `txn` before its final response.

    The layer has already answered the CANCEL with 200 (RFC 3261 §9.2); the TU should now
    send 487 (Request Terminated) through `txn`.
    """

    txn: ServerTransaction
    cancel_request: Request


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for client transaction `txn` that the TU must see."""

    txn: ClientTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B or F (no final response: the TU acts as on 408), or Timer H (no ACK)."""

    txn: Transaction


@dataclass(frozen=True, slots=True)
class TransportError:
    """The adapter reported that sending for `txn` failed (RFC 3261 §17.1.4, §17.2.4)."""

    txn: Transaction


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """`txn` reached the Terminated state and left the table; emitted once per transaction."""

    txn: Transaction


TransactionEvent = (
    SendMessage
    | RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransportError
    | TransactionTerminated
)
