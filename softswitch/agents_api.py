"""The agents' REST API (issue 4: "an agent logs in ... also by REST API"; aux "set by API").

- ``POST /api/agents/{id}/login`` ``{"device": "1002", "pin": "1234"}``: the PIN is checked
  like *11 (wrong PINs counted per client address, locked out after ``pin_failures``);
- ``POST /api/agents/{id}/logout``, ``/aux`` ``{"reason": "7"}``, ``/available``, ``/acw-end``;
- ``GET /api/agents`` (id, state, reason, device, since) and ``GET /api/queues`` (name,
  waiting, longest wait).

Guard: the admin guard of `softswitch.http` (loopback, or ``Bearer <admin_token>``), or the
agent's own PIN (``"pin"`` in the body) for that agent's own requests; login always needs
the PIN. Errors are JSON ``{"error": ...}``: 400 bad body, 401/403 guard, 403 wrong PIN,
404 unknown agent, 409 illegal transition, 429 locked out (``Retry-After``), 503 no ACD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from softswitch.contact_centre import AgentRequestError, ContactCentre

if TYPE_CHECKING:
    from softswitch.app import Switch

__all__ = ["agents_routes"]

_STATUS = {"unknown_agent": 404, "bad_pin": 403, "locked": 429, "conflict": 409}

Guard = Callable[[Request], Response | None]


def agents_routes(switch: Switch, admin_denied: Guard) -> list[Route]:
    def centre() -> ContactCentre:
        if switch.contact_centre is None:
            raise AgentRequestError("unavailable", "contact centre not running")
        return switch.contact_centre

    def source(request: Request) -> str:
        return f"http:{request.client.host if request.client else '?'}"

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise _BadRequest("body must be JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("body must be a JSON object")
        return body

    def text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
        value = body.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value:
            raise _BadRequest(f"{key!r} must be a non-empty string")
        return value

    async def allowed(request: Request, body: dict[str, Any], agent: str) -> Response | None:
        """Admin guard, or else the agent's own PIN in the body."""
        denied = admin_denied(request)
        if denied is None:
            return None
        if "pin" not in body:
            return denied
        await centre().check_pin(agent, text(body, "pin"), source=source(request))
        return None

    def action(run: Callable[[ContactCentre, str, dict[str, Any]], Any]
               ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            agent = request.path_params["agent"]
            try:
                body = await body_of(request)
                if (denied := await allowed(request, body, agent)) is not None:
                    return denied
                return JSONResponse(run(centre(), agent, body))
            except (AgentRequestError, _BadRequest) as exc:
                return _error(exc)
        return endpoint

    async def login(request: Request) -> Response:
        agent = request.path_params["agent"]
        try:
            body = await body_of(request)
            device, pin = text(body, "device"), text(body, "pin")
            if device not in switch.directory:
                raise _BadRequest(f"unknown device {device!r} (an extension)")
            view = await centre().login(agent, device, pin, source=source(request))
            return JSONResponse(view)
        except (AgentRequestError, _BadRequest) as exc:
            return _error(exc)

    async def agents(request: Request) -> Response:
        if (denied := admin_denied(request)) is not None:
            return denied
        try:
            return JSONResponse({"agents": centre().agents()})
        except AgentRequestError as exc:
            return _error(exc)

    async def queues(request: Request) -> Response:
        if (denied := admin_denied(request)) is not None:
            return denied
        try:
            return JSONResponse({"queues": centre().queues()})
        except AgentRequestError as exc:
            return _error(exc)

    return [
        Route("/api/agents", agents),
        Route("/api/queues", queues),
        Route("/api/agents/{agent}/login", login, methods=["POST"]),
        Route("/api/agents/{agent}/logout", action(lambda cc, a, b: cc.logout(a)),
              methods=["POST"]),
        Route("/api/agents/{agent}/aux",
              action(lambda cc, a, b: cc.aux(a, text(b, "reason"))), methods=["POST"]),
        Route("/api/agents/{agent}/available", action(lambda cc, a, b: cc.available(a)),
              methods=["POST"]),
        Route("/api/agents/{agent}/acw-end", action(lambda cc, a, b: cc.acw_end(a)),
              methods=["POST"]),
    ]


class _BadRequest(Exception):
    pass


def _error(exc: Exception) -> Response:
    if isinstance(exc, _BadRequest):
        return JSONResponse({"error": str(exc)}, status_code=400)
    assert isinstance(exc, AgentRequestError)
    status = _STATUS.get(exc.kind, 503)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse({"error": str(exc), "kind": exc.kind}, status_code=status,
                        headers=headers)
