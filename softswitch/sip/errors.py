"""The one exception of the SIP message layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Request

__all__ = ["SipError"]


class SipError(Exception):
    """A fault in received SIP: the status and reason to answer it with.

    `headers` are extra header fields for that answer (``Allow``, ``Unsupported``...).
    `message` is the partly parsed request when Via, From, To, Call-ID and CSeq
    could be read (so a response can be formed), else ``None``: the caller then
    drops the datagram or closes the connection.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
        message: Request | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers: list[tuple[str, str]] = list(headers) if headers else []
        self.message = message

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"SipError({self.status!r}, {self.reason!r})"
