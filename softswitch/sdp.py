"""SDP (RFC 4566): parse, serialize, and the session-description helpers the B2BUA needs.

`parse_sdp(data)` returns a `SessionDescription`; anything malformed raises `SdpError` and
nothing else. `to_bytes()` writes it back in the RFC 4566 §5 line order; lines this module does
not model (``i=``, ``u=``, ``b=``, ``k=``, unknown letters...) are kept and written back in
their place within that order, so a well-ordered description round-trips byte for byte
(``r=`` lines follow all ``t=`` lines: one time description is all SIP uses, RFC 3264 §5).

Offer/answer (RFC 3264) lives in `softswitch.offer_answer`; this module holds the model and the
stream-level helpers both sides share: effective direction, hold detection, media anchoring.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Codec",
    "Connection",
    "Media",
    "Origin",
    "SdpError",
    "SessionDescription",
    "anchor",
    "effective_direction",
    "is_hold",
    "make_origin",
    "next_origin",
    "parse_sdp",
    "set_direction",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")  # RFC 4566 §6
# RFC 3551 §6 Table 4: static audio payload types (name, clock rate) usable without rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 5: ("DVI4", 8000),
    6: ("DVI4", 16000), 7: ("LPC", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000),
    10: ("L16", 44100), 11: ("L16", 44100), 12: ("QCELP", 8000), 13: ("CN", 8000),
    14: ("MPA", 90000), 15: ("G728", 8000), 16: ("DVI4", 11025), 17: ("DVI4", 22050),
    18: ("G729", 8000),
}  # fmt: skip

# RFC 4566 §5: the order of lines in the session and in each media section. Extra lines are
# written back at the rank of their letter; unknown letters go just before the attributes.
_SESSION_RANK: dict[str, float] = {c: i for i, c in enumerate("vosiuepcbtrzka")}
_MEDIA_RANK: dict[str, float] = {c: i for i, c in enumerate("micbka")}
_UNKNOWN_SESSION = _SESSION_RANK["a"] - 0.5
_UNKNOWN_MEDIA = _MEDIA_RANK["a"] - 0.5
_HOLD_ADDRESS = "0.0.0.0"  # RFC 2543 hold, RFC 3264 §8.4
_PEER_ADDRESS_ATTRIBUTES = frozenset({
    "rtcp", "candidate", "remote-candidates", "end-of-candidates", "ice-ufrag", "ice-pwd",
    "ice-options", "ice-lite", "ice-mismatch"})


class SdpError(ValueError):
    """Malformed SDP: the only exception `parse_sdp` raises (answer 400 or 488 to it)."""


@dataclass(slots=True)
class Origin:
    """``o=`` (RFC 4566 §5.2); `version` is what RFC 3264 §8 increments on each change."""

    username: str
    session_id: str
    version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.version} {self.nettype} "
                f"{self.addrtype} {self.address}")


@dataclass(slots=True)
class Connection:
    """``c=`` (RFC 4566 §5.7); `address` as written, with any ``/ttl/count`` suffix."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Codec:
    """One RTP payload format: what ``a=rtpmap`` (RFC 4566 §6) and ``a=fmtp`` say of it."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None

    def same_format(self, other: Codec) -> bool:
        """Same encoding whatever the payload type (RFC 3264 §6.1 matches by rtpmap)."""
        return (self.name.lower() == other.name.lower() and self.clock_rate == other.clock_rate
                and (self.channels or 1) == (other.channels or 1))

    @property
    def rtpmap(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{tail}"


Attribute = tuple[str, str | None]  # a=name:value, or a=name (value None)


def _attr(attributes: list[Attribute], name: str) -> str | None:
    for key, value in attributes:
        if key == name:
            return value if value is not None else ""
    return None


def _direction_of(attributes: list[Attribute]) -> str | None:
    for key, value in attributes:
        if value is None and key in DIRECTIONS:
            return key
    return None


def _with_direction(attributes: list[Attribute], direction: str) -> list[Attribute]:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    out = [a for a in attributes if not (a[1] is None and a[0] in DIRECTIONS)]
    out.append((direction, None))
    return out


@dataclass(slots=True)
class Media:
    """One media description: ``m=`` and the lines under it (RFC 4566 §5.14)."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k=, unknown

    @property
    def rejected(self) -> bool:
        return self.port == 0  # RFC 3264 §6, §8.2

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, None when absent (see `effective_direction`)."""
        return _direction_of(self.attributes)

    @direction.setter
    def direction(self, value: str) -> None:
        self.attributes = _with_direction(self.attributes, value)

    def attribute(self, name: str) -> str | None:
        """The first ``a=name`` value ("" for a flag), None when absent."""
        return _attr(self.attributes, name)

    @property
    def ptime(self) -> float | None:
        value = self.attribute("ptime")
        return float(value) if value else None  # checked by the parser

    def codecs(self) -> list[Codec]:
        """The RTP payload formats in `formats` order; ones we cannot name are left out."""
        rtpmaps: dict[str, str] = {}
        fmtps: dict[str, str] = {}
        for key, value in self.attributes:
            if value is None:
                continue
            if key == "rtpmap" or key == "fmtp":
                fmt, _, rest = value.partition(" ")
                (rtpmaps if key == "rtpmap" else fmtps).setdefault(fmt, rest.strip())
        out = []
        for fmt in self.formats:
            if not (fmt.isascii() and fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127):
                continue
            pt = int(fmt)
            mapping = rtpmaps.get(fmt)
            if mapping is not None:
                name, rate, channels = _split_rtpmap(mapping)
            elif pt in STATIC_PAYLOAD_TYPES:
                name, rate = STATIC_PAYLOAD_TYPES[pt]
                channels = None
            else:
                continue  # RFC 4566 §6: a dynamic type without rtpmap names nothing
            out.append(Codec(pt, name, rate, channels, fmtps.get(fmt)))
        return out

    def set_codecs(self, codecs: Iterable[Codec]) -> None:
        """Replace formats, rtpmap and fmtp by `codecs` (other attributes kept in place)."""
        codecs = list(codecs)
        kept = [a for a in self.attributes if a[0] not in ("rtpmap", "fmtp")]
        head = []
        for codec in codecs:
            head.append(("rtpmap", codec.rtpmap))
            if codec.fmtp:
                head.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
        self.formats = [str(c.payload_type) for c in codecs]
        self.attributes = head + kept

    def _lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        formats = "".join(" " + f for f in self.formats)
        body: list[tuple[float, str]] = []
        if self.connection is not None:
            body.append((_MEDIA_RANK["c"], f"c={self.connection}"))
        for letter, text in self.lines:
            body.append((_MEDIA_RANK.get(letter, _UNKNOWN_MEDIA), f"{letter}={text}"))
        for name, value in self.attributes:
            body.append((_MEDIA_RANK["a"], f"a={name}" if value is None else f"a={name}:{value}"))
        body.sort(key=lambda item: item[0])
        return [f"m={self.kind} {port} {self.proto}{formats}"] + [line for _, line in body]


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5)."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= r= z= k= ...
    media: list[Media] = field(default_factory=list)

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute (RFC 4566 §6 default for every stream)."""
        return _direction_of(self.attributes)

    def attribute(self, name: str) -> str | None:
        return _attr(self.attributes, name)

    def connection_for(self, index: int) -> Connection | None:
        """The ``c=`` in force for stream `index`: media-level, else session-level (§5.7)."""
        return self.media[index].connection or self.connection

    def copy(self) -> SessionDescription:
        return copy.deepcopy(self)

    def to_text(self) -> str:
        head: list[tuple[float, str]] = [
            (0, "v=0"), (1, f"o={self.origin}"), (2, f"s={self.name}")]
        if self.connection is not None:
            head.append((_SESSION_RANK["c"], f"c={self.connection}"))
        for time in self.times or ["0 0"]:  # RFC 4566 §5: t= is mandatory
            head.append((_SESSION_RANK["t"], f"t={time}"))
        for letter, text in self.lines:
            head.append((_SESSION_RANK.get(letter, _UNKNOWN_SESSION), f"{letter}={text}"))
        for name, value in self.attributes:
            head.append((_SESSION_RANK["a"], f"a={name}" if value is None else f"a={name}:{value}"))
        head.sort(key=lambda item: item[0])
        lines = [line for _, line in head]
        for media in self.media:
            lines.extend(media._lines())
        return "\r\n".join(lines) + "\r\n"

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.to_text()


# ---------------------------------------------------------------------------
# Parsing


def _split_rtpmap(text: str) -> tuple[str, int, int | None]:
    """``name/rate[/channels]`` of an rtpmap (after the payload type); raises SdpError."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not parts[0] or any(c in parts[0] for c in " \t"):
        raise SdpError(f"bad rtpmap {text!r}")
    rate = _int(parts[1], "rtpmap clock rate", 1, 2**32 - 1)
    channels = _int(parts[2], "rtpmap channels", 1, 255) if len(parts) == 3 else None
    return parts[0], rate, channels


def _int(text: str, what: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not low <= int(text) <= high:
        raise SdpError(f"bad {what} {text!r}")
    return int(text)


def _fields(value: str, count: int, what: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise SdpError(f"bad {what} line {value!r}")
    return parts


def _connection(value: str) -> Connection:
    nettype, addrtype, address = _fields(value, 3, "c=")
    return Connection(address, nettype, addrtype)


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line {value!r}")
    kind, port_text, proto, *formats = parts
    port_text, slash, count_text = port_text.partition("/")
    port = _int(port_text, "media port", 0, 65535)
    count = _int(count_text, "port count", 1, 65535) if slash else None
    return Media(kind, port, proto, formats, count)


def _attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name or any(c in name for c in " \t"):
        raise SdpError(f"bad attribute {value!r}")
    if not colon:
        return name, None
    # RFC 4566 §6: check the attributes offer/answer reads, so it never trips on them later.
    if name == "rtpmap":
        pt, _, mapping = rest.partition(" ")
        _int(pt, "rtpmap payload type", 0, 127)
        _split_rtpmap(mapping.strip())
    elif name == "fmtp":
        if not rest.partition(" ")[0]:
            raise SdpError(f"bad fmtp {rest!r}")
    elif name == "ptime":
        try:
            ptime = float(rest)
        except ValueError:
            raise SdpError(f"bad ptime {rest!r}") from None
        if not 0 < ptime <= 10000:
            raise SdpError(f"bad ptime {rest!r}")
    return name, rest


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body; raises `SdpError` (only) when it is not RFC 4566 SDP."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    # RFC 4566 §5: lines end in CRLF, but parsers SHOULD accept a bare LF too.
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")  # RFC 4566 §5.1
    origin: Origin | None = None
    name: str | None = None
    session = SessionDescription(Origin("-", "0", 0, "0.0.0.0"), times=[])
    media: Media | None = None
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isascii() or not line[0].isalpha():
            raise SdpError(f"bad SDP line {line[:40]!r}")
        letter, value = line[0], line[2:]
        if "\r" in value or "\x00" in value:
            raise SdpError("control character in SDP line")
        if letter == "m":
            media = _media(value)
            session.media.append(media)
        elif letter == "a":
            (media.attributes if media else session.attributes).append(_attribute(value))
        elif letter == "c":
            target = media if media else session
            if target.connection is not None:
                raise SdpError("two c= lines in one section")
            target.connection = _connection(value)
        elif media is not None:
            if letter in "vost":
                raise SdpError(f"{letter}= inside a media section")
            media.lines.append((letter, value))
        elif letter == "o":
            if origin is not None:
                raise SdpError("two o= lines")
            user, sess_id, version, nettype, addrtype, address = _fields(value, 6, "o=")
            origin = Origin(user, sess_id, _int(version, "o= version", 0, 2**64 - 1),
                            address, nettype, addrtype)
        elif letter == "s":
            if name is not None:
                raise SdpError("two s= lines")
            name = value
        elif letter == "t":
            _fields(value, 2, "t=")
            session.times.append(value)
        elif letter == "v":
            raise SdpError("two v= lines")
        else:
            session.lines.append((letter, value))
    if origin is None:
        raise SdpError("missing o= line")  # RFC 4566 §5.2
    session.origin = origin
    session.name = name if name is not None else "-"
    if not session.times:
        session.times = ["0 0"]  # tolerated when absent (older phones); written back
    return session


# ---------------------------------------------------------------------------
# Stream helpers shared by offerer and answerer


def make_origin(address: str, session_id: str | None = None, username: str = "-") -> Origin:
    """A fresh ``o=`` for a session we originate (RFC 4566 §5.2: a unique session id)."""
    addrtype = "IP6" if ":" in address else "IP4"
    sess = session_id if session_id is not None else str(secrets.randbelow(2**62) + 1)
    return Origin(username, sess, 1, address, "IN", addrtype)


def next_origin(previous: SessionDescription | None,
                description: SessionDescription) -> SessionDescription:
    """`description` under the origin of the `previous` one we sent (RFC 3264 §8).

    The version goes up by one when anything but ``o=`` changed, and stays when the new
    description is the same (a re-INVITE that changes nothing must not look like a change).
    """
    out = description.copy()
    if previous is None:
        return out
    out.origin = copy.copy(previous.origin)
    if out.to_text() != previous.to_text():
        out.origin.version = previous.origin.version + 1
    return out


def effective_direction(sdp: SessionDescription, index: int) -> str:
    """Direction of stream `index` as its sender means it (RFC 4566 §6, RFC 3264 §8.4).

    Media-level attribute, else session-level, else sendrecv. A ``c=0.0.0.0`` (RFC 2543
    hold) means "do not send to me": it takes the receive half away.
    """
    direction = sdp.media[index].direction or sdp.direction or "sendrecv"
    conn = sdp.connection_for(index)
    if conn is not None and conn.host == _HOLD_ADDRESS:
        direction = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
    return direction


def is_hold(sdp: SessionDescription) -> bool:
    """True when the sender puts us on hold: no active audio stream it wants to receive.

    Hold is signalled with sendonly or inactive (RFC 3264 §8.4) or, RFC 2543 style, with
    ``c=0.0.0.0``; a description with an active audio stream in sendrecv or recvonly resumes.
    Streams with port 0 do not count; no active audio stream at all is not hold.
    """
    active = [i for i, m in enumerate(sdp.media) if m.kind == "audio" and not m.rejected]
    return bool(active) and all(
        effective_direction(sdp, i) in ("sendonly", "inactive") for i in active)


def set_direction(sdp: SessionDescription, direction: str,
                  streams: Sequence[int] | None = None) -> SessionDescription:
    """A copy with `direction` on the given streams (default: every active one)."""
    out = sdp.copy()
    out.attributes = [a for a in out.attributes if not (a[1] is None and a[0] in DIRECTIONS)]
    for i, media in enumerate(out.media):
        if (streams is None and not media.rejected) or (streams is not None and i in streams):
            media.direction = direction
        elif media.direction is None and sdp.direction is not None:
            media.direction = sdp.direction  # keep what the session level said for the rest
    return out


def anchor(sdp: SessionDescription, address: str, ports: Sequence[int]) -> SessionDescription:
    """A copy whose media goes through the switch: ``c=``/``m=`` rewritten (media anchoring).

    `ports` gives our port for each m-line, in order; 0 rejects (or keeps rejected) that
    stream. The session-level ``c=`` becomes `address` and media-level ones are dropped, and
    so are attributes naming the peer's addresses (``a=rtcp`` RFC 3605, ICE RFC 8839): our
    RTCP is on port + 1 (RFC 3550 §11). ``o=`` is left to `next_origin`. An
    RFC 2543 hold (``c=0.0.0.0``) would be lost by the rewrite, so it is carried over as the
    equivalent direction attribute (RFC 3264 §8.4).
    """
    if len(ports) != len(sdp.media):
        raise ValueError(f"{len(ports)} ports for {len(sdp.media)} m-lines")
    out = sdp.copy()
    for i, (media, port) in enumerate(zip(out.media, ports, strict=True)):
        direction = effective_direction(sdp, i)
        if direction != (media.direction or sdp.direction or "sendrecv"):
            media.direction = direction
        # Attributes naming the peer's transport addresses would bypass the anchor.
        media.attributes = [a for a in media.attributes if a[0] not in _PEER_ADDRESS_ATTRIBUTES]
        media.connection = None
        media.port = 0 if media.rejected else port
        media.port_count = None
    out.attributes = [a for a in out.attributes if a[0] not in _PEER_ADDRESS_ATTRIBUTES]
    out.connection = Connection(address, "IN", "IP6" if ":" in address else "IP4")
    return out
