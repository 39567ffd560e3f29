"""SIP messages: parse, lazily parsed views, serialize (RFC 3261 §7, §18, §20, §25).

Parsing splits the start line and header lines and keeps raw header values; the
structured views (`from_`, `to`, `vias`, `cseq`...) parse on first access and
cache the result until the headers change.  Anything malformed raises `SipError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from itertools import repeat
from typing import Any, NamedTuple

from .errors import SipError
from .uri import (
    TOKEN_CHARS,
    URI,
    NameAddr,
    Via,
    parse_name_addr,
    parse_uri,
    parse_via,
    split_top,
)

__all__ = [
    "KEEPALIVE",
    "MAX_HEADERS",
    "MAX_MESSAGE_SIZE",
    "MAX_VIAS",
    "REASONS",
    "CSeq",
    "Headers",
    "KeepAlive",
    "Peer",
    "Request",
    "Response",
    "StreamParser",
    "canonical_name",
    "make_response",
    "parse_message",
    "response_destination",
    "stamp_via",
]

MAX_MESSAGE_SIZE = 65535
MAX_HEADERS = 256
MAX_VIAS = 70

# Canonical spellings; compact forms per RFC 3261 §7.3.3 and the extensions that define them.
_CANONICAL = (
    "Accept Accept-Contact Accept-Encoding Accept-Language Accept-Resource-Priority Alert-Info "
    "Allow Allow-Events Answer-Mode Authentication-Info Authorization Call-ID Call-Info Contact "
    "Content-Disposition Content-Encoding Content-ID Content-Language Content-Length "
    "Content-Type CSeq Date Diversion Error-Info Event Expires Feature-Caps Flow-Timer From "
    "Geolocation History-Info Identity Identity-Info In-Reply-To Join Max-Breadth Max-Forwards "
    "MIME-Version Min-Expires Min-SE Organization P-Asserted-Identity P-Charging-Vector "
    "P-Early-Media P-Preferred-Identity Path Priority Privacy Proxy-Authenticate "
    "Proxy-Authorization Proxy-Require RAck Reason Record-Route Recv-Info Refer-Sub Refer-To "
    "Referred-By Reject-Contact Remote-Party-ID Replaces Reply-To Request-Disposition Require "
    "Resource-Priority Retry-After Route RSeq Security-Client Security-Server Security-Verify "
    "Server Service-Route Session-Expires Session-ID SIP-ETag SIP-If-Match Subject "
    "Subscription-State Supported Target-Dialog Timestamp To Unsupported User-Agent Via "
    "Warning WWW-Authenticate"
).split()
_COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via",  # RFC 3261 §7.3.3
    "o": "Event", "u": "Allow-Events",  # RFC 3265 §7.2
    "r": "Refer-To",  # RFC 3515 §2.1
    "b": "Referred-By",  # RFC 3892 §3
    "x": "Session-Expires",  # RFC 4028 §4
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition",  # RFC 3841
    "y": "Identity", "n": "Identity-Info",  # RFC 4474
}  # fmt: skip
# Any spelling seen on the wire -> (lookup key, canonical name).
_NAMES: dict[str, tuple[str, str]] = {}
for _name in _CANONICAL:
    _NAMES[_name] = _NAMES[_name.lower()] = _NAMES[_name.upper()] = (_name.lower(), _name)
for _short, _name in _COMPACT.items():
    _NAMES[_short] = _NAMES[_short.upper()] = (_name.lower(), _name)
del _name, _short

# Header fields whose value is not a comma-separated list (commas are data in them).
_NOT_LISTS = frozenset(
    "authorization proxy-authorization www-authenticate proxy-authenticate "
    "authentication-info date call-id cseq from to subject user-agent server organization "
    "timestamp content-type content-length max-forwards min-expires expires retry-after "
    "rack rseq event subscription-state refer-to referred-by identity identity-info "
    "mime-version priority session-expires min-se sip-etag sip-if-match replaces join "
    "target-dialog content-disposition in-reply-to".split()
)
_WS = " \t"


def _name_info(name: str) -> tuple[str, str]:
    info = _NAMES.get(name)
    if info is not None:
        return info
    stripped = name.strip(_WS)
    info = _NAMES.get(stripped.lower())
    if info is not None:
        return info
    if not stripped or not TOKEN_CHARS.issuperset(stripped):
        raise SipError(400, "Malformed header name")
    return stripped.lower(), stripped


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    return _name_info(name)[1]


def _uint(text: str, limit: int = 10) -> int | None:
    """A 1*DIGIT value (ASCII only, at most `limit` digits), else None."""
    text = text.strip(_WS)
    if 0 < len(text) <= limit and text.isascii() and text.isdigit():
        return int(text)
    return None


class Headers:
    """Ordered multi-map of header fields; names case-insensitive, compact forms expanded."""

    __slots__ = ("_items", "_lines", "_index", "_cache")

    def __init__(
        self,
        items: Iterable[tuple[str, str]] = (),
        _items: list[tuple[tuple[str, str], str]] | None = None,
        _lines: list[str] | None = None,
        _index: dict[str, list[str]] | None = None,
    ) -> None:
        # `_items`, `_lines` and `_index` are the parser's and make_response's way in (no
        # `__new__` shortcut: the module may be compiled with mypyc, which has none).
        # (name info, value): info is the (lookup key, canonical name) pair.
        self._items: list[tuple[tuple[str, str], str]] | None = (
            _items if _items is not None or _lines is not None
            else [(_name_info(name), value) for name, value in items])
        # Parsed messages keep their raw header lines and build `_items` on demand:
        # the hot path only needs the index.
        self._lines: list[str] | None = _lines
        self._index: dict[str, list[str]] | None = _index
        # Parsed views of the owning message; any mutation clears them.
        self._cache: dict[str, Any] = {}

    @classmethod
    def _from_parsed(
        cls, items: list[tuple[tuple[str, str], str]], index: dict[str, list[str]] | None
    ) -> Headers:
        return Headers((), items, None, index)

    def _all(self) -> list[tuple[tuple[str, str], str]]:
        items = self._items
        if items is None:
            items = []
            for line in self._lines or ():
                name, colon, value = line.partition(":")
                info = _NAMES.get(name)
                if info is None:
                    try:
                        info = _name_info(name)
                    except SipError:
                        continue  # skipped by the parser as well
                if colon:
                    items.append((info, value.strip(" \t")))
            self._items = items
            self._lines = None
        return items

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for (key, _), value in self._all():
                values = index.get(key)
                if values is None:
                    index[key] = [value]
                else:
                    values.append(value)
            self._index = index
        return index

    @staticmethod
    def _key(name: str) -> str:
        info = _NAMES.get(name)
        return info[0] if info is not None else _name_info(name)[0]

    def get(self, name: str, default: str | None = None) -> str | None:
        # _idx() and _key() inlined: the registrar reads several fields per REGISTER.
        info = _NAMES.get(name)
        key = info[0] if info is not None else _name_info(name)[0]
        values = (self._index or self._idx()).get(key)
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        """Every field value of `name`, one per header line, in order."""
        return list(self._idx().get(self._key(name), ()))

    def values(self, name: str) -> list[str]:
        """Every element of `name`: lines joined and split at top-level commas (§7.3.1)."""
        key = self._key(name)
        lines = self._idx().get(key, ())
        if key in _NOT_LISTS:
            return list(lines)
        out = []
        for line in lines:
            for part in split_top(line, ","):
                part = part.strip(_WS)
                if part:
                    out.append(part)
        return out

    def _replace_first(self, key: str, value: str) -> None:
        """Replace the value of the first `key` field in place (index and order kept).

        Parsed views in `_cache` are left for the caller to refresh: only it knows which
        of them depend on this field.
        """
        lines = self._lines
        if self._items is None and lines is not None:
            for i, line in enumerate(lines):
                name, colon, _ = line.partition(":")
                info = _NAMES.get(name)
                if info is None:
                    try:
                        info = _name_info(name)
                    except SipError:
                        continue
                if colon and info[0] == key:
                    lines[i] = f"{info[1]}: {value}"
                    break
        else:
            items = self._all()
            for i, (info, _old) in enumerate(items):
                if info[0] == key:
                    items[i] = (info, value)
                    break
        index = self._index
        if index is not None and index.get(key):
            index[key][0] = value

    def count(self, name: str) -> int:
        return len(self._idx().get(self._key(name), ()))

    def add(self, name: str, value: str) -> None:
        self._all().append((_name_info(name), value))
        self._index = None
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace every `name` field by one, where the first one was (else append)."""
        info = _name_info(name)
        out: list[tuple[tuple[str, str], str]] = []
        placed = False
        for item in self._all():
            if item[0][0] != info[0]:
                out.append(item)
            elif not placed:
                out.append((info, value))
                placed = True
        if not placed:
            out.append((info, value))
        self._items = out
        self._index = None
        self._cache.clear()

    def remove(self, name: str) -> None:
        key = self._key(name)
        self._items = [item for item in self._all() if item[0][0] != key]
        self._index = None
        self._cache.clear()

    def copy(self) -> Headers:
        return Headers._from_parsed(list(self._all()), None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._idx()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for (_, name), value in self._all():
            yield name, value

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


class CSeq(NamedTuple):
    seq: int
    method: str


_MISSING = object()
_new_tuple = tuple.__new__  # skips NamedTuple.__new__'s Python frame on the hot path


class _Message:
    """What requests and responses share: headers, body and the parsed views."""

    __slots__ = ("headers", "body", "version")

    headers: Headers
    body: bytes
    version: str

    def _one(self, key: str, name: str) -> str:
        values = (self.headers._index or self.headers._idx()).get(key)
        if not values:
            raise SipError(400, f"Missing {name} header")
        return values[0]

    @property
    def call_id(self) -> str:
        values = (self.headers._index or self.headers._idx()).get("call-id")
        if not values:
            raise SipError(400, "Missing Call-ID header")
        return values[0].strip(_WS)

    @property
    def cseq(self) -> CSeq:
        cache = self.headers._cache
        value = cache.get("cseq")
        if value is None:
            # RFC 3261 §20.16: CSeq = 1*DIGIT LWS Method, the number below 2**31.
            values = (self.headers._index or self.headers._idx()).get("cseq")
            if not values:
                raise SipError(400, "Missing CSeq header")
            text = values[0]
            number, _, method = text.partition(" ")
            method = method.lstrip(_WS)
            if not (method and 0 < len(number) <= 10 and number.isdigit() and number.isascii()):
                parts = text.split()
                if len(parts) != 2:
                    raise SipError(400, "Bad CSeq header")
                number, method = parts
                if not (0 < len(number) <= 10 and number.isdigit() and number.isascii()):
                    raise SipError(400, "Bad CSeq header")
            seq = int(number)
            if seq >= 2**31 or not TOKEN_CHARS.issuperset(method):
                raise SipError(400, "Bad CSeq header")
            value = cache["cseq"] = _new_tuple(CSeq, (seq, method))
        return value  # type: ignore[no-any-return]

    @property
    def vias(self) -> list[Via]:
        cache = self.headers._cache
        value = cache.get("vias")
        if value is None:
            lines = (self.headers._index or self.headers._idx()).get("via", ())
            try:
                if len(lines) == 1:
                    value = parse_via(lines[0])  # one line: no list to grow
                    if len(value) > MAX_VIAS:
                        raise SipError(400, "Too Many Via Values")
                else:
                    value = []
                    for line in lines:
                        value += parse_via(line)
                        if len(value) > MAX_VIAS:
                            raise SipError(400, "Too Many Via Values")
            except SipError as exc:
                raise SipError(400, f"{exc.reason} in Via header") from None
            cache["vias"] = value
        return value  # type: ignore[no-any-return]

    @property
    def top_via(self) -> Via:
        cache = self.headers._cache
        value = cache.get("top_via")
        if value is None:
            vias = cache.get("vias")
            if vias is None:
                lines = (self.headers._index or self.headers._idx()).get("via")
                if not lines:
                    raise SipError(400, "Missing Via header")
                parsed = _parse_header(parse_via, lines[0], "Via")
                value = parsed[0]
                if len(lines) == 1 and len(parsed) <= MAX_VIAS:
                    # That was every Via: `vias` (the validator's) need not parse it again.
                    cache["vias"] = parsed
            elif vias:
                value = vias[0]
            else:
                raise SipError(400, "Missing Via header")
            cache["top_via"] = value
        return value  # type: ignore[no-any-return]

    def _name_addr(self, key: str, name: str) -> NameAddr:
        cache = self.headers._cache
        value = cache.get(key)
        if value is None:
            values = (self.headers._index or self.headers._idx()).get(key)
            if not values:
                raise SipError(400, f"Missing {name} header")
            try:
                value = cache[key] = parse_name_addr(values[0])
            except SipError as exc:
                raise SipError(400, f"{exc.reason} in {name} header") from None
        return value  # type: ignore[no-any-return]

    @property
    def from_(self) -> NameAddr:
        return self._name_addr("from", "From")

    @property
    def to(self) -> NameAddr:
        return self._name_addr("to", "To")

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, ``None`` when absent (RFC 3261 §8.2 tolerates that as 70)."""
        values = (self.headers._index or self.headers._idx()).get("max-forwards")
        if not values:
            return None
        text = values[0]
        if len(text) <= 3 and text.isdigit() and text.isascii() and int(text) <= 255:
            return int(text)
        # RFC 3261 §20.22 / §25.1: 1*DIGIT; RFC 4475 §3.1.2.4 treats more than 255 as bad.
        value = _uint(text)
        if value is None or value > 255:
            raise SipError(400, "Bad Max-Forwards header")
        return value

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; ``[]`` for none and for ``Contact: *`` (see `contact_star`)."""
        cache = self.headers._cache
        value = cache.get("contacts")
        if value is None:
            value = []
            lines = (self.headers._index or self.headers._idx()).get("contact", ())
            if not (len(lines) == 1 and lines[0] == "*"):
                try:
                    for line in lines:
                        for part in split_top(line, ",") if "," in line else (line,):
                            value.append(parse_name_addr(part))
                except SipError as exc:
                    raise SipError(400, f"{exc.reason} in Contact header") from None
            cache["contacts"] = value
        return value  # type: ignore[no-any-return]

    @property
    def contact_star(self) -> bool:
        """``Contact: *`` (RFC 3261 §10.2.2: remove every binding)."""
        values = (self.headers._index or self.headers._idx()).get("contact", ())
        return len(values) == 1 and values[0] == "*"

    @property
    def expires(self) -> int | None:
        values = (self.headers._index or self.headers._idx()).get("expires")
        if not values:
            return None
        # RFC 3261 §20.19: delta-seconds; values beyond 2**32-1 are malformed.
        value = _uint(values[0])
        if value is None or value > 0xFFFFFFFF:
            raise SipError(400, "Bad Expires header")
        return value

    def _head_lines(self, start: str) -> bytes:
        body_len = str(len(self.body))
        out = [start]
        seen = False
        for (key, name), value in self.headers._all():
            if key == "content-length":
                if seen:
                    continue
                seen = True
                value = body_len
            out.append(f"{name}: {value}")
        if not seen:
            out.append(f"Content-Length: {body_len}")
        out.append("\r\n")
        return "\r\n".join(out).encode("utf-8", "surrogateescape")

    def _same(self, other: _Message) -> bool:
        # Content-Length is derived from the body (to_bytes recomputes it): not compared.
        mine = [item for item in self.headers._all() if item[0][0] != "content-length"]
        theirs = [item for item in other.headers._all() if item[0][0] != "content-length"]
        return (
            [(i[0][1], i[1]) for i in mine] == [(i[0][1], i[1]) for i in theirs]
            and self.body == other.body
            and self.version == other.version
        )


def _parse_header(parser: Any, text: str, name: str) -> Any:
    try:
        return parser(text)
    except SipError as exc:
        raise SipError(400, f"{exc.reason} in {name} header") from None


class Request(_Message):
    __slots__ = ("method", "_uri", "_uri_text")

    _uri: object  # a URI, or _MISSING until first parsed

    def __init__(
        self,
        method: str,
        uri: URI | str,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.method = method
        if isinstance(uri, str):  # the uri setter, inlined: the parser builds one per request
            self._uri_text = uri
            self._uri = _MISSING
        else:
            self._uri_text = str(uri)
            self._uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self.version = version

    @property
    def uri(self) -> URI:
        """The Request-URI, parsed on first access (``SipError(400)`` if malformed)."""
        if self._uri is _MISSING:
            self._uri = parse_uri(self._uri_text)
        return self._uri  # type: ignore[return-value]

    @uri.setter
    def uri(self, value: URI | str) -> None:
        if isinstance(value, str):
            self._uri_text = value
            self._uri = _MISSING
        else:
            self._uri_text = str(value)
            self._uri = value

    @property
    def uri_text(self) -> str:
        return self._uri_text

    def to_bytes(self) -> bytes:
        return self._head_lines(f"{self.method} {self._uri_text} {self.version}") + self.body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and self._uri_text == other._uri_text
            and self._same(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._uri_text}>"


class Response(_Message):
    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.status = status
        self.reason = default_reason(status) if reason is None else reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self.version = version

    def to_bytes(self) -> bytes:
        return self._head_lines(f"{self.version} {self.status} {self.reason}") + self.body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return self.status == other.status and self.reason == other.reason and self._same(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# ---------------------------------------------------------------------------
# Parsing


def _unfold(lines: list[str]) -> list[str]:
    # RFC 3261 §7.3.1: a line starting with SP/HT continues the previous one; the
    # CRLF and surrounding whitespace become one SP.
    out: list[str] = []
    for line in lines:
        if line and line[0] in _WS and out:
            out[-1] = out[-1].rstrip(_WS) + " " + line.lstrip(_WS)
        else:
            out.append(line)
    return out


def _answerable(request: Request) -> Request | None:
    """`request` if a response could be formed for it (RFC 3261 §8.2.6.2), else None."""
    index = request.headers._index or request.headers._idx()
    for key in ("from", "to", "call-id", "cseq"):
        if not index.get(key):
            return None
    try:
        request.top_via  # noqa: B018 - a response must be routable back
    except SipError:
        return None
    return request


def _parse_head(head: str, max_headers: int) -> tuple[Request | Response, SipError | None]:
    """Start line and header fields; a bad header line is skipped and reported."""
    lines = head.split("\r\n")
    if "\r\n " in head or "\r\n\t" in head:
        lines = _unfold(lines)
    if len(lines) > max_headers + 1:
        raise SipError(400, "Too Many Header Lines")
    index: dict[str, list[str]] = {}
    error: SipError | None = None
    names = _NAMES
    # map() runs str.partition in C: measurably cheaper than calling it per line here.
    for name, colon, value in map(str.partition, lines[1:], repeat(":")):
        info = names.get(name)
        if info is None or not colon:
            if not colon or not name:
                error = error or SipError(400, "Malformed header line")
                continue
            try:
                info = _name_info(name)
            except SipError as exc:
                error = error or exc
                continue
        key = info[0]
        if key in index:
            index[key].append(value.strip(" \t"))
        else:
            index[key] = [value.strip(" \t")]
    headers = Headers((), None, lines[1:], index)
    start = lines[0]
    msg: Request | Response
    if start.startswith("SIP/"):
        # RFC 3261 §7.2 Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        parts = start.split(" ", 2)
        code = parts[1] if len(parts) > 1 else ""
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] == "0":
            raise SipError(400, "Malformed Status-Line")
        if parts[0].upper() != "SIP/2.0":
            raise SipError(505, "Version Not Supported")
        msg = Response(int(code), parts[2] if len(parts) > 2 else "", headers, b"", parts[0])
        return msg, error
    # RFC 3261 §7.1 Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each.
    parts = start.split(" ")
    method = parts[0]
    if not method or not TOKEN_CHARS.issuperset(method):
        raise SipError(400, "Malformed Request-Line")
    if len(parts) == 3 and parts[1] and parts[2]:
        uri, version = parts[1], parts[2]
        if error is None and version != "SIP/2.0" and version.upper() != "SIP/2.0":
            error = SipError(505, "Version Not Supported")
    else:
        # Still build the request: with Via, From, To, Call-ID and CSeq it can be answered.
        uri, version = " ".join(parts[1:]), "SIP/2.0"
        error = SipError(400, "Malformed Request-Line")
    request = Request(method, uri, headers, b"", version)
    if error is None and len(index.get("via", ())) > MAX_VIAS:
        error = SipError(400, "Too Many Via Values")
    return request, error


def _fail(error: SipError, msg: Request | Response) -> SipError:
    if isinstance(msg, Request):
        error.message = _answerable(msg)
    return error


def _content_length(msg: Request | Response, required: bool) -> int | None:
    values = msg.headers._idx().get("content-length")
    if not values:
        if required:
            raise _fail(SipError(400, "Missing Content-Length"), msg)
        return None
    # RFC 3261 §20.14: one value, 1*DIGIT; two differing lengths would make framing ambiguous.
    if len(values) > 1 and any(v != values[0] for v in values):
        raise _fail(SipError(400, "Multiple Content-Length headers"), msg)
    text = values[0]
    if 0 < len(text) <= 6 and text.isdigit() and text.isascii():
        return int(text)
    length = _uint(text)
    if length is None:
        raise _fail(SipError(400, "Bad Content-Length"), msg)
    return length


def _too_large(data: bytes, max_size: int, max_headers: int) -> SipError:
    """513, answerable when the header section alone fits (RFC 3261 §18.1.1, §21.5.14)."""
    error = SipError(513, "Message Too Large")
    end = data.find(b"\r\n\r\n", 0, max_size)
    if end > 0:
        try:
            msg, fault = _parse_head(data[:end].decode("utf-8", "surrogateescape"), max_headers)
        except SipError:
            return error
        if fault is None and isinstance(msg, Request):
            error.message = _answerable(msg)
    return error


def parse_message(
    data: bytes,
    *,
    stream: bool = False,
    max_size: int = MAX_MESSAGE_SIZE,
    max_headers: int = MAX_HEADERS,
) -> Request | Response:
    """Parse one datagram (or, with `stream`, one complete framed stream message).

    RFC 3261 §18.3: in a datagram a missing Content-Length means the body runs to
    the end, a larger one is an error (400) and octets past it are dropped.
    """
    if len(data) > max_size:
        raise _too_large(data, max_size, max_headers)
    if data[:2] == b"\r\n":
        # RFC 3261 §7.5: ignore CRLFs before the start line.
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        body_start = end + 4
    elif data.endswith(b"\r\n") and not stream:
        end = body_start = len(data) - 2  # tolerate a datagram missing its empty line
    else:
        raise SipError(400, "Incomplete message")
    if end == 0:
        raise SipError(400, "Empty message")
    msg, error = _parse_head(data[:end].decode("utf-8", "surrogateescape"), max_headers)
    if error is not None:
        raise _fail(error, msg)
    length = _content_length(msg, stream)
    if length is None:
        msg.body = data[body_start:]
    else:
        if len(data) - body_start < length:
            raise _fail(SipError(400, "Content-Length larger than body"), msg)
        msg.body = data[body_start : body_start + length]
    return msg


class KeepAlive:
    """A CRLF keep-alive ping on a stream (RFC 5626 §3.5.1): answer it with one CRLF."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "KEEPALIVE"


KEEPALIVE = KeepAlive()


class StreamParser:
    """Frames SIP messages on a TCP/TLS byte stream by Content-Length (RFC 3261 §18.3).

    Call `feed` with received bytes, then `next_message` until it returns ``None``.
    After a `SipError` the stream is unusable: close the connection.
    """

    __slots__ = ("_buf", "_scan", "_pending", "_error", "max_size", "max_headers")

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE, max_headers: int = MAX_HEADERS):
        self._buf = bytearray()
        self._scan = 0  # where the search for the empty line resumes
        self._pending: tuple[Request | Response, int, int] | None = None
        self._error: SipError | None = None
        self.max_size = max_size
        self.max_headers = max_headers

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_message(self) -> Request | Response | KeepAlive | None:
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except SipError as exc:
            self._error = exc
            raise

    def _next(self) -> Request | Response | KeepAlive | None:
        buf = self._buf
        if self._pending is None:
            while buf[:2] == b"\r\n":
                # RFC 5626 §3.5.1 ping is CRLFCRLF; RFC 3261 §7.5 other CRLFs are ignored.
                if buf[:4] == b"\r\n\r\n":
                    del buf[:4]
                    self._scan = 0
                    return KEEPALIVE
                if len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                    return None
                del buf[:2]
            end = buf.find(b"\r\n\r\n", max(0, self._scan - 3))
            if end < 0:
                if len(buf) > self.max_size:
                    raise SipError(513, "Message Too Large")
                self._scan = len(buf)
                return None
            if end + 4 > self.max_size:
                raise SipError(513, "Message Too Large")
            head = bytes(buf[:end]).decode("utf-8", "surrogateescape")
            msg, error = _parse_head(head, self.max_headers)
            if error is not None:
                raise _fail(error, msg)
            length = _content_length(msg, True)
            assert length is not None
            total = end + 4 + length
            if total > self.max_size:
                raise _fail(SipError(513, "Message Too Large"), msg)
            self._pending = (msg, end + 4, total)
        msg, body_start, total = self._pending
        if len(buf) < total:
            return None
        msg.body = bytes(buf[body_start:total])
        del buf[:total]
        self._pending = None
        self._scan = 0
        return msg


# ---------------------------------------------------------------------------
# Responses and routing them back

# RFC 3261 §21 and the extensions that registered further codes.
REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief",
    424: "Bad Location Information", 428: "Use Identity Header",
    429: "Provide Referrer Identity", 430: "Flow Failed", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}  # fmt: skip
_CLASS_REASONS = {
    1: "Trying", 2: "OK", 3: "Redirection", 4: "Bad Request", 5: "Server Internal Error",
    6: "Global Failure",
}  # fmt: skip


def default_reason(status: int) -> str:
    reason = REASONS.get(status)
    if reason is None:
        # RFC 3261 §8.1.3.2: an unknown code is treated as the x00 of its class.
        reason = _CLASS_REASONS.get(status // 100, "Unknown")
    return reason


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to `request` per RFC 3261 §8.2.6; never raises for a partial request."""
    index = request.headers._index or request.headers._idx()
    # RFC 3261 §8.2.6.2: Via (all, in order), From, Call-ID, CSeq copied; To copied and
    # tagged unless the request already had a To tag. (Unrolled: two responses are built
    # per authenticated registration.)
    get = index.get
    items = [(_VIA, value) for value in get("via", ())]
    values = get("from")
    if values:
        items.append((_FROM, values[0]))
    values = get("to")
    if values:
        value = values[0]
        if to_tag is not None and status > 100:
            try:
                tagged = request.to.tag is not None
            except SipError:
                tagged = True  # cannot tell; do not risk a second tag
            if not tagged:
                value = f"{value};tag={to_tag}"
        items.append((_TO, value))
    values = get("call-id")
    if values:
        items.append((_CALL_ID, values[0]))
    values = get("cseq")
    if values:
        items.append((_CSEQ, values[0]))
    if status == 100:
        # RFC 3261 §8.2.6.1: a 100 (Trying) copies Timestamp.
        for value in get("timestamp", ()):
            items.append((_NAMES["timestamp"], value))
    names = _NAMES
    for name, value in headers:
        items.append((names.get(name) or _name_info(name), value))
    return Response(status, default_reason(status) if reason is None else reason,
                    Headers((), items), body, "SIP/2.0")


_VIA, _FROM, _TO, _CALL_ID, _CSEQ = (_NAMES[k] for k in ("via", "from", "to", "call-id", "cseq"))


def stamp_via(request: Request, host: str, port: int) -> None:
    """Record where the request came from in its top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
    via = request.top_via
    params = via.params
    wants_rport = "rport" in params and params["rport"] is None
    if not wants_rport and _same_host(via.host, host):
        return
    new = Via(via.transport, via.host, via.port, dict(params))
    # RFC 3581 §4: with an empty rport, received is added even when it equals sent-by.
    new.params["received"] = host
    if wants_rport:
        new.params["rport"] = str(port)
    headers = request.headers
    line = headers._idx()["via"][0]
    rest = split_top(line, ",")[1:] if "," in line else ()
    headers._replace_first("via", ",".join([str(new), *rest]) if rest else str(new))
    # Only the Via views change; From/To/CSeq... parsed by the validator stay cached.
    cache = headers._cache
    vias = cache.get("vias")
    if vias:
        cache["vias"] = [new, *vias[1:]]
    cache["top_via"] = new


def _same_host(a: str, b: str) -> bool:
    if a == b:
        return True
    if ":" in a and ":" in b:
        try:
            return ipaddress.ip_address(a) == ipaddress.ip_address(b.strip("[]"))
        except ValueError:
            return False
    return a.lower() == b.lower()


class Peer(NamedTuple):
    """Where a message came from or goes to; `transport` is udp, tcp, tls or ws."""

    transport: str
    host: str
    port: int


_RELIABLE = frozenset({"TCP", "TLS", "WS", "WSS", "SCTP", "TLS-SCTP"})


def response_destination(top_via: Via, source: Peer) -> Peer:
    """Where to send a response (RFC 3261 §18.2.2, RFC 3581 §4)."""
    if top_via.transport in _RELIABLE:
        # RFC 3261 §18.2.2: on a reliable transport the response goes back over the
        # connection the request arrived on (the adapter opens a new one if it closed).
        return source
    # maddr (RFC 3261 §18.2.2 multicast) is deliberately ignored: sending to an address
    # named in the message, not the packet source, is a reflection vector.
    host = top_via.received or top_via.host
    port = top_via.rport
    if port is None:
        port = top_via.port or 5060
    return _new_tuple(Peer, ("udp", host.strip("[]"), port))
