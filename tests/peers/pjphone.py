"""A pjsua2 phone in its own process, driven by JSON lines.

Run from the repository root: ``python -m tests.peers.pjphone [--name N] [--log-level L]``.
Commands arrive on stdin, one JSON object a line: ``{"cmd": "register", "req": 1, ...}``.
Every command is answered by ``{"event": "reply", "req": 1, "ok": true, ...}`` (or ``ok:
false`` with ``error``); asynchronous facts are events such as ``{"event": "registered",
"code": 200, ...}``. PJSIP logs go to stderr. See ``tests/peers/phone.py`` for the driver.

pjsua2 runs single-threaded (``threadCnt = 0``, ``mainThreadOnly``): this module's loop
is the only event pump, alternating ``libHandleEvents(10)`` with a non-blocking read of
stdin, so no callback ever races with a command.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import sys
import traceback
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

# The event channel is a private copy of fd 1; fd 1 itself is pointed at stderr so that any
# C-level printf from PJSIP can never corrupt the JSON stream.
_OUT = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)

Json = dict[str, Any]

# pjsua's stateText abbreviates ("DISCONNCTD"); events carry these names instead.
STATE_NAMES = {
    int(pj.PJSIP_INV_STATE_NULL): "null",
    int(pj.PJSIP_INV_STATE_CALLING): "calling",
    int(pj.PJSIP_INV_STATE_INCOMING): "incoming",
    int(pj.PJSIP_INV_STATE_EARLY): "early",
    int(pj.PJSIP_INV_STATE_CONNECTING): "connecting",
    int(pj.PJSIP_INV_STATE_CONFIRMED): "confirmed",
    int(pj.PJSIP_INV_STATE_DISCONNECTED): "disconnected",
}


def emit(event: str, **fields: Any) -> None:
    """Write one event line."""
    _OUT.write(json.dumps({"event": event, **fields}) + "\n")
    _OUT.flush()


def set_tsx_timeout(timeout_ms: int) -> bool:
    """Shorten Timer B/F (64*T1, RFC 3261 §17.1.1.2) so an unanswered request fails fast.

    pjsua2 does not expose ``pjsip_cfg()``; its ``tsx`` block (max_count, t1, t2, t4, td)
    is found in the exported ``pjsip_sip_cfg_var`` by its default values and patched only
    if that pattern occurs exactly once. Must run before ``libInit``.
    """
    lib = ctypes.CDLL(pj._pjsua2.__file__)
    base = ctypes.addressof(ctypes.c_uint.in_dll(lib, "pjsip_sip_cfg_var"))
    words = (ctypes.c_uint * 64).from_address(base)
    hits = [i for i in range(1, 60) if list(words[i:i + 4]) == [500, 4000, 5000, 32000]]
    if len(hits) != 1:
        return False
    t1 = max(timeout_ms // 64, 10)
    words[hits[0]] = t1
    words[hits[0] + 3] = timeout_ms
    return True


class PhoneAccount(pj.Account):  # type: ignore[misc]
    """Account that turns registration and incoming-call callbacks into events."""

    def __init__(self, phone: PhoneProcess, kind: str) -> None:
        super().__init__()
        self.phone = phone
        self.kind = kind  # "local" (no registrar) or "reg"
        self.unregistering = False

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 (pjsua2 name)
        code, reason, expires = int(prm.code), str(prm.reason), int(prm.expiration)
        if self.unregistering:
            # RFC 3261 §10.2.2: the answer to Expires: 0 ends the binding whatever pjsua thinks.
            self.unregistering = False
            emit("unregistered", code=code, reason=reason)
        elif 200 <= code < 300 and expires > 0:
            emit("registered", code=code, reason=reason, expires=expires)
        elif 200 <= code < 300:
            emit("unregistered", code=code, reason=reason)
        else:
            emit("reg_failed", code=code, reason=reason, status=int(prm.status))

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        call = PhoneCall(self.phone, self, prm.callId)
        self.phone.calls[call.cid] = call
        ci = call.getInfo()
        emit("incoming_call", call=call.cid, remote_uri=ci.remoteUri, local_uri=ci.localUri,
             call_id=ci.callIdString)
        answer = self.phone.auto_answer
        if answer:
            op = pj.CallOpParam()
            op.statusCode = answer
            call.answer(op)
        else:
            # 180 so the caller sees ringing while the test decides.
            op = pj.CallOpParam()
            op.statusCode = 180
            call.answer(op)


class FilePlayer(pj.AudioMediaPlayer):  # type: ignore[misc]
    """Player that reports the end of a non-looping file."""

    def __init__(self, call: int, path: str) -> None:
        super().__init__()
        self.call = call
        self.path = path

    def onEof2(self) -> None:  # noqa: N802
        emit("play_done", call=self.call, file=self.path)


class PhoneCall(pj.Call):  # type: ignore[misc]
    """Call that reports state, media and DTMF, and owns its player and recorder."""

    def __init__(self, phone: PhoneProcess, acc: PhoneAccount, call_id: int = -1) -> None:
        if call_id == -1:
            super().__init__(acc)
        else:
            super().__init__(acc, call_id)
        self.phone = phone
        self.acc = acc
        self.cid = self.getId() if call_id == -1 else call_id
        self.player: FilePlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.pending_play: tuple[str, bool] | None = None
        self.pending_record: str | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        ci = self.getInfo()
        emit("call_state", call=self.cid, state=STATE_NAMES.get(int(ci.state), str(ci.state)),
             code=int(ci.lastStatusCode),
             reason=str(ci.lastReason), call_id=ci.callIdString)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Deleting a Call inside its own callback is unsafe: the pump drops it later.
            self.phone.dead_calls.append(self.cid)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        ci = self.getInfo()  # keep the temporary alive while reading ci.media
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = int(mi.status)
            if status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                si = self.getStreamInfo(mi.index)
                ti = self.getMedTransportInfo(mi.index)
                emit("media_active", call=self.cid, index=int(mi.index),
                     local_rtp=str(ti.localRtpName), remote_rtp=str(si.remoteRtpAddress),
                     codec=str(si.codecName))
                if self.pending_play is not None:
                    path, loop = self.pending_play
                    self.pending_play = None
                    self.start_play(path, loop)
                if self.pending_record is not None:
                    path2 = self.pending_record
                    self.pending_record = None
                    self.start_record(path2)
            else:
                emit("media_state", call=self.cid, index=int(mi.index), status=status,
                     hold=status in (pj.PJSUA_CALL_MEDIA_LOCAL_HOLD,
                                     pj.PJSUA_CALL_MEDIA_REMOTE_HOLD))

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        # The NOTIFYs of our REFER (RFC 3515 §2.4.4): the sipfrag's status line.
        emit("transfer_status", call=self.cid, code=int(prm.statusCode),
             reason=str(prm.reason), final=bool(prm.finalNotify))

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        emit("dtmf", call=self.cid, digit=str(prm.digit), method=int(prm.method))

    def audio(self) -> pj.AudioMedia | None:
        """The first active audio stream, or None before media is up."""
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                return self.getAudioMedia(mi.index)
        return None

    def start_play(self, path: str, loop: bool) -> None:
        aud = self.audio()
        if aud is None:
            self.pending_play = (path, loop)
            return
        player = FilePlayer(self.cid, path)
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(aud)
        self.player = player
        emit("playing", call=self.cid, file=path)

    def start_record(self, path: str) -> None:
        aud = self.audio()
        if aud is None:
            self.pending_record = path
            return
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        aud.startTransmit(rec)
        self.recorder = rec
        emit("recording", call=self.cid, file=path)


class PhoneProcess:
    """The endpoint, its transports and accounts, and the command table."""

    def __init__(self, name: str, log_level: int, auto_answer: int, tsx_timeout: int,
                 codecs: list[str]) -> None:
        self.name = name
        self.tsx_patched = False
        self.auto_answer = auto_answer
        self.calls: dict[int, PhoneCall] = {}
        self.dead_calls: list[int] = []
        self.running = True
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        if tsx_timeout:
            self.tsx_patched = set_tsx_timeout(tsx_timeout)
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = f"pjphone-{name}"
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        cfg.medConfig.hasIoqueue = True
        cfg.medConfig.threadCnt = 0
        self.ep.libInit(cfg)
        self.tids: dict[str, int] = {}
        self.ports: dict[str, int] = {}
        for kind, ttype in (("udp", pj.PJSIP_TRANSPORT_UDP), ("tcp", pj.PJSIP_TRANSPORT_TCP)):
            tcfg = pj.TransportConfig()
            tcfg.port = 0
            tcfg.boundAddress = "127.0.0.1"
            tcfg.publicAddress = "127.0.0.1"
            tid = self.ep.transportCreate(ttype, tcfg)
            self.tids[kind] = tid
            self.ports[kind] = int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        if codecs:
            self.set_codecs(codecs)
        # A registrar-less account so phones can call each other directly.
        self.local = PhoneAccount(self, "local")
        self.local.create(self.account_config(f"sip:{name}@127.0.0.1:{self.ports['udp']}", "udp"))
        self.reg: PhoneAccount | None = None
        self.commands: dict[str, Callable[[Json], Json | None]] = {
            "register": self.cmd_register,
            "unregister": self.cmd_unregister,
            "make_call": self.cmd_make_call,
            "answer": self.cmd_answer,
            "hangup": self.cmd_hangup,
            "send_dtmf": self.cmd_send_dtmf,
            "play": self.cmd_play,
            "record": self.cmd_record,
            "stop_record": self.cmd_stop_record,
            "hold": self.cmd_hold,
            "unhold": self.cmd_unhold,
            "xfer": self.cmd_xfer,
            "set_auto_answer": self.cmd_set_auto_answer,
            "quit": self.cmd_quit,
        }

    def set_codecs(self, wanted: list[str]) -> None:
        """Offer only ``wanted`` (prefixes such as "PCMU/8000"), in that order."""
        for ci in self.ep.codecEnum2():
            cid = str(ci.codecId)
            rank = next((i for i, w in enumerate(wanted) if cid.lower().startswith(w.lower())),
                        None)
            self.ep.codecSetPriority(cid, 0 if rank is None else 255 - rank)

    def account_config(self, id_uri: str, transport: str) -> pj.AccountConfig:
        acfg = pj.AccountConfig()
        acfg.idUri = id_uri
        acfg.sipConfig.transportId = self.tids[transport]
        acfg.mediaConfig.transportConfig.port = 0
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
        # No NAT heuristics: on loopback they only rewrite Contact and re-REGISTER.
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.iceEnabled = False
        return acfg

    # -- commands -------------------------------------------------------------------------

    def cmd_register(self, c: Json) -> Json:
        transport = c.get("transport", "udp")
        registrar = c["registrar"]
        domain = c.get("domain") or registrar.rsplit(":", 1)[0]
        self.drop_reg()
        acfg = self.account_config(f"sip:{c['user']}@{domain}", transport)
        acfg.regConfig.registrarUri = f"sip:{registrar};transport={transport}"
        acfg.regConfig.timeoutSec = int(c.get("expires", 300))
        # Report the first failure and stop; a test decides whether to try again.
        acfg.regConfig.retryIntervalSec = 0
        acfg.regConfig.firstRetryIntervalSec = 0
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", c["user"], 0, c["password"]))
        acc = PhoneAccount(self, "reg")
        acc.create(acfg)
        self.reg = acc
        return {}

    def cmd_unregister(self, c: Json) -> Json:
        if self.reg is None:
            raise ValueError("not registered")
        self.reg.unregistering = True
        self.reg.setRegistration(False)
        return {}

    def call_account(self) -> PhoneAccount:
        return self.reg if self.reg is not None else self.local

    def cmd_make_call(self, c: Json) -> Json:
        call = PhoneCall(self, self.call_account())
        op = pj.CallOpParam(True)
        if c.get("delayed_offer"):
            # RFC 3261 §13.2.1: INVITE without SDP; the offer comes in the 2xx, ours in the ACK
            op.opt.flag |= pj.PJSUA_CALL_NO_SDP_OFFER
        call.makeCall(c["uri"], op)
        call.cid = call.getId()
        self.calls[call.cid] = call
        if c.get("play"):
            call.pending_play = (c["play"], bool(c.get("loop", True)))
        if c.get("record"):
            call.pending_record = c["record"]
        return {"call": call.cid}

    def get_call(self, c: Json) -> PhoneCall:
        cid = int(c["call"])
        if cid not in self.calls:
            raise KeyError(f"no call {cid}")
        return self.calls[cid]

    def cmd_answer(self, c: Json) -> Json:
        op = pj.CallOpParam()
        op.statusCode = int(c.get("code", 200))
        self.get_call(c).answer(op)
        return {}

    def cmd_hangup(self, c: Json) -> Json:
        op = pj.CallOpParam()
        if "code" in c:
            op.statusCode = int(c["code"])
        self.get_call(c).hangup(op)
        return {}

    def cmd_send_dtmf(self, c: Json) -> Json:
        prm = pj.CallSendDtmfParam()
        prm.digits = str(c["digits"])
        prm.method = (pj.PJSUA_DTMF_METHOD_SIP_INFO if c.get("method") == "info"
                      else pj.PJSUA_DTMF_METHOD_RFC2833)
        prm.duration = int(c.get("duration", 160))
        self.get_call(c).sendDtmf(prm)
        return {}

    def cmd_play(self, c: Json) -> Json:
        self.get_call(c).start_play(c["file"], bool(c.get("loop", True)))
        return {}

    def cmd_record(self, c: Json) -> Json:
        self.get_call(c).start_record(c["file"])
        return {}

    def cmd_stop_record(self, c: Json) -> Json:
        call = self.get_call(c)
        # Destroying the recorder is what writes the RIFF sizes.
        call.recorder = None
        return {}

    def cmd_hold(self, c: Json) -> Json:
        self.get_call(c).setHold(pj.CallOpParam(True))
        return {}

    def cmd_unhold(self, c: Json) -> Json:
        op = pj.CallOpParam(True)
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.get_call(c).reinvite(op)
        return {}

    def cmd_xfer(self, c: Json) -> Json:
        """Blind transfer: REFER with Refer-To ``c["uri"]`` (RFC 3515)."""
        self.get_call(c).xfer(str(c["uri"]), pj.CallOpParam(True))
        return {}

    def cmd_set_auto_answer(self, c: Json) -> Json:
        self.auto_answer = int(c.get("code", 200))
        return {}

    def cmd_quit(self, c: Json) -> Json:
        self.running = False
        return {}

    # -- pump -------------------------------------------------------------------------------

    def drop_reg(self) -> None:
        if self.reg is not None:
            self.reg.shutdown()
            self.reg = None

    def dispatch(self, line: str) -> None:
        req: Any = None
        try:
            c = json.loads(line)
            req = c.get("req")
            handler = self.commands.get(c.get("cmd", ""))
            if handler is None:
                raise ValueError(f"unknown command {c.get('cmd')!r}")
            result = handler(c) or {}
            emit("reply", req=req, ok=True, **result)
        except pj.Error as exc:
            emit("reply", req=req, ok=False, error=f"{exc.title}: {exc.reason} ({exc.status})")
        except Exception as exc:  # a bad command must not kill the phone
            emit("reply", req=req, ok=False, error=f"{type(exc).__name__}: {exc}",
                 trace=traceback.format_exc(limit=3))

    def run(self) -> None:
        emit("ready", name=self.name, udp_port=self.ports["udp"], tcp_port=self.ports["tcp"],
             pid=os.getpid(), tsx_timeout_patched=self.tsx_patched)
        fd = sys.stdin.fileno()
        buf = b""
        while self.running:
            self.ep.libHandleEvents(10)
            for cid in self.dead_calls:
                call = self.calls.pop(cid, None)
                if call is not None:
                    call.player = None
                    call.recorder = None
            self.dead_calls.clear()
            readable, _, _ = select.select([fd], [], [], 0)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:  # the driver went away
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    self.dispatch(line.decode())
        self.shutdown()

    def shutdown(self) -> None:
        self.ep.hangupAllCalls()
        for _ in range(20):  # let the BYEs go out
            self.ep.libHandleEvents(10)
        for call in self.calls.values():
            call.player = None
            call.recorder = None
        # Every Call and Account must be gone before libDestroy (see notes/test-peers.md).
        self.calls.clear()
        self.drop_reg()
        self.local.shutdown()
        del self.local
        emit("bye")
        self.ep.libDestroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", default="phone")
    ap.add_argument("--log-level", type=int, default=1)
    ap.add_argument("--auto-answer", type=int, default=0, help="answer incoming with this code")
    ap.add_argument("--tsx-timeout", type=int, default=0,
                    help="Timer B/F in ms (default: PJSIP's 32000)")
    ap.add_argument("--codecs", default="PCMU/8000,PCMA/8000",
                    help="comma-separated codec prefixes to offer, in order ('' = pjsua's)")
    args = ap.parse_args()
    code = 0
    try:
        PhoneProcess(args.name, args.log_level, args.auto_answer, args.tsx_timeout,
                     [c for c in args.codecs.split(",") if c]).run()
    except Exception as exc:
        emit("error", error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        code = 1
    _OUT.flush()
    # Skip interpreter teardown: SWIG destructors after libDestroy abort the process.
    os._exit(code)


if __name__ == "__main__":
    main()
