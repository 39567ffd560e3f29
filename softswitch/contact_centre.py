"""The asyncio adapter between the ACD engine (acd/) and the calls (softswitch/b2bua.py).

It owns ONE timer for the engine (re-armed from `engine.get_timer()` after every input) and
carries out the engine's commands with the B2BUA, the relay and the media clock:

- a call to a service number is answered by the switch (`LocalCall`), hears the greeting
  (IVR-1; outside the service's hours the after-hours prompt, then hang-up, IVR-3), then
  enters the queue (`CallArrived`, priority class from the caller's number, ACD-3) and hears
  music while it waits (ACD-2);
- `OfferCall` rings the agent's phone (`B2bua.offer_leg`, with auto-answer headers when the
  queue asks), `CancelOffer` stops it, `Connect` stops the music and bridges the legs;
- feature codes (*11 login with agent ID # and PIN #, *12 logout, *13 aux code #, *14
  available; ACD-0, ACD-4) are answered by the switch, which reads RFC 4733 digits from the
  caller's relay leg and plays prompts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from acd import commands as cmd
from acd import events as ev
from acd.engine import Engine
from media.dtmf import DtmfReceiver
from media.player import load_clip
from media.relay import LegMedia, RtpRelay
from media.rtp import RtpError
from softswitch.acd_config import ServiceEntry, build_acd_config, verify_pin
from softswitch.b2bua import B2bua, Call, Command, LegAnswered, LegFailed, LocalCall, LocalEnded
from softswitch.config import Config
from softswitch.media_clock import MediaClockDriver

__all__ = ["AUTO_ANSWER_HEADERS", "ContactCentre"]

log = logging.getLogger("softswitch.acd")

# What phones auto-answer on: Call-Info answer-after (Polycom, Yealink, Snom; RFC 7462 §5
# registers the parameter) and Alert-Info info=alert-autoanswer (Cisco SPA, Grandstream).
AUTO_ANSWER_HEADERS = (("Call-Info", "<sip:127.0.0.1>;answer-after=0"),
                       ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer"))


@dataclass(eq=False, slots=True)
class Session:
    """One call the switch answered, and where it is in its flow."""

    call: Call
    kind: str  # "service" or "feature"
    number: str
    leg: LegMedia
    stage: str = "new"  # greeting, queued, connected, agent_id, pin, aux, closing
    service: ServiceEntry | None = None
    digits: str = ""
    agent_id: str = ""
    offered: str | None = None  # the agent being rung
    receiver: DtmfReceiver = field(default_factory=DtmfReceiver)

    @property
    def acd_id(self) -> str:
        return self.call.call_id


class ContactCentre:
    def __init__(self, config: Config, b2bua: B2bua, relay: RtpRelay,
                 media_clock: MediaClockDriver, sink: Callable[[list[Command]], None],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.b2bua = b2bua
        self.relay = relay
        self.media_clock = media_clock
        self.sink = sink  # runs B2BUA commands (sends, relay, CDRs)
        self.loop = loop or asyncio.get_running_loop()
        self.config = config
        self.engine = Engine(build_acd_config(config.agents, config.queues,
                                              config.priority_rules))
        self.services = {s.number: s for s in config.services}
        self.sessions: dict[int, Session] = {}  # by B2BUA call id
        self._by_acd: dict[str, Session] = {}
        self._by_port: dict[int, Session] = {}
        self.agent_of_device: dict[str, str] = {}
        self._failures: dict[str, int] = {}  # wrong PINs in a row per phone
        self._locked_until: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        media_clock.on_finished = self._prompt_finished

    # -- configuration ------------------------------------------------------------------------
    def apply_config(self, config: Config) -> None:
        """A reload: new calls use the new queues, agents and services (ACD-1)."""
        self.config = config
        self.services = {s.number: s for s in config.services}
        acd = build_acd_config(config.agents, config.queues, config.priority_rules)
        self._engine(ev.ConfigChanged(acd))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()

    # -- the engine and its one timer ---------------------------------------------------------
    def _engine(self, event: ev.Event) -> list[cmd.Command]:
        out = self.engine.handle_event(event, self.loop.time())
        self._carry_out(out)
        self._rearm()
        return out

    def _rearm(self) -> None:
        when = self.engine.get_timer()
        if self._timer is not None:
            if when is not None and self._timer.when() == when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._carry_out(self.engine.handle_timer(self.loop.time()))
        except Exception:
            log.exception("ACD timer failed")
        self._rearm()

    def _carry_out(self, commands: list[cmd.Command]) -> None:
        now, wall = self.loop.time(), time.time()
        for c in commands:
            try:
                self._command(c, now, wall)
            except Exception:
                log.exception("ACD command %r failed", c)

    def _command(self, c: cmd.Command, now: float, wall: float) -> None:
        if isinstance(c, cmd.OfferCall):
            s = self._by_acd.get(c.call_id)
            if s is None:
                return
            s.offered = c.agent
            headers = AUTO_ANSWER_HEADERS if c.auto_answer else ()
            self.sink(self.b2bua.offer_leg(s.call, c.device, now, wall, headers=headers))
        elif isinstance(c, cmd.CancelOffer):
            s = self._by_acd.get(c.call_id)
            if s is not None and s.offered == c.agent:
                s.offered = None
                self.sink(self.b2bua.cancel_leg(s.call, now))
        elif isinstance(c, cmd.Connect):
            s = self._by_acd.get(c.call_id)
            if s is None:
                return
            s.stage = "connected"
            self.media_clock.stop(s.call.a_port)
            self.relay.continue_stream(s.call.a_port)
            self.sink(self.b2bua.connect(s.call))
        elif isinstance(c, cmd.Overflow):
            s = self._by_acd.pop(c.call_id, None)
            if s is not None:
                log.info("call %s overflowed (%s)", c.call_id, c.reason)
                self._close_with(s, "unavailable")
        elif isinstance(c, cmd.Refused):
            log.info("ACD refused %r: %s", c.event, c.reason)
        else:
            log.debug("ACD: %r", c)

    # -- B2BUA reports -------------------------------------------------------------------------
    def handle(self, c: LocalCall | LegAnswered | LegFailed | LocalEnded) -> None:
        if isinstance(c, LocalCall):
            self._local_call(c)
            return
        s = self.sessions.get(c.call.id)
        if s is None:
            return
        if isinstance(c, LegAnswered):
            if s.offered is None or s.acd_id not in self._by_acd:
                self.sink(self.b2bua.hangup(c.call, "offer_withdrawn", self.loop.time(),
                                            time.time()))
                return
            self._engine(ev.AgentAnswered(s.offered, s.acd_id))
        elif isinstance(c, LegFailed):
            agent, s.offered = s.offered, None
            if agent is not None and s.acd_id in self._by_acd:
                self._engine(ev.AgentRejected(agent, s.acd_id, f"sip_{c.status}"))
        elif isinstance(c, LocalEnded):
            self._forget(s)
            if self._by_acd.pop(s.acd_id, None) is not None:
                self._engine(ev.CallEnded(s.acd_id))

    def _local_call(self, c: LocalCall) -> None:
        call = c.call
        s = Session(call, c.kind, c.number, c.a)
        self.sessions[call.id] = s
        self._by_port[call.a_port] = s
        # Generated audio goes where the caller's SDP says until its RTP arrives (RFC 4961).
        self.relay.set_remote(call.a_port, c.a)
        if c.kind == "service":
            service = self.services.get(c.number)
            if service is None:
                self._close_with(s, "unavailable")
                return
            s.service = service
            if service.hours is not None and not service.hours.is_open(time.time()):
                self._close_with(s, service.after_hours, service.language)
                return
            s.stage = "greeting"
            self._play(s, service.greeting, service.language)
            return
        device = call.caller
        self.relay.tap(call.a_port, lambda data: self._rtp(s, data))
        if c.number == "*11":
            if self._locked_until.get(device, 0.0) > self.loop.time():
                self._close_with(s, "locked")
                return
            s.stage = "agent_id"
            self._play(s, "agent-id")
            return
        agent = self.agent_of_device.get(device)
        if agent is None:
            self._close_with(s, "wrong-pin")
        elif c.number == "*12":
            self._engine(ev.AgentLoggedOut(agent))
            del self.agent_of_device[device]
            self._close_with(s, "logged-out")
        elif c.number == "*13":
            s.stage = "aux"
            s.agent_id = agent
            self._play(s, "aux-code")
        else:
            self._engine(ev.AvailableRequested(agent))
            self._close_with(s, "done")

    # -- prompts -------------------------------------------------------------------------------
    def _play(self, s: Session, name: str, language: str | None = None, *,
              loop: bool = False) -> None:
        path = self.config.contact_centre.prompt(name, language)
        try:
            clip = load_clip(path)
        except OSError:
            log.error("prompt %s missing", path)
            self._prompt_finished(s.call.a_port)
            return
        self.media_clock.play(s.call.a_port, clip, s.leg.payload_type, loop=loop)

    def _close_with(self, s: Session, prompt: str, language: str | None = None) -> None:
        s.stage = "closing"
        self._play(s, prompt, language)

    def _prompt_finished(self, port: int) -> None:
        s = self._by_port.get(port)
        if s is None:
            return
        if s.stage == "greeting":
            self._enqueue(s)
        elif s.stage == "closing":
            self.sink(self.b2bua.hangup(s.call, "done", self.loop.time(), time.time()))

    def _enqueue(self, s: Session) -> None:
        assert s.service is not None
        s.stage = "queued"
        self.media_clock.play(s.call.a_port, load_clip(self.config.media.moh),
                              s.leg.payload_type, loop=True)
        self._by_acd[s.acd_id] = s
        self._engine(ev.CallArrived(s.acd_id, s.service.queue, caller=s.call.caller,
                                    dialled=s.number))

    # -- keypad (RFC 4733 on the caller's relay leg) -----------------------------------------
    def _rtp(self, s: Session, data: bytes) -> None:
        if len(data) < 16 or s.leg.dtmf_payload_type is None:
            return
        if data[1] & 0x7F != s.leg.dtmf_payload_type:
            return
        start = 12 + 4 * (data[0] & 0x0F)
        try:
            digits = s.receiver.receive(int.from_bytes(data[4:8], "big"), data[start:],
                                        self.loop.time())
        except RtpError:
            return
        for d in digits:
            self._digit(s, d.digit)

    def _digit(self, s: Session, digit: str) -> None:
        if s.stage not in ("agent_id", "pin", "aux"):
            return
        if s.call.a_port in self.media_clock:
            self.media_clock.stop(s.call.a_port)  # the caller keyed ahead: barge in
        if digit != "#":
            s.digits += digit
            return
        entry, s.digits = s.digits, ""
        if s.stage == "agent_id":
            s.agent_id, s.stage = entry, "pin"
            self._play(s, "pin")
        elif s.stage == "pin":
            s.stage = "checking"
            task = self.loop.create_task(self._login(s, entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif s.stage == "aux":
            self._engine(ev.AuxRequested(s.agent_id, entry))
            self._close_with(s, "done")

    async def _login(self, s: Session, pin: str) -> None:
        device = s.call.caller
        agent = next((a for a in self.config.agents if a.id == s.agent_id), None)
        # scrypt runs in a thread: the event loop (and the media clock) keep going.
        ok = agent is not None and await asyncio.to_thread(verify_pin, pin, agent.pin_hash)
        if s.call.state == "ended":
            return
        if not ok:
            failures = self._failures.get(device, 0) + 1
            self._failures[device] = failures
            log.info("agent login refused: %s from %s (%d)", s.agent_id, device, failures)
            if failures >= self.config.contact_centre.pin_failures:
                self._failures.pop(device, None)
                self._locked_until[device] = (self.loop.time()
                                              + self.config.contact_centre.lockout_s)
                self._close_with(s, "locked")
            else:
                s.stage = "agent_id"
                self._play(s, "wrong-pin")
            return
        self._failures.pop(device, None)
        out = self._engine(ev.AgentLoggedIn(s.agent_id, device=device))
        if any(isinstance(c, cmd.Refused) for c in out):
            self._close_with(s, "wrong-pin")
            return
        self.agent_of_device[device] = s.agent_id
        log.info("agent %s logged in on %s", s.agent_id, device)
        self._close_with(s, "logged-in")

    def _forget(self, s: Session) -> None:
        self.sessions.pop(s.call.id, None)
        self._by_port.pop(s.call.a_port, None)
        self.relay.tap(s.call.a_port, None)
