"""The asyncio adapter between the ACD engine (acd/) and the calls (softswitch/b2bua.py).

It owns ONE timer for the engine (re-armed from `engine.get_timer()` after every input) and
carries out the engine's commands with the B2BUA, the relay and the media clock:

- a call to a service number is answered by the switch (`LocalCall`), hears the greeting
  (IVR-1; outside the service's hours the after-hours prompt, then hang-up, IVR-3), then
  the service's keypad menu if it has one (IVR-2: a choice queues the call or plays an
  information announcement), then enters the queue (`CallArrived`, priority class from the
  caller's number, ACD-3) and hears music while it waits, interrupted by the engine's
  `PlayAnnouncement`s ("you are number N, about M minutes", ACD-2);
- `OfferCall` rings the agent's phone (`B2bua.offer_leg`, with auto-answer headers when the
  queue asks), `CancelOffer` stops it, `Connect` stops the music and bridges the legs;
- a queue with `survey` (sampled by `survey_rate`, seeded by the Call-ID) keeps the caller
  when the AGENT hangs up first (`LegEnded`): "rate 1 to 5", the key is stored
  (`Store.write_survey`, ACC-8), then the switch hangs up;
- feature codes (*11 login with agent ID # and PIN #, *12 logout, *13 aux code #, *14
  available; ACD-0, ACD-4) are answered by the switch, which reads RFC 4733 digits from the
  caller's relay leg and plays prompts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acd import commands as cmd
from acd import events as ev
from acd.engine import Engine
from media import g711
from media.dtmf import DtmfReceiver
from media.player import Clip, load_clip
from media.recorder import Recorder
from media.relay import LegMedia, RtpRelay
from media.rtp import RtpError
from reporting.events import ReportEvent
from softswitch.acd_config import (
    AgentEntry,
    MenuAction,
    ServiceEntry,
    build_acd_config,
    verify_pin,
)
from softswitch.b2bua import (
    B2bua,
    Call,
    Command,
    LegAnswered,
    LegEnded,
    LegFailed,
    LocalCall,
    LocalEnded,
    Transferred,
)
from softswitch.config import Config
from softswitch.dialplan import Extension
from softswitch.media_clock import MediaClockDriver
from softswitch.store.base import Store, SurveyResult, Voicemail

__all__ = ["AUTO_ANSWER_HEADERS", "AgentRequestError", "ContactCentre"]

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
    # greeting, menu, menu_again, info, queued, announcing, connected, survey, agent_id, pin,
    # aux, checking, closing
    stage: str = "new"
    service: ServiceEntry | None = None
    queue: str = ""  # the queue it waits in / waited in
    agent: str = ""  # the agent it was connected to
    tries: int = 0  # menu attempts without a valid key
    then: str = "hangup"  # after an information announcement: hangup or menu
    announcements: int = 0  # PlayAnnouncements carried out (ACD-2)
    survey: bool = False  # chosen for the survey (ACC-8)
    timer: asyncio.TimerHandle | None = None  # waiting for a key (menu, survey)
    digits: str = ""
    agent_id: str = ""
    offered: str | None = None  # the agent being rung
    transfer: str = ""  # the extension a transfer node rings
    recorder: Recorder | None = None  # a voicemail node recording the caller
    vm_path: str = ""
    vm_timer: asyncio.TimerHandle | None = None  # voicemail_max_s
    receiver: DtmfReceiver = field(default_factory=DtmfReceiver)

    @property
    def acd_id(self) -> str:
        return self.call.call_id


class ContactCentre:
    def __init__(self, config: Config, b2bua: B2bua, relay: RtpRelay,
                 media_clock: MediaClockDriver, sink: Callable[[list[Command]], None],
                 loop: asyncio.AbstractEventLoop | None = None, *,
                 store: Store | None = None) -> None:
        self.b2bua = b2bua
        self.relay = relay
        self.media_clock = media_clock
        self.sink = sink  # runs B2BUA commands (sends, relay, CDRs)
        self.loop = loop or asyncio.get_running_loop()
        self.store = store  # survey answers (ACC-8)
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
        # Callables given each batch of reporting events (reporting/events.py) as it happens.
        self.report_listeners: list[Callable[[list[ReportEvent]], None]] = []
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
        self._drain_reports()
        self._rearm()
        return out

    def _drain_reports(self) -> None:
        """Hand the engine's reporting events on, so they never pile up in memory.

        Until the event bus exists (issue 5) they go to `report_listeners` and the debug log.
        """
        reports = self.engine.pop_reports()
        if not reports:
            return
        for listener in self.report_listeners:
            listener(reports)
        if log.isEnabledFor(logging.DEBUG):
            for report in reports:
                log.debug("acd event %s", report.to_dict())

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
        self._drain_reports()
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
            headers = AUTO_ANSWER_HEADERS if self.auto_answer(c.agent, c.auto_answer) else ()
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
            s.stage, s.agent = "connected", c.agent
            s.survey = self._sampled(s)
            s.call.keep_a = s.survey  # the agent hanging up leaves the caller to the switch
            self.media_clock.stop(s.call.a_port)
            self.relay.continue_stream(s.call.a_port)
            self.sink(self.b2bua.connect(s.call))
        elif isinstance(c, cmd.Overflow):
            s = self._by_acd.pop(c.call_id, None)
            if s is not None:
                log.info("call %s overflowed (%s)", c.call_id, c.reason)
                self._close_with(s, "unavailable")
        elif isinstance(c, cmd.PlayAnnouncement):
            s = self._by_acd.get(c.call_id)
            if s is not None and s.stage == "queued":
                self._announce(s, c.position, c.ewt)
        elif isinstance(c, cmd.Refused):
            log.info("ACD refused %r: %s", c.event, c.reason)
        else:
            log.debug("ACD: %r", c)

    # -- B2BUA reports -------------------------------------------------------------------------
    def handle(self, c: LocalCall | LegAnswered | LegFailed | LegEnded | LocalEnded
               | Transferred) -> None:
        if isinstance(c, LocalCall):
            self._local_call(c)
            return
        s = self.sessions.get(c.call.id)
        if s is None:
            return
        if isinstance(c, Transferred):
            self._transferred(s, c)
        elif isinstance(c, LegAnswered) and s.stage == "transferring":
            self.media_clock.stop(s.call.a_port)
            self.relay.continue_stream(s.call.a_port)
            s.stage = "connected"
            self.sink(self.b2bua.connect(s.call))
            self.sink(self.b2bua.refer_result(s.call, 200, self.loop.time()))  # an agent's REFER
        elif isinstance(c, LegFailed) and s.stage == "transferring":
            log.info("call %s: transfer to %s failed (%d)", s.acd_id, s.transfer, c.status)
            self.sink(self.b2bua.refer_result(s.call, c.status, self.loop.time()))
            self._close_with(s, "unavailable", self._language(s))
        elif isinstance(c, LegAnswered):
            if s.offered is None or s.acd_id not in self._by_acd:
                self.sink(self.b2bua.hangup(c.call, "offer_withdrawn", self.loop.time(),
                                            time.time()))
                return
            self._engine(ev.AgentAnswered(s.offered, s.acd_id))
        elif isinstance(c, LegFailed):
            agent, s.offered = s.offered, None
            if agent is not None and s.acd_id in self._by_acd:
                self._engine(ev.AgentRejected(agent, s.acd_id, f"sip_{c.status}"))
        elif isinstance(c, LegEnded):
            # The agent hung up first: the caller stays for the survey (Call.keep_a).
            if self._by_acd.pop(s.acd_id, None) is not None:
                self._engine(ev.CallEnded(s.acd_id))
            self.relay.detach(s.call.a_port)
            s.stage = "survey"
            self._play(s, "survey", self._language(s))
        elif isinstance(c, LocalEnded):
            self._stop_recording(s, False)  # the caller hung up while leaving a message
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
        self.relay.tap(call.a_port, lambda data: self._rtp(s, data))
        if c.kind == "service":
            service = self.services.get(c.number)
            if service is None:
                self._close_with(s, "unavailable")
                return
            s.service = service
            if service.hours is not None and not service.hours.is_open(time.time()):
                if service.after_hours_action is None:
                    self._close_with(s, service.after_hours, service.language)
                else:
                    s.stage = "after_hours"
                    self._play(s, service.after_hours, service.language)
                return
            s.stage = "greeting"
            self._play(s, service.greeting, service.language)
            return
        device = call.caller
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
        service = s.service
        if s.stage == "greeting":
            assert service is not None
            if service.menu is not None:
                self._menu(s)
            else:
                assert service.queue is not None
                self._enqueue(s, service.queue)
        elif s.stage == "menu":
            assert service is not None and service.menu is not None
            self._wait_key(s, float(service.menu.timeout_s))
        elif s.stage == "menu_again":
            self._menu(s)
        elif s.stage == "after_hours":
            assert service is not None and service.after_hours_action is not None
            self._menu_action(s, service.after_hours_action)
        elif s.stage == "voicemail":
            s.stage = "beep"
            self.media_clock.play(s.call.a_port, _beep(), s.leg.payload_type, loop=False)
        elif s.stage == "beep":
            self._start_recording(s)
        elif s.stage == "info":
            if s.then == "menu":
                s.tries = 0
                self._menu(s)
            else:
                self._hangup(s)
        elif s.stage == "announcing":
            s.stage = "queued"
            self._moh(s)
        elif s.stage == "survey":
            self._wait_key(s, float(self.config.contact_centre.digit_timeout_s))
        elif s.stage == "closing":
            self._hangup(s)

    def _hangup(self, s: Session) -> None:
        self.sink(self.b2bua.hangup(s.call, "done", self.loop.time(), time.time()))

    def _language(self, s: Session) -> str | None:
        return s.service.language if s.service is not None else None

    def _moh(self, s: Session) -> None:
        self.media_clock.play(s.call.a_port, load_clip(self.config.media.moh),
                              s.leg.payload_type, loop=True)

    def _enqueue(self, s: Session, queue: str, *, priority: int | None = None,
                 service_type: str | None = None) -> None:
        s.stage, s.queue = "queued", queue
        self._moh(s)
        self._by_acd[s.acd_id] = s
        self._engine(ev.CallArrived(s.acd_id, queue, caller=s.call.caller, dialled=s.number,
                                    priority_class=priority, service_type=service_type or ""))

    # -- menu (IVR-2) --------------------------------------------------------------------------
    def _menu(self, s: Session) -> None:
        assert s.service is not None and s.service.menu is not None
        s.stage = "menu"
        self._play(s, s.service.menu.prompt, s.service.language)

    def _wait_key(self, s: Session, timeout: float) -> None:
        self._cancel_key_timer(s)
        s.timer = self.loop.call_later(timeout, self._key_timeout, s)

    def _cancel_key_timer(self, s: Session) -> None:
        if s.timer is not None:
            s.timer.cancel()
            s.timer = None

    def _key_timeout(self, s: Session) -> None:
        s.timer = None
        if s.call.state == "ended":
            return
        if s.stage == "menu":
            self._menu_miss(s, invalid=False)
        elif s.stage == "survey":
            log.info("call %s: no survey answer", s.acd_id)
            self._hangup(s)

    def _menu_key(self, s: Session, digit: str) -> None:
        assert s.service is not None and s.service.menu is not None
        action = s.service.menu.options.get(digit)
        if action is None:
            self._menu_miss(s, invalid=True)
        else:
            self._menu_action(s, action)

    def _menu_miss(self, s: Session, *, invalid: bool) -> None:
        assert s.service is not None and s.service.menu is not None
        menu = s.service.menu
        s.tries += 1
        if s.tries > menu.retries:
            if menu.default is not None:
                self._menu_action(s, menu.default)
            else:
                self._close_with(s, "unavailable", s.service.language)
        elif invalid:
            s.stage = "menu_again"
            self._play(s, menu.invalid, s.service.language)
        else:
            self._menu(s)

    def _menu_action(self, s: Session, action: MenuAction) -> None:
        if action.queue is not None:
            self._enqueue(s, action.queue, priority=action.priority,
                          service_type=action.service_type)
        elif action.transfer is not None:
            self._transfer(s, action.transfer)
        elif action.voicemail:
            s.stage = "voicemail"
            self._play(s, "voicemail", self._language(s))
        else:
            assert action.info is not None
            s.stage, s.then = "info", action.then
            self._play(s, action.info, self._language(s))

    # -- blind transfer by the agent (SIP REFER, softswitch/refer.py) -------------------------
    def _transferred(self, s: Session, c: Transferred) -> None:
        """The agent's leg REFERred the caller to `c.number` and left the call: the agent's
        conversation ends ("transferred", then after-call work as the queue says); an
        extension is rung like a transfer node, a service number queues the call anew."""
        now = self.loop.time()
        log.info("call %s: agent %s transferred it to %s (%s)", s.acd_id, s.agent or "-",
                 c.number, c.kind)
        if self._by_acd.pop(s.acd_id, None) is not None:
            self._engine(ev.CallEnded(s.acd_id, transferred_to=c.number))
        s.offered, s.survey = None, False
        self.relay.detach(s.call.a_port)
        if c.kind == "extension":
            self._transfer(s, c.number)  # outcome: LegAnswered / LegFailed, "transferring"
            return
        service = self.services.get(c.number)
        if service is None or (service.queue is None and service.menu is None):
            self.sink(self.b2bua.refer_result(s.call, 404, now))
            self._close_with(s, "unavailable", self._language(s))
            return
        # The switch took the call into the service: the transfer is done (NOTIFY 200).
        self.sink(self.b2bua.refer_result(s.call, 200, now))
        s.service, s.number, s.tries = service, c.number, 0
        if service.queue is not None:
            self._enqueue(s, service.queue)
        else:
            s.stage = "greeting"
            self._play(s, service.greeting, service.language)

    # -- transfer node: ring an extension, bridge it like an agent --------------------------
    def _transfer(self, s: Session, number: str) -> None:
        route = self.b2bua.dialplan.resolve(number)
        if not isinstance(route, Extension):
            log.info("call %s: transfer to %s: not an extension", s.acd_id, number)
            self._close_with(s, "unavailable", self._language(s))
            return
        s.stage, s.transfer = "transferring", route.user
        self._moh(s)
        self.sink(self.b2bua.offer_leg(s.call, route.user, self.loop.time(), time.time()))

    # -- voicemail node: prompt, beep, record the caller until '#', hang-up or the limit ----
    def _start_recording(self, s: Session) -> None:
        cc = self.config.contact_centre
        day = time.strftime("%Y/%m/%d", time.localtime())
        name = re.sub(r"[^A-Za-z0-9._@-]", "_", s.acd_id)[:200] or "call"
        path = Path(cc.voicemail_dir) / day / f"{name}.wav"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            s.recorder = Recorder(path)
        except OSError:
            log.exception("call %s: voicemail not recorded", s.acd_id)
            self._close_with(s, "unavailable", self._language(s))
            return
        s.stage, s.vm_path = "recording", str(path)
        s.vm_timer = self.loop.call_later(float(cc.voicemail_max_s), self._stop_recording, s,
                                          True)

    def _record_rtp(self, s: Session, data: bytes) -> None:
        pt = data[1] & 0x7F
        if s.recorder is None or pt != s.leg.payload_type or pt not in (g711.PCMU, g711.PCMA):
            return
        start = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= start + 4:  # header extension (RFC 3550 §5.3.1)
            start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        if end <= start:
            return
        s.recorder.write(g711.decode(data[start:end], pt), None)

    def _stop_recording(self, s: Session, then_close: bool) -> None:
        """End the message (the '#' key, the length limit, or the caller hanging up)."""
        if s.vm_timer is not None:
            s.vm_timer.cancel()
            s.vm_timer = None
        recorder, s.recorder = s.recorder, None
        if recorder is None:
            return
        recorder.close()
        assert s.service is not None
        message = Voicemail(s.acd_id, s.number, s.call.caller, s.vm_path, "",
                            round(recorder.frames * 0.020, 3), time.time())
        log.info("call %s: voicemail of %.1f s from %s in %s", s.acd_id, message.seconds,
                 message.caller, message.path)
        task = self.loop.create_task(self._write_voicemail(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if then_close and s.call.state != "ended":
            self._close_with(s, "done", self._language(s))

    async def _write_voicemail(self, message: Voicemail) -> None:
        try:
            digest = await asyncio.to_thread(_sha256, message.path)
            if self.store is not None:
                await self.store.write_voicemail(
                    Voicemail(message.call_id, message.service, message.caller, message.path,
                              digest, message.seconds, message.at))
        except Exception:
            log.exception("voicemail of %s not indexed", message.call_id)

    # -- announcements while queued (ACD-2) ----------------------------------------------------
    def _announce(self, s: Session, position: int, ewt: float) -> None:
        names = ["you-are-number", *_number(position)]
        if ewt > 0:
            names += ["wait-about", *_number(max(1, math.ceil(ewt / 60))), "minutes"]
        try:
            clip = self._join(names, self._language(s))
        except OSError as exc:
            log.error("announcement prompt missing: %s", exc)
            return
        s.stage = "announcing"
        s.announcements += 1
        self.media_clock.play(s.call.a_port, clip, s.leg.payload_type, loop=False)

    def _join(self, names: list[str], language: str | None) -> Clip:
        gap = np.zeros(1600, dtype=np.int16)  # 0.2 s between the words
        parts: list[np.ndarray] = []
        for name in names:
            parts += [load_clip(self.config.contact_centre.prompt(name, language)).samples, gap]
        samples = np.concatenate(parts)
        samples.flags.writeable = False
        return Clip("+".join(names), samples)

    # -- survey (ACC-8) ------------------------------------------------------------------------
    def _sampled(self, s: Session) -> bool:
        entry = next((q for q in self.config.queues if q.name == s.queue), None)
        if entry is None or not entry.survey:
            return False
        return random.Random(s.acd_id).random() < entry.survey_rate

    def _survey_key(self, s: Session, digit: str) -> None:
        if digit not in "12345":
            return
        self._cancel_key_timer(s)
        result = SurveyResult(s.acd_id, s.queue, s.agent, int(digit), time.time())
        log.info("call %s: survey %d for agent %s (%s)", s.acd_id, result.score, s.agent,
                 s.queue)
        if self.store is not None:
            task = self.loop.create_task(self._write_survey(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._close_with(s, "survey-thanks", self._language(s))

    async def _write_survey(self, result: SurveyResult) -> None:
        assert self.store is not None
        try:
            await self.store.write_survey(result)
        except Exception:
            log.exception("survey result of %s not stored", result.call_id)

    # -- keypad (RFC 4733 on the caller's relay leg) -----------------------------------------
    def _rtp(self, s: Session, data: bytes) -> None:
        if s.recorder is not None and len(data) > 12:
            self._record_rtp(s, data)
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
        if s.stage in ("greeting", "menu", "menu_again", "survey"):
            if s.stage == "greeting" and (s.service is None or s.service.menu is None):
                return
            self._cancel_key_timer(s)
            if s.call.a_port in self.media_clock:
                self.media_clock.stop(s.call.a_port)  # keyed during the prompt: barge in
            if s.stage == "survey":
                self._survey_key(s, digit)
            else:
                self._menu_key(s, digit)
            return
        if s.stage in ("voicemail", "beep", "recording"):
            if digit == "#":
                if s.stage == "recording":
                    self._stop_recording(s, True)
                else:  # '#' before the tone: no message
                    self.media_clock.stop(s.call.a_port)
                    self._close_with(s, "done", self._language(s))
            return
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
            if self._pin_failed(device, s.agent_id):
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

    def _pin_failed(self, source: str, agent_id: str) -> bool:
        """Count a wrong agent ID/PIN from `source`; True when that locks the source out."""
        failures = self._failures.get(source, 0) + 1
        self._failures[source] = failures
        log.info("agent login refused: %s from %s (%d)", agent_id, source, failures)
        if failures < self.config.contact_centre.pin_failures:
            return False
        self._failures.pop(source, None)
        self._locked_until[source] = self.loop.time() + self.config.contact_centre.lockout_s
        return True

    # -- the agents' REST API (softswitch/agents_api.py) ---------------------------------------
    def auto_answer(self, agent: str, queue_default: bool) -> bool:
        """The agent's own `auto_answer` when configured, else the queue's."""
        entry = next((a for a in self.config.agents if a.id == agent), None)
        if entry is None or entry.auto_answer is None:
            return queue_default
        return entry.auto_answer

    async def login(self, agent: str, device: str, pin: str, *,
                    source: str | None = None) -> dict[str, Any]:
        """Log `agent` in on `device` after checking `pin` like *11: wrong PINs counted per
        `source` (default: the device) and locked out after `pin_failures`."""
        await self.check_pin(agent, pin, source=source or device)
        self._request(ev.AgentLoggedIn(agent, device=device))
        self.agent_of_device[device] = agent
        log.info("agent %s logged in on %s (API)", agent, device)
        return self.agent_view(agent)

    async def check_pin(self, agent: str, pin: str, *, source: str) -> None:
        """Verify the agent's own PIN (an agent acting on itself), counted like a login."""
        entry = self._entry(agent)
        self._check_locked(source)
        if not await asyncio.to_thread(verify_pin, pin, entry.pin_hash):
            if self._pin_failed(source, agent):
                raise AgentRequestError("locked", f"too many wrong PINs from {source}",
                                        retry_after=self.config.contact_centre.lockout_s)
            raise AgentRequestError("bad_pin", "wrong PIN")
        self._failures.pop(source, None)

    def logout(self, agent: str) -> dict[str, Any]:
        self._entry(agent)
        try:
            device = self.engine.agent(agent).device
        except KeyError:
            device = ""
        self._request(ev.AgentLoggedOut(agent))
        if self.agent_of_device.get(device) == agent:
            del self.agent_of_device[device]
        return self.agent_view(agent)

    def aux(self, agent: str, reason: str) -> dict[str, Any]:
        self._entry(agent)
        self._request(ev.AuxRequested(agent, reason))
        return self.agent_view(agent)

    def available(self, agent: str) -> dict[str, Any]:
        self._entry(agent)
        self._request(ev.AvailableRequested(agent))
        return self.agent_view(agent)

    def acw_end(self, agent: str) -> dict[str, Any]:
        self._entry(agent)
        self._request(ev.AcwEnded(agent))
        return self.agent_view(agent)

    def agents(self) -> list[dict[str, Any]]:
        return [self.agent_view(a.id) for a in self.config.agents]

    def agent_view(self, agent: str) -> dict[str, Any]:
        self._entry(agent)
        try:
            a = self.engine.agent(agent)
        except KeyError:
            return {"id": agent, "state": "logged_out", "reason": "", "device": "",
                    "since": None}
        logged_in = a.state.value != "logged_out"
        return {"id": agent, "state": a.state.value, "reason": a.reason,
                "device": a.device if logged_in else "",
                "since": round(self._wall(a.since), 3) if a.since else None,
                "pending_aux": a.pending_aux, "pending_logout": a.pending_logout}

    def queues(self) -> list[dict[str, Any]]:
        now = self.loop.time()
        out: list[dict[str, Any]] = []
        for q in self.config.queues:
            try:
                waiting = self.engine.waiting(q.name)
            except KeyError:
                waiting = []
            arrivals = [c.arrival for cid in waiting if (c := self.engine.call(cid))]
            out.append({"name": q.name, "waiting": len(waiting),
                        "longest_wait_s": round(now - min(arrivals), 3) if arrivals else 0.0})
        return out

    def _entry(self, agent: str) -> AgentEntry:
        entry = next((a for a in self.config.agents if a.id == agent), None)
        if entry is None:
            raise AgentRequestError("unknown_agent", f"unknown agent {agent}")
        return entry

    def _check_locked(self, source: str) -> None:
        until = self._locked_until.get(source, 0.0)
        if until > self.loop.time():
            raise AgentRequestError("locked", f"PIN entry locked for {source}",
                                    retry_after=math.ceil(until - self.loop.time()))

    def _request(self, event: ev.Event) -> None:
        for c in self._engine(event):
            if isinstance(c, cmd.Refused):
                raise AgentRequestError("conflict", c.reason)

    def _wall(self, mono: float) -> float:
        return time.time() - (self.loop.time() - mono)

    def _forget(self, s: Session) -> None:
        self._cancel_key_timer(s)
        self.sessions.pop(s.call.id, None)
        self._by_port.pop(s.call.a_port, None)
        self.relay.tap(s.call.a_port, None)


class AgentRequestError(Exception):
    """An agent request refused: `kind` is unknown_agent, bad_pin, locked or conflict."""

    def __init__(self, kind: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


_BEEP: Clip | None = None


def _beep() -> Clip:
    """The tone after the voicemail prompt: 0.4 s of 1 kHz, faded in and out."""
    global _BEEP
    if _BEEP is None:
        n = np.arange(3200)
        fade = np.minimum(1.0, np.minimum(n, n[::-1]) / 80)  # 10 ms ramps: no clicks
        samples = (12000 * np.sin(2 * np.pi * 1000 * n / 8000) * fade).astype(np.int16)
        samples.flags.writeable = False
        _BEEP = Clip("beep", samples)
    return _BEEP


def _number(n: int) -> list[str]:
    """Prompt names saying `n`: number-0 .. number-20, digit by digit above."""
    n = max(0, n)
    return [f"number-{n}"] if n <= 20 else [f"number-{d}" for d in str(n)]
