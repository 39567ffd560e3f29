"""SIP, SIPS and tel URIs, name-addr and Via values (RFC 3261 §19.1, §20.10, §20.42, §25.1).

Pure string work with str methods; every malformed input raises ``SipError(400)``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from .errors import SipError

__all__ = [
    "URI",
    "AbsoluteURI",
    "NameAddr",
    "SipURI",
    "TelURI",
    "Via",
    "escape",
    "format_host",
    "parse_hostport",
    "parse_name_addr",
    "parse_params",
    "parse_uri",
    "parse_via",
    "split_top",
    "unescape",
    "unquote",
]

# RFC 3261 §25.1 character classes.
_ALNUM = string.ascii_letters + string.digits
_UNRESERVED = _ALNUM + "-_.!~*'()"
TOKEN_CHARS = frozenset(_ALNUM + "-.!%*_+`'~")
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
# Accepted on input: the safe set plus "%" of an escape.
_USER_IN = _USER_SAFE | {"%"}
_PASSWORD_IN = _PASSWORD_SAFE | {"%"}
_PARAM_IN = _PARAM_SAFE | {"%"}
_HEADER_IN = _HEADER_SAFE | {"%"}
_URI_PARAM_TEXT = _PARAM_SAFE | {";", "="}
# "_" is not legal in a hostname but common in the field; tolerating it costs nothing.
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_IPV6_CHARS = frozenset(string.hexdigits + ":.")
_HEX = frozenset(string.hexdigits)
_SCHEME_CHARS = frozenset(_ALNUM + "+-.")
_TEL_CHARS = frozenset(string.digits + string.hexdigits + "*#+-.()")
# Values of generic-param: token / host / quoted-string (RFC 3261 §25.1 gen-value).
_GEN_VALUE_CHARS = TOKEN_CHARS | {"[", "]", ":"}
_WS = " \t\r\n"
_DISPLAY_CHARS = TOKEN_CHARS | {" ", "\t"}
_PARAM_TEXT = _GEN_VALUE_CHARS | {";", "="}
_TOKEN_PARAM_TEXT = TOKEN_CHARS | {";", "="}


# Fast paths: anchored patterns for the common shapes.  Anything they do not match goes
# through the general parser below, which accepts a superset and gives the same result.
_HOST_RE = r"([A-Za-z0-9\-_.]+|\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\])(?::([0-9]{1,5}))?"
_SIMPLE_SIP = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    + _HOST_RE
    + r"(?:;([^?%]+))?\Z"
)
_URI_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^<>\"\s]+\Z")
_SIMPLE_VIA = re.compile(r"SIP/2\.0/([A-Z]+) " + _HOST_RE + r"(?:;(.+))?\Z", re.S)
_SIMPLE_NAME_ADDR = re.compile(
    r'(?:"([^"\\\r\n]*)"[ \t]*|([A-Za-z0-9\-.!%*_+`\'~ \t]*?)[ \t]*)'
    r"<([A-Za-z][A-Za-z0-9+\-.]*:[^<>\"\s]+)>(?:[ \t]*;(.*))?\Z",
    re.S,
)


def _bad(what: str) -> SipError:
    return SipError(400, f"Malformed {what}")


# ---------------------------------------------------------------------------
# Escaping (RFC 3261 §19.1.2) and quoting (§25.1 quoted-string)


def unescape(text: str) -> str:
    """Decode %HH escapes (UTF-8; undecodable bytes survive as surrogates)."""
    if "%" not in text:
        return text
    pieces = text.split("%")
    out = bytearray(pieces[0].encode("utf-8", "surrogateescape"))
    for piece in pieces[1:]:
        if len(piece) < 2 or piece[0] not in _HEX or piece[1] not in _HEX:
            raise _bad("%-escape")
        out.append(int(piece[:2], 16))
        out += piece[2:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """Escape every character outside `safe` as %HH of its UTF-8 bytes."""
    if safe.issuperset(text):
        return text
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        out.append(char if char in safe else f"%{byte:02X}")
    return "".join(out)


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string opening at `start`; return (content, index after it)."""
    end = text.find('"', start + 1)
    if end < 0:
        raise _bad("quoted string")
    if "\\" not in text[start + 1 : end]:
        return text[start + 1 : end], end + 1
    # RFC 3261 §25.1 quoted-pair: a backslash escapes any octet but CR and LF.
    out = []
    i = start + 1
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise _bad("quoted string")


def unquote(value: str) -> str:
    """The content of a quoted-string parameter value, else the value itself."""
    if len(value) >= 2 and value[0] == '"':
        content, end = _scan_quoted(value, 0)
        if end == len(value):
            return content
    return value


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside quoted strings and <...> (RFC 3261 §7.3.1)."""
    if sep not in text:
        return [text]
    if '"' not in text:
        parts = text.split(sep)
        if "<" not in text or all(p.count("<") == p.count(">") for p in parts):
            return parts
    parts = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            i = _scan_quoted(text, i)[1]
            continue
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
            if depth < 0:
                raise _bad("header value (unbalanced <>)")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if depth:
        raise _bad("header value (unbalanced <>)")
    parts.append(text[start:])
    return parts


# ---------------------------------------------------------------------------
# Hosts and parameters


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` with an IPv6 reference in brackets; host lower-case, unbracketed."""
    if text.startswith("["):
        close = text.find("]")
        host = text[1:close]
        if close < 0 or ":" not in host or not _IPV6_CHARS.issuperset(host):
            raise _bad("IPv6 reference")
        rest = text[close + 1 :]
        if rest and rest[0] != ":":
            raise _bad("host")
        port_text = rest[1:] if rest else None
    else:
        colon = text.find(":")
        if colon >= 0:
            host, port_text = text[:colon], text[colon + 1 :]
        else:
            host, port_text = text, None
        if not host or not _HOST_CHARS.issuperset(host):
            raise _bad("host")
    port = None
    if port_text is not None:
        if not (0 < len(port_text) <= 5 and port_text.isascii() and port_text.isdigit()):
            raise _bad("port")
        port = int(port_text)
        if port > 65535:
            raise _bad("port")
    return host.lower(), port


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_params(text: str) -> dict[str, str | None]:
    """``;``-separated generic-params after the first ``;`` (the leading one excluded).

    Names are lower-case; values keep their quotes so they serialize unchanged
    (`unquote` reads them).  RFC 3261 §7.3.1 allows LWS around ``;`` and ``=``.
    """
    if _TOKEN_PARAM_TEXT.issuperset(text):
        # Fastest path: names and values all tokens, no LWS, no quoted string.
        fast: dict[str, str | None] = {}
        for part in text.split(";"):
            name, eq, value = part.partition("=")
            if not name or (eq and (not value or "=" in value)):
                raise _bad("parameter")
            fast[name.lower()] = value if eq else None
        return fast
    if _PARAM_TEXT.issuperset(text):
        # Fast path: no LWS and no quoted string, so a plain split is exact.
        fast = {}
        for part in text.split(";"):
            name, eq, value = part.partition("=")
            if not name or not TOKEN_CHARS.issuperset(name):
                raise _bad("parameter")
            if eq:
                if not value or "=" in value:
                    raise _bad("parameter")
                fast[name.lower()] = value
            else:
                fast[name.lower()] = None
        return fast
    params: dict[str, str | None] = {}
    parts = split_top(text, ";") if '"' in text else text.split(";")
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip(_WS)
        if not name or not TOKEN_CHARS.issuperset(name):
            raise _bad("parameter")
        if eq:
            value = value.strip(_WS)
            if not value:
                raise _bad("parameter")
            if value[0] == '"':
                if _scan_quoted(value, 0)[1] != len(value):
                    raise _bad("parameter")
            elif not _GEN_VALUE_CHARS.issuperset(value):
                raise _bad("parameter")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    # A list, not a generator: join() over a list is ~30% faster for a handful of params.
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


# ---------------------------------------------------------------------------
# URIs


@dataclass(slots=True, init=False)
class SipURI:
    """sip: / sips: URI; `user`, params and headers hold unescaped text."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: dict[str, str | None]
    headers: dict[str, str]

    # Written out (init=False): a generated dataclass __init__ stays Python code even when
    # this module is compiled with mypyc (measured ~0.2-0.5 µs against ~0.06 µs).
    def __init__(
        self,
        scheme: str,
        user: str | None,
        password: str | None,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.headers = {} if headers is None else headers

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";" + escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, _PARAM_SAFE))
        if self.headers:
            out.append(
                "?"
                + "&".join(
                    escape(k, _HEADER_SAFE) + "=" + escape(v, _HEADER_SAFE)
                    for k, v in self.headers.items()
                )
            )
        return "".join(out)


@dataclass(slots=True)
class TelURI:
    """tel: URI (RFC 3966); `number` as written, visual separators kept."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        return "tel:" + self.number + _format_params(self.params)


@dataclass(slots=True)
class AbsoluteURI:
    """Any other scheme, kept opaque (RFC 3261 §8.2.2.1 answers 416 in a Request-URI)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


URI = SipURI | TelURI | AbsoluteURI


def _uri_params(text: str) -> dict[str, str | None]:
    if "%" not in text and _URI_PARAM_TEXT.issuperset(text):
        fast: dict[str, str | None] = {}
        for part in text.split(";"):
            name, eq, value = part.partition("=")
            if not name or (eq and (not value or "=" in value)):
                raise _bad("URI parameter")
            fast[name.lower()] = value if eq else None
        return fast
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not name or not _PARAM_IN.issuperset(name):
            raise _bad("URI parameter")
        if eq:
            if not value or not _PARAM_IN.issuperset(value):
                raise _bad("URI parameter")
            params[unescape(name).lower()] = unescape(value)
        else:
            params[unescape(name).lower()] = None
    return params


def _parse_sip(scheme: str, rest: str) -> SipURI:
    user = password = None
    # RFC 3261 §25.1: "@" can appear nowhere but after userinfo, which may hold ";" and "?".
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        colon = userinfo.find(":")
        if colon >= 0:
            password = userinfo[colon + 1 :]
            userinfo = userinfo[:colon]
            if not _PASSWORD_IN.issuperset(password):
                raise _bad("URI password")
            password = unescape(password)
        if not userinfo or not _USER_IN.issuperset(userinfo):
            raise _bad("URI user")
        user = unescape(userinfo)
    headers: dict[str, str] = {}
    qmark = rest.find("?")
    if qmark >= 0:
        for part in rest[qmark + 1 :].split("&"):
            name, eq, value = part.partition("=")
            if not name or not eq or not _HEADER_IN.issuperset(part.replace("=", "", 1)):
                raise _bad("URI header")
            headers[unescape(name)] = unescape(value)
        rest = rest[:qmark]
    params: dict[str, str | None] = {}
    semi = rest.find(";")
    if semi >= 0:
        params = _uri_params(rest[semi + 1 :])
        rest = rest[:semi]
    host, port = parse_hostport(rest)
    return SipURI(scheme, user, password, host, port, params, headers)


# Parses remembered by their text (a pure function of it), for the values a phone sends
# unchanged in every REGISTER: its AOR in To, its Contact, their URIs. Each hit is a fresh
# object with fresh dicts, so nothing parsed is ever shared. Values with a tag (From, To in
# a dialog) are unique per call and not remembered. Bounded: cleared when full.
_MEMO_MAX = 32768  # two values per phone (To, Contact) for a 10,000-phone site, and then some
_URI_MEMO: dict[str, SipURI] = {}
_NAME_ADDR_MEMO: dict[str, tuple[str | None, str, dict[str, str | None]]] = {}


def parse_uri(text: str) -> URI:
    """Parse a URI as it appears in a Request-URI or inside ``<...>``."""
    known = _URI_MEMO.get(text)
    if known is not None:
        return SipURI(known.scheme, known.user, known.password, known.host, known.port,
                      dict(known.params), dict(known.headers))
    uri = _parse_uri(text)
    if type(uri) is SipURI:
        if len(_URI_MEMO) >= _MEMO_MAX:
            _URI_MEMO.clear()
        _URI_MEMO[text] = SipURI(uri.scheme, uri.user, uri.password, uri.host, uri.port,
                                 dict(uri.params), dict(uri.headers))
    return uri


def _parse_uri(text: str) -> URI:
    m = _SIMPLE_SIP.match(text)
    if m is not None:
        scheme, user, password, host, port, params = m.groups()
        if host[0] == "[":
            host = host[1:-1]
        portn = int(port) if port is not None else None
        if portn is None or 0 < portn <= 65535:
            return SipURI(
                scheme,
                user,
                password,
                host.lower(),
                portn,
                _uri_params(params) if params else {},
                {},
            )
    colon = text.find(":")
    if colon <= 0:
        raise _bad("URI")
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number or not _TEL_CHARS.issuperset(number):
            raise _bad("tel URI")
        return TelURI(number, parse_params(params) if params else {})
    if not scheme[0].isalpha() or not _SCHEME_CHARS.issuperset(scheme):
        raise _bad("URI scheme")
    if not rest or not rest.isprintable() or " " in rest:
        raise _bad("URI")
    return AbsoluteURI(scheme, rest)


# ---------------------------------------------------------------------------
# name-addr / addr-spec (From, To, Contact, Route, Refer-To, ...)


class NameAddr:
    """``display <uri>;params``; `display` is unquoted, params keep their raw values.

    The URI is parsed on first access of `uri` (a malformed one raises `SipError(400)`
    then); `parse_name_addr` checks its shape only, as most users need just the tag.
    """

    __slots__ = ("display", "params", "_uri", "_uri_text")

    display: str | None
    params: dict[str, str | None]
    _uri: URI | None
    _uri_text: str

    def __init__(
        self, display: str | None, uri: URI | str, params: dict[str, str | None] | None = None
    ) -> None:
        self.display = display
        if isinstance(uri, str):  # the uri setter, inlined: one per From/To/Contact parsed
            self._uri = None
            self._uri_text = uri
        else:
            self._uri = uri
            self._uri_text = str(uri)
        self.params = {} if params is None else params

    @property
    def uri(self) -> URI:
        uri = self._uri
        if uri is None:
            uri = self._uri = parse_uri(self._uri_text)
        return uri

    @uri.setter
    def uri(self, value: URI | str) -> None:
        if isinstance(value, str):
            self._uri = None
            self._uri_text = value
        else:
            self._uri = value
            self._uri_text = str(value)

    @property
    def uri_text(self) -> str:
        return self._uri_text

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return (
            self.display == other.display
            and self.params == other.params
            and (self._uri_text == other._uri_text or self.uri == other.uri)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NameAddr({self.display!r}, {self._uri_text!r}, {self.params!r})"

    def __str__(self) -> str:
        head = quote(self.display) + " " if self.display else ""
        return f"{head}<{self._uri_text}>{_format_params(self.params)}"


def _check_uri_shape(text: str) -> str:
    if _URI_SHAPE.match(text) is None:
        raise _bad("URI")
    return text


def parse_name_addr(text: str) -> NameAddr:
    """Parse one name-addr or addr-spec with its header parameters (RFC 3261 §20.10)."""
    # A From (or a To inside a dialog) is a phone's usual value plus a tag unique to the call:
    # when the tag is the last parameter and a plain token, parse (and remember) the rest.
    cut = text.rfind(";tag=")
    if cut > 0:
        tag = text[cut + 5 :]
        if tag and TOKEN_CHARS.issuperset(tag):
            na = _parse_name_addr(text[:cut])
            if "tag" not in na.params:
                na.params["tag"] = tag
                return na
    return _parse_name_addr(text)


def _parse_name_addr(text: str) -> NameAddr:
    known = _NAME_ADDR_MEMO.get(text)
    if known is not None:
        return NameAddr(known[0], known[1], dict(known[2]))
    raw = text
    text = text.strip(_WS)
    m = _SIMPLE_NAME_ADDR.match(text)
    if m is not None:
        quoted, token, uri_text, rest_params = m.groups()
        display = quoted if quoted is not None else token
        params = parse_params(rest_params) if rest_params is not None else {}
        if "tag" not in params:
            if len(_NAME_ADDR_MEMO) >= _MEMO_MAX:
                _NAME_ADDR_MEMO.clear()
            _NAME_ADDR_MEMO[raw] = (display or None, uri_text, dict(params))
        return NameAddr(display or None, uri_text, params)
    return _general_name_addr(text)


def _general_name_addr(text: str) -> NameAddr:
    display = None
    if text.startswith('"'):
        display, end = _scan_quoted(text, 0)
        lt = end
        while lt < len(text) and text[lt] in _WS:
            lt += 1
        if lt >= len(text) or text[lt] != "<":
            raise _bad("name-addr")
    else:
        lt = text.find("<")
        if lt > 0:
            display = text[:lt].strip(_WS)
            # RFC 3261 §25.1 display-name = *(token LWS) / quoted-string
            if not _DISPLAY_CHARS.issuperset(display):
                raise _bad("display name")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise _bad("name-addr (missing >)")
        uri = _check_uri_shape(text[lt + 1 : gt])
        rest = text[gt + 1 :].lstrip(_WS)
    else:
        if ">" in text or '"' in text:
            raise _bad("addr-spec")
        semi = text.find(";")
        spec = text if semi < 0 else text[:semi]
        spec = spec.rstrip(_WS)
        # RFC 3261 §20.10: an addr-spec holding ",", "?" or ";" would be ambiguous.
        if "?" in spec or "," in spec:
            raise _bad("addr-spec (URI with ? or , needs <>)")
        uri = _check_uri_shape(spec)
        rest = text[semi:] if semi >= 0 else ""
    params: dict[str, str | None] = {}
    if rest:
        if rest[0] != ";":
            raise _bad("name-addr")
        params = parse_params(rest[1:])
    return NameAddr(display or None, uri, params)


# ---------------------------------------------------------------------------
# Via (RFC 3261 §20.42, §18.2.1; RFC 3581)


@dataclass(slots=True, init=False)
class Via:
    """One via-parm; `transport` upper-case (``UDP``, ``TCP``, ``TLS``, ``WS``, ``WSS``...)."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:  # written out: see SipURI
        self.transport = transport
        self.host = host
        self.port = port
        self.params = {} if params is None else params

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value; ``None`` when absent *or* empty (``"rport" in params`` tells)."""
        value = self.params.get("rport")
        if value and value.isascii() and value.isdigit() and len(value) <= 5:
            return int(value)
        return None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"SIP/2.0/{self.transport} {format_host(self.host)}{port}"
            f"{_format_params(self.params)}"
        )


def _parse_one_via(text: str) -> Via:
    text = text.strip(_WS)
    m = _SIMPLE_VIA.match(text)
    if m is not None:
        transport, host, port, params = m.groups()
        if host[0] == "[":
            host = host[1:-1]
        portn = int(port) if port is not None else None
        if portn is None or 0 < portn <= 65535:
            return Via(transport, host.lower(), portn, parse_params(params) if params else {})
    return _general_via(text)


def _general_via(text: str) -> Via:
    if text.startswith("SIP/2.0/"):
        rest = text[8:]
    else:
        # RFC 3261 §25.1 sent-protocol allows LWS around each SLASH.
        pieces = text.split("/", 2)
        if (
            len(pieces) != 3
            or pieces[0].strip(_WS).upper() != "SIP"
            or pieces[1].strip(_WS) != "2.0"
        ):
            raise _bad("Via")
        rest = pieces[2].lstrip(_WS)
    fields = rest.split(None, 1)
    if len(fields) != 2:
        raise _bad("Via")
    transport, rest = fields
    if not TOKEN_CHARS.issuperset(transport):
        raise _bad("Via transport")
    semi = rest.find(";")
    sent_by = rest if semi < 0 else rest[:semi]
    # sent-by = host [ COLON port ] and COLON = SWS ":" SWS
    sent_by = sent_by.strip(_WS)
    if " " in sent_by or "\t" in sent_by:
        close = sent_by.find("]") + 1
        host_part, colon, port_part = sent_by[close:].partition(":")
        sent_by = sent_by[:close] + host_part.strip(_WS) + colon + port_part.strip(_WS)
    host, port = parse_hostport(sent_by)
    params = parse_params(rest[semi + 1 :]) if semi >= 0 else {}
    return Via(transport.upper(), host, port, params)


def parse_via(value: str) -> list[Via]:
    """All via-parms of one Via header value (several may be comma-separated)."""
    if "," not in value:
        return [_parse_one_via(value)]
    return [_parse_one_via(part) for part in split_top(value, ",")]
