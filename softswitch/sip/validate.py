"""Request validation a UAS performs before anything else (RFC 3261 §8.2, §16.3)."""

from __future__ import annotations

from .errors import SipError
from .message import _MISSING, Request, _answerable, _uint
from .uri import AbsoluteURI, SipURI

__all__ = ["KNOWN_METHODS", "check_request"]

# Methods defined by RFC 3261 and the extensions this switch knows of: a known one that
# is not allowed is 405, an unknown one 501 (RFC 3261 §8.2.1, §21.5.2).
KNOWN_METHODS = (
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER",  # RFC 3261
    "INFO",  # RFC 6086
    "PRACK",  # RFC 3262
    "SUBSCRIBE", "NOTIFY",  # RFC 6665
    "UPDATE",  # RFC 3311
    "MESSAGE",  # RFC 3428
    "REFER",  # RFC 3515
    "PUBLISH",  # RFC 3903
)  # fmt: skip
_KNOWN = frozenset(KNOWN_METHODS)
_MANDATORY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
              ("cseq", "CSeq"))  # fmt: skip
# RFC 3261 §7.3.1 / §20: fields that appear at most once.
_SINGLE = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"),
           ("max-forwards", "Max-Forwards"), ("content-length", "Content-Length"),
           ("content-type", "Content-Type"))  # fmt: skip
_CALL_ID_FORBIDDEN = frozenset(" \t,;")
# Request-URI texts seen to parse and pass the URI checks of `_check`. That is a pure
# function of the text, and every REGISTER carries the registrar's own few URIs: for them
# the parse (~1.4 µs) is skipped and `request.uri` stays lazy until someone reads it. Only
# texts straight from the wire (URI not yet parsed) are looked up or remembered. A bound,
# cleared when reached, not an LRU.
_GOOD_URIS: set[str] = set()
_GOOD_URIS_MAX = 4096


def _allow_value(allowed: frozenset[str]) -> str:
    ordered = [m for m in KNOWN_METHODS if m in allowed]
    ordered += sorted(allowed - _KNOWN)
    return ", ".join(ordered)


def check_request(
    request: Request, *, allowed: frozenset[str], supported: frozenset[str]
) -> None:
    """Raise `SipError` for the first fault of `request`, in the order RFC 3261 checks them."""
    try:
        _check(request, allowed, supported)
    except SipError as exc:
        if exc.message is None:
            exc.message = _answerable(request)
        raise


def _bad(reason: str) -> SipError:
    return SipError(400, reason)


def _check(request: Request, allowed: frozenset[str], supported: frozenset[str]) -> None:
    # RFC 3261 §8.2 / §16.3 step 1: reasonable syntax.
    if request.version != "SIP/2.0" and request.version.upper() != "SIP/2.0":
        raise SipError(505, "Version Not Supported")
    index = request.headers._index or request.headers._idx()
    try:
        froms = index["from"]
        tos = index["to"]
        call_ids = index["call-id"]
        cseqs = index["cseq"]
        index["via"]  # noqa: B018
    except KeyError:
        for key, name in _MANDATORY:
            if key not in index:
                raise _bad(f"Missing {name} header") from None
        raise
    lines = request.headers._lines
    if (lines is None or len(lines) != len(index)) and (
        len(froms) > 1
        or len(tos) > 1
        or len(call_ids) > 1
        or len(cseqs) > 1
        or len(index.get("max-forwards", ())) > 1
        or len(index.get("content-length", ())) > 1
        or len(index.get("content-type", ())) > 1
    ):
        for key, name in _SINGLE:
            if len(index.get(key, ())) > 1:
                raise _bad(f"Duplicate {name} header")
    call_id = request.call_id
    if not call_id or not _CALL_ID_FORBIDDEN.isdisjoint(call_id):
        raise _bad("Bad Call-ID header")
    cseq = request.cseq
    method = request.method
    # RFC 3261 §8.1.1.5: the CSeq method matches the request's (an ACK's is ACK and a
    # CANCEL's is CANCEL, §17.1.1.3 / §9.1, never the INVITE's).
    if cseq.method != method:
        raise _bad("CSeq method does not match request method")
    max_forwards = request.max_forwards
    request.from_  # noqa: B018 - each view raises SipError(400) when malformed
    request.to  # noqa: B018
    request.vias  # noqa: B018
    request.contacts  # noqa: B018
    if lines is None:
        # Built or edited in memory: the parser has not vetted Content-Length.
        lengths = index.get("content-length")
        if lengths is not None and _uint(lengths[0]) is None:
            raise _bad("Bad Content-Length")
    # A Request-URI parsed from the wire that passes these checks once passes them always;
    # see _GOOD_URIS.
    from_wire = request._uri is _MISSING
    if not (from_wire and request.uri_text in _GOOD_URIS):
        uri = request.uri
        if isinstance(uri, SipURI) and uri.headers:
            # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI.
            raise _bad("Headers not allowed in Request-URI")
        # RFC 3261 §8.2.2.1 / §16.3 step 2.
        if isinstance(uri, AbsoluteURI):
            raise SipError(416, "Unsupported URI Scheme")
        if from_wire:
            if len(_GOOD_URIS) >= _GOOD_URIS_MAX:
                _GOOD_URIS.clear()
            _GOOD_URIS.add(request.uri_text)
    # RFC 3261 §16.3 step 3; §11 lets OPTIONS be answered by the element it reached.
    if max_forwards == 0 and method != "OPTIONS":
        raise SipError(483, "Too Many Hops")
    # RFC 3261 §8.2.1 method inspection.
    if method not in allowed:
        allow = [("Allow", _allow_value(allowed))]
        if method in _KNOWN:
            raise SipError(405, "Method Not Allowed", allow)
        raise SipError(501, "Not Implemented", allow)
    # RFC 3261 §8.2.2.3: Require is not checked on ACK or CANCEL.
    if method != "ACK" and method != "CANCEL" and "require" in index:
        unsupported = [
            tag for tag in request.headers.values("Require") if tag not in supported
        ]
        if unsupported:
            raise SipError(420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])
