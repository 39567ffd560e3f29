"""Caller identity, trusted peers and static contacts in the B2BUA (in memory, virtual time).

RFC 3325: a trusted source is not challenged and its P-Asserted-Identity names the caller;
from anywhere else identity headers are ignored and the caller is who authenticated. The
callee's INVITE carries the caller's display name and number in From and, to phones the
switch serves, in P-Asserted-Identity.
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from softswitch.config import ConfigError, UserConfig, load_config
from softswitch.core import SipCore
from softswitch.directory import Directory
from softswitch.sip.message import Peer, Request, Response, parse_message
from softswitch.sip.uri import SipURI, parse_name_addr
from tests.switchkit import answer_challenge
from tests.test_b2bua_unit import B1, REALM, WALL, b2bua_core  # as b2bua_core builds

PHONE = Peer("udp", "127.0.0.1", 5098)
GATEWAY = Peer("udp", "10.0.0.7", 5060)
STATIC = Peer("udp", "192.0.2.20", 5080)
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def make_core(*, trusted: tuple[str, ...] = (), static: str | None = None,
              register_b: bool = True) -> SipCore:
    users = [
        UserConfig(extension="1001", password="pw1001", name="Alice Directory"),
        UserConfig(extension="1002", password="pw1002", name="Bob", contact=static),
        UserConfig(extension="7000", contact=f"sip:{STATIC.host}:{STATIC.port}"),
    ]
    core = b2bua_core(users, [("1002", B1)] if register_b else [])
    assert core.b2bua is not None
    core.b2bua.trusted = tuple(ip_network(n) for n in trusted)
    return core


def invite(dialled: str, source: Peer, *, cseq: int = 1, extra: tuple[tuple[str, str], ...] = (),
           auth: str | None = None, from_: str = '"Forged Name" <sip:1001@example.com>') -> bytes:
    lines = [f"INVITE sip:{dialled}@{REALM} SIP/2.0",
             f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK-i{cseq};rport",
             "Max-Forwards: 70", f"From: {from_};tag=a1", f"To: <sip:{dialled}@{REALM}>",
             "Call-ID: identity@test", f"CSeq: {cseq} INVITE",
             f"Contact: <sip:x@{source.host}:{source.port}>", "Content-Type: application/sdp",
             *(f"{k}: {v}" for k, v in extra)]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + f"\r\nContent-Length: {len(OFFER)}\r\n\r\n").encode() + OFFER


def messages_to(out: list, dest: Peer) -> list[Request | Response]:
    return [parse_message(s.data) for s in out if s.dest == dest]


def invites_to(out: list, dest: Peer) -> list[Request]:
    return [m for m in messages_to(out, dest) if isinstance(m, Request) and m.method == "INVITE"]


def authenticated_call(core: SipCore, dialled: str, extra: tuple[tuple[str, str], ...] = ()
                       ) -> list:
    out = core.receive_datagram(invite(dialled, PHONE, extra=extra), PHONE, 0.0, WALL)
    (challenge,) = [m for m in messages_to(out, PHONE)
                    if isinstance(m, Response) and m.status == 407]
    challenge.headers.set("WWW-Authenticate", challenge.headers.get("Proxy-Authenticate") or "")
    value = answer_challenge(challenge, user="1001", password="pw1001", method="INVITE",
                             uri=f"sip:{dialled}@{REALM}")
    return core.receive_datagram(invite(dialled, PHONE, cseq=2, extra=extra, auth=value),
                                 PHONE, 0.1, WALL)


def identity(req: Request, header: str) -> tuple[str | None, str | None]:
    value = req.headers.get(header)
    assert value is not None, f"no {header} in {req.to_bytes()!r}"
    addr = parse_name_addr(value)
    assert isinstance(addr.uri, SipURI)
    return (addr.display or "").strip('"') or None, addr.uri.user


# -- untrusted phones ----------------------------------------------------------------------------

def test_untrusted_invite_is_challenged_407() -> None:
    core = make_core(trusted=("10.0.0.0/8",))
    out = core.receive_datagram(invite("1002", PHONE), PHONE, 0.0, WALL)
    statuses = [m.status for m in messages_to(out, PHONE) if isinstance(m, Response)]
    assert 407 in statuses
    assert invites_to(out, B1) == []


def test_untrusted_identity_headers_are_ignored_caller_is_authenticated_user() -> None:
    core = make_core(trusted=("10.0.0.0/8",))
    forged = (("P-Asserted-Identity", '"Evil" <sip:9999@evil.example>'),
              ("Remote-Party-ID", '"Evil" <sip:9999@evil.example>;party=calling'))
    out = authenticated_call(core, "1002", forged)
    (inv,) = invites_to(out, B1)
    # From and PAI name the authenticated user, with the directory's display name.
    assert identity(inv, "From") == ("Alice Directory", "1001")
    assert identity(inv, "P-Asserted-Identity") == ("Alice Directory", "1001")
    assert inv.headers.get("Remote-Party-ID") is None
    assert b"9999" not in inv.to_bytes() and b"Evil" not in inv.to_bytes()
    (call,) = core.b2bua.calls.values()  # type: ignore[union-attr]
    assert call.caller == "1001"


# -- trusted peers -------------------------------------------------------------------------------

def test_trusted_peer_is_not_challenged_and_its_pai_is_the_caller() -> None:
    core = make_core(trusted=("10.0.0.0/8",))
    pai = (("P-Asserted-Identity", '"Jakarta Office" <sip:+62215550100@gw.example>'),)
    out = core.receive_datagram(invite("1002", GATEWAY, extra=pai), GATEWAY, 0.0, WALL)
    statuses = [m.status for m in messages_to(out, GATEWAY) if isinstance(m, Response)]
    assert 407 not in statuses and statuses == [100]
    (inv,) = invites_to(out, B1)
    assert identity(inv, "From") == ("Jakarta Office", "+62215550100")
    assert identity(inv, "P-Asserted-Identity") == ("Jakarta Office", "+62215550100")
    (call,) = core.b2bua.calls.values()  # type: ignore[union-attr]
    assert call.caller == "+62215550100"


def test_trusted_peer_without_pai_is_named_by_from() -> None:
    core = make_core(trusted=("10.0.0.0/8",))
    out = core.receive_datagram(
        invite("1002", GATEWAY, from_='"Front Desk" <sip:0215551234@gw.example>'), GATEWAY,
        0.0, WALL)
    (inv,) = invites_to(out, B1)
    assert identity(inv, "From") == ("Front Desk", "0215551234")


def test_trusted_list_is_by_source_address_only() -> None:
    # The same PAI from a phone outside the trusted network is challenged first.
    core = make_core(trusted=("10.0.0.0/8",))
    pai = (("P-Asserted-Identity", "<sip:+62215550100@gw.example>"),)
    out = core.receive_datagram(invite("1002", PHONE, extra=pai), PHONE, 0.0, WALL)
    assert 407 in [m.status for m in messages_to(out, PHONE) if isinstance(m, Response)]


# -- static contacts -----------------------------------------------------------------------------

def test_static_contact_rings_besides_registered_contacts() -> None:
    core = make_core(static=f"sip:{STATIC.host}:{STATIC.port};transport=udp")
    out = authenticated_call(core, "1002")
    (to_phone,) = invites_to(out, B1)
    (to_static,) = invites_to(out, STATIC)
    assert str(to_static.uri) == f"sip:{STATIC.host}:{STATIC.port};transport=udp"
    assert identity(to_static, "From") == ("Alice Directory", "1001")
    # RFC 3325 §4: identity is asserted to phones we serve, not to an untrusted address.
    assert to_phone.headers.get("P-Asserted-Identity") is not None
    assert to_static.headers.get("P-Asserted-Identity") is None


def test_gateway_user_without_password_is_rung_at_its_static_contact() -> None:
    core = make_core(trusted=("192.0.2.0/24",))
    out = authenticated_call(core, "7000")
    (inv,) = invites_to(out, STATIC)
    assert identity(inv, "P-Asserted-Identity") == ("Alice Directory", "1001")


def test_no_registration_and_no_static_contact_is_480() -> None:
    core = make_core(register_b=False)
    out = authenticated_call(core, "1002")
    assert 480 in [m.status for m in messages_to(out, PHONE) if isinstance(m, Response)]


# -- configuration -------------------------------------------------------------------------------

def _load(tmp_path: Path, users: str, sip: str = "") -> object:
    path = tmp_path / "softswitch.toml"
    path.write_text(sip + users)
    return load_config(path)


def test_config_accepts_static_contact_and_gateway_without_password(tmp_path: Path) -> None:
    config = _load(tmp_path, (
        '[[users]]\nextension = "1001"\npassword = "x"\ncontact = "sip:127.0.0.1:5070"\n'
        '[[users]]\nextension = "gw"\ncontact = "sip:192.0.2.1:5060;transport=tcp"\n'),
        '[sip]\ntrusted = ["192.0.2.0/24"]\n')
    users = config.users  # type: ignore[attr-defined]
    assert users[0].contact == "sip:127.0.0.1:5070" and users[1].password is None
    directory = Directory.from_config(config)  # type: ignore[arg-type]
    assert directory.lookup("gw").contact == "sip:192.0.2.1:5060;transport=tcp"  # type: ignore[union-attr]


@pytest.mark.parametrize("contact, message", [
    ("http://192.0.2.1/", "users[0].contact: must be a sip: URI"),
    ("sip:gw..example.com:5060", "users[0].contact: "),
    ("sip:192.0.2.1:5060;transport=sctp", "users[0].contact: transport must be udp or tcp"),
    ("not a uri", "users[0].contact: "),
])
def test_config_refuses_bad_static_contact(tmp_path: Path, contact: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f'[[users]]\nextension = "gw"\ncontact = "{contact}"\n')
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors


def test_config_user_without_secret_or_contact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, '[[users]]\nextension = "1001"\nname = "x"\n')
    assert "users[0]: give password, ha1 or ha1_sha256" in info.value.errors


# -- caller privacy (RFC 3323, RFC 3325 §7) ------------------------------------------------------

def test_private_caller_is_anonymous_to_the_callee_phone() -> None:
    core = make_core()
    out = authenticated_call(core, "1002", extra=(("Privacy", "id"),))
    (inv,) = invites_to(out, B1)
    assert identity(inv, "From") == ("Anonymous", "anonymous")
    assert "anonymous.invalid" in (inv.headers.get("From") or "")
    assert inv.headers.get("P-Asserted-Identity") is None and inv.headers.get("Privacy") is None
    (call,) = core.b2bua.calls.values()  # type: ignore[union-attr]
    assert call.caller == "1001"  # the switch (CDR, reports) still knows who calls


def test_private_caller_from_a_trusted_gateway_stays_private() -> None:
    core = make_core(trusted=("10.0.0.0/8",))
    extra = (("P-Asserted-Identity", '"Caller" <sip:+6281234567@gw.example>'),
             ("Privacy", "header;id"))
    out = core.receive_datagram(invite("1002", GATEWAY, extra=extra), GATEWAY, 0.0, WALL)
    (inv,) = invites_to(out, B1)
    assert identity(inv, "From") == ("Anonymous", "anonymous")
    assert "+6281234567" not in inv.to_bytes().decode()
    (call,) = core.b2bua.calls.values()  # type: ignore[union-attr]
    assert call.caller == "+6281234567"


def test_private_caller_is_asserted_only_to_a_trusted_peer_with_privacy_id() -> None:
    core = make_core(trusted=("192.0.2.0/24",))
    out = authenticated_call(core, "7000", extra=(("Privacy", "id"),))
    (inv,) = invites_to(out, STATIC)
    assert identity(inv, "From") == ("Anonymous", "anonymous")
    assert identity(inv, "P-Asserted-Identity") == ("Alice Directory", "1001")
    assert inv.headers.get("Privacy") == "id"


def test_privacy_none_changes_nothing() -> None:
    core = make_core()
    out = authenticated_call(core, "1002", extra=(("Privacy", "none"),))
    (inv,) = invites_to(out, B1)
    assert identity(inv, "From") == ("Alice Directory", "1001")
    assert identity(inv, "P-Asserted-Identity") == ("Alice Directory", "1001")


# -- static contacts by host name ----------------------------------------------------------------

def test_static_contact_by_host_name_rings_the_address_it_resolved_to() -> None:
    core = make_core(static="sip:gw.test:5080;transport=udp", register_b=False,
                     trusted=("192.0.2.0/24",))
    assert core.b2bua is not None
    core.b2bua.resolved = {"gw.test": STATIC.host}
    out = authenticated_call(core, "1002")
    (inv,) = invites_to(out, STATIC)
    assert str(inv.uri) == "sip:gw.test:5080;transport=udp"  # the Request-URI keeps the name
    assert identity(inv, "P-Asserted-Identity") == ("Alice Directory", "1001")  # trusted by IP


def test_static_contact_whose_name_is_not_resolved_is_not_rung() -> None:
    core = make_core(static="sip:gw.test:5080", register_b=False)
    out = authenticated_call(core, "1002")
    assert 480 in [m.status for m in messages_to(out, PHONE) if isinstance(m, Response)]


def test_config_accepts_a_host_name_in_a_static_contact(tmp_path: Path) -> None:
    config = _load(tmp_path, '[[users]]\nextension = "gw"\ncontact = "sip:GW.Example.com:5060"\n')
    assert config.users[0].contact == "sip:GW.Example.com:5060"  # type: ignore[attr-defined]


async def test_switch_resolves_static_contact_names_and_keeps_the_last_address(
        tmp_path: Path) -> None:
    from softswitch.app import _resolve_contacts

    config = _load(tmp_path, (
        '[[users]]\nextension = "gw"\ncontact = "sip:localhost:5080"\n'
        '[[users]]\nextension = "gone"\ncontact = "sip:nowhere.invalid:5060"\n'
        '[[users]]\nextension = "ip"\ncontact = "sip:192.0.2.1:5060"\n'))
    assert await _resolve_contacts(config, {}) == {"localhost": "127.0.0.1"}  # type: ignore[arg-type]
    # a name that stops resolving keeps the address it had (a DNS outage is not an outage)
    previous = {"localhost": "127.0.0.1", "nowhere.invalid": "192.0.2.9"}
    assert await _resolve_contacts(config, previous) == previous  # type: ignore[arg-type]
