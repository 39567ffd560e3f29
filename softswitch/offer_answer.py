"""RFC 3264 offer/answer over `softswitch.sdp`: answer an offer, make an offer, read an answer.

The switch anchors media: each call leg has one RTP session on the switch, so of an offer it
accepts the first RTP/AVP audio stream it has a codec for and rejects every other stream
(port 0, RFC 3264 §6). Codec choice follows the offerer's order of preference; the answer
lists that one codec (plus telephone-event when both sides have it), with the offerer's payload
types, so the offerer knows at once what will be sent (RFC 3264 §6.1 allows either). `None`
means nothing could be accepted: answer 488 (Not Acceptable Here, RFC 3261 §21.4.26).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from softswitch.sdp import (
    Codec,
    Connection,
    Media,
    Origin,
    SdpError,
    SessionDescription,
    effective_direction,
)

__all__ = [
    "DEFAULT_CAPABILITIES",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Capabilities",
    "Negotiated",
    "accept_answer",
    "answer_direction",
    "answer_offer",
    "make_offer",
]

PCMU = Codec(0, "PCMU", 8000)  # RFC 3551 §4.5.14, static payload type 0
PCMA = Codec(8, "PCMA", 8000)  # RFC 3551 §4.5.14, static payload type 8
TELEPHONE_EVENT = Codec(101, "telephone-event", 8000, fmtp="0-16")  # RFC 4733 §7.1.1
_DEFAULT_EVENTS = "0-15"  # RFC 4733 §2.4.1: what an rtpmap without fmtp means
_RTP_AVP = "RTP/AVP"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the switch can do on a leg; `codecs` in our order of preference (for offers)."""

    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event: Codec | None = TELEPHONE_EVENT
    ptime: int | None = 20  # the packet time we send (RFC 4566 §6 a=ptime)


DEFAULT_CAPABILITIES = Capabilities()


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome for the one stream the switch carries.

    `codec` and `telephone_event` carry the payload types to send with; `direction` is ours
    (``sendonly``: we may send but the peer will not); `remote_*` is where to send RTP.
    """

    stream: int
    codec: Codec
    telephone_event: Codec | None
    direction: str
    remote_address: str
    remote_port: int
    ptime: float | None  # the peer's a=ptime, if any


_HALVES = {"sendrecv": (True, True), "sendonly": (True, False),
           "recvonly": (False, True), "inactive": (False, False)}
_BY_HALVES = {v: k for k, v in _HALVES.items()}


def answer_direction(offered: str, wanted: str = "sendrecv") -> str:
    """Our direction given the peer's and what we want (RFC 3264 §6.1).

    The peer sending means we may receive, and the other way round; sendonly is answered
    recvonly, recvonly sendonly, inactive inactive, sendrecv with what we want.
    """
    peer_send, peer_recv = _HALVES[offered]
    our_send, our_recv = _HALVES[wanted]
    return _BY_HALVES[(our_send and peer_recv, our_recv and peer_send)]


def _events(fmtp: str | None) -> set[int] | None:
    """The event codes of a telephone-event fmtp such as ``0-15,66,70`` (RFC 4733 §7.1.1)."""
    out: set[int] = set()
    for part in (fmtp or _DEFAULT_EVENTS).replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not (low.isascii() and low.isdigit() and len(low) <= 3):
            return None
        if not dash:
            high = low
        elif not (high.isascii() and high.isdigit() and len(high) <= 3):
            return None
        if int(low) > int(high) or int(high) > 255:
            return None
        out.update(range(int(low), int(high) + 1))
    return out


def _format_events(events: set[int]) -> str:
    ranges: list[str] = []
    ordered = sorted(events)
    start = prev = ordered[0]
    for code in ordered[1:] + [-2]:
        if code == prev + 1:
            prev = code
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = code
    return ",".join(ranges)


def _is_dtmf(codec: Codec) -> bool:
    return codec.name.lower() == "telephone-event"


def _match_dtmf(offered: list[Codec], ours: Codec | None) -> Codec | None:
    """The offered telephone-event, narrowed to the events both sides know."""
    if ours is None:
        return None
    for codec in offered:
        if _is_dtmf(codec) and codec.clock_rate == ours.clock_rate:
            theirs, mine = _events(codec.fmtp), _events(ours.fmtp)
            if theirs is None or mine is None:
                continue
            common = theirs & mine
            if common:
                return Codec(codec.payload_type, codec.name, codec.clock_rate, None,
                             _format_events(common))
    return None


def _pick(offered: list[Codec], caps: Capabilities) -> tuple[Codec, Codec | None] | None:
    for codec in offered:  # the offerer's order of preference
        if _is_dtmf(codec):
            continue
        for mine in caps.codecs:
            if codec.same_format(mine):
                # RFC 3264 §6.1: the answer uses the offerer's payload type for the format
                chosen = Codec(codec.payload_type, codec.name, codec.clock_rate, codec.channels,
                               mine.fmtp)
                return chosen, _match_dtmf(offered, caps.telephone_event)
    return None


def _connection(address: str) -> Connection:
    return Connection(address, "IN", "IP6" if ":" in address else "IP4")


def answer_offer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    origin: Origin,
    capabilities: Capabilities = DEFAULT_CAPABILITIES,
    direction: str = "sendrecv",
) -> tuple[SessionDescription, Negotiated] | None:
    """The answer to `offer` with our media at `address`:`port`, or None (answer 488).

    The answer has the offer's m-lines in the same order (RFC 3264 §6); every stream but the
    one accepted has port 0. `direction` is what we want (``sendonly`` to hold the peer).
    `origin` is ours as `next_origin` keeps it (RFC 3264 §8).
    """
    answer = SessionDescription(copy.copy(origin), "-", _connection(address), ["0 0"])
    chosen: Negotiated | None = None
    for i, media in enumerate(offer.media):
        out = Media(media.kind, 0, media.proto, list(media.formats))  # rejected unless...
        conn = offer.connection_for(i)
        if (chosen is None and media.kind == "audio" and not media.rejected
                and media.proto == _RTP_AVP and conn is not None):
            pick = _pick(media.codecs(), capabilities)
            if pick is not None:
                codec, dtmf = pick
                out.port = port
                out.set_codecs([codec] if dtmf is None else [codec, dtmf])
                if capabilities.ptime is not None:
                    out.attributes.append(("ptime", str(capabilities.ptime)))
                ours = answer_direction(effective_direction(offer, i), direction)
                out.direction = ours
                chosen = Negotiated(i, codec, dtmf, ours, conn.host, media.port, media.ptime)
        answer.media.append(out)
    return None if chosen is None else (answer, chosen)


def make_offer(
    *,
    address: str,
    port: int,
    origin: Origin,
    capabilities: Capabilities = DEFAULT_CAPABILITIES,
    direction: str = "sendrecv",
) -> SessionDescription:
    """An offer of one audio stream with every codec of `capabilities` (RFC 3264 §5)."""
    media = Media("audio", port, _RTP_AVP, [])
    codecs = list(capabilities.codecs)
    if capabilities.telephone_event is not None:
        codecs.append(capabilities.telephone_event)
    media.set_codecs(codecs)
    if capabilities.ptime is not None:
        media.attributes.append(("ptime", str(capabilities.ptime)))
    media.direction = direction
    return SessionDescription(copy.copy(origin), "-", _connection(address), ["0 0"],
                              media=[media])


def accept_answer(offer: SessionDescription,
                  answer: SessionDescription) -> Negotiated | None:
    """What the peer accepted of our `offer`; None when it accepted no audio stream.

    An answer whose m-lines do not pair with the offer's is malformed (RFC 3264 §6):
    `SdpError`. The codec is the first of the answer's that we offered (RFC 3264 §7).
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(f"answer has {len(answer.media)} m-lines, the offer {len(offer.media)}")
    for i, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ours.rejected or theirs.rejected or theirs.kind != "audio" or theirs.kind != ours.kind:
            continue
        conn = answer.connection_for(i)
        if conn is None:
            continue
        offered = ours.codecs()
        answered = theirs.codecs()
        codec = next((c for c in answered if not _is_dtmf(c)
                      and any(c.same_format(o) for o in offered)), None)
        if codec is None:
            continue
        dtmf = next((c for c in answered if _is_dtmf(c)
                     and any(_is_dtmf(o) for o in offered)), None)
        direction = answer_direction(effective_direction(answer, i),
                                     effective_direction(offer, i))
        return Negotiated(i, codec, dtmf, direction, conn.host, theirs.port, theirs.ptime)
    return None
