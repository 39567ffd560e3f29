"""RFC 4028 session timers, sans-I/O: header values, negotiation, and the refresh clock.

A session refreshed by a re-INVITE or UPDATE every so often proves both ends still hold it;
the side that stops hearing refreshes ends it with BYE. `negotiate_uas` answers a
(re-)INVITE/UPDATE (422 when its interval is too small), `negotiate_uac` reads the 2xx to ours,
`retry_after_422` builds the retry, and `SessionTimer` says when to refresh and when the session
is dead (`get_timer()` / `handle_timer(now)`).

Roles are per transaction (RFC 4028 §7, §9): "uac" is the side that sent the request that
negotiated the interval, so after each refresh the caller passes the role it had in *that*
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from softswitch.sip.errors import SipError
from softswitch.sip.message import Request, Response
from softswitch.sip.uri import parse_params

__all__ = [
    "DEFAULT_INTERVAL",
    "MIN_SE_FLOOR",
    "RefreshDue",
    "SessionExpired",
    "SessionExpires",
    "SessionTimer",
    "min_se_of",
    "negotiate_uac",
    "negotiate_uas",
    "parse_min_se",
    "parse_session_expires",
    "response_headers",
    "retry_after_422",
    "session_expires_of",
]

Role = Literal["uac", "uas"]
MIN_SE_FLOOR = 90  # RFC 4028 §4: Min-SE MUST NOT be below 90 s (also the default, §5)
DEFAULT_INTERVAL = 1800  # RFC 4028 §4: RECOMMENDED Session-Expires
_ROLES: dict[str, Role] = {"uac": "uac", "uas": "uas"}


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """``Session-Expires: <interval>[;refresher=uac|uas]`` (RFC 4028 §4)."""

    interval: int
    refresher: Role | None = None

    def __str__(self) -> str:
        return str(self.interval) + (f";refresher={self.refresher}" if self.refresher else "")


def _delta(text: str, name: str) -> int:
    text = text.strip(" \t")
    # RFC 3261 §25.1 delta-seconds = 1*DIGIT; 0 would make the session expire at once.
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 10) or int(text) == 0:
        raise SipError(400, f"Bad {name} header")
    return min(int(text), 2**32 - 1)


def parse_session_expires(value: str) -> SessionExpires:
    """Parse a Session-Expires value; SipError(400) when malformed (RFC 4028 §4)."""
    delta, _, rest = value.partition(";")
    interval = _delta(delta, "Session-Expires")
    refresher: Role | None = None
    if rest:
        try:
            params = parse_params(rest)
        except SipError:
            raise SipError(400, "Bad Session-Expires header") from None
        if "refresher" in params:
            refresher = _ROLES.get((params["refresher"] or "").lower())
            if refresher is None:
                raise SipError(400, "Bad Session-Expires header")
    return SessionExpires(interval, refresher)


def parse_min_se(value: str) -> int:
    """Parse a Min-SE value (RFC 4028 §5; generic parameters ignored)."""
    return _delta(value.partition(";")[0], "Min-SE")


def session_expires_of(message: Request | Response) -> SessionExpires | None:
    value = message.headers.get("Session-Expires")  # "x" is expanded by Headers
    return None if value is None else parse_session_expires(value)


def min_se_of(message: Request | Response) -> int | None:
    value = message.headers.get("Min-SE")
    return None if value is None else parse_min_se(value)


def _supports_timer(message: Request | Response) -> bool:
    return any(v.lower() == "timer" for v in message.headers.values("Supported"))


def negotiate_uas(request: Request, *, min_se: int = MIN_SE_FLOOR,
                  interval: int = DEFAULT_INTERVAL) -> SessionExpires:
    """The Session-Expires of our 2xx to a session refresh or initial INVITE (RFC 4028 §9).

    Raises SipError(422) carrying our Min-SE when the requested interval is below it. We may
    shorten the requested interval to `interval`, never below the request's Min-SE. Without
    a Session-Expires in the request we still run the timer and refresh ourselves.
    """
    min_se = max(min_se, MIN_SE_FLOOR)
    asked = session_expires_of(request)
    their_min = min_se_of(request) or MIN_SE_FLOOR
    if asked is None:
        # §9: a UAS may use the timer although nobody asked for it; it then refreshes itself
        return SessionExpires(max(interval, their_min, min_se), "uas")
    if asked.interval < min_se:
        raise SipError(422, "Session Interval Too Small", [("Min-SE", str(min_se))])
    chosen = max(min(asked.interval, interval), their_min, min_se)
    if asked.refresher is not None:
        refresher: Role = asked.refresher  # §9: the request's choice stands
    elif _supports_timer(request):
        refresher = "uac"  # §9: the UAS picks; the side that asked refreshes
    else:
        refresher = "uas"  # §9: a UAC without "timer" cannot refresh, so we do
    return SessionExpires(chosen, refresher)


def response_headers(negotiated: SessionExpires) -> list[tuple[str, str]]:
    """Headers for the 2xx carrying `negotiated` (RFC 4028 §9: Require when the UAC refreshes)."""
    headers = [("Session-Expires", str(negotiated))]
    if negotiated.refresher == "uac":
        headers.append(("Require", "timer"))
    return headers


def negotiate_uac(response: Response, asked: SessionExpires | None) -> SessionExpires | None:
    """The interval a 2xx to our request settles (RFC 4028 §7.2), None when there is none.

    A 2xx without Session-Expires to a request that asked for one means the peer does not
    know session timers: we refresh ourselves at the interval we asked for.
    """
    got = session_expires_of(response)
    if got is None:
        return None if asked is None else SessionExpires(asked.interval, "uac")
    return SessionExpires(got.interval, got.refresher or "uac")


def retry_after_422(response: Response, asked: SessionExpires | None) -> SessionExpires:
    """The Session-Expires to retry with after a 422 (RFC 4028 §7.4); also send Min-SE.

    The retry asks for at least the Min-SE the 422 carried (SipError(400) when it has none).
    """
    min_se = min_se_of(response)
    if min_se is None:
        raise SipError(400, "Missing Min-SE header")
    refresher = asked.refresher if asked is not None else None
    return SessionExpires(max(min_se, asked.interval if asked else 0), refresher)


# ---------------------------------------------------------------------------
# The clock


@dataclass(frozen=True, slots=True)
class RefreshDue:
    """We are the refresher and half the interval has passed: send a re-INVITE or UPDATE."""


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """No refresh came in time: end the session with BYE (RFC 4028 §10)."""


SessionTimerEvent = RefreshDue | SessionExpired


class SessionTimer:
    """When to refresh and when the session is considered dead (RFC 4028 §10).

    The refresher refreshes at half the interval. Either side sends BYE when nothing
    refreshed the session by the interval minus min(32 s, interval/3), slightly before the
    expiry itself as §10 recommends.
    """

    __slots__ = ("interval", "refresher", "we_refresh", "refresh_at", "expires_at", "expired")

    def __init__(self, negotiated: SessionExpires, role: Role, now: float) -> None:
        self.interval = 0
        self.refresher: Role | None = None
        self.we_refresh = False
        self.refresh_at: float | None = None
        self.expires_at = 0.0
        self.expired = False
        self.refreshed(negotiated, role, now)

    def refreshed(self, negotiated: SessionExpires, role: Role, now: float) -> None:
        """A refresh (or the initial INVITE) succeeded at `now`; `role` ours in it."""
        interval = negotiated.interval
        self.interval = interval
        self.refresher = negotiated.refresher or "uac"
        self.we_refresh = self.refresher == role
        self.refresh_at = now + interval / 2 if self.we_refresh else None
        self.expires_at = now + interval - min(32.0, interval / 3)
        self.expired = False

    def get_timer(self) -> float | None:
        if self.expired:
            return None
        if self.refresh_at is not None:
            return min(self.refresh_at, self.expires_at)
        return self.expires_at

    def handle_timer(self, now: float) -> list[SessionTimerEvent]:
        if self.expired:
            return []
        if now >= self.expires_at:
            self.expired = True
            self.refresh_at = None
            return [SessionExpired()]
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None  # once: the next comes with refreshed()
            return [RefreshDue()]
        return []
