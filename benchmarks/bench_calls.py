"""Calls through the switch (issue 3): call setup rate, and concurrent relayed G.711 calls.

    python benchmarks/bench_calls.py setup --rate 150 --duration 60
    python benchmarks/bench_calls.py setup --find-max --step-duration 10
    python benchmarks/bench_calls.py relay --calls 500 --duration 60 --targets softswitch,rtpengine

``setup``: SIPp UAC (``benchmarks/sipp/``, core 0) places calls at a rate to
the switch (core 1), which rings a SIPp UAS (``benchmarks/sipp/uas_echo.xml`` with
``-rtp_echo``, core 0), extension 100000. ``--auth trusted`` (default): 127.0.0.1 is in
``[sip] trusted`` (INVITEs are not challenged, ``uac_pcap_trusted.xml``) and 100000 is a
static ``contact``; ``--auth digest``: every INVITE is challenged (407, ``uac_auth_pcap.xml``)
and the UAS registers 100000 first. Every call is answered, carries G.711 A-law from
``g711a.pcap`` for ``--hold-ms`` (echoed back by the UAS, so the relay forwards both
directions), and is ended by BYE. Reported: successful
and failed calls, calls/s achieved, the switch's CPU per call (signalling + media).

``relay``: ``--calls`` calls are set up (a minimal SIP UAC/UAS in this script), then this
process (pinned to core 0) sends 2 x calls RTP streams of 172-byte PCMU packets (12-byte
header + 160 bytes) at 50 packets/s through the relay ports the switch allocated, and
receives them on the other side. The generator sends every caller-side stream from one socket
and every callee-side stream from another (Python cannot serve 1,000 sockets at 50 pps on one
core): the relay still has its two ports per call and latches each leg onto that source
(RFC 4961), so its work per packet is unchanged; streams are told apart by an id in the
payload. Each packet carries its send time
(CLOCK_REALTIME ns); arrival times are the kernel's (SO_TIMESTAMPNS), so the generator's own
scheduling does not show as jitter.
The CPU other processes took on the target's core during each measurement is reported
(``foreign_cpu_on_target_core_s``): the machine is shared.
Per packet D = (R_i - R_{i-1}) - (S_i - S_{i-1})
(RFC 3550 §6.4.1 with exact send times): the jitter the path added. Reported: packets sent and
received, loss, p50/p99/max |D|, p99 over streams of the RFC 3550 jitter estimate J, one-way
transit, and the relay's CPU. The identical load then goes through rtpengine (Debian
``rtpengine-daemon``, userspace forwarding ``--table=-1``, core 1), driven over its ng control
protocol (bencode ``offer``/``answer``/``delete``). Target ``direct`` sends the same streams
straight between the two generator sockets: the floor the harness itself adds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import resource
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CLK_TCK,
    SOFTSWITCH,
    Target,
    _stat_fields,
    _stop,
    pinned,
    process_tree,
    wait_http_ok,
)

from tests.peers import free_port
from tests.peers.sipp import SippRun, run_sipp, write_users_csv

HERE = Path(__file__).resolve().parent
UAC_SCENARIOS = {"digest": HERE / "sipp" / "uac_auth_pcap.xml",
                 "trusted": HERE / "sipp" / "uac_pcap_trusted.xml"}
UAS_SCENARIO = HERE / "sipp" / "uas_echo.xml"
RTPENGINE = "/usr/bin/rtpengine"

CALLEE = ("100000", "pw100000")
FIRST_CALLER = 100001
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET = 172  # 12-byte RTP header + 160 bytes of G.711 (20 ms)
PTIME = 0.020


# ---------------------------------------------------------------------------------- the switch


def write_config(workdir: Path, callers: int, rtp_ports: str,
                 uas_port: int | None) -> tuple[Path, int, int]:
    """``uas_port`` None: digest everywhere, the callee registers. Otherwise 127.0.0.1 is
    trusted (INVITEs are not challenged) and the callee is a static contact at that port."""
    sip_port, http_port = free_port("udp"), free_port("tcp")
    users = [(str(FIRST_CALLER + i), f"pw{FIRST_CALLER + i}") for i in range(callers)]
    body = "\n".join(f'[[users]]\nextension = "{u}"\npassword = "{p}"\n' for u, p in users)
    if uas_port is None:
        body += f'\n[[users]]\nextension = "{CALLEE[0]}"\npassword = "{CALLEE[1]}"\n'
        trusted = ""
    else:
        body += (f'\n[[users]]\nextension = "{CALLEE[0]}"\n'
                 f'contact = "sip:{CALLEE[0]}@127.0.0.1:{uas_port}"\n')
        trusted = 'trusted = ["127.0.0.1/32"]\n'

    cfg = workdir / "softswitch.toml"
    cfg.write_text(f"""[sip]
listen = ["udp:127.0.0.1:{sip_port}"]
domain = "127.0.0.1"
{trusted}[auth]
algorithms = ["MD5"]
[http]
listen = "127.0.0.1:{http_port}"
[store]
url = "sqlite:///{workdir}/bench.db"
[log]
level = "warning"
[media]
address = "127.0.0.1"
rtp_ports = "{rtp_ports}"
inactivity_s = 600

{body}""")
    return cfg, sip_port, http_port


@contextlib.contextmanager
def switch(workdir: Path, cpu: int | None, callers: int, uas_port: int | None,
           rtp_ports: str = "20000-29999") -> Iterator[Target]:
    cfg, sip_port, http_port = write_config(workdir, callers, rtp_ports, uas_port)
    log = workdir / "softswitch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned([str(SOFTSWITCH), "run", "--config", str(cfg)], cpu),
                                cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    target = Target("softswitch", proc, f"127.0.0.1:{sip_port}", workdir, log,
                    {"http": f"127.0.0.1:{http_port}"})
    try:
        try:
            wait_http_ok(f"http://127.0.0.1:{http_port}/healthz", 60.0, proc)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n--- {log} ---\n{target.log_tail()}") from exc
        yield target
    finally:
        _stop(proc)


def callers_csv(path: Path, callers: int) -> Path:
    return write_users_csv(path, [(str(FIRST_CALLER + i), f"pw{FIRST_CALLER + i}")
                                  for i in range(callers)])


# ------------------------------------------------------------------------- (a) call setup rate


@contextlib.contextmanager
def sipp_uas(target: Target, workdir: Path, cpu: int | None, port: int,
             register: bool) -> Iterator[int]:
    """The echoing UAS on ``port``; with ``register``, 100000 registers from it first."""
    if register:
        csv = write_users_csv(workdir / "callee.csv", [CALLEE])
        reg = run_sipp("register_auth", target.sip, users_csv=csv, max_calls=1, rate=1,
                       local_port=port, pin_cpu=cpu)
        if reg.successful != 1:
            raise RuntimeError(f"callee registration failed\n{reg.describe()}")
    uas_dir = workdir / "uas"
    uas_dir.mkdir()
    run = SippRun(UAS_SCENARIO, "", uas_dir, pin_cpu=cpu, local_port=port, timeout=3600,
                  extra=["-rtp_echo", "-mp", str(free_port("udp")), "-buff_size", "4194304",
                         "-max_socket", "60000"])
    proc = subprocess.Popen(run.argv(), cwd=uas_dir, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # SIPp binds its sockets; a process start, not synchronisation
        if proc.poll() is not None:
            raise RuntimeError(f"SIPp UAS exited with {proc.returncode}")
        yield port
    finally:
        _stop(proc, 5.0)


def setup_step(target: Target, csv: Path, rate: float, duration: float, hold_ms: int,
               sipp_core: int | None, auth: str, keep: Path | None = None,
               target_core: int | None = 1) -> dict[str, Any]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    cpu0 = target.cpu()
    busy0 = core_busy(target_core)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_sipp(UAC_SCENARIOS[auth], target.sip, users_csv=csv, rate=rate, duration=duration,
                   pin_cpu=sipp_core, timeout=duration + hold_ms / 1000 + 30, workdir=keep,
                   extra=["-s", CALLEE[0], "-d", str(hold_ms), "-mp", "40000",
                          "-buff_size", "4194304",
                          "-max_socket", "60000"])
    cpu = target.cpu() - cpu0
    foreign = core_busy(target_core) - busy0 - cpu
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    ok = res.successful
    # Calls are started over `duration`; the run ends hold_ms after the last one.
    place_time = max(res.elapsed - hold_ms / 1000, 1e-9)
    m: dict[str, Any] = {
        "auth": auth, "rate_asked": rate, "calls_asked": int(rate * duration),
        "hold_ms": hold_ms,
        "successful": ok, "failed": res.failed, "retransmissions": res.retransmissions,
        "elapsed_s": round(res.elapsed, 2),
        "calls_per_s": round(ok / place_time, 1),
        "switch_cpu_s": round(cpu, 2),
        "switch_cpu_ms_per_call": round(cpu / ok * 1e3, 3) if ok else None,
        "switch_load": round(cpu / res.elapsed, 3) if res.elapsed else None,
        "sipp_uac_cpu_s": round(sipp_cpu, 2),
        # CPU other processes (other workers on the shared machine) took on the switch's core.
        "foreign_cpu_on_target_core_s": round(foreign, 2),
        "sipp_rc": res.returncode, "switch_alive": target.alive(),
    }
    print(f"setup  asked {rate:>6.0f}/s  ok {ok:>6}  failed {res.failed:>4}  retrans "
          f"{res.retransmissions:>4}  {m['calls_per_s']:>7.1f} calls/s  switch cpu "
          f"{cpu:6.2f}s = {m['switch_cpu_ms_per_call'] or float('nan'):.3f} ms/call  "
          f"load {m['switch_load'] or 0:.2f}  foreign cpu on its core {foreign:.2f}s", flush=True)
    if res.failed or not ok:
        print(res.describe()[-3000:], file=sys.stderr)
    return m


def run_setup(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        workdir = Path(tmp)
        csv = callers_csv(workdir / "callers.csv", args.callers)
        uas_port = free_port("udp")
        trusted = args.auth == "trusted"
        with switch(workdir, args.target_cpu, args.callers, uas_port if trusted else None) \
                as target, sipp_uas(target, workdir, args.sipp_cpu, uas_port, not trusted):
            print(f"[softswitch] pid {target.pid} on {target.sip}", file=sys.stderr)
            if not args.find_max:
                m = setup_step(target, csv, args.rate, args.duration, args.hold_ms,
                               args.sipp_cpu, args.auth, args.keep, args.target_cpu)
                if m["failed"]:
                    print(target.log_tail(), file=sys.stderr)
                return {"mode": "setup", **m}
            steps, best = [], None
            rate = args.start_rate
            while rate <= args.max_rate:
                m = setup_step(target, csv, rate, args.step_duration, args.hold_ms,
                               args.sipp_cpu, args.auth, None, args.target_cpu)
                steps.append(m)
                if m["failed"] or m["calls_per_s"] < 0.95 * rate or not m["switch_alive"]:
                    break
                best = m
                rate = round(rate * args.step_factor)
                time.sleep(args.hold_ms / 1000 + 2)  # the UAS finishes its timewaits
            return {"mode": "setup-find-max", "max_clean_rate": best and best["rate_asked"],
                    "steps": steps}


# ------------------------------------------------------------------ (b) minimal SIP UAC / UAS


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 2617 digest


def _param(header: str, name: str) -> str | None:
    m = re.search(rf'{name}="?([^",]+)"?', header)
    return m.group(1) if m else None


def digest(challenge: str, method: str, uri: str, user: str, password: str, nc: int = 1) -> str:
    realm, nonce = _param(challenge, "realm") or "", _param(challenge, "nonce") or ""
    opaque = _param(challenge, "opaque")
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    cnonce = os.urandom(6).hex()
    ncs = f"{nc:08x}"
    resp = _md5(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
    out = (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
           f'response="{resp}", algorithm=MD5, qop=auth, nc={ncs}, cnonce="{cnonce}"')
    return out + (f', opaque="{opaque}"' if opaque else "")


def _via(port: int) -> str:
    return f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{os.urandom(6).hex()};rport"


def parse_msg(data: bytes) -> tuple[str, dict[str, list[str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers: dict[str, list[str]] = {}
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type"}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers.setdefault(compact.get(key, key), []).append(value.strip())
    return lines[0], headers, body


def sdp_media(body: bytes) -> tuple[str, int]:
    text = body.decode(errors="replace")
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    if not host or not port:
        raise RuntimeError(f"no audio in SDP:\n{text}")
    return host.group(1), int(port.group(1))


def make_sdp(port: int, sess: int) -> str:
    return ("v=0\r\n"
            f"o=bench {sess} {sess} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n")


class SipClient:
    """A blocking SIP UAC (one socket) and UAS (another), enough for the relay benchmark."""

    def __init__(self, switch_addr: tuple[str, int], caller: tuple[str, str],
                 uas: socket.socket) -> None:
        self.switch = switch_addr
        self.caller = caller
        self.uac = self._sock()
        self.uas = uas
        self.uac_port = self.uac.getsockname()[1]
        self.uas_port = self.uas.getsockname()[1]
        self.dialogs: list[dict[str, str]] = []

    @staticmethod
    def _sock() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return s

    def _recv(self, sock: socket.socket, timeout: float = 5.0) -> bytes:
        sock.settimeout(timeout)
        return sock.recvfrom(65536)[0]

    def _until_final(self, call_id: str, timeout: float = 10.0,
                     on_uas: Any = None) -> tuple[int, dict[str, list[str]], bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.uac, self.uas], [], [], 0.5)
            for s in ready:
                data = s.recvfrom(65536)[0]
                if s is self.uas:
                    if on_uas is not None:
                        on_uas(data)
                    continue
                first, headers, body = parse_msg(data)
                if headers.get("call-id", [""])[0] != call_id or not first.startswith("SIP/"):
                    continue
                status = int(first.split()[1])
                if status >= 200:
                    return status, headers, body
        raise TimeoutError(f"no final response for {call_id}")

    def register_callee(self) -> None:
        user, pw = CALLEE
        host, port = self.switch
        uri = f"sip:{host}:{port}"
        cid = f"reg-{os.urandom(6).hex()}@bench"
        auth = ""
        for cseq in (1, 2):
            msg = (f"REGISTER {uri} SIP/2.0\r\n"
                   f"Via: {_via(self.uas_port)}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag=r{cseq}\r\n"
                   f"To: <sip:{user}@{host}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\n"
                   f"Contact: <sip:{user}@127.0.0.1:{self.uas_port}>\r\nExpires: 3600\r\n{auth}"
                   "Content-Length: 0\r\n\r\n")
            self.uas.sendto(msg.encode(), self.switch)
            first, headers, _ = parse_msg(self._recv(self.uas))
            status = int(first.split()[1])
            if status == 200:
                return
            if status != 401:
                raise RuntimeError(f"REGISTER got {first}")
            auth = (f"Authorization: "
                    f"{digest(headers['www-authenticate'][0], 'REGISTER', uri, user, pw)}\r\n")
        raise RuntimeError("REGISTER refused after credentials")

    def _answer(self, data: bytes, rtp_port: int, found: dict[str, Any]) -> None:
        """UAS side: 200 OK with our SDP to the switch's INVITE (B leg); ACK and the rest: none."""
        first, headers, body = parse_msg(data)
        if not first.startswith("INVITE"):
            if first.startswith("BYE"):
                self._reply(headers, 200, "OK", "")
            return
        if "b_media" not in found:
            found["b_media"] = sdp_media(body)
        tag = found.setdefault("b_tag", os.urandom(4).hex())
        self._reply(headers, 200, "OK", make_sdp(rtp_port, random.randrange(1, 1 << 30)),
                    to_tag=tag)

    def _reply(self, headers: dict[str, list[str]], status: int, reason: str, sdp: str,
               to_tag: str | None = None) -> None:
        to = headers["to"][0] + (f";tag={to_tag}" if to_tag and "tag=" not in headers["to"][0]
                                 else "")
        via = "".join(f"Via: {v}\r\n" for v in headers["via"])
        ctype = "Content-Type: application/sdp\r\n" if sdp else ""
        msg = (f"SIP/2.0 {status} {reason}\r\n{via}From: {headers['from'][0]}\r\nTo: {to}\r\n"
               f"Call-ID: {headers['call-id'][0]}\r\nCSeq: {headers['cseq'][0]}\r\n"
               f"Contact: <sip:{CALLEE[0]}@127.0.0.1:{self.uas_port}>\r\n{ctype}"
               f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        self.uas.sendto(msg.encode(), self.switch)

    def call(self, a_rtp: int, b_rtp: int) -> tuple[tuple[str, int], tuple[str, int]]:
        """One call; (switch address a_rtp must send to, the one b_rtp must send to)."""
        user, pw = self.caller
        host, port = self.switch
        uri = f"sip:{CALLEE[0]}@{host}:{port}"
        cid = f"{os.urandom(8).hex()}@bench"
        ftag = os.urandom(4).hex()
        sdp = make_sdp(a_rtp, random.randrange(1, 1 << 30))
        auth = ""
        found: dict[str, Any] = {}
        for cseq in (1, 2):
            branch = f"z9hG4bK{os.urandom(6).hex()}"
            common_hdrs = (f"Via: SIP/2.0/UDP 127.0.0.1:{self.uac_port};branch={branch};rport\r\n"
                           f"Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag={ftag}\r\n"
                           f"To: <sip:{CALLEE[0]}@{host}>\r\nCall-ID: {cid}\r\n")
            msg = (f"INVITE {uri} SIP/2.0\r\n{common_hdrs}CSeq: {cseq} INVITE\r\n"
                   f"Contact: <sip:{user}@127.0.0.1:{self.uac_port}>\r\n{auth}"
                   f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
            self.uac.sendto(msg.encode(), self.switch)
            status, headers, body = self._until_final(
                cid, on_uas=lambda d: self._answer(d, b_rtp, found))
            to = headers["to"][0]
            ack_hdrs = common_hdrs.replace(f"To: <sip:{CALLEE[0]}@{host}>", f"To: {to}")
            ack = (f"ACK {uri} SIP/2.0\r\n{ack_hdrs}"
                   f"CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n")
            if status == 407 and cseq == 1:
                self.uac.sendto(ack.encode(), self.switch)
                auth = ("Proxy-Authorization: " + digest(headers["proxy-authenticate"][0],
                                                         "INVITE", uri, user, pw) + "\r\n")
                continue
            if status != 200:
                raise RuntimeError(f"INVITE got {status}")
            # The 2xx ACK is a new transaction (RFC 3261 §13.2.2.4): a new branch.
            ack = ack.replace(f"branch={branch}", f"branch=z9hG4bK{os.urandom(6).hex()}")
            self.uac.sendto(ack.encode(), self.switch)
            self.dialogs.append({"cid": cid, "ftag": ftag, "to": to, "uri": uri})
            if "b_media" not in found:
                raise RuntimeError("answered without the B leg's INVITE")
            return sdp_media(body), found["b_media"]
        raise RuntimeError("INVITE refused after credentials")

    def hangup_all(self) -> int:
        host, port = self.switch
        for d in self.dialogs:
            msg = (f"BYE {d['uri']} SIP/2.0\r\n"
                   f"Via: {_via(self.uac_port)}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{self.caller[0]}@{host}>;tag={d['ftag']}\r\n"
                   f"To: {d['to']}\r\nCall-ID: {d['cid']}\r\nCSeq: 3 BYE\r\n"
                   "Content-Length: 0\r\n\r\n")
            self.uac.sendto(msg.encode(), self.switch)
        ok, deadline = 0, time.monotonic() + 5.0
        while ok < len(self.dialogs) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.uac, self.uas], [], [], 0.2)
            for s in ready:
                first, headers, _ = parse_msg(s.recvfrom(65536)[0])
                if s is self.uas and first.startswith("BYE"):
                    self._reply(headers, 200, "OK", "")
                elif s is self.uac and first.startswith("SIP/2.0 200") and \
                        headers.get("cseq", [""])[0].endswith("BYE"):
                    ok += 1
        return ok


# ---------------------------------------------------------------------------- rtpengine (ng)


def bencode(v: Any) -> bytes:
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(type(v))


def bdecode(data: bytes, i: int = 0) -> tuple[Any, int]:
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c in (b"l", b"d"):
        i += 1
        items = []
        while data[i:i + 1] != b"e":
            item, i = bdecode(data, i)
            items.append(item)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


class NgClient:
    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)

    def command(self, **kw: Any) -> dict[str, Any]:
        cookie = os.urandom(6).hex()
        self.sock.sendto(cookie.encode() + b" " + bencode(kw), self.addr)
        for _ in range(3):
            data = self.sock.recvfrom(65536)[0]
            c, _, rest = data.partition(b" ")
            if c.decode() == cookie:
                reply, _ = bdecode(rest)
                if reply.get("result") not in (b"ok", b"pong"):
                    raise RuntimeError(f"rtpengine {kw.get('command')}: {reply}")
                return reply
        raise RuntimeError("no ng reply")

    def ping(self) -> bool:
        try:
            return self.command(command="ping").get("result") == b"pong"
        except (OSError, RuntimeError):
            return False


@contextlib.contextmanager
def rtpengine(workdir: Path, cpu: int | None, ports: str) -> Iterator[Target]:
    ng = free_port("udp")
    low, high = ports.split("-")
    log = workdir / "rtpengine.log"
    argv = [RTPENGINE, "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
            "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng}", f"--port-min={low}",
            f"--port-max={high}", f"--pidfile={workdir / 'rtpengine.pid'}", "--log-level=4",
            "--timeout=600", "--delete-delay=0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(argv, cpu), cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
    target = Target("rtpengine", proc, f"127.0.0.1:{ng}", workdir, log)
    try:
        client = NgClient(("127.0.0.1", ng))
        deadline = time.monotonic() + 10
        while not client.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rtpengine did not start\n{target.log_tail()}")
        yield target
    finally:
        _stop(proc)


# ------------------------------------------------------------------ RTP load generator / meter


@dataclass
class Stream:
    sock: socket.socket
    dest: tuple[str, int]
    sid: int
    ssrc: int
    seq: int = 0
    sent: int = 0
    sent_window: int = 0
    received: int = 0
    received_window: int = 0
    last_transit: int | None = None
    jitter: float = 0.0  # RFC 3550 J, in ns
    buf: bytearray = field(default_factory=lambda: bytearray(PACKET))


def open_rtp_socket(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return s


class RtpPorts:
    """Even local ports above the kernel's ephemeral range, for the generator's sockets."""

    def __init__(self, start: int = 61000) -> None:
        self.next = start

    def take(self) -> socket.socket:
        while self.next < 65530:
            port, self.next = self.next, self.next + 2
            with contextlib.suppress(OSError):
                return open_rtp_socket(port)
        raise OSError("no free generator ports")


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` and its live descendants."""
    user = system = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def core_busy(cpu: int | None) -> float:
    """Busy (non-idle, non-iowait) seconds of core ``cpu`` since boot (/proc/stat)."""
    if cpu is None:
        return 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK
    return 0.0


HIST_US = 10  # histogram bucket width (µs)
HIST_N = 20000  # up to 200 ms


def run_load(streams: list[Stream], duration: float, warmup: float,
             target_pid: int, target_core: int | None) -> dict[str, Any]:
    """Send every stream at 50 packets/s (phases spread evenly), receive, measure."""
    n = len(streams)
    by_fd = {s.sock.fileno(): s.sock for s in streams}
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    slot = PTIME / n
    d_hist = [0] * (HIST_N + 1)  # |D| per packet, window only
    transit_hist = [0] * (HIST_N + 1)
    pack_hdr = struct.Struct("!BBHII").pack_into
    pack_stamp = struct.Struct("!Iq").pack_into
    unpack_stamp = struct.Struct("!Iq").unpack_from
    unpack_ts = struct.Struct("=qq").unpack_from
    for s in streams:
        s.buf[12:] = b"\xff" * 160
    start = time.perf_counter() + 0.05
    wall_window = time.time_ns() + int((0.05 + warmup) * 1e9)
    end_send = start + warmup + duration
    cpu0 = cpu_split(target_pid)
    busy0 = core_busy(target_core)
    busy1 = busy0
    cpu_gen0 = time.process_time()
    cpu_t0 = time.perf_counter()
    k = 0
    min_transit_ns = [1 << 62] * n
    late_ms = 0.0
    perf = time.perf_counter
    time_ns = time.time_ns
    poll = ep.poll
    cpu_mark_taken = False
    cpu_window = 0.0
    cpu1 = cpu0
    draining_until = None
    while True:
        now = perf()
        if now < end_send:
            due_k = int((now - start) / slot) if now >= start else -1
            if due_k - k > n:  # more than one full period behind: count it
                late_ms = max(late_ms, (due_k - k) * slot * 1e3)
            while k <= due_k:
                s = streams[k % n]
                buf = s.buf
                seq = s.seq = (s.seq + 1) & 0xFFFF
                pack_hdr(buf, 0, 0x80, 0, seq, (s.sent * 160) & 0xFFFFFFFF, s.ssrc)
                t = time_ns()
                pack_stamp(buf, 12, s.sid, t)
                try:
                    s.sock.sendto(buf, s.dest)
                except OSError:
                    pass
                s.sent += 1
                if t >= wall_window:
                    s.sent_window += 1
                k += 1
            timeout = max(0.0, start + (k) * slot - perf())
        else:
            if not cpu_mark_taken:
                cpu1 = cpu_split(target_pid)
                busy1 = core_busy(target_core)
                cpu_window = perf() - cpu_t0
                cpu_mark_taken = True
                draining_until = now + 0.5
            if now >= draining_until:  # type: ignore[operator]
                break
            timeout = 0.05
        for fd, _ev in poll(min(timeout, 0.002)):
            sock = by_fd[fd]
            for _ in range(512):
                try:
                    data, anc, _flags, _addr = sock.recvmsg(256, 64)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if len(data) < 24:
                    continue
                src_sid, sent_ns = unpack_stamp(data, 12)
                arr_ns = 0
                for level, kind, cdata in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = unpack_ts(cdata)
                        arr_ns = sec * 1_000_000_000 + nsec
                if not arr_ns:
                    arr_ns = time_ns()
                # The packet belongs to the stream that sent it (src_sid), seen here.
                src = streams[src_sid]
                src.received += 1
                transit = arr_ns - sent_ns
                if transit < min_transit_ns[src_sid]:
                    min_transit_ns[src_sid] = transit
                last = src.last_transit
                src.last_transit = transit
                if sent_ns < wall_window:
                    continue
                src.received_window += 1
                b = transit // (HIST_US * 1000)
                transit_hist[b if 0 <= b < HIST_N else HIST_N] += 1
                if last is not None:
                    d = transit - last
                    if d < 0:
                        d = -d
                    src.jitter += (d - src.jitter) / 16.0  # RFC 3550 §6.4.1
                    b = d // (HIST_US * 1000)
                    d_hist[b if b < HIST_N else HIST_N] += 1
    gen_cpu = time.process_time() - cpu_gen0
    ep.close()
    sent = sum(s.sent_window for s in streams)
    received = sum(s.received_window for s in streams)
    jitters = sorted(s.jitter / 1e6 for s in streams)
    losses = sorted((1 - s.received_window / s.sent_window) if s.sent_window else 0.0
                    for s in streams)

    def pct(hist: list[int], q: float) -> float | None:
        total = sum(hist)
        if not total:
            return None
        want, acc = q * total, 0
        for i, c in enumerate(hist):
            acc += c
            if acc >= want:
                return (i + 1) * HIST_US / 1000  # upper edge, ms
        return None

    def hmax(hist: list[int]) -> float | None:
        for i in range(len(hist) - 1, -1, -1):
            if hist[i]:
                return (i + 1) * HIST_US / 1000
        return None

    relay_user, relay_sys = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    relay_cpu = relay_user + relay_sys
    return {
        "streams": n, "pps_per_stream": 1 / PTIME, "window_s": duration,
        "packets_sent": sent, "packets_received": received,
        "loss_pct": round(100 * (1 - received / sent), 4) if sent else None,
        "worst_stream_loss_pct": round(100 * losses[-1], 3) if losses else None,
        "jitter_D_p50_ms": pct(d_hist, 0.50), "jitter_D_p99_ms": pct(d_hist, 0.99),
        "jitter_D_p999_ms": pct(d_hist, 0.999), "jitter_D_max_ms": hmax(d_hist),
        "rfc3550_J_p99_over_streams_ms": round(jitters[int(0.99 * (n - 1))], 3),
        "rfc3550_J_max_ms": round(jitters[-1], 3),
        "transit_p50_ms": pct(transit_hist, 0.5), "transit_p99_ms": pct(transit_hist, 0.99),
        "transit_max_ms": hmax(transit_hist),
        "relay_cpu_s": round(relay_cpu, 2),
        "relay_user_s": round(relay_user, 2), "relay_sys_s": round(relay_sys, 2),
        "foreign_cpu_on_target_core_s": round(busy1 - busy0 - relay_cpu, 2),
        "relay_load": round(relay_cpu / cpu_window, 3) if cpu_window else None,
        "relay_cpu_us_per_packet": round(relay_cpu / (sum(s.sent for s in streams)) * 1e6, 2),
        "generator_cpu_load": round(gen_cpu / (warmup + duration + 0.55), 3),
        "generator_max_lag_ms": round(late_ms, 1),
    }


def build_streams(pairs: list[tuple[socket.socket, tuple[str, int], socket.socket,
                                    tuple[str, int]]]) -> list[Stream]:
    streams: list[Stream] = []
    for xs, xd, ys, yd in pairs:
        for sock, dest in ((xs, xd), (ys, yd)):
            streams.append(Stream(sock, dest, len(streams), random.getrandbits(32)))
    return streams


def relay_softswitch(args: argparse.Namespace, workdir: Path, ports: RtpPorts) -> dict[str, Any]:
    uas = SipClient._sock()
    trusted = args.auth == "trusted"
    with switch(workdir, args.target_cpu, 1, uas.getsockname()[1] if trusted else None) \
            as target:
        host, port = target.sip.split(":")
        client = SipClient((host, int(port)), (str(FIRST_CALLER), f"pw{FIRST_CALLER}"), uas)
        if not trusted:
            client.register_callee()
        pairs = []
        t0 = time.perf_counter()
        xs, ys = ports.take(), ports.take()  # every caller / every callee stream (see doc)
        for _ in range(args.calls):
            a_dest, b_dest = client.call(xs.getsockname()[1], ys.getsockname()[1])
            pairs.append((xs, a_dest, ys, b_dest))
        print(f"[softswitch] {len(pairs)} calls up in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        try:
            m = run_load(build_streams(pairs), args.duration, args.warmup, target.pid,
                         args.target_cpu)
            m["target"] = "softswitch"
            m["calls"] = len(pairs)
            m["byes_ok"] = client.hangup_all()
            m["target_alive"] = target.alive()
        finally:
            xs.close()
            ys.close()
    return m


def relay_rtpengine(args: argparse.Namespace, workdir: Path, ports: RtpPorts) -> dict[str, Any]:
    with rtpengine(workdir, args.target_cpu, args.rtpengine_ports) as target:
        host, port = target.sip.split(":")
        ng = NgClient((host, int(port)))
        pairs, calls = [], []
        t0 = time.perf_counter()
        xs, ys = ports.take(), ports.take()  # every caller / every callee stream (see doc)
        for i in range(args.calls):
            cid, ftag, ttag = f"bench-{i}-{os.urandom(4).hex()}", f"f{i}", f"t{i}"
            offer = ng.command(command="offer", **{"call-id": cid, "from-tag": ftag},
                               sdp=make_sdp(xs.getsockname()[1], i + 1),
                               replace=["origin", "session-connection"])
            answer = ng.command(command="answer",
                                **{"call-id": cid, "from-tag": ftag, "to-tag": ttag},
                                sdp=make_sdp(ys.getsockname()[1], i + 1),
                                replace=["origin", "session-connection"])
            # The offer as rewritten goes to the callee (y sends there); the answer to x.
            pairs.append((xs, sdp_media(answer["sdp"]), ys, sdp_media(offer["sdp"])))
            calls.append((cid, ftag, ttag))
        print(f"[rtpengine] {len(pairs)} call pairs up in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        try:
            m = run_load(build_streams(pairs), args.duration, args.warmup, target.pid,
                         args.target_cpu)
            m["target"] = "rtpengine"
            m["calls"] = len(pairs)
            deleted = 0
            for cid, ftag, ttag in calls:
                with contextlib.suppress(RuntimeError, OSError):
                    ng.command(command="delete", **{"call-id": cid, "from-tag": ftag,
                                                    "to-tag": ttag})
                    deleted += 1
            m["deleted"] = deleted
            m["target_alive"] = target.alive()
        finally:
            xs.close()
            ys.close()
    return m


def relay_direct(args: argparse.Namespace, workdir: Path, ports: RtpPorts) -> dict[str, Any]:
    """The harness alone: the same streams sent straight to the other side, no relay. Its
    figures are the measurement floor (generator and kernel), not a relay's."""
    xs, ys = ports.take(), ports.take()
    pairs = [(xs, ys.getsockname(), ys, xs.getsockname()) for _ in range(args.calls)]
    try:
        m = run_load(build_streams(pairs), args.duration, args.warmup, os.getpid(), None)
    finally:
        xs.close()
        ys.close()
    m.update(target="direct", calls=len(pairs), relay_cpu_s=None, relay_load=None,
             relay_cpu_us_per_packet=None, relay_user_s=None, relay_sys_s=None,
             foreign_cpu_on_target_core_s=None)
    return m


def report_relay(m: dict[str, Any]) -> None:
    print(f"relay {m['target']:>10}  calls {m['calls']}  streams {m['streams']}  sent "
          f"{m['packets_sent']}  recv {m['packets_received']}  loss {m['loss_pct']}%  "
          f"|D| p50 {m['jitter_D_p50_ms']} p99 {m['jitter_D_p99_ms']} max "
          f"{m['jitter_D_max_ms']} ms  J p99 {m['rfc3550_J_p99_over_streams_ms']} ms  transit "
          f"p50 {m['transit_p50_ms']} p99 {m['transit_p99_ms']} ms  relay cpu "
          f"{m['relay_cpu_s']}s (user {m['relay_user_s']} sys {m['relay_sys_s']}) load "
          f"{m['relay_load']} ({m['relay_cpu_us_per_packet']} "
          f"us/pkt)  gen load {m['generator_cpu_load']} lag {m['generator_max_lag_ms']} ms  "
          f"foreign cpu on target core {m['foreign_cpu_on_target_core_s']}s",
          flush=True)


def run_relay(args: argparse.Namespace) -> dict[str, Any]:
    if args.sipp_cpu is not None:
        os.sched_setaffinity(0, {args.sipp_cpu})  # the generator runs where SIPp would
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    results = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-relay-{name}-") as tmp:
            fn = {"softswitch": relay_softswitch, "rtpengine": relay_rtpengine,
                  "direct": relay_direct}[name]
            try:
                m = fn(args, Path(tmp), RtpPorts())
            except (OSError, RuntimeError, TimeoutError) as exc:
                print(f"[{name}] not measured: {exc}", file=sys.stderr)
                m = {"target": name, "error": str(exc)}
            else:
                report_relay(m)
            results.append(m)
    ok = [r for r in results if "error" not in r]
    out: dict[str, Any] = {"mode": "relay", "results": results}
    by = {r["target"]: r for r in ok}
    if "softswitch" in by and "rtpengine" in by and by["rtpengine"]["relay_cpu_s"]:
        ratio = by["softswitch"]["relay_cpu_s"] / by["rtpengine"]["relay_cpu_s"]
        out["cpu_ratio_softswitch_to_rtpengine"] = round(ratio, 2)
        print(f"relay CPU ratio softswitch/rtpengine: {ratio:.2f}", flush=True)
    return out


# ------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    for p in (sp := sub.add_parser("setup"), rp := sub.add_parser("relay")):
        p.add_argument("--duration", type=float, default=60.0)
        p.add_argument("--target-cpu", type=int, default=1)
        p.add_argument("--sipp-cpu", type=int, default=0,
                       help="core for SIPp (setup) or the RTP generator (relay)")
        p.add_argument("--json", type=Path)
        p.add_argument("--auth", choices=("trusted", "digest"), default="trusted",
                       help="trusted: [sip] trusted 127.0.0.1 and a static callee contact; "
                            "digest: every INVITE challenged (407), the callee registers")
    sp.add_argument("--rate", type=float, default=150.0)
    sp.add_argument("--hold-ms", type=int, default=3000, help="media time per call")
    sp.add_argument("--callers", type=int, default=100)
    sp.add_argument("--find-max", action="store_true")
    sp.add_argument("--keep", type=Path, help="keep the SIPp UAC's files (stat, screen) here")
    sp.add_argument("--start-rate", type=float, default=100.0)
    sp.add_argument("--step-factor", type=float, default=1.25)
    sp.add_argument("--max-rate", type=float, default=2000.0)
    sp.add_argument("--step-duration", type=float, default=10.0)
    rp.add_argument("--calls", type=int, default=500)
    rp.add_argument("--warmup", type=float, default=2.0)
    rp.add_argument("--targets", default="direct,softswitch,rtpengine",
                    help="direct = no relay (the harness's own floor)")
    rp.add_argument("--rtpengine-ports", default="10000-19999")
    args = ap.parse_args()
    out = run_setup(args) if args.mode == "setup" else run_relay(args)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: (str(v) if isinstance(v, Path) else v)
                                                  for k, v in vars(args).items()},
                                         **out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
