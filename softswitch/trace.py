"""Per-user / per-address SIP message trace, switched on and off while the switch runs.

An operator names users (extensions) or IP addresses; every message from or to them is
logged in full on the ``softswitch.trace`` logger. With no targets the check costs one
attribute read per message.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from softswitch.sip.errors import SipError
from softswitch.sip.message import Peer, Request, Response
from softswitch.sip.uri import SipURI

__all__ = ["Tracer"]

log = logging.getLogger("softswitch.trace")


class Tracer:
    __slots__ = ("active", "_addresses", "_users")

    def __init__(self, targets: Iterable[str] = ()) -> None:
        self._addresses: set[str] = set()
        self._users: set[str] = set()
        self.active = False
        self.set(targets)

    def set(self, targets: Iterable[str]) -> None:
        self._addresses.clear()
        self._users.clear()
        for t in targets:
            self.add(t)

    def add(self, target: str) -> None:
        target = target.strip()
        if not target:
            return
        if _looks_like_address(target):
            self._addresses.add(target)
        else:
            self._users.add(target)
        self.active = True

    def remove(self, target: str) -> None:
        self._addresses.discard(target)
        self._users.discard(target)
        self.active = bool(self._addresses or self._users)

    def targets(self) -> list[str]:
        return sorted(self._addresses | self._users)

    # -- hooks called by the core -------------------------------------------------------------
    def received(self, data: bytes, source: Peer) -> None:
        """Raw datagram, before parsing: traced by address only (it may not parse)."""
        if source.host in self._addresses:
            log.info("recv %s:%s:%d\n%s", source.transport, source.host, source.port,
                     data.decode("utf-8", "replace"))

    def request(self, msg: Request, source: Peer) -> None:
        if source.host not in self._addresses and self._users and self._matches_user(msg):
            log.info("recv %s:%s:%d\n%s", source.transport, source.host, source.port,
                     msg.to_bytes().decode("utf-8", "replace"))

    def response(self, msg: Response, dest: Peer) -> None:
        if dest.host in self._addresses or (self._users and self._matches_user(msg)):
            log.info("send %s:%s:%d\n%s", dest.transport, dest.host, dest.port,
                     msg.to_bytes().decode("utf-8", "replace"))

    def _matches_user(self, msg: Request | Response) -> bool:
        try:
            for na in (msg.from_, msg.to):
                uri = na.uri
                if isinstance(uri, SipURI) and uri.user in self._users:
                    return True
        except SipError:
            return False
        return False


def _looks_like_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
