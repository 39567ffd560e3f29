"""Helpers for integration tests of the running switch over real sockets.

- `SwitchFiles` / `write_config`: a temp config (main file + included users file) on free
  127.0.0.1 ports, with a SQLite store in the temp dir or any store URL.
- `running_switch`: ``Switch(config)`` started in this event loop, stopped in a finally.
- `UdpClient` / `TcpClient`: raw SIP over asyncio that sends bytes and awaits the answer with a
  timeout (no sleeps for synchronisation).
- `build_request`, `register_request`, `answer_challenge`, `register`: REGISTER flows with
  digest answered by `softswitch.sip.digest.compute_ha1` / `compute_response`.
- `http_get`, `metric`: read `/metrics` and `/api/status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from softswitch.app import Switch
from softswitch.sip.digest import Credentials, compute_ha1, compute_response
from softswitch.sip.message import Response, parse_message
from tests.conftest import free_port

HOST = "127.0.0.1"
TIMEOUT = 3.0
DEFAULT_USERS = {f"10{n:02d}": f"pw10{n:02d}" for n in range(1, 6)}

_counter = itertools.count(1)


def unique(prefix: str = "x") -> str:
    return f"{prefix}{next(_counter)}-{id(_counter) & 0xFFFF:x}"


# --------------------------------------------------------------------------- config


def users_toml(users: dict[str, str]) -> str:
    return "".join(
        f'[[users]]\nextension = "{ext}"\npassword = "{pw}"\n\n' for ext, pw in users.items()
    )


@dataclass
class SwitchFiles:
    """A config on disk: `path` (main file) includes `users_path`."""

    path: Path
    users_path: Path
    sip_port: int
    http_port: int
    store_url: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def write_users(self, users: dict[str, str]) -> None:
        self.users_path.write_text(users_toml(users))

    def rewrite(self, **sections: dict[str, Any]) -> None:
        """Rewrite the main file with some sections' keys changed (merged over the old)."""
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        self.path.write_text(_main_toml(self.sections))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def _main_toml(sections: dict[str, dict[str, Any]]) -> str:
    out = ['include = ["users.toml"]\n']
    for name, values in sections.items():
        out.append(f"\n[{name}]\n")
        out.extend(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    return "".join(out)


def write_config(
    directory: Path,
    *,
    store_url: str | None = None,
    users: dict[str, str] | None = None,
    registrar: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    http: dict[str, Any] | None = None,
    log: dict[str, Any] | None = None,
    sip: dict[str, Any] | None = None,
) -> SwitchFiles:
    directory.mkdir(parents=True, exist_ok=True)
    sip_port = free_port()
    http_port = free_port()
    while http_port == sip_port:
        http_port = free_port()
    store_url = store_url or f"sqlite:///{directory / 'var' / 'softswitch.db'}"
    sections: dict[str, dict[str, Any]] = {
        "sip": {
            "listen": [f"udp:{HOST}:{sip_port}", f"tcp:{HOST}:{sip_port}"],
            "domain": HOST,
            **(sip or {}),
        },
        "registrar": {"min_expires": 60, "max_expires": 7200, "default_expires": 3600,
                      **(registrar or {})},
        "auth": {"algorithms": ["SHA-256", "MD5"], "nonce_ttl_s": 300, "failure_limit": 10,
                 "failure_window_s": 60, "block_s": 300, **(auth or {})},
        "http": {"listen": f"{HOST}:{http_port}", **(http or {})},
        "store": {"url": store_url},
        "log": {"level": "info", **(log or {})},
    }
    files = SwitchFiles(
        path=directory / "softswitch.toml", users_path=directory / "users.toml",
        sip_port=sip_port, http_port=http_port, store_url=store_url, sections=sections,
    )
    files.write_users(DEFAULT_USERS if users is None else users)
    files.path.write_text(_main_toml(sections))
    return files


@contextlib.asynccontextmanager
async def running_switch(files: SwitchFiles | Path) -> AsyncIterator[Switch]:
    switch = Switch(files.path if isinstance(files, SwitchFiles) else files)
    try:
        await switch.start()
        yield switch
    finally:
        await switch.stop()


# --------------------------------------------------------------------------- raw SIP clients


class _UdpProto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


class UdpClient:
    transport_name = "UDP"

    def __init__(self, transport: asyncio.DatagramTransport, proto: _UdpProto) -> None:
        self.transport = transport
        self.proto = proto
        self.local_port: int = transport.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, port: int) -> UdpClient:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _UdpProto, local_addr=(HOST, 0), remote_addr=(HOST, port)
        )
        return cls(transport, proto)

    async def send(self, data: bytes) -> None:
        self.transport.sendto(data)

    async def recv(self, timeout: float = TIMEOUT) -> bytes:
        return await asyncio.wait_for(self.proto.queue.get(), timeout)

    async def request(self, data: bytes, timeout: float = TIMEOUT) -> Response:
        await self.send(data)
        return parse_response(await self.recv(timeout))

    def pending(self) -> int:
        return self.proto.queue.qsize()

    async def close(self) -> None:
        self.transport.close()


class TcpClient:
    transport_name = "TCP"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.local_port: int = writer.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, port: int) -> TcpClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = TIMEOUT) -> bytes:
        """One framed message (head + Content-Length body)."""

        async def read() -> bytes:
            head = await self.reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
            length = int(m.group(1)) if m else 0
            return head + (await self.reader.readexactly(length) if length else b"")

        return await asyncio.wait_for(read(), timeout)

    async def recv_raw(self, n: int, timeout: float = TIMEOUT) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), timeout)

    async def request(self, data: bytes, timeout: float = TIMEOUT) -> Response:
        await self.send(data)
        return parse_response(await self.recv(timeout))

    async def closed_by_peer(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection (EOF) before the deadline."""
        data = await asyncio.wait_for(self.reader.read(), timeout)
        return data == b"" or self.reader.at_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


Client = UdpClient | TcpClient


async def open_client(kind: str, port: int) -> Client:
    return await (UdpClient.open(port) if kind == "udp" else TcpClient.open(port))


def parse_response(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response), data
    return msg


# --------------------------------------------------------------------------- messages


def build(start: str, headers: Iterable[tuple[str, str]], body: bytes = b"",
          *, content_length: bool = True) -> bytes:
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def base_headers(client: Client, method: str, *, user: str = "1001", to_user: str | None = None,
                 call_id: str | None = None, cseq: int = 1, branch: str | None = None,
                 port: int | None = None) -> list[tuple[str, str]]:
    to_user = to_user or user
    return [
        ("Via", f"SIP/2.0/{client.transport_name} {HOST}:{client.local_port}"
                f";branch={branch or 'z9hG4bK' + unique('b')};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@{HOST}>;tag={unique('t')}"),
        ("To", f"<sip:{to_user}@{HOST}>"),
        ("Call-ID", call_id or unique("cid") + "@test"),
        ("CSeq", f"{cseq} {method}"),
    ]


def options(client: Client, port: int, **kw: Any) -> bytes:
    return build(f"OPTIONS sip:{HOST}:{port} SIP/2.0", base_headers(client, "OPTIONS", **kw))


def register_request(
    client: Client, port: int, *, user: str = "1001", to_user: str | None = None,
    contacts: Iterable[str] | None = None, expires: int | None = None, call_id: str,
    cseq: int = 1, authorization: str | None = None, branch: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    hdrs = base_headers(client, "REGISTER", user=user, to_user=to_user, call_id=call_id,
                        cseq=cseq, branch=branch)
    for c in contacts if contacts is not None else ():
        hdrs.append(("Contact", c))
    if expires is not None:
        hdrs.append(("Expires", str(expires)))
    if authorization is not None:
        hdrs.append(("Authorization", authorization))
    hdrs.extend(extra)
    return build(f"REGISTER sip:{HOST}:{port} SIP/2.0", hdrs)


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest "), value
    return {k.lower(): v1 or v2 for k, v1, v2 in
            re.findall(r'([A-Za-z-]+)=(?:"([^"]*)"|([^,\s]+))', value[7:])}


def challenge_for(
    resp: Response, algorithm: str, header: str = "WWW-Authenticate"
) -> dict[str, str]:
    for value in resp.headers.getall(header):
        params = challenge_params(value)
        if params.get("algorithm", "MD5").upper() == algorithm.upper():
            return params
    raise AssertionError(f"no {algorithm} challenge in {resp.headers.getall(header)}")


def answer_challenge(resp: Response, *, user: str, password: str, algorithm: str = "MD5",
                     method: str = "REGISTER", uri: str | None = None,
                     nonce: str | None = None) -> str:
    """The Authorization value answering `resp`'s challenge for `algorithm` (qop=auth)."""
    ch = challenge_for(resp, algorithm)
    creds = Credentials(
        username=user, realm=ch["realm"], nonce=nonce or ch["nonce"],
        uri=uri or f"sip:{HOST}", response="", algorithm=algorithm, qop="auth",
        nc="00000001", cnonce=unique("cn"),
    )
    ha1 = compute_ha1(algorithm, user, ch["realm"], password)
    response = compute_response(method, creds, ha1)
    return (f'Digest username="{user}", realm="{creds.realm}", nonce="{creds.nonce}", '
            f'uri="{creds.uri}", response="{response}", algorithm={algorithm}, qop=auth, '
            f'nc={creds.nc}, cnonce="{creds.cnonce}"')


@dataclass
class Registration:
    challenge: Response
    final: Response
    call_id: str
    cseq: int


async def register(
    client: Client, port: int, *, user: str = "1001", password: str | None = None,
    to_user: str | None = None, contacts: Iterable[str] | None = None,
    expires: int | None = None, algorithm: str = "MD5", call_id: str | None = None,
    cseq: int = 1, extra: Iterable[tuple[str, str]] = (),
) -> Registration:
    """REGISTER, answer the 401, return both answers; the retry uses cseq + 1."""
    password = password if password is not None else DEFAULT_USERS.get(user, "pw")
    call_id = call_id or unique("reg") + "@test"
    contacts = list(contacts) if contacts is not None else [
        f"<sip:{user}@{HOST}:{client.local_port};transport={client.transport_name.lower()}>"
    ]
    first = await client.request(register_request(
        client, port, user=user, to_user=to_user, contacts=contacts, expires=expires,
        call_id=call_id, cseq=cseq, extra=extra))
    assert first.status == 401, first.to_bytes()
    auth = answer_challenge(first, user=user, password=password, algorithm=algorithm,
                            uri=f"sip:{HOST}:{port}")
    final = await client.request(register_request(
        client, port, user=user, to_user=to_user, contacts=contacts, expires=expires,
        call_id=call_id, cseq=cseq + 1, authorization=auth, extra=extra))
    return Registration(first, final, call_id, cseq + 1)


def contact_expires(resp: Response) -> dict[str, int]:
    """Contact URI -> expires param of a REGISTER 200."""
    out: dict[str, int] = {}
    for value in resp.headers.getall("Contact"):
        for part in re.findall(r"<([^>]*)>([^,]*)", value):
            m = re.search(r";\s*expires=(\d+)", part[1])
            out[part[0]] = int(m.group(1)) if m else -1
    return out


# --------------------------------------------------------------------------- HTTP


async def http_get(files: SwitchFiles, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=files.http, timeout=TIMEOUT) as client:
        return await client.get(path)


async def http_post(files: SwitchFiles, path: str, json: Any = None,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=files.http, timeout=TIMEOUT) as client:
        return await client.post(path, json=json, headers=headers)


def metric(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted((labels or {}).items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted(p for p in (m.group(2) or "").split(",") if p))
        if got == want:
            return float(m.group(3))
    return 0.0


async def metrics(files: SwitchFiles) -> str:
    r = await http_get(files, "/metrics")
    assert r.status_code == 200
    return r.text


async def wait_for(cond: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll an async or sync condition until truthy, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(what or "condition not met")
        await asyncio.sleep(0.05)
