"""Who may see which web page: logins, sessions, kiosk tokens, and `authorize` for reports.

- Users are ``[[web.users]]`` (name, role, scrypt ``password_hash``). A login checks the
  password in constant time (scrypt in a thread; an unknown name costs the same as a wrong
  password) and starts a server-side session: a random token in an HttpOnly, SameSite=Lax
  cookie that expires ``[web] session_ttl_s`` after the login (absolute, not sliding).
- Sessions are kept **in memory**: a restart of the process logs everyone out. A session
  whose user was removed or changed role by a reload ends at its next use.
- Failed logins are throttled per client address: `MAX_FAILURES` within `FAILURE_WINDOW_S`
  block that address for `BLOCK_S` (429 with Retry-After).
- Roles: ``supervisor`` and ``manager`` see everything; ``agent`` sees only the figures of its
  own ACD agent (403 on queue reports and queue pages, its own rows elsewhere).
- With no ``[[web.users]]`` at all, a client on loopback is let in as ``local`` (the demo on
  127.0.0.1); from anywhere else every page but the wallboard needs a login.
- The wallboard (a TV cannot log in) opens with ``?token=`` one of ``[web] kiosk_tokens``, for
  any logged-in supervisor/manager, for ``local``, or for anyone when ``wallboard_open``.

The clock is injected (`clock`), so expiry is tested without waiting for it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from softswitch.acd_config import hash_pin, verify_pin

__all__ = ["COOKIE", "LoginThrottled", "Session", "Viewer", "WebAuth"]

COOKIE = "softswitch_session"
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
BLOCK_S = 300.0
MAX_SESSIONS = 10_000
FULL_ROLES = frozenset({"supervisor", "manager", "local"})
# Checked when the name is unknown, so a wrong name costs as much as a wrong password.
_DUMMY_HASH = hash_pin(secrets.token_hex(8))


class _User(Protocol):
    name: str
    role: str
    password_hash: str
    agent: str | None


class _Web(Protocol):
    session_ttl_s: float
    wallboard_open: bool
    kiosk_tokens: Sequence[str]
    users: Sequence[_User]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a user's name and role (``local``, ``kiosk`` or a user's role)."""

    name: str
    role: str
    agent: str | None = None

    @property
    def sees_all(self) -> bool:
        return self.role in FULL_ROLES


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    name: str
    role: str
    agent: str | None
    expires: float


class LoginThrottled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def is_loopback(request: Request) -> bool:
    host = client_address(request)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("testclient", "localhost")


class WebAuth:
    """Sessions and login throttling for one web app; the config is read on every use."""

    def __init__(self, get_web: Callable[[], Any], *,
                 clock: Callable[[], float] = time.time) -> None:
        self._get_web = get_web
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}

    @property
    def web(self) -> _Web:
        web: _Web = self._get_web()
        return web

    # -- login / logout ---------------------------------------------------------------------

    async def login(self, name: str, password: str, address: str) -> Session | None:
        """A new session, or None for a wrong name/password; raises `LoginThrottled`."""
        now = self.clock()
        until = self._blocked.get(address)
        if until is not None:
            if now < until:
                raise LoginThrottled(until - now)
            del self._blocked[address]
        user = next((u for u in self.web.users if hmac.compare_digest(
            u.name.encode(), name.encode())), None)
        stored = user.password_hash if user is not None else _DUMMY_HASH
        # scrypt runs in a thread: the event loop (SIP, media) keeps going.
        ok = await asyncio.to_thread(verify_pin, password, stored) and user is not None
        if not ok or user is None:
            self._failed(address, self.clock())
            return None
        self._failures.pop(address, None)
        return self._start(user)

    def _failed(self, address: str, now: float) -> None:
        recent = [t for t in self._failures.get(address, []) if now - t < FAILURE_WINDOW_S]
        recent.append(now)
        if len(recent) >= MAX_FAILURES:
            self._blocked[address] = now + BLOCK_S
            self._failures.pop(address, None)
        else:
            self._failures[address] = recent

    def _start(self, user: _User) -> Session:
        now = self.clock()
        self._purge(now)
        if len(self.sessions) >= MAX_SESSIONS:  # drop the oldest
            del self.sessions[next(iter(self.sessions))]
        token = secrets.token_urlsafe(32)
        session = Session(token, user.name, user.role, user.agent,
                          now + float(self.web.session_ttl_s))
        self.sessions[token] = session
        return session

    def _purge(self, now: float) -> None:
        for token in [t for t, s in self.sessions.items() if s.expires <= now]:
            del self.sessions[token]

    def logout(self, request: Request) -> None:
        self.sessions.pop(request.cookies.get(COOKIE, ""), None)

    def set_cookie(self, response: Response, session: Session, request: Request) -> None:
        response.set_cookie(
            COOKIE, session.token, max_age=max(1, int(session.expires - self.clock())),
            path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")

    # -- who is asking ----------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        session = self.sessions.get(token)
        if session is None:
            return None
        if session.expires <= self.clock():
            del self.sessions[token]
            return None
        # A reload may have removed the user or changed what it may see.
        user = next((u for u in self.web.users if u.name == session.name), None)
        if user is None or (user.role, user.agent) != (session.role, session.agent):
            del self.sessions[token]
            return None
        return session

    def viewer(self, request: Request) -> Viewer | None:
        """The logged-in user, ``local`` (loopback, no users configured), or None."""
        session = self.session(request)
        if session is not None:
            return Viewer(session.name, session.role, session.agent)
        if not self.web.users and is_loopback(request):
            return Viewer("", "local")
        return None

    def wallboard_viewer(self, request: Request) -> Viewer | None:
        """Who may see the wallboard (and its live data): kiosk token, open board, users."""
        token = request.query_params.get("token", "")
        if token and any(hmac.compare_digest(token.encode(), k.encode())
                         for k in self.web.kiosk_tokens):
            return Viewer("", "kiosk")
        viewer = self.viewer(request)
        if viewer is not None:
            return viewer
        if self.web.wallboard_open:
            return Viewer("", "kiosk")
        return None

    # -- guards -----------------------------------------------------------------------------

    def page_guard(self, request: Request, *, agents: bool = True
                   ) -> tuple[Response | None, Viewer | None]:
        """For an HTML page: a redirect to /login, 403 for an agent where `agents` is False."""
        viewer = self.viewer(request)
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", 303), None
        if not agents and not viewer.sees_all:
            return Response("forbidden: supervisors and managers only", 403,
                            media_type="text/plain"), None
        return None, viewer

    def api_guard(self, request: Request, *, agents: bool = True
                  ) -> tuple[Response | None, Viewer | None]:
        """For a JSON API: 401 without a login, 403 for an agent where `agents` is False."""
        viewer = self.viewer(request)
        if viewer is None:
            return JSONResponse({"error": "login required"}, status_code=401), None
        if not agents and not viewer.sees_all:
            return JSONResponse({"error": "supervisors and managers only"},
                                status_code=403), None
        return None, viewer

    def authorize(self, request: Request) -> tuple[Response | None, str | None]:
        """The report API's check (contract §4): (denial, None) or (None, agent or None)."""
        denied, viewer = self.api_guard(request)
        if denied is not None or viewer is None:
            return denied, None
        if viewer.sees_all:
            return None, None
        return None, viewer.agent or ""
