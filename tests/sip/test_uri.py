"""URIs, name-addr and Via values (RFC 3261 §19.1, §20.10, §20.42, §25.1)."""

from __future__ import annotations

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.uri import (
    AbsoluteURI,
    NameAddr,
    SipURI,
    TelURI,
    Via,
    _parse_sip,
    parse_name_addr,
    parse_params,
    parse_uri,
    parse_via,
    split_top,
    unescape,
    unquote,
)

# --- SIP URIs -----------------------------------------------------------------


def test_sip_uri_all_parts() -> None:
    uri = parse_uri(
        "sip:alice:secret@Atlanta.Example.COM:5070;Transport=TCP;lr?Subject=hi%20there&x=1"
    )
    assert isinstance(uri, SipURI)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        "secret",
        "atlanta.example.com",
        5070,
    )
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.headers == {"Subject": "hi there", "x": "1"}


def test_sip_uri_minimal_and_scheme_case() -> None:
    uri = parse_uri("SIPS:example.org")
    assert isinstance(uri, SipURI)
    assert (uri.scheme, uri.user, uri.host, uri.port, uri.params) == (
        "sips",
        None,
        "example.org",
        None,
        {},
    )
    assert str(uri) == "sips:example.org"


def test_user_is_unescaped_and_reescaped() -> None:
    uri = parse_uri("sip:I%20have%20spaces@example.net")
    assert isinstance(uri, SipURI)
    assert uri.user == "I have spaces"
    assert str(uri) == "sip:I%20have%20spaces@example.net"
    # Needlessly escaped characters compare equal after unescaping (RFC 3261 §19.1.4).
    assert parse_uri("sip:%61lice@h") == parse_uri("sip:alice@h")


def test_escaped_null_in_user() -> None:
    uri = parse_uri("sip:null-%00-null@example.org")
    assert isinstance(uri, SipURI)
    assert uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.org"


def test_escaped_param_names_and_values() -> None:
    uri = parse_uri("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert isinstance(uri, SipURI)
    assert uri.user == "caller"
    assert uri.params == {"lr": None, "name": "value%41"}


def test_user_with_semicolons_and_question_marks() -> None:
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert isinstance(uri, SipURI)
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == {}


def test_odd_but_valid_userinfo() -> None:
    text = (
        "sip:1_odd.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.org"
    )
    uri = parse_uri(text)
    assert isinstance(uri, SipURI)
    assert uri.user == "1_odd.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.org"
    assert str(uri) == text


def test_ipv6_reference() -> None:
    uri = parse_uri("sip:bob@[2001:DB8::10]:5061;transport=tls")
    assert isinstance(uri, SipURI)
    assert uri.host == "2001:db8::10"
    assert uri.is_ipv6
    assert uri.port == 5061
    assert str(uri) == "sip:bob@[2001:db8::10]:5061;transport=tls"
    assert not parse_uri("sip:bob@127.0.0.1").is_ipv6  # type: ignore[union-attr]


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;Phone-Context=example.com")
    assert uri == TelURI("+1-201-555-0123", {"phone-context": "example.com"})
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_other_schemes_are_absolute() -> None:
    assert parse_uri("soap.beep://192.0.2.103:3002") == AbsoluteURI(
        "soap.beep", "//192.0.2.103:3002"
    )
    assert parse_uri("isbn:2983792873") == AbsoluteURI("isbn", "2983792873")
    assert str(parse_uri("urn:service:sos")) == "urn:service:sos"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        ":x",
        "sip:",
        "sip:user@",
        "sip:@example.com",
        "sip:a b@example.com",
        "sip:h:70000",
        "sip:h:",
        "sip:h:5x",
        "sip:exa mple.com",
        "sip:%zz@h",
        "sip:a%4@h",
        "sip:[::1",
        "sip:[zz::1]",
        "sip:h;",
        "sip:h;a=",
        "sip:h?x",
        "sip:h;=v",
        "<sip:a@h>",
        "1sip:x",
        "tel:",
        "tel:12 34",
        "foo:",
        "foo:a b",
    ],
)
def test_malformed_uris_raise_400(text: str) -> None:
    with pytest.raises(SipError) as info:
        parse_uri(text)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "sip:alice:pw@example.com:5060;transport=udp;lr",
        "sips:[::1]:5061",
        "sip:+1555@gw.example.net;user=phone",
        "sip:a@b;maddr=[2001:db8::1]",
        "sip:x@y.z;a=b;c;d=e:f",
        "sip:Host.Example.COM",
    ],
)
def test_fast_path_matches_general_parser(text: str) -> None:
    scheme, _, rest = text.partition(":")
    assert parse_uri(text) == _parse_sip(scheme, rest)
    assert parse_uri(str(parse_uri(text))) == parse_uri(text)


def test_unescape_rejects_truncated_escape() -> None:
    assert unescape("a%41b") == "aAb"
    with pytest.raises(SipError):
        unescape("abc%4")


# --- name-addr ------------------------------------------------------------------


def test_name_addr_quoted_display_with_escapes() -> None:
    na = parse_name_addr('"Dave \\"The Rock\\"" <sip:dave@example.net> ; tag = 55xq')
    assert na.display == 'Dave "The Rock"'
    assert na.tag == "55xq"
    assert na.uri == parse_uri("sip:dave@example.net")
    assert str(na) == '"Dave \\"The Rock\\"" <sip:dave@example.net>;tag=55xq'
    assert parse_name_addr(str(na)) == na


def test_name_addr_token_display_without_space() -> None:
    na = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert (na.display, na.uri_text, na.tag) == ("caller", "sip:caller@example.com", "323")


def test_addr_spec_params_belong_to_the_header() -> None:
    # RFC 3261 §20.10: without <>, ;params are header parameters, not URI parameters.
    na = parse_name_addr("sip:+19725552222@gw1.example.net;unknownparam;tag=9")
    assert na.uri == parse_uri("sip:+19725552222@gw1.example.net")
    assert na.params == {"unknownparam": None, "tag": "9"}
    inside = parse_name_addr("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert inside.params == {}
    assert isinstance(inside.uri, SipURI)
    assert inside.uri.params == {"unknownparam": None}


def test_quoted_param_values_keep_quotes() -> None:
    na = parse_name_addr(
        '<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";'
        "reg-id=1;expires=600;q=0.5"
    )
    assert na.params["+sip.instance"] == '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"'
    assert (
        unquote(na.params["+sip.instance"] or "")
        == "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
    )
    assert na.params["expires"] == "600"


def test_display_with_control_chars_escaped() -> None:
    na = parse_name_addr('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:x@example.org>')
    assert na.display == "BEL:\x07 NUL:\x00 DEL:\x7f"


def test_uri_is_parsed_lazily() -> None:
    na = parse_name_addr("<sip:@example.com>;tag=1")
    assert na.tag == "1"  # the tag is usable although the URI is not
    with pytest.raises(SipError):
        na.uri  # noqa: B018


def test_name_addr_built_from_objects() -> None:
    na = NameAddr("Bob", parse_uri("sip:bob@example.com"), {"tag": "x"})
    assert str(na) == '"Bob" <sip:bob@example.com>;tag=x'
    assert parse_name_addr(str(na)) == na


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',  # unterminated quote
        "<sip:a@b",  # missing >
        "sip:a@b>",
        '"Watson, Thomas" < sip:t.watson@example.org >',  # LWS inside <>
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",  # non-token display
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # ? needs <>
        "<sip:a@b>;;",
        "<sip:a@b>;tag=",
        "<sip:a@b> junk",
        "<sip:a@b>;a=b c",
        "",
        "<>",
        '"x" sip:a@b',
    ],
)
def test_malformed_name_addr_raises_400(text: str) -> None:
    with pytest.raises(SipError) as info:
        parse_name_addr(text)
    assert info.value.status == 400


# --- Via ----------------------------------------------------------------------------


def test_via_basic_and_params() -> None:
    (via,) = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport;received=10.0.0.1")
    assert via == Via(
        "UDP", "192.0.2.1", 5060, {"branch": "z9hG4bK776", "rport": None, "received": "10.0.0.1"}
    )
    assert via.branch == "z9hG4bK776"
    assert via.rport is None and "rport" in via.params
    assert via.received == "10.0.0.1"
    assert via.sent_by == ("192.0.2.1", 5060)
    assert str(via) == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport;received=10.0.0.1"


def test_via_rport_value_maddr_ttl() -> None:
    (via,) = parse_via(
        "SIP/2.0/udp h.example.com;rport=5062;maddr=224.2.0.1;ttl=16;branch=z9hG4bKx"
    )
    assert via.transport == "UDP"
    assert via.rport == 5062
    assert via.maddr == "224.2.0.1"
    assert via.params["ttl"] == "16"
    assert via.port is None


def test_via_ipv6_sent_by() -> None:
    (via,) = parse_via("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKa")
    assert (via.host, via.port) == ("2001:db8::9", 5070)
    assert str(via) == "SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKa"


def test_via_with_lws_everywhere_and_several_values() -> None:
    vias = parse_via(
        "SIP  / 2.0  / TCP     relay.example.org   ;  branch  =   z9hG4bK2  , "
        "SIP  /    2.0   / UDP  203.0.113.111 : 5062  ; branch= z9hG4bK3"
    )
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("TCP", "relay.example.org", None, "z9hG4bK2"),
        ("UDP", "203.0.113.111", 5062, "z9hG4bK3"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ;branch=x",
        "SIP/3.0/UDP h",
        "HTTP/2.0/UDP h",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h;branch=",
        "SIP/2.0/UDP h,",
        "SIP/2.0/UDP a b",
        "",
    ],
)
def test_malformed_via_raises_400(text: str) -> None:
    with pytest.raises(SipError) as info:
        parse_via(text)
    assert info.value.status == 400


# --- helpers ---------------------------------------------------------------------------


def test_split_top_respects_quotes_and_angles() -> None:
    assert split_top('"a, b" <sip:x>, <sip:y;p=1,2>, z', ",") == [
        '"a, b" <sip:x>',
        " <sip:y;p=1,2>",
        " z",
    ]
    assert split_top("a,b", ",") == ["a", "b"]
    with pytest.raises(SipError):
        split_top("<a, b", ",")
    with pytest.raises(SipError):
        split_top('"a, b', ",")


def test_parse_params_lws_and_case() -> None:
    assert parse_params(' Tag = ABC ; lr ;x="q;r"') == {"tag": "ABC", "lr": None, "x": '"q;r"'}
    with pytest.raises(SipError):
        parse_params("a=b=c")


@pytest.mark.parametrize("text", [
    "<sip:100633@127.0.0.1>;tag=9461SIPpTag00634",
    '"Alice" <sip:alice@example.com;transport=tcp>;x=1;tag=a.b-c',
    "sip:bob@example.com;tag=z",
    "<sip:a@b>;tag=1;tag=2",  # two tags: not the shortcut's shape
    "<sip:a@b>;tag=",  # empty tag
    "<sip:a@b>;tag=x y",  # not a token
    "<sip:a@b>;TAG=upper",
])
def test_name_addr_tag_shortcut_matches_the_full_parse(text: str) -> None:
    """A From is parsed as its remembered value plus the tag; the result must not differ."""
    from softswitch.sip import uri as uri_mod

    def full(t: str) -> tuple:
        na = uri_mod._general_name_addr(t.strip(" \t"))
        return na.display, str(na.uri), na.params

    for _ in range(2):  # first through the memo's miss, then its hit
        try:
            got = parse_name_addr(text)
        except SipError as exc:
            with pytest.raises(SipError):
                full(text)
            assert exc.status == 400
            continue
        assert (got.display, str(got.uri), got.params) == full(text)


def test_name_addr_with_many_tags_parses_without_recursion() -> None:
    hostile = "<sip:a@b>" + ";tag=x" * 5000
    assert parse_name_addr(hostile).params["tag"] == "x"
