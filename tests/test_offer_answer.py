"""RFC 3264 offer/answer: the answer matrix, offers, reading answers, re-offers and hold."""

from __future__ import annotations

import pytest

from softswitch.offer_answer import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Capabilities,
    Negotiated,
    accept_answer,
    answer_direction,
    answer_offer,
    make_offer,
)
from softswitch.sdp import (
    Codec,
    SdpError,
    SessionDescription,
    is_hold,
    make_origin,
    next_origin,
    parse_sdp,
    set_direction,
)

US = "203.0.113.5"
ORIGIN = make_origin(US, "4242")


def offer(formats: str, *attrs: str, conn: str = "192.0.2.10", extra_media: tuple[str, ...] = (),
          proto: str = "RTP/AVP", port: int = 4000) -> SessionDescription:
    lines = ["v=0", "o=alice 1 1 IN IP4 192.0.2.10", "s=-", f"c=IN IP4 {conn}", "t=0 0",
             f"m=audio {port} {proto} {formats}", *attrs, *extra_media]
    return parse_sdp(("\r\n".join(lines) + "\r\n").encode())


def answer(desc: SessionDescription, **kw: object) -> tuple[SessionDescription, Negotiated]:
    result = answer_offer(desc, address=US, port=30000, origin=ORIGIN, **kw)  # type: ignore[arg-type]
    assert result is not None
    return result


TE96 = ("a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-16")


@pytest.mark.parametrize(("formats", "attrs", "codec", "dtmf", "m_line", "rtpmaps"), [
    # PCMU only, no telephone-event
    ("0", (), PCMU, None, "m=audio 30000 RTP/AVP 0", ["0 PCMU/8000"]),
    # PCMA only, with telephone-event at the offerer's dynamic payload type
    ("8 96", TE96, PCMA, Codec(96, "telephone-event", 8000, None, "0-16"),
     "m=audio 30000 RTP/AVP 8 96", ["8 PCMA/8000", "96 telephone-event/8000"]),
    # both: the offerer's preference wins (PCMA first here)
    ("8 0 96", TE96, PCMA, Codec(96, "telephone-event", 8000, None, "0-16"),
     "m=audio 30000 RTP/AVP 8 96", ["8 PCMA/8000", "96 telephone-event/8000"]),
    ("0 8", (), PCMU, None, "m=audio 30000 RTP/AVP 0", ["0 PCMU/8000"]),
    # unknown codecs before ours are skipped; G.729 (18) is not ours
    ("18 97 8", ("a=rtpmap:97 opus/48000/2",), PCMA, None, "m=audio 30000 RTP/AVP 8",
     ["8 PCMA/8000"]),
    # PCMU offered under a dynamic payload type: the offerer's type is kept (RFC 3264 §6.1)
    ("100 101", ("a=rtpmap:100 pcmu/8000", "a=rtpmap:101 telephone-event/8000"),
     Codec(100, "pcmu", 8000), Codec(101, "telephone-event", 8000, None, "0-15"),
     "m=audio 30000 RTP/AVP 100 101", ["100 pcmu/8000", "101 telephone-event/8000"]),
])
def test_answer_matrix(formats: str, attrs: tuple[str, ...], codec: Codec, dtmf: Codec | None,
                       m_line: str, rtpmaps: list[str]) -> None:
    ans, neg = answer(offer(formats, *attrs))
    assert neg == Negotiated(0, codec, dtmf, "sendrecv", "192.0.2.10", 4000, None)
    text = ans.to_text()
    assert m_line + "\r\n" in text
    assert [v for k, v in ans.media[0].attributes if k == "rtpmap"] == rtpmaps
    assert "c=IN IP4 203.0.113.5\r\n" in text
    assert text.startswith("v=0\r\no=- 4242 1 IN IP4 203.0.113.5\r\ns=-\r\n")
    assert ans.media[0].attribute("ptime") == "20"
    assert ans.media[0].direction == "sendrecv"
    assert parse_sdp(ans.to_bytes()).to_text() == text


def test_answer_exactly() -> None:
    ans, _ = answer(offer("0 8 96", *TE96, "a=ptime:30"))
    assert ans.to_bytes() == (
        b"v=0\r\no=- 4242 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\n")


@pytest.mark.parametrize(("fmtp", "answered"), [
    (None, "0-15"),  # RFC 4733 §2.4.1 default
    ("0-15", "0-15"),
    ("0-16", "0-16"),
    ("0-11,16,32-40", "0-11,16"),
    ("32-40", None),  # nothing in common: no telephone-event in the answer
    ("garbage", None),
])
def test_telephone_event_ranges_intersect(fmtp: str | None, answered: str | None) -> None:
    attrs = ["a=rtpmap:101 telephone-event/8000"] + ([f"a=fmtp:101 {fmtp}"] if fmtp else [])
    ans, neg = answer(offer("0 101", *attrs))
    if answered is None:
        assert neg.telephone_event is None
        assert ans.media[0].formats == ["0"]
    else:
        assert neg.telephone_event == Codec(101, "telephone-event", 8000, None, answered)
        assert ("fmtp", f"101 {answered}") in ans.media[0].attributes


def test_telephone_event_at_another_rate_is_not_ours() -> None:
    _, neg = answer(offer("0 97", "a=rtpmap:97 telephone-event/48000"))
    assert neg.telephone_event is None


def test_without_dtmf_capability() -> None:
    _, neg = answer(offer("0 96", *TE96), capabilities=Capabilities(telephone_event=None))
    assert neg.telephone_event is None


@pytest.mark.parametrize("desc", [
    offer("18 9", "a=rtpmap:18 G729/8000"),  # no codec of ours
    offer("96", *TE96),  # telephone-event alone is no voice codec
    offer("0", proto="RTP/SAVP"),  # SRTP is not ours
    offer("0", port=0),  # the only stream disabled
    parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
              b"m=video 4000 RTP/AVP 0\r\n"),  # PCMU on a video stream
    parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
])
def test_no_match_is_none(desc: SessionDescription) -> None:
    assert answer_offer(desc, address=US, port=30000, origin=ORIGIN) is None


def test_same_m_lines_in_order_others_rejected() -> None:
    desc = offer("8", extra_media=("m=video 5000 RTP/AVP 31", "a=rtpmap:31 H261/90000",
                                   "m=audio 6000 RTP/AVP 0", "m=audio 0 RTP/AVP 0"))
    ans, neg = answer(desc)
    assert neg.stream == 0
    assert [(m.kind, m.port, m.formats) for m in ans.media] == [
        ("audio", 30000, ["8"]), ("video", 0, ["31"]), ("audio", 0, ["0"]),
        ("audio", 0, ["0"])]
    assert ans.to_text().endswith("m=video 0 RTP/AVP 31\r\nm=audio 0 RTP/AVP 0\r\n"
                                  "m=audio 0 RTP/AVP 0\r\n")


def test_first_usable_stream_is_taken() -> None:
    desc = offer("18", extra_media=("m=audio 6000 RTP/AVP 0", "c=IN IP4 192.0.2.99"))
    ans, neg = answer(desc)
    assert [m.port for m in ans.media] == [0, 30000]
    assert (neg.stream, neg.remote_address, neg.remote_port) == (1, "192.0.2.99", 6000)


@pytest.mark.parametrize(("offered", "conn", "ours", "wanted"), [
    ("a=sendrecv", "192.0.2.10", "sendrecv", "sendrecv"),
    ("a=sendonly", "192.0.2.10", "recvonly", "sendrecv"),  # RFC 3264 §6.1: held by peer
    ("a=recvonly", "192.0.2.10", "sendonly", "sendrecv"),
    ("a=inactive", "192.0.2.10", "inactive", "sendrecv"),
    ("a=sendrecv", "0.0.0.0", "recvonly", "sendrecv"),  # RFC 2543 hold
    ("a=sendrecv", "192.0.2.10", "sendonly", "sendonly"),  # we hold the peer
    ("a=sendonly", "192.0.2.10", "inactive", "sendonly"),
    ("a=recvonly", "192.0.2.10", "inactive", "recvonly"),
])
def test_answer_direction(offered: str, conn: str, ours: str, wanted: str) -> None:
    ans, neg = answer(offer("0", offered, conn=conn), direction=wanted)
    assert neg.direction == ours
    assert ans.media[0].direction == ours


def test_answer_direction_table() -> None:
    assert [answer_direction(d) for d in ("sendrecv", "sendonly", "recvonly", "inactive")] == [
        "sendrecv", "recvonly", "sendonly", "inactive"]


def test_hold_and_resume_round() -> None:
    # The peer holds (sendonly), we answer recvonly; it resumes (sendrecv), we answer sendrecv.
    held = offer("0", "a=sendonly")
    assert is_hold(held)
    ans, neg = answer(held)
    assert neg.direction == "recvonly" and not is_hold(ans)
    resumed = offer("0", "a=sendrecv")
    assert not is_hold(resumed)
    ans2, neg2 = answer(resumed)
    assert neg2.direction == "sendrecv"
    # Our own answers under one origin: the version moves with the change (RFC 3264 §8).
    second = next_origin(ans, ans2)
    assert second.origin.version == ans.origin.version + 1
    assert next_origin(second, second).origin.version == second.origin.version


def test_make_offer_exactly() -> None:
    desc = make_offer(address=US, port=30000, origin=ORIGIN)
    assert desc.to_bytes() == (
        b"v=0\r\no=- 4242 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
        b"a=sendrecv\r\n")
    only_pcma = make_offer(address=US, port=30000, origin=ORIGIN, direction="sendonly",
                           capabilities=Capabilities(codecs=(PCMA,), telephone_event=None))
    assert only_pcma.media[0].formats == ["8"] and is_hold(only_pcma)


def test_our_offer_answered_by_ourselves() -> None:
    ours = make_offer(address=US, port=30000, origin=ORIGIN)
    ans, neg = answer_offer(ours, address="192.0.2.7", port=8000,
                            origin=make_origin("192.0.2.7", "1"))  # type: ignore[misc]
    assert neg.codec == PCMU and neg.telephone_event == TELEPHONE_EVENT
    back = accept_answer(ours, ans)
    assert back == Negotiated(0, PCMU, TELEPHONE_EVENT, "sendrecv", "192.0.2.7", 8000, 20.0)


def test_accept_answer_reads_codec_direction_and_rejections() -> None:
    ours = make_offer(address=US, port=30000, origin=ORIGIN)
    theirs = parse_sdp(b"v=0\r\no=bob 9 9 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\n"
                       b"t=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=recvonly\r\n")
    neg = accept_answer(ours, theirs)
    assert neg == Negotiated(0, PCMA, None, "sendonly", "192.0.2.20", 7000, None)
    theirs.media[0].port = 0
    assert accept_answer(ours, theirs) is None
    theirs.media[0].port = 7000
    theirs.media[0].formats = ["18"]
    assert accept_answer(ours, theirs) is None  # nothing we offered
    held = set_direction(ours, "sendonly")
    theirs.media[0].formats = ["0"]
    assert accept_answer(held, set_direction(theirs, "recvonly")).direction == "sendonly"  # type: ignore[union-attr]


def test_accept_answer_with_other_m_line_count_is_malformed() -> None:
    ours = make_offer(address=US, port=30000, origin=ORIGIN)
    theirs = offer("0", extra_media=("m=video 0 RTP/AVP 31",))
    with pytest.raises(SdpError):
        accept_answer(ours, theirs)
