"""Registrar behaviour that real phones (PJSIP) depend on, found in the peer tests.

- RFC 5626 §6: an outbound flow is confirmed with ``Require: outbound``. PJSIP over TCP
  registers ``+sip.instance`` and ``reg-id`` with ``Supported: outbound`` and, without
  ``Require: outbound`` in the 200, reports outbound "not active".
- Wrong credentials are answered with the nonce they used (stale=false). PJSIP takes a
  fresh nonce for a new challenge and answers it again, up to 5 times per attempt.
"""

from __future__ import annotations

import pytest

from softswitch.directory import Directory, User
from softswitch.location import LocationService
from softswitch.registrar import AuthThrottle, Registrar, RegistrarSettings
from softswitch.sip.digest import Credentials, DigestAuthenticator, compute_ha1, compute_response
from softswitch.sip.message import Peer, Request, parse_message

REALM = "127.0.0.1"
WALL = 1_700_000_000.0
SRC = Peer("tcp", "127.0.0.1", 40000)
FLOW = 'reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000a30f0000>"'
CONTACT = "<sip:1001@127.0.0.1:40000;transport=TCP;ob>"


def registrar() -> Registrar:
    user = User("1001", "1001", compute_ha1("MD5", "1001", REALM, "pw1001"),
                compute_ha1("SHA-256", "1001", REALM, "pw1001"))
    auth = DigestAuthenticator(REALM, secret=b"k" * 32)
    return Registrar(Directory([user], REALM), LocationService(), auth, RegistrarSettings(),
                     AuthThrottle())


def register(reg: Registrar, contact: str, *extra: str, cseq: int = 1,
             password: str = "pw1001", nonce: str | None = None) -> Request:
    creds = Credentials(username="1001", realm=REALM, nonce=nonce or reg.auth.make_nonce(WALL),
                        uri=f"sip:{REALM}", response="", algorithm="MD5", qop="auth",
                        nc="00000001", cnonce="c0ffee")
    response = compute_response("REGISTER", creds, compute_ha1("MD5", "1001", REALM, password))
    lines = [
        f"REGISTER sip:{REALM} SIP/2.0",
        f"Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-{cseq}",
        "Max-Forwards: 70",
        f"From: <sip:1001@{REALM}>;tag=f", f"To: <sip:1001@{REALM}>",
        "Call-ID: flow-1", f"CSeq: {cseq} REGISTER",
        f"Contact: {contact}", *extra,
        f'Authorization: Digest username="1001", realm="{REALM}", nonce="{creds.nonce}", '
        f'uri="{creds.uri}", response="{response}", algorithm=MD5, qop=auth, nc=00000001, '
        'cnonce="c0ffee"',
        "Content-Length: 0", "", "",
    ]
    msg = parse_message("\r\n".join(lines).encode())
    assert isinstance(msg, Request)
    return msg


def requires(reg: Registrar, req: Request) -> list[str]:
    resp, outcome = reg.handle(req, SRC, WALL)
    assert resp.status == 200, resp.to_bytes()
    return resp.headers.values("Require")


def test_outbound_flow_is_confirmed() -> None:
    reg = registrar()
    req = register(reg, f"{CONTACT};{FLOW}", "Supported: outbound, path", "Expires: 300")
    assert requires(reg, req) == ["outbound"]


@pytest.mark.parametrize(
    ("contact", "extra"),
    [
        # No flow: plain RFC 3261 binding.
        (CONTACT, ("Supported: outbound, path", "Expires: 300")),
        # A flow, but the UA did not say it supports outbound (RFC 3261 §8.2.2.3).
        (f"{CONTACT};{FLOW}", ("Expires: 300",)),
        # Through an edge proxy (Path): it is not us that keeps the flow.
        (f"{CONTACT};{FLOW}", ("Supported: outbound, path", "Path: <sip:edge.example;lr>",
                               "Expires: 300")),
        # Removing the flow.
        (f"{CONTACT};{FLOW}", ("Supported: outbound, path", "Expires: 0")),
    ],
    ids=["no-flow", "no-supported", "via-path", "expires-0"],
)
def test_no_require_outbound_otherwise(contact: str, extra: tuple[str, ...]) -> None:
    reg = registrar()
    assert requires(reg, register(reg, contact, *extra)) == []


def test_wrong_password_is_rechallenged_with_the_same_nonce() -> None:
    reg = registrar()
    used = reg.auth.make_nonce(WALL - 5.0)
    req = register(reg, CONTACT, "Expires: 300", password="wrong", nonce=used)
    resp, outcome = reg.handle(req, SRC, WALL)
    assert resp.status == 401 and outcome.kind == "auth_failed"
    challenges = resp.headers.getall("WWW-Authenticate")
    assert challenges and all(f'nonce="{used}"' in c for c in challenges), challenges
    assert not any("stale=true" in c for c in challenges), challenges


def test_foreign_nonce_is_never_echoed() -> None:
    reg = registrar()
    # Same format, another key: not ours, so it gets a fresh challenge (stale=true).
    forged = DigestAuthenticator(REALM, secret=b"x" * 32).make_nonce(WALL)
    req = register(reg, CONTACT, "Expires: 300", password="wrong", nonce=forged)
    resp, _ = reg.handle(req, SRC, WALL)
    assert resp.status == 401
    assert all(forged not in c for c in resp.headers.getall("WWW-Authenticate"))
