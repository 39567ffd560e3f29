"""SIP transports: the only place that touches sockets for SIP (UDP, TCP, TLS).

Each transport feeds bytes and the two clocks into a handler (the ``SipCore``) and sends what
it returns. Responses go back per RFC 3261 §18.2.2: on UDP to the address the core computed,
on TCP/TLS over the connection the request came in on (kept in a table by remote address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Protocol

from softswitch.sip.errors import SipError
from softswitch.sip.events import SendMessage
from softswitch.sip.message import KeepAlive, Peer, Response, StreamParser, parse_message

__all__ = ["Transports"]

log = logging.getLogger("softswitch.transport")

# Idle stream connections are closed after this long (RFC 5626 keep-alives refresh them).
STREAM_IDLE_TIMEOUT = 600.0
# How long opening a TCP connection to a peer may take before its messages are dropped.
CONNECT_TIMEOUT = 5.0


# A burst of registrations (a site's phones rebooting together) must queue, not drop: ask
# for a large UDP receive buffer (the kernel caps it at net.core.rmem_max).
UDP_BUFFER_BYTES = 4 * 1024 * 1024


def _grow_buffers(sock: socket.socket | None) -> None:
    if sock is None:
        return
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, UDP_BUFFER_BYTES)


# Peer(...) runs the named tuple's Python-level __new__; this is the same tuple, made in C.
_new_peer = tuple.__new__


class Core(Protocol):
    def receive_datagram(
        self, data: bytes, source: Peer, now: float, wall: float
    ) -> list[SendMessage]: ...

    def receive_message(self, msg, source: Peer, now: float, wall: float) -> list[SendMessage]: ...

    def malformed(self, exc: SipError, source: Peer, data: bytes = b"") -> list[SendMessage]: ...


class _UdpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("owner", "transport", "loop")

    def __init__(self, owner: Transports) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        owner = self.owner
        if len(data) <= 4 and not data.strip():
            # RFC 5626 §3.5.1 CRLF keep-alive over UDP (or stray whitespace): nothing to do.
            return
        try:
            out = owner.core.receive_datagram(
                data, _new_peer(Peer, ("udp", addr[0], addr[1])), self.loop.time(), time.time()
            )
        except Exception:  # a bug must not stop the listener
            log.exception("error handling datagram from %s:%d", addr[0], addr[1])
            out = None
        owner.batch(out)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class _StreamProtocol(asyncio.Protocol):
    """One TCP/TLS connection: framing by Content-Length (RFC 3261 §18.3)."""

    def __init__(self, owner: Transports, transport_name: str, max_size: int) -> None:
        self.owner = owner
        self.name = transport_name
        self.parser = StreamParser(max_size=max_size)
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.loop = asyncio.get_running_loop()
        self.last_seen = self.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(self.name, host, port)
        self.owner.connections[(self.name, host, port)] = self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.owner.connections.pop((self.name, self.peer.host, self.peer.port), None)

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        assert self.peer is not None and self.transport is not None
        self.last_seen = self.loop.time()
        self.parser.feed(data)
        out: list[SendMessage] = []
        while True:
            try:
                msg = self.parser.next_message()
            except SipError as exc:
                # Framing is lost: answer if we can, then close (RFC 3261 §18.3).
                out.extend(owner.core.malformed(exc, self.peer))
                owner.send_all(out)
                self.transport.close()
                return
            if msg is None:
                break
            if msg is KeepAlive or isinstance(msg, KeepAlive):
                self.transport.write(b"\r\n")  # RFC 5626 §3.5.1 pong
                continue
            try:
                out.extend(
                    owner.core.receive_message(msg, self.peer, self.loop.time(), time.time())
                )
            except Exception:
                log.exception("error handling message from %s", self.peer)
        if out:
            owner.send_all(out)
        owner.after_input()

    def send(self, data: bytes) -> bool:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            return True
        return False


class Transports:
    """All listening sockets of the switch, and the way back to peers.

    What the core answers to datagrams goes out once the event loop has delivered every
    datagram it read in this turn (a batch), and `after_input` runs once per batch. Sending
    each answer at once costs a wake-up of the peer per packet: on loopback under a VM that
    was a third of the kernel's time at 6,000 registrations/s. The delay is one loop turn.
    """

    def __init__(self, core: Core, *, after_input: Callable[[], None], max_size: int = 65535):
        self.core = core
        self.after_input = after_input
        self.max_size = max_size
        self._pending: list[SendMessage] = []
        self._batch_open = False
        # Outgoing TCP connections being opened: (transport, host, port) -> messages waiting
        self._connecting: dict[tuple[str, str, int], list[bytes]] = {}
        self._connect_tasks: set[asyncio.Task[None]] = set()
        self.udp: dict[tuple[str, int], _UdpProtocol] = {}
        self.servers: dict[tuple[str, str, int], asyncio.AbstractServer] = {}
        self.connections: dict[tuple[str, str, int], _StreamProtocol] = {}
        self.sockets_dropped = 0

    async def listen(
        self, transport: str, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Open one listener; returns the bound (host, port) (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        if transport == "udp":
            _, proto = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            assert proto.transport is not None
            _grow_buffers(proto.transport.get_extra_info("socket"))
            bound = proto.transport.get_extra_info("sockname")[:2]
            self.udp[(bound[0], bound[1])] = proto
        elif transport in ("tcp", "tls"):
            server = await loop.create_server(
                lambda: _StreamProtocol(self, transport, self.max_size),
                host, port, ssl=ssl_context if transport == "tls" else None,
                reuse_address=True,
            )
            bound = server.sockets[0].getsockname()[:2]
            self.servers[(transport, bound[0], bound[1])] = server
        else:
            raise ValueError(f"transport {transport} is not served yet")
        log.info("listening on %s:%s:%d", transport, bound[0], bound[1])
        return bound[0], bound[1]

    async def close_listener(self, transport: str, host: str, port: int) -> None:
        if transport == "udp":
            proto = self.udp.pop((host, port), None)
            if proto and proto.transport:
                proto.transport.close()
        else:
            server = self.servers.pop((transport, host, port), None)
            if server:
                server.close()
                await server.wait_closed()
        log.info("closed %s:%s:%d", transport, host, port)

    def batch(self, messages: list[SendMessage] | None) -> None:
        """Queue answers to one input; they leave when the loop's turn of input is over."""
        if messages:
            self._pending.extend(messages)
        if not self._batch_open:
            self._batch_open = True
            asyncio.get_running_loop().call_soon(self._end_batch)

    def _end_batch(self) -> None:
        self._batch_open = False
        pending = self._pending
        if pending:
            self._pending = []
            self.send_all(pending)
        self.after_input()

    def send_all(self, messages: list[SendMessage]) -> None:
        # With one UDP listener (the usual case) `send`'s choice of socket is the same for
        # every UDP message: made once, outside the loop.
        udp = next(iter(self.udp.values())).transport if len(self.udp) == 1 else None
        for m in messages:
            dest = m.dest
            if udp is not None and dest.transport == "udp":
                udp.sendto(m.data, (dest.host, dest.port))
            else:
                self.send(m.data, dest)

    def send(self, data: bytes, dest: Peer) -> None:
        if dest.transport == "udp":
            proto = self._udp_for(dest.host)
            if proto is not None and proto.transport is not None:
                proto.transport.sendto(data, (dest.host, dest.port))
                return
        else:
            conn = self.connections.get((dest.transport, dest.host, dest.port))
            if conn is not None and conn.send(data):
                return
            if dest.transport == "tcp":
                self._send_over_new_connection(data, dest)
                return
        # No listener for the transport, or a closed TLS connection: we do not open TLS
        # connections outward (no client certificate policy yet).
        self.sockets_dropped += 1

    def _send_over_new_connection(self, data: bytes, dest: Peer) -> None:
        """RFC 3261 §18.2.2 (responses) and §18.1.1 (requests): the connection is gone, so
        open one. A response goes to the Via's received address (else its sent-by host) and
        its sent-by port (else 5060), not to the closed connection's ephemeral port."""
        target = dest
        if data.startswith(b"SIP/2.0 "):
            try:
                response = parse_message(data)
                via = response.top_via if isinstance(response, Response) else None
            except SipError:
                via = None
            if via is None:
                self.sockets_dropped += 1
                return
            target = Peer("tcp", (via.received or via.host).strip("[]"), via.port or 5060)
            conn = self.connections.get(("tcp", target.host, target.port))
            if conn is not None and conn.send(data):
                return
        key = ("tcp", target.host, target.port)
        waiting = self._connecting.get(key)
        if waiting is not None:
            waiting.append(data)  # in order, behind the connection being opened
            return
        self._connecting[key] = [data]
        task = asyncio.get_running_loop().create_task(self._connect(key))
        self._connect_tasks.add(task)
        task.add_done_callback(self._connect_tasks.discard)

    async def _connect(self, key: tuple[str, str, int]) -> None:
        _, host, port = key
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(loop.create_connection(
                lambda: _StreamProtocol(self, "tcp", self.max_size), host, port), CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            lost = self._connecting.pop(key, [])
            self.sockets_dropped += len(lost)
            log.info("cannot connect to tcp:%s:%d (%s): %d message(s) dropped",
                     host, port, exc or type(exc).__name__, len(lost))
            return
        log.info("connected to tcp:%s:%d", host, port)
        for data in self._connecting.pop(key, []):
            proto.send(data)

    def _udp_for(self, host: str) -> _UdpProtocol | None:
        # Answer from a socket of the same address family; with one UDP listener, that one.
        if len(self.udp) == 1:
            return next(iter(self.udp.values()))
        v6 = ":" in host
        for (bound_host, _), proto in self.udp.items():
            if (":" in bound_host) == v6:
                return proto
        return next(iter(self.udp.values()), None)

    def close_idle(self, now: float) -> int:
        n = 0
        for conn in list(self.connections.values()):
            if now - conn.last_seen > STREAM_IDLE_TIMEOUT and conn.transport is not None:
                conn.transport.close()
                n += 1
        return n

    async def close(self) -> None:
        for task in list(self._connect_tasks):
            task.cancel()
        for proto in self.udp.values():
            if proto.transport:
                proto.transport.close()
        self.udp.clear()
        for conn in list(self.connections.values()):
            if conn.transport:
                conn.transport.close()
        for server in self.servers.values():
            server.close()
        for server in self.servers.values():
            await server.wait_closed()
        self.servers.clear()

    def listeners(self) -> list[tuple[str, str, int]]:
        out = [("udp", h, p) for (h, p) in self.udp]
        out.extend(self.servers)
        return out
