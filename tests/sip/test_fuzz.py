"""Nothing but SipError escapes the message layer, whatever the bytes (RFC 3261 §18.3 robustness).

Hypothesis mutates valid messages and generates random ones; tests/vectors/corpus/ keeps the
inputs worth replaying (add any crash found here as a file there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softswitch.sip.errors import SipError
from softswitch.sip.message import (
    Peer,
    Request,
    Response,
    StreamParser,
    make_response,
    parse_message,
    response_destination,
    stamp_via,
)
from softswitch.sip.uri import (
    NameAddr,
    _general_name_addr,
    _general_via,
    _parse_sip,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from softswitch.sip.validate import KNOWN_METHODS, check_request

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
SEEDS = [p.read_bytes() for p in sorted((VECTORS / "torture").glob("*.sip"))]
CORPUS = sorted((VECTORS / "corpus").iterdir())
FUZZ = settings(
    max_examples=int(__import__("os").environ.get("SIP_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
ALLOWED = frozenset(KNOWN_METHODS)


def exercise(data: bytes) -> None:
    """Drive every entry point a received message reaches; only SipError may come out."""
    try:
        msg = parse_message(data)
    except SipError as exc:
        assert 400 <= exc.status <= 599
        if exc.message is not None:
            make_response(exc.message, exc.status, exc.reason, headers=exc.headers).to_bytes()
        return
    views(msg)
    again = parse_message(msg.to_bytes())
    assert again == msg
    if isinstance(msg, Request):
        try:
            check_request(msg, allowed=ALLOWED, supported=frozenset({"timer"}))
        except SipError as exc:
            if exc.message is not None:
                make_response(exc.message, exc.status, headers=exc.headers).to_bytes()
            return
        make_response(msg, 200, to_tag="t").to_bytes()
        stamp_via(msg, "198.51.100.1", 5999)
        assert parse_message(msg.to_bytes()).top_via.received in (None, "198.51.100.1")


def views(msg: Request | Response) -> None:
    for name in (
        "call_id",
        "cseq",
        "vias",
        "top_via",
        "from_",
        "to",
        "max_forwards",
        "contacts",
        "contact_star",
        "expires",
    ):
        try:
            getattr(msg, name)
        except SipError:
            pass
    for name in ("from_", "to"):
        try:
            getattr(msg, name).uri  # noqa: B018
        except SipError:
            pass
    try:
        for contact in msg.contacts:
            contact.uri  # noqa: B018
    except SipError:
        pass
    try:
        response_destination(msg.top_via, Peer("udp", "192.0.2.1", 5060))
    except SipError:
        pass
    if isinstance(msg, Request):
        try:
            msg.uri  # noqa: B018
        except SipError:
            pass
    for name in ("Contact", "Route", "Supported", "Allow", "Authorization"):
        try:
            msg.headers.values(name)
        except SipError:
            pass


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_replay(path: Path) -> None:
    data = path.read_bytes()
    exercise(data)
    parser = StreamParser()
    parser.feed(data)
    try:
        while parser.next_message() is not None:
            pass
    except SipError:
        pass


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup", "special"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
        else:
            token = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\r\n ",
                        b":",
                        b";",
                        b",",
                        b"<",
                        b">",
                        b'"',
                        b"\\",
                        b"%",
                        b"@",
                        b"[",
                        b"]",
                        b"=",
                        b"?",
                        b"\x00",
                        b"\xff",
                        b"\r\n\r\n",
                        b"SIP/2.0",
                        b"sip:",
                        b" ",
                    ]
                )
            )
            data[pos:pos] = token
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


LINE = st.text(
    alphabet=st.sampled_from(list("aZ09 \t:;,<>\"\\%@[]=?/.-+*!~'()_\x00é")), max_size=60
)


@FUZZ
@given(
    st.sampled_from(
        [
            "Via",
            "From",
            "To",
            "Contact",
            "CSeq",
            "Max-Forwards",
            "Expires",
            "Call-ID",
            "Content-Length",
            "Require",
            "v",
            "m",
            "i",
        ]
    ),
    LINE,
)
def test_random_header_values(name: str, value: str) -> None:
    base = SEEDS[[p.stem for p in sorted((VECTORS / "torture").glob("*.sip"))].index("lwsdisp")]
    exercise(base.replace(b"\r\n\r\n", f"\r\n{name}: {value}\r\n\r\n".encode(), 1))


def _parses(data: bytes) -> bool:
    try:
        parse_message(data)
    except SipError:
        return False
    return True


PARSEABLE = [seed for seed in SEEDS if _parses(seed)]


@FUZZ
@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.sampled_from(PARSEABLE))
def test_stream_random_chunking(cuts: list[int], seed: bytes) -> None:
    whole = parse_message(seed)
    data = whole.to_bytes() + b"\r\n\r\n" + whole.to_bytes()
    parser = StreamParser()
    got = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        parser.feed(data[pos : pos + step])
        pos += step
        i += 1
        while (item := parser.next_message()) is not None:
            got.append(item)
    assert [type(g).__name__ for g in got] == [
        type(whole).__name__,
        "KeepAlive",
        type(whole).__name__,
    ]
    assert got[0] == whole and got[2] == whole


URI_TEXT = st.text(
    alphabet=st.sampled_from(list("sipSIP:@;=?&%0123456789abcdefAF.-_[]!~*'()+$,/ ")), max_size=40
)


def outcome(fn: object, arg: str) -> object:
    try:
        return fn(arg)  # type: ignore[operator]
    except SipError as exc:
        return ("error", exc.status)


@FUZZ
@given(URI_TEXT)
def test_uri_fast_path_agrees_with_general_parser(text: str) -> None:
    fast = outcome(parse_uri, "sip:" + text)
    general = outcome(lambda t: _parse_sip("sip", t), text)
    assert fast == general


@FUZZ
@given(st.text(alphabet=st.sampled_from(list('ab "\\<>sip:@;=,tag\t')), max_size=40))
def test_name_addr_fast_path_agrees_with_general_parser(text: str) -> None:
    stripped = text.strip(" \t\r\n")
    fast = outcome(parse_name_addr, text)
    general = outcome(_general_name_addr, stripped)
    if isinstance(fast, NameAddr) and isinstance(general, NameAddr):
        assert (fast.display, fast.uri_text, fast.params) == (
            general.display,
            general.uri_text,
            general.params,
        )
    else:
        # Both reject (the fast path checks the URI's shape only, as the general one does).
        assert fast == general


@FUZZ
@given(
    st.text(
        alphabet=st.sampled_from(list("SIP/2.0UDPTCPudp h1:9;=branch,rport[]:: \t")), max_size=40
    )
)
def test_via_fast_path_agrees_with_general_parser(text: str) -> None:
    stripped = text.strip(" \t\r\n")
    fast = outcome(lambda t: parse_via(t)[0] if "," not in t else None, text)
    if "," in text:
        return
    assert fast == outcome(_general_via, stripped)
