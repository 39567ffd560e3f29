"""CPU cost of one authenticated registration inside the SIP core, without sockets.

Drives ``SipCore.receive_datagram`` with what SIPp's register_auth scenario sends —
REGISTER, (401), REGISTER with MD5 digest, (200) — for N users, on virtual time, and prints
µs per registration. This isolates parsing, validation, transactions, digest and registrar
from the event loop and the kernel (which ``bench_register.py`` measures end to end).

    python benchmarks/bench_core.py [--users 10000] [--rounds 3] [--profile] [--default-gc]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from softswitch.app import _tune_gc  # noqa: E402
from softswitch.core import SipCore  # noqa: E402
from softswitch.directory import Directory, User  # noqa: E402
from softswitch.location import LocationService  # noqa: E402
from softswitch.registrar import AuthThrottle, Registrar, RegistrarSettings  # noqa: E402
from softswitch.sip.digest import DigestAuthenticator  # noqa: E402
from softswitch.sip.message import Peer  # noqa: E402
from softswitch.sip.transaction import TransactionLayer  # noqa: E402

REALM = "127.0.0.1"


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def register(user: str, n: int, port: int, auth: str = "") -> bytes:
    return (
        f"REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-bench-{n}-{len(auth) > 0};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag={n}SIPpTag00{n}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {n}-bench@127.0.0.1\r\n"
        f"CSeq: {2 if auth else 1} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port};transport=UDP>\r\n"
        f"{auth}"
        f"Expires: 3600\r\n"
        f"User-Agent: SIPp\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def authorization(user: str, nonce: str) -> str:
    ha1 = _md5(f"{user}:{REALM}:pw{user}")
    uri = "sip:127.0.0.1:5060"
    ha2 = _md5(f"REGISTER:{uri}")
    resp = _md5(f"{ha1}:{nonce}:00000001:abcdef:auth:{ha2}")
    return (
        f'Authorization: Digest username="{user}",realm="{REALM}",cnonce="abcdef",nc=00000001,'
        f'qop=auth,uri="{uri}",nonce="{nonce}",response="{resp}",algorithm=MD5\r\n'
    )


def make_core(users: int) -> SipCore:
    dir_users = [
        User(str(100000 + i), "", _md5(f"{100000 + i}:{REALM}:pw{100000 + i}"), None)
        for i in range(users)
    ]
    directory = Directory(dir_users, REALM)
    auth = DigestAuthenticator(REALM, secret=b"s" * 32, algorithms=("MD5",))
    registrar = Registrar(directory, LocationService(), auth, RegistrarSettings(),
                          AuthThrottle())
    return SipCore(registrar, TransactionLayer())


def run(core: SipCore, users: int, round_no: int, t0: float) -> tuple[int, float]:
    src = Peer("udp", "127.0.0.1", 5070)
    ok = 0
    start = time.process_time()
    now = t0
    for i in range(users):
        user = str(100000 + i)
        n = round_no * users + i
        now += 0.0001
        out = core.receive_datagram(register(user, n, 5070), src, now, 1_800_000_000.0)
        challenge = out[0].data
        j = challenge.index(b'nonce="') + 7
        nonce = challenge[j:challenge.index(b'"', j)].decode()
        out = core.receive_datagram(
            register(user, n, 5070, authorization(user, nonce)), src, now, 1_800_000_000.0
        )
        if out and out[0].data.startswith(b"SIP/2.0 200"):
            ok += 1
        if i % 1000 == 0:
            core.handle_timer(now, 1_800_000_000.0)
    return ok, time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's default GC thresholds (the switch tunes them at start)")
    args = ap.parse_args()
    core = make_core(args.users)
    if not args.default_gc:
        # As `softswitch run` does (app._tune_gc), so the figure is what the running switch
        # pays; CPython's default thresholds add 5-12 µs per registration here.
        _tune_gc()
    best = float("inf")
    for r in range(args.rounds):
        if args.profile and r == args.rounds - 1:
            prof = cProfile.Profile()
            prof.enable()
        ok, cpu = run(core, args.users, r, 1000.0 + r * 100)
        if args.profile and r == args.rounds - 1:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        per = cpu / args.users * 1e6
        best = min(best, per)
        print(f"round {r}: {ok}/{args.users} registered, {per:.1f} µs CPU per registration "
              f"(2 requests in, 2 responses out)")
    print(f"best: {best:.1f} µs per registration -> {1e6 / best:,.0f} registrations/s per core "
          f"(core only, no sockets)")


if __name__ == "__main__":
    main()
