"""SIP message layer throughput: ``python benchmarks/bench_parser.py [seconds-per-case]``.

Prints messages/s and µs/message on one core for the hot paths of the switch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softswitch.sip.message import make_response, parse_message  # noqa: E402
from softswitch.sip.validate import check_request  # noqa: E402

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:150\r\n"
    b"a=rtcp:49173 IN IP4 192.0.2.101\r\n"
    b"a=ssrc:2914387734 cname:a1b2c3d4e5f60718@pbx.example.com\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:2001@pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Example" <sip:1001@pbx.example.com>;tag=1928301774\r\n'
    b"To: <sip:2001@pbx.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.101\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:1001@192.0.2.101:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: Example Phone 5.2.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

REGISTER = (
    b"REGISTER sip:pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:1001@pbx.example.com>;tag=a73kszlfl\r\n"
    b"To: <sip:1001@pbx.example.com>\r\n"
    b"Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.101\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:1001@192.0.2.101:5060;transport=udp>;expires=3600\r\n"
    b'Authorization: Digest username="1001", realm="pbx.example.com", '
    b'nonce="8f1a2b3c4d5e6f708192a3b4c5d6e7f8.1700000000", uri="sip:pbx.example.com", '
    b'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
    b"qop=auth, nc=00000001\r\n"
    b"User-Agent: Example Phone 5.2.1\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n\r\n"
)

ALLOWED = frozenset(
    "INVITE ACK CANCEL BYE OPTIONS REGISTER INFO PRACK SUBSCRIBE NOTIFY UPDATE MESSAGE "
    "REFER".split()
)
SUPPORTED = frozenset({"replaces", "timer", "100rel", "path", "outbound"})


def invite_parse() -> None:
    parse_message(INVITE)


def invite_full() -> None:
    request = parse_message(INVITE)
    check_request(request, allowed=ALLOWED, supported=SUPPORTED)  # type: ignore[arg-type]
    request.call_id  # noqa: B018
    request.cseq  # noqa: B018
    request.top_via  # noqa: B018
    request.from_.tag  # noqa: B018


def register_full() -> None:
    request = parse_message(REGISTER)
    check_request(request, allowed=ALLOWED, supported=SUPPORTED)  # type: ignore[arg-type]
    request.contacts  # noqa: B018
    request.expires  # noqa: B018


_RESPONSE = make_response(
    parse_message(INVITE),  # type: ignore[arg-type]
    200,
    to_tag="as7f6g5h",
    headers=[("Contact", "<sip:2001@192.0.2.10:5060>"), ("Content-Type", "application/sdp")],
    body=SDP,
)


def response_to_bytes() -> None:
    _RESPONSE.to_bytes()


def bench(name: str, fn: Callable[[], None], seconds: float) -> None:
    for _ in range(2000):  # warm up
        fn()
    n = 0
    batch = 2000
    start = time.process_time()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
    print(f"{name:<48} {n / elapsed:>10,.0f} msg/s {elapsed / n * 1e6:>7.2f} µs/msg")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(f"INVITE {len(INVITE)} bytes, REGISTER {len(REGISTER)} bytes; CPU time per message")
    bench("INVITE parse_message", invite_parse, seconds)
    bench("INVITE parse + check_request + views", invite_full, seconds)
    bench("REGISTER parse + check_request + contacts", register_full, seconds)
    bench("200 OK (with SDP) to_bytes", response_to_bytes, seconds)


if __name__ == "__main__":
    main()
