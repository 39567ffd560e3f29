"""RFC 4566 SDP: parse, serialize byte for byte, helpers (direction, hold, anchoring, o=).

Nothing but SdpError escapes the parser, whatever the bytes (hypothesis).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softswitch.offer_answer import answer_offer
from softswitch.sdp import (
    Codec,
    Connection,
    SdpError,
    anchor,
    effective_direction,
    is_hold,
    make_origin,
    next_origin,
    parse_sdp,
    set_direction,
)


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# RFC 4566 §5 example, in the order the RFC writes lines.
RFC4566_EXAMPLE = sdp(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "c=IN IP4 224.2.17.12/127",
    "t=2873397496 2873404696",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
)

# A typical phone offer: session c=, two m-lines, one with media-level c=, unknown lines.
PHONE_OFFER = sdp(
    "v=0",
    "o=- 3 4 IN IP4 192.0.2.10",
    "s=pjmedia",
    "c=IN IP4 192.0.2.10",
    "b=AS:84",
    "t=0 0",
    "x=unknown-session-line",
    "a=X-nat:0",
    "m=audio 4000 RTP/AVP 8 0 96",
    "c=IN IP4 192.0.2.11",
    "b=TIAS:64000",
    "a=rtcp:4001 IN IP4 192.0.2.11",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-16",
    "a=ptime:20",
    "a=sendrecv",
    "m=video 0 RTP/AVP 31",
)


def test_rfc4566_example_round_trips() -> None:
    desc = parse_sdp(RFC4566_EXAMPLE)
    assert desc.origin.username == "jdoe"
    assert desc.origin.version == 2890842807
    assert desc.name == "SDP Seminar"
    assert desc.connection == Connection("224.2.17.12/127")
    assert desc.connection.host == "224.2.17.12"
    assert desc.times == ["2873397496 2873404696"]
    assert desc.direction == "recvonly"
    assert [m.kind for m in desc.media] == ["audio", "video"]
    assert desc.media[1].codecs() == [Codec(99, "h263-1998", 90000)]
    assert desc.to_bytes() == RFC4566_EXAMPLE


def test_phone_offer_round_trips_and_reads() -> None:
    desc = parse_sdp(PHONE_OFFER)
    assert desc.to_bytes() == PHONE_OFFER
    audio = desc.media[0]
    assert (audio.port, audio.proto, audio.formats) == (4000, "RTP/AVP", ["8", "0", "96"])
    assert audio.connection == Connection("192.0.2.11")
    assert desc.connection_for(0) == Connection("192.0.2.11")
    assert desc.connection_for(1) == Connection("192.0.2.10")
    assert audio.codecs() == [
        Codec(8, "PCMA", 8000), Codec(0, "PCMU", 8000),
        Codec(96, "telephone-event", 8000, None, "0-16")]
    assert audio.ptime == 20.0
    assert audio.direction == "sendrecv"
    assert audio.attribute("rtcp") == "4001 IN IP4 192.0.2.11"
    assert audio.lines == [("b", "TIAS:64000")]
    assert ("x", "unknown-session-line") in desc.lines
    assert desc.media[1].rejected


def test_bare_lf_and_missing_t_are_tolerated() -> None:
    desc = parse_sdp(b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nm=audio 1 RTP/AVP 0\n")
    assert desc.times == ["0 0"]
    assert desc.to_bytes() == sdp("v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1",
                                  "t=0 0", "m=audio 1 RTP/AVP 0")


def test_static_payload_types_need_no_rtpmap_and_dynamic_ones_do() -> None:
    desc = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0",
                         "m=audio 5 RTP/AVP 0 8 18 101 97", "a=rtpmap:97 opus/48000/2"))
    assert desc.media[0].codecs() == [
        Codec(0, "PCMU", 8000), Codec(8, "PCMA", 8000), Codec(18, "G729", 8000),
        Codec(97, "opus", 48000, 2)]  # 101 has no rtpmap: left out


def test_port_count_and_non_rtp_formats() -> None:
    text = sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=video 49170/2 RTP/AVP 31",
               "m=application 9 TCP/BFCP *")
    desc = parse_sdp(text)
    assert desc.media[0].port_count == 2
    assert desc.media[1].formats == ["*"] and desc.media[1].codecs() == []
    assert desc.to_bytes() == text


@pytest.mark.parametrize("text", [
    b"",
    b"o=- 1 1 IN IP4 h\r\n",  # no v=
    b"v=1\r\no=- 1 1 IN IP4 h\r\n",  # unknown version
    b"v=0\r\ns=-\r\n",  # no o=
    b"v=0\r\no=- 1 IN IP4 h\r\n",  # o= short a field
    b"v=0\r\no=- 1 x IN IP4 h\r\n",  # o= version not a number
    b"v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n",  # two o=
    b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n",  # c= short
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",  # port out of range
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",  # port not a number
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5\r\n",  # m= short
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",  # no rate
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n",  # pt > 127
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\na=ptime:abc\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\ns=late\r\n",  # s= in media
    b"v=0\r\no=- 1 1 IN IP4 h\r\nnot a line\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\na=\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\ns=a\rb\r\n",
])
def test_malformed_is_sdp_error(text: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(text)


FUZZ = settings(max_examples=int(os.environ.get("SDP_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=list(HealthCheck))


def _exercise(data: bytes) -> None:
    try:
        desc = parse_sdp(data)
    except SdpError:
        return
    # Whatever parses serializes, parses again to the same thing, and feeds every helper.
    again = parse_sdp(desc.to_bytes())
    assert again.to_bytes() == desc.to_bytes()
    for i, media in enumerate(desc.media):
        media.codecs()
        _ = media.ptime
        effective_direction(desc, i)
    is_hold(desc)
    anchor(desc, "192.0.2.1", [1000] * len(desc.media)).to_bytes()
    answer_offer(desc, address="192.0.2.1", port=1000, origin=make_origin("192.0.2.1", "1"))


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _exercise(b"v=0\r\no=- 1 1 IN IP4 h\r\n" + data)
    _exercise(data)


_LINE = st.tuples(
    st.sampled_from("vosictmabkxz"),
    st.one_of(
        st.sampled_from(["0", "- 1 1 IN IP4 h", "IN IP4 0.0.0.0", "audio 0 RTP/AVP 0 8 101",
                         "audio 9 RTP/AVP 96", "rtpmap:96 telephone-event/8000",
                         "rtpmap:0 PCMU/8000/1", "fmtp:101 0-15,300", "ptime:30", "sendonly",
                         "inactive", "0 0", "rtpmap:x", "ptime:", "audio 65535/0 RTP/AVP"]),
        st.text(max_size=20),
    ),
)


@FUZZ
@given(st.lists(_LINE, max_size=14))
def test_fuzz_line_soup(lines: list[tuple[str, str]]) -> None:
    text = "v=0\r\n" + "".join(f"{k}={v}\r\n" for k, v in lines)
    _exercise(text.encode("utf-8", "surrogatepass"))


# -- helpers -------------------------------------------------------------------------------


def _audio(*extra: str, conn: str = "192.0.2.10", session: tuple[str, ...] = ()) -> bytes:
    return sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", f"c=IN IP4 {conn}", "t=0 0", *session,
               "m=audio 4000 RTP/AVP 0", *extra)


@pytest.mark.parametrize(("text", "direction", "hold"), [
    (_audio(), "sendrecv", False),
    (_audio("a=sendrecv"), "sendrecv", False),
    (_audio("a=sendonly"), "sendonly", True),
    (_audio("a=inactive"), "inactive", True),
    (_audio("a=recvonly"), "recvonly", False),
    (_audio(session=("a=sendonly",)), "sendonly", True),  # session level default
    (_audio("a=sendrecv", session=("a=inactive",)), "sendrecv", False),  # media level wins
    (_audio(conn="0.0.0.0"), "sendonly", True),  # RFC 2543 hold
    (_audio("a=recvonly", conn="0.0.0.0"), "inactive", True),
    (_audio("a=inactive", conn="0.0.0.0"), "inactive", True),
])
def test_direction_and_hold(text: bytes, direction: str, hold: bool) -> None:
    desc = parse_sdp(text)
    assert effective_direction(desc, 0) == direction
    assert is_hold(desc) is hold


def test_hold_ignores_rejected_streams_and_needs_an_active_one() -> None:
    desc = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 10.0.0.1", "t=0 0",
                         "m=audio 4000 RTP/AVP 0", "a=sendonly", "m=audio 0 RTP/AVP 0"))
    assert is_hold(desc)
    desc.media[0].port = 0
    assert not is_hold(desc)


def test_set_direction_holds_and_resumes() -> None:
    desc = parse_sdp(PHONE_OFFER)
    held = set_direction(desc, "sendonly")
    assert is_hold(held)
    assert held.media[0].attributes[-1] == ("sendonly", None)
    assert held.media[1].direction is None  # rejected stream untouched
    assert not is_hold(set_direction(held, "sendrecv"))
    assert desc.to_bytes() == PHONE_OFFER  # the input was copied, not changed
    with pytest.raises(ValueError):
        set_direction(desc, "sideways")


def test_anchor_rewrites_connection_and_ports() -> None:
    anchored = anchor(parse_sdp(PHONE_OFFER), "203.0.113.5", [30000, 30002])
    assert anchored.connection == Connection("203.0.113.5")
    assert anchored.media[0].connection is None
    assert anchored.media[0].port == 30000
    assert anchored.media[1].port == 0  # rejected stays rejected
    text = anchored.to_text()
    # only o= still names the peer: next_origin() puts ours there
    assert [line for line in text.split("\r\n") if "192.0.2.1" in line] == [
        "o=- 3 4 IN IP4 192.0.2.10"]
    assert anchored.media[0].attribute("rtcp") is None  # it pointed at the peer
    assert "m=audio 30000 RTP/AVP 8 0 96\r\n" in text
    with pytest.raises(ValueError):
        anchor(anchored, "203.0.113.5", [1])


def test_anchor_keeps_rfc2543_hold_as_direction() -> None:
    anchored = anchor(parse_sdp(_audio(conn="0.0.0.0")), "203.0.113.5", [30000])
    assert anchored.connection == Connection("203.0.113.5")
    assert anchored.media[0].direction == "sendonly"
    assert is_hold(anchored)
    ipv6 = anchor(parse_sdp(_audio()), "2001:db8::5", [30000])
    assert str(ipv6.connection) == "IN IP6 2001:db8::5"


def test_origin_version_goes_up_only_on_change() -> None:
    # RFC 3264 §8: the same session id, version + 1 when anything changed, else the same.
    first = parse_sdp(PHONE_OFFER)
    first.origin = make_origin("192.0.2.1", "77")
    assert first.origin.version == 1
    same = parse_sdp(first.to_bytes())
    same.origin = make_origin("192.0.2.1", "999")  # whatever the builder put there
    unchanged = next_origin(first, same)
    assert (unchanged.origin.session_id, unchanged.origin.version) == ("77", 1)
    changed = next_origin(first, set_direction(same, "sendonly"))
    assert (changed.origin.session_id, changed.origin.version) == ("77", 2)
    again = next_origin(changed, set_direction(changed, "sendrecv"))
    assert again.origin.version == 3
    assert next_origin(None, same).origin.session_id == "999"


def test_make_origin_defaults() -> None:
    origin = make_origin("2001:db8::1")
    assert origin.addrtype == "IP6" and origin.version == 1
    assert origin.session_id.isdigit()
    assert str(make_origin("192.0.2.1", "5")) == "- 5 1 IN IP4 192.0.2.1"
