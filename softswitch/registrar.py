"""The registrar (RFC 3261 §10.3), sans-I/O: a REGISTER and the time in, a response out.

Authentication comes first (RFC 3261 §22, RFC 7616) and answers an unknown user exactly as a
wrong password, so accounts cannot be enumerated; repeated failures from one source address
block it for a while (``AuthThrottle``). Bindings live in a ``LocationService``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.sip.digest import DigestAuthenticator, parse_credentials
from softswitch.sip.errors import SipError
from softswitch.sip.message import Peer, Request, Response, make_response
from softswitch.sip.uri import NameAddr, SipURI
from softswitch.store.base import Binding

__all__ = ["AuthThrottle", "Registrar", "RegistrarSettings", "RegisterOutcome"]

log = logging.getLogger("softswitch.registrar")

_CONTACT_KEYS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    max_contacts: int = 10


@dataclass(slots=True, init=False, unsafe_hash=True)
class RegisterOutcome:
    """What happened, for logs and metrics: ``kind`` is one of registered, unregistered,
    queried, challenged, auth_failed, blocked, rejected. Read-only by convention: see
    `softswitch.sip.digest.Credentials` for why not frozen=True and why __init__ is written."""

    kind: str
    aor: str
    contacts: tuple[str, ...]

    def __init__(self, kind: str, aor: str = "", contacts: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.aor = aor
        self.contacts = contacts


class AuthThrottle:
    """Counts authentication failures per source address and blocks noisy ones.

    ``limit`` failures within ``window`` seconds block the address for ``block`` seconds.
    """

    __slots__ = ("limit", "window", "block", "_failures", "_blocked_until")

    def __init__(self, limit: int = 10, window: float = 60.0, block: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self.block = block
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def is_blocked(self, address: str, now: float) -> bool:
        until = self._blocked_until.get(address)
        if until is None:
            return False
        if now >= until:
            del self._blocked_until[address]
            return False
        return True

    def failed(self, address: str, now: float) -> bool:
        """Record a failure; True when the address is now blocked."""
        if self.block <= 0 or self.limit <= 0:
            return False
        q = self._failures.setdefault(address, deque())
        q.append(now)
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            del self._failures[address]
            self._blocked_until[address] = now + self.block
            return True
        return False

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def sweep(self, now: float) -> None:
        for addr in [a for a, q in self._failures.items() if not q or q[-1] <= now - self.window]:
            del self._failures[addr]
        for addr in [a for a, t in self._blocked_until.items() if t <= now]:
            del self._blocked_until[addr]

    def blocked(self) -> list[str]:
        return list(self._blocked_until)


class Registrar:
    """Handles REGISTER requests against a directory and a location service."""

    def __init__(
        self,
        directory: Directory,
        location: LocationService,
        auth: DigestAuthenticator,
        settings: RegistrarSettings,
        throttle: AuthThrottle,
        *,
        server: str = "softswitch",
    ) -> None:
        self.directory = directory
        self.location = location
        self.auth = auth
        self.settings = settings
        self.throttle = throttle
        self.server = server
        # Contact URI as written -> the binding key (the URI parsed and serialized again).
        self._contact_keys: dict[str, str] = {}

    def _contact_key(self, contact: NameAddr) -> str:
        """The binding key of a Contact: `str(contact.uri)`, remembered per URI text.

        A phone refreshes with the same Contact every time, and parsing plus serializing
        its URI cost ~3 µs of every REGISTER. The key is a pure function of the text, so
        the memo answers exactly as the parse would; a malformed URI is never stored and
        raises each time. Cleared when full (a bound, not an LRU: refreshes refill it).
        """
        text = contact.uri_text
        key = self._contact_keys.get(text)
        if key is None:
            key = str(contact.uri)
            if len(self._contact_keys) >= _CONTACT_KEYS_MAX:
                self._contact_keys.clear()
            self._contact_keys[text] = key
        return key

    def _lookup_ha1(self, username: str, algorithm: str) -> str | None:
        user = self.directory.lookup(username)
        if user is None:
            return None
        return user.ha1_sha256 if algorithm == "SHA-256" else user.ha1_md5

    def authenticate(
        self, request: Request, source: Peer, wall: float, header: str = "Authorization"
    ) -> tuple[str | None, Response | None, RegisterOutcome | None]:
        """Return (username, None, None) when authenticated, else the answer to send."""
        address = source.host
        if self.throttle.is_blocked(address, wall):
            resp = make_response(request, 403, "Forbidden", to_tag=_tag(request))
            return None, resp, RegisterOutcome("blocked")
        challenge_header = "WWW-Authenticate" if header == "Authorization" else "Proxy-Authenticate"
        status = 401 if header == "Authorization" else 407
        stale = False
        for value in request.headers.getall(header):
            try:
                creds = parse_credentials(value)
            except ValueError as exc:
                raise SipError(400, f"Bad {header} header: {exc}", message=request) from None
            if creds.realm != self.auth.realm:
                continue  # credentials for another realm (RFC 3261 §22.3): not ours to judge
            result = self.auth.verify(request.method, creds, self._lookup_ha1, wall)
            if result.ok:
                self.throttle.succeeded(address)
                return result.username, None, None
            if result.failure:
                blocked = self.throttle.failed(address, wall)
                log.warning(
                    "auth failed user=%s from=%s:%d reason=%s%s",
                    result.username, source.host, source.port, result.reason,
                    " (address blocked)" if blocked else "",
                )
                # The same nonce again, stale=false: "wrong credentials" beyond doubt. A fresh
                # nonce reads as a new challenge to PJSIP, which answers it again (5 failures
                # per attempt, enough to get its address blocked) and reports a stale error.
                ours = self.auth.nonce_age(creds.nonce, wall) is not None
                resp = self._challenge(request, wall, status, challenge_header, stale=False,
                                       nonce=creds.nonce if ours else None)
                return None, resp, RegisterOutcome("auth_failed", result.username)
            stale = stale or result.stale
        resp = self._challenge(request, wall, status, challenge_header, stale=stale)
        return None, resp, RegisterOutcome("challenged")

    def _challenge(
        self, request: Request, wall: float, status: int, header: str, *, stale: bool,
        nonce: str | None = None,
    ) -> Response:
        hdrs = [(header, c) for c in self.auth.challenges(wall, stale=stale, nonce=nonce)]
        return make_response(request, status, None, to_tag=_tag(request), headers=hdrs)

    # -- REGISTER ---------------------------------------------------------------------------
    def handle(
        self, request: Request, source: Peer, wall: float
    ) -> tuple[Response, RegisterOutcome]:
        username, challenge, outcome = self.authenticate(request, source, wall)
        if challenge is not None:
            assert outcome is not None
            return challenge, outcome
        assert username is not None
        to_uri = request.to.uri
        if not isinstance(to_uri, SipURI) or not to_uri.user:
            raise SipError(400, "To header must hold a SIP URI with a user part", message=request)
        aor = to_uri.user
        if aor != username:
            # RFC 3261 §10.3 step 3: is this user allowed to change bindings of this AOR?
            resp = make_response(request, 403, "Forbidden", to_tag=_tag(request))
            return resp, RegisterOutcome("rejected", aor)
        return self._update(request, source, wall, aor)

    def _update(
        self, request: Request, source: Peer, wall: float, aor: str
    ) -> tuple[Response, RegisterOutcome]:
        s = self.settings
        expires_text = request.headers.get("Expires")
        header_expires = _int_or_none(expires_text)
        if expires_text is not None and header_expires is None:
            raise SipError(400, "Bad Expires header", message=request)
        call_id = request.call_id
        cseq = request.cseq.seq
        existing = self.location.bindings_of(aor)
        kind = "queried"
        changed: list[str] = []
        try:
            star = request.contact_star
            contacts = request.contacts
        except SipError as exc:
            raise SipError(400, f"Bad Contact header: {exc.reason}", message=request) from None

        if star:
            # RFC 3261 §10.3 step 6: "*" only alone, only with Expires: 0.
            if contacts or header_expires != 0:
                raise SipError(400, "Contact: * needs Expires: 0 and no other contact",
                               message=request)
            # Same Call-ID with an old CSeq aborts the whole update: nothing is removed.
            if any(b.call_id == call_id and cseq <= b.cseq for b in existing.values()):
                raise SipError(400, "CSeq out of order for this Call-ID", message=request)
            for contact in list(existing):
                self.location.remove(aor, contact)
                changed.append(contact)
            kind = "unregistered"
        elif contacts:
            # (key, expires, +sip.instance, reg-id, q param) per contact, each read once
            parsed: list[tuple[str, int, str | None, int | None, str | None]] = []
            default_expires = header_expires if header_expires is not None else s.default_expires
            for na in contacts:
                try:
                    key = self._contact_key(na)
                except SipError as exc:
                    raise SipError(400, f"Bad Contact URI: {exc.reason}",
                                   message=request) from None
                params = na.params
                exp = _int_or_none(params.get("expires"))
                if exp is None:
                    exp = default_expires
                if 0 < exp < s.min_expires:
                    # RFC 3261 §10.3 step 7: too brief; tell the minimum.
                    resp = make_response(
                        request, 423, "Interval Too Brief", to_tag=_tag(request),
                        headers=[("Min-Expires", str(s.min_expires))],
                    )
                    return resp, RegisterOutcome("rejected", aor)
                exp = min(exp, s.max_expires)
                parsed.append((key, exp, params.get("+sip.instance"),
                               _int_or_none(params.get("reg-id")), params.get("q")))
            # RFC 3261 §10.3 step 7: ordering by Call-ID/CSeq before changing anything.
            for key, *_ in parsed:
                b = existing.get(key)
                if b is not None and b.call_id == call_id and cseq <= b.cseq:
                    raise SipError(400, "CSeq out of order for this Call-ID", message=request)
            # RFC 3261 §10.3 step 7: all updates or none, so check the contact limit against
            # the outcome (live bindings only; RFC 5626 §6 replacements free a slot) first.
            flows = {k: (b.instance_id, b.reg_id) for k, b in existing.items()
                     if b.expires_at > wall} if existing else {}
            for key, exp, instance, reg_id, _q in parsed:
                if exp == 0:
                    flows.pop(key, None)
                    continue
                flow = (instance, reg_id)
                if instance:
                    flows = {k: f for k, f in flows.items() if k == key or f != flow}
                flows[key] = flow
            if len(flows) > s.max_contacts:
                resp = make_response(request, 403, "Too Many Contacts", to_tag=_tag(request))
                return resp, RegisterOutcome("rejected", aor)
            received = f"{source.transport}:{source.host}:{source.port}"
            user_agent = request.headers.get("User-Agent") or ""
            location = self.location
            for key, exp, instance, reg_id, q_text in parsed:
                if exp == 0:
                    if location.remove(aor, key) is not None:
                        changed.append(key)
                    kind = "unregistered" if kind != "registered" else kind
                    continue
                if instance:
                    # RFC 5626 §6: same instance (and reg-id) replaces its old flow's contact.
                    for other, ob in list(location.bindings_of(aor).items()):
                        if other != key and ob.instance_id == instance and ob.reg_id == reg_id:
                            location.remove(aor, other)
                # Positional: the dataclass __init__ binds them cheaper than keywords.
                location.put(Binding(aor, key, wall + exp, _float_or_none(q_text), call_id,
                                     cseq, received, user_agent, instance, reg_id))
                changed.append(key)
                kind = "registered"
        # RFC 3261 §10.3 step 8: answer with every current binding of the AOR.
        headers: list[tuple[str, str]] = []
        for b in self.location.lookup(aor, wall):
            remaining = max(0, int(b.expires_at - wall + 0.5))
            headers.append(("Contact", f"<{b.contact}>;expires={remaining}"))
        if kind == "registered" and _binds_outbound_flow(request):
            # RFC 5626 §6: confirm that outbound applies to this flow; without it the UA
            # (PJSIP: "SIP outbound status ... is not active") takes it as unsupported.
            headers.append(("Require", "outbound"))
        headers.append(("Server", self.server))
        resp = make_response(request, 200, "OK", to_tag=_tag_of(call_id, cseq), headers=headers)
        return resp, RegisterOutcome(kind, aor, tuple(changed))


def _binds_outbound_flow(request: Request) -> bool:
    """RFC 5626 §6: a UA supporting outbound binds a flow (+sip.instance and reg-id) directly
    with us (no Path: we are its first hop). RFC 3261 §8.2.2.3: Require only what it supports."""
    index = request.headers._idx()
    if "path" in index or "supported" not in index:
        return False  # (values() of an absent Supported is empty: the same answer, cheaper)
    if "outbound" not in (v.lower() for v in request.headers.values("Supported")):
        return False
    return any(
        na.params.get("+sip.instance") and na.params.get("reg-id")
        and na.params.get("expires") != "0"
        for na in request.contacts
    )


def _tag(request: Request) -> str:
    # A stable To tag per request (RFC 3261 §8.2.6.2): derived, so retransmissions that
    # miss the transaction layer still get the same tag.
    return _tag_of(request.call_id, request.cseq.seq)


def _tag_of(call_id: str, cseq: int) -> str:
    return "%08x" % (hash((call_id, cseq)) & 0xFFFFFFFF)  # format(..., "08x"), cheaper


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        return None
    return int(value)


def _float_or_none(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        q = float(value)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None
