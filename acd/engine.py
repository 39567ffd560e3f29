"""The ACD engine, sans-I/O: events and `now` in, commands out, one timer structure.

    commands = engine.handle_event(event, now)     # acd.events → acd.commands
    deadline = engine.get_timer()                  # earliest deadline, or None
    commands = engine.handle_timer(now)            # fire every deadline <= now
    reports  = engine.pop_reports()                # reporting.events, in order

Routing never scans all agents or all calls. A call arriving goes to its queue's strategy,
which keeps that queue's available agents in its own structure; an agent becoming free
looks only at the first call of each lane of each of its queues. Every call and agent state
change produces a reporting event with time, ids, queue, priority class and reason code.

Reload (`ConfigChanged`) applies to calls arriving from then on; a call keeps the
`QueueConfig` it arrived under (ring timeout, wrap-up, max wait, announcements) to its end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from acd import commands as cmd
from acd import events as ev
from acd.agents import BUSY, Agent, AgentState, Trigger
from acd.config import MANUAL, AcdConfig
from acd.errors import AcdError
from acd.priority import Classifier
from acd.queues import Call, CallQueue, CallState
from acd.strategies import SkillsBased, Strategy, make_strategy
from acd.timers import Timer, TimerHeap
from reporting import events as rep

Out = list[cmd.Command]

_RELAX_CAP = 10  # relaxation steps scheduled at most (levels and penalties are small)


class Engine:
    def __init__(
        self, config: AcdConfig, *, keep_reports: bool = True, agent_state_commands: bool = True,
    ) -> None:
        self.config = config
        self.version = 0
        self.keep_reports = keep_reports
        self.agent_state_commands = agent_state_commands
        self._classifier = Classifier()
        self._queues: dict[str, CallQueue] = {}
        self._agents: dict[str, Agent] = {}
        self._calls: dict[str, Call] = {}
        self._timers = TimerHeap()
        self._seq = itertools.count()
        self._order = itertools.count()
        self._reports: list[rep.ReportEvent] = []
        self._handlers: dict[type[ev.Event], Callable[[Any, float, Out], None]] = {
            ev.CallArrived: self._call_arrived,
            ev.CallAbandoned: self._call_abandoned,
            ev.CallEnded: self._call_ended,
            ev.AgentAnswered: self._agent_answered,
            ev.AgentRejected: self._agent_rejected,
            ev.RingNoAnswer: self._ring_no_answer,
            ev.AgentLoggedIn: self._logged_in,
            ev.AgentLoggedOut: self._logged_out,
            ev.AuxRequested: self._aux_requested,
            ev.AvailableRequested: self._available_requested,
            ev.AcwEnded: self._acw_ended,
            ev.ConfigChanged: self._config_changed,
        }
        self._apply_config(config, 0.0, [])

    # -- the sans-I/O surface -----------------------------------------------------------------

    def handle_event(self, event: ev.Event, now: float) -> list[cmd.Command]:
        out: Out = []
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"not an ACD event: {event!r}")
        try:
            handler(event, now, out)
        except AcdError as exc:  # raised before anything changed
            out.append(cmd.Refused(event, str(exc)))
        return out

    def get_timer(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> list[cmd.Command]:
        out: Out = []
        while (timer := self._timers.pop_due(now)) is not None:
            self._fire(timer, now, out)
        return out

    def pop_reports(self) -> list[rep.ReportEvent]:
        reports, self._reports = self._reports, []
        return reports

    # -- read-only views ----------------------------------------------------------------------

    def agent_state(self, agent: str) -> tuple[AgentState, str]:
        a = self._agents[agent]
        return a.state, a.reason

    def agent(self, agent: str) -> Agent:
        return self._agents[agent]

    def queue(self, name: str) -> CallQueue:
        return self._queues[name]

    def waiting(self, queue: str) -> list[str]:
        return [c.id for c in self._queues[queue].waiting()]

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    @property
    def calls(self) -> int:
        return len(self._calls)

    # -- calls --------------------------------------------------------------------------------

    def _call_arrived(self, e: ev.CallArrived, now: float, out: Out) -> None:
        if e.call_id in self._calls:
            raise AcdError(f"call {e.call_id} is already in the ACD")
        queue = self._queues.get(e.queue)
        if queue is None or queue.removed:
            out.append(cmd.Overflow(e.call_id, None, "unknown_queue"))
            self._report(rep.CallOverflowed(
                ts=now, call_id=e.call_id, queue=e.queue, reason="unknown_queue"))
            return
        cfg = queue.cfg
        if e.priority_class is not None:
            klass, rule = e.priority_class, "call_flow"
        else:
            klass, rule = self._classifier.classify(e.caller, e.dialled)
        call = Call(e.call_id, cfg, e.caller, e.dialled, e.service_type, klass, rule, now,
                    next(self._seq))
        self._calls[call.id] = call
        overflow: tuple[str | None, str] | None = None
        if cfg.when_no_agents == "overflow" and not queue.staffed:
            overflow = (cfg.no_agents_destination, "no_agents")
        elif cfg.max_length is not None and len(queue) >= cfg.max_length:
            overflow = (cfg.max_length_destination, "max_length")
        position = 0 if overflow else len(queue) + 1  # refined below once queued
        if overflow is None:
            queue.push(call)
            position = queue.position(call)
        self._report(rep.CallQueued(
            ts=now, call_id=call.id, queue=call.queue, priority_class=klass, caller=e.caller,
            dialled=e.dialled, service_type=e.service_type, position=position, priority_rule=rule))
        if overflow is not None:
            self._overflow(call, overflow[0], overflow[1], now, out)
            return
        if cfg.announce_welcome:
            out.append(cmd.PlayAnnouncement(call.id, call.queue, "welcome", position,
                                            queue.ewt(position)))
        if cfg.max_wait is not None:
            call.wait_timer = self._timers.schedule(now + cfg.max_wait, "max_wait", call)
        if cfg.announce_interval:
            call.announce_timer = self._timers.schedule(
                now + cfg.announce_interval, "announce", call)
        if cfg.relax_interval and isinstance(queue.strategy, SkillsBased):
            call.relax_timer = self._timers.schedule(now + cfg.relax_interval, "relax", call)
        self._dispatch_queue(queue, now, out)

    def _call_abandoned(self, e: ev.CallAbandoned, now: float, out: Out) -> None:
        call = self._call(e.call_id)
        if call.state is CallState.CONNECTED:
            raise AcdError(f"call {call.id} is connected: it ends, it is not abandoned")
        self._abandon(call, now, out)

    def _abandon(self, call: Call, now: float, out: Out) -> None:
        ringing = self._withdraw(call, "abandoned", out)
        self._finish(call)
        self._report(rep.CallAbandoned(
            ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
            wait=now - call.arrival))
        for agent in ringing:
            self._release(agent, Trigger.CANCEL, now, out, call)

    def _call_ended(self, e: ev.CallEnded, now: float, out: Out) -> None:
        call = self._call(e.call_id)
        if call.state is not CallState.CONNECTED:
            self._abandon(call, now, out)  # the caller hung up before an agent answered
            return
        assert call.agent is not None
        agent = self._agents[call.agent]
        talk = now - call.answered_at
        agent.talk_time += talk
        agent.calls_by_queue[call.queue] = agent.calls_by_queue.get(call.queue, 0) + 1
        acw = agent.acw if agent.acw is not None else call.cfg.acw
        queue = self._queues.get(call.queue)
        if queue is not None:
            queue.record_handling(talk + (acw if acw != MANUAL else 0.0))
        self._finish(call)
        transferred = "transferred" if e.transferred_to else ""
        self._report(rep.CallCompleted(
            ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
            agent=agent.id, talk=talk, reason=transferred))
        if e.transferred_to:
            self._report(rep.CallTransferred(
                ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
                agent=agent.id, target=e.transferred_to))
        agent.call = None
        if acw > 0:
            self._transition(agent, Trigger.WRAP, now, out, call=call)
            if acw != MANUAL:
                agent.acw_timer = self._timers.schedule(now + acw, "acw", agent)
        else:
            self._release(agent, Trigger.FREE, now, out, call)

    def _agent_answered(self, e: ev.AgentAnswered, now: float, out: Out) -> None:
        agent, call = self._offer_of(e.agent, e.call_id)
        for timer in (call.ring_timer, call.wait_timer, call.announce_timer, call.relax_timer):
            self._timers.cancel(timer)
        others = [self._agents[a] for a in call.offered if a != agent.id]
        call.offered = []
        call.state = CallState.CONNECTED
        call.agent = agent.id
        call.answered_at = now
        agent.misses = 0
        self._transition(agent, Trigger.ANSWER, now, out, call=call)
        out.append(cmd.Connect(call.id, agent.id, agent.device))
        self._report(rep.CallAnswered(
            ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
            agent=agent.id, wait=now - call.arrival))
        for other in others:
            out.append(cmd.CancelOffer(call.id, other.id, "answered_elsewhere"))
            other.call = None
            self._release(other, Trigger.CANCEL, now, out, call)

    def _agent_rejected(self, e: ev.AgentRejected, now: float, out: Out) -> None:
        agent, call = self._offer_of(e.agent, e.call_id)
        self._offers_failed(call, [agent], e.reason, False, now, out)

    def _ring_no_answer(self, e: ev.RingNoAnswer, now: float, out: Out) -> None:
        agent, call = self._offer_of(e.agent, e.call_id)
        self._offers_failed(call, [agent], "ring_no_answer", False, now, out)

    # -- agents -------------------------------------------------------------------------------

    def _logged_in(self, e: ev.AgentLoggedIn, now: float, out: Out) -> None:
        agent = self._agents.get(e.agent)
        conf = self.config.agents.get(e.agent)
        if agent is None:
            if e.queues is None:
                raise AcdError(f"unknown agent {e.agent}")
            agent = self._agents[e.agent] = Agent(e.agent, next(self._order))
        if agent.state is not AgentState.LOGGED_OUT:
            raise AcdError(f"agent {e.agent} is already logged in on {agent.device}")
        agent.device = e.device
        agent.login_override = e.queues is not None
        if e.queues is not None:
            agent.queues = dict(e.queues)
        else:
            agent.queues = dict(conf.queues) if conf else {}
        if e.skills is not None:
            agent.skills = dict(e.skills)
        else:
            agent.skills = dict(conf.skills) if conf else {}
        agent.acw = conf.acw if conf else None
        agent.misses = 0
        for name in agent.queues:
            queue = self._queues.get(name)
            if queue is not None and not queue.removed:
                queue.staffed.add(agent.id)
        self._transition(agent, Trigger.LOGIN, now, out)

    def _logged_out(self, e: ev.AgentLoggedOut, now: float, out: Out) -> None:
        agent = self._agent(e.agent)
        if agent.state is AgentState.LOGGED_OUT:
            raise AcdError(f"agent {agent.id} is not logged in")
        if agent.state in BUSY:
            agent.pending_logout = True
            return
        self._timers.cancel(agent.acw_timer)
        self._transition(agent, Trigger.LOGOUT, now, out)

    def _aux_requested(self, e: ev.AuxRequested, now: float, out: Out) -> None:
        agent = self._agent(e.agent)
        if agent.state is AgentState.LOGGED_OUT:
            raise AcdError(f"agent {agent.id} is not logged in")
        if agent.state in BUSY:
            agent.pending_aux = e.reason  # ACD-4: applied when the call (and wrap-up) ends
            return
        self._timers.cancel(agent.acw_timer)
        self._transition(agent, Trigger.PAUSE, now, out, reason=e.reason)

    def _available_requested(self, e: ev.AvailableRequested, now: float, out: Out) -> None:
        agent = self._agent(e.agent)
        if agent.state in BUSY:
            if agent.pending_aux is None and not agent.pending_logout:
                raise AcdError(f"agent {agent.id} is {agent.state.value}")
            agent.pending_aux = None  # changed their mind before the call ended
            return
        if agent.state not in (AgentState.AUX, AgentState.ACW):
            raise AcdError(f"agent {agent.id} is {agent.state.value}")
        self._timers.cancel(agent.acw_timer)
        self._release(agent, Trigger.FREE, now, out)

    def _acw_ended(self, e: ev.AcwEnded, now: float, out: Out) -> None:
        agent = self._agent(e.agent)
        if agent.state is not AgentState.ACW:
            raise AcdError(f"agent {agent.id} is not in after-call work")
        self._timers.cancel(agent.acw_timer)
        self._release(agent, Trigger.FREE, now, out)

    # -- configuration ------------------------------------------------------------------------

    def _config_changed(self, e: ev.ConfigChanged, now: float, out: Out) -> None:
        self._apply_config(e.config, now, out)

    def _apply_config(self, config: AcdConfig, now: float, out: Out) -> None:
        # Validate everything before changing anything.
        fresh: dict[str, Strategy] = {}
        for name, qcfg in config.queues.items():
            if name != qcfg.name:
                raise AcdError(f"queue key {name!r} names queue {qcfg.name!r}")
            old = self._queues.get(name)
            if old is None or old.cfg.strategy != qcfg.strategy or old.cfg.seed != qcfg.seed:
                try:
                    fresh[name] = make_strategy(qcfg)
                except ValueError as exc:
                    if self.version == 0:
                        raise
                    raise AcdError(str(exc)) from None
        self.config = config
        self.version += 1
        self._classifier = Classifier(config.priority_rules, config.default_class,
                                      config.country_code)
        listed = [a for a in self._agents.values() if a.listed]
        for agent in listed:
            self._unlist(agent)
        for name, qcfg in config.queues.items():
            queue = self._queues.get(name)
            if queue is None:
                self._queues[name] = CallQueue(qcfg, fresh[name])
                continue
            queue.cfg = qcfg
            queue.removed = False
            if name in fresh:
                queue.strategy = fresh[name]
        for name, queue in self._queues.items():
            if name not in config.queues and not queue.removed:
                queue.removed = True
                for call in list(queue.waiting()):
                    self._overflow(call, call.cfg.max_wait_destination, "queue_removed", now, out)
        for name, conf in config.agents.items():
            member = self._agents.get(name)
            if member is None:
                member = self._agents[name] = Agent(name, next(self._order))
            member.acw = conf.acw
            if member.state is not AgentState.LOGGED_OUT and not member.login_override:
                member.queues = dict(conf.queues)
                member.skills = dict(conf.skills)
        for queue in self._queues.values():
            queue.staffed.clear()
        for agent in self._agents.values():
            if agent.state is not AgentState.LOGGED_OUT:
                for name in agent.queues:
                    queue = self._queues.get(name)
                    if queue is not None and not queue.removed:
                        queue.staffed.add(agent.id)
        self._report(rep.ConfigApplied(ts=now, component="acd", version=self.version))
        for agent in listed:
            if agent.state is AgentState.AVAILABLE and not agent.listed:
                self._on_available(agent, now, out)
        for queue in list(self._queues.values()):
            if not queue.removed:
                self._dispatch_queue(queue, now, out)

    # -- timers -------------------------------------------------------------------------------

    def _fire(self, timer: Timer, now: float, out: Out) -> None:
        kind = timer.kind
        if kind == "acw":
            agent = timer.target
            assert isinstance(agent, Agent)
            agent.acw_timer = None
            self._release(agent, Trigger.FREE, now, out)
            return
        call = timer.target
        assert isinstance(call, Call)
        if kind == "ring":
            call.ring_timer = None
            agents = [self._agents[a] for a in call.offered]
            self._offers_failed(call, agents, "ring_no_answer", True, now, out)
        elif kind == "max_wait":
            call.wait_timer = None
            self._overflow(call, call.cfg.max_wait_destination, "max_wait", now, out)
        elif kind == "announce":
            interval = call.cfg.announce_interval
            assert interval
            call.announce_timer = self._timers.schedule(now + interval, "announce", call)
            if call.state is CallState.WAITING:
                queue = self._queues[call.queue]
                position = queue.position(call)
                out.append(cmd.PlayAnnouncement(call.id, call.queue, "position", position,
                                                queue.ewt(position)))
        elif kind == "relax":
            call.relax_steps += 1
            interval = call.cfg.relax_interval
            assert interval
            if call.relax_steps < _RELAX_CAP:
                call.relax_timer = self._timers.schedule(now + interval, "relax", call)
            if call.state is CallState.WAITING:
                self._dispatch_queue(self._queues[call.queue], now, out)

    # -- routing ------------------------------------------------------------------------------

    def _dispatch_queue(self, queue: CallQueue, now: float, out: Out) -> None:
        """Offer waiting calls of `queue` while its strategy finds agents for them."""
        strategy = queue.strategy
        while len(queue) and strategy.live > 0:
            for call in queue.heads():
                agents = strategy.select(call, now)
                if agents:
                    self._offer(call, agents, now, out)
                    break
            else:
                return

    def _best_call_for(self, agent: Agent, now: float) -> Call | None:
        """The best waiting call `agent` may take, across its queues (weight, then key)."""
        best: Call | None = None
        best_rank: tuple[int, tuple[int, float, int]] | None = None
        for name in agent.queues:
            queue = self._queues.get(name)
            if queue is None or queue.removed or not len(queue):
                continue
            strategy = queue.strategy
            for call in queue.heads():
                if strategy.accepts(agent, call, now):
                    rank = (-queue.cfg.weight, call.key)
                    if best_rank is None or rank < best_rank:
                        best, best_rank = call, rank
                    break
        return best

    def _on_available(self, agent: Agent, now: float, out: Out) -> None:
        call = self._best_call_for(agent, now)
        if call is not None:
            self._offer(call, [agent], now, out)
            return
        for name in agent.queues:
            queue = self._queues.get(name)
            if queue is not None and not queue.removed:
                queue.strategy.add(agent, now)
        agent.listed = True

    def _unlist(self, agent: Agent) -> None:
        if agent.listed:
            agent.listed = False
            for name in agent.queues:
                queue = self._queues.get(name)
                if queue is not None and not queue.removed:
                    queue.strategy.remove(agent)

    def _offer(self, call: Call, agents: list[Agent], now: float, out: Out) -> None:
        queue = self._queues[call.queue]
        if call.state is CallState.WAITING:
            queue.remove(call)
        call.state = CallState.OFFERING
        cfg = call.cfg
        wait = now - call.arrival
        for agent in agents:
            call.offered.append(agent.id)
            agent.call = call
            self._transition(agent, Trigger.OFFER, now, out, call=call)
            queue.strategy.offered(agent)
            out.append(cmd.OfferCall(call.id, agent.id, agent.device, call.queue,
                                     cfg.ring_timeout, cfg.auto_answer, call.caller,
                                     call.priority_class))
            self._report(rep.CallOffered(
                ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
                agent=agent.id, wait=wait))
        self._timers.cancel(call.ring_timer)
        call.ring_timer = self._timers.schedule(now + cfg.ring_timeout, "ring", call)

    def _offers_failed(
        self, call: Call, agents: list[Agent], reason: str, cancel: bool, now: float, out: Out,
    ) -> None:
        """Offers of `call` to `agents` ended unanswered: requeue the call once nobody rings,
        then release the agents (paused after too many misses in a row)."""
        for agent in agents:
            call.offered.remove(agent.id)
            agent.call = None
            if cancel:
                out.append(cmd.CancelOffer(call.id, agent.id, reason))
            self._report(rep.CallOfferFailed(
                ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
                agent=agent.id, reason=reason))
        counts = call.cfg.strategy != "ring_all"  # ringing everyone is nobody's miss
        requeue = not call.offered
        if requeue:
            self._timers.cancel(call.ring_timer)
            call.ring_timer = None
        # Release the agents while the call is out of the queue, then queue it: the strategy
        # then chooses among everyone free (a missed agent went to the back of longest-idle).
        for agent in agents:
            if counts:
                agent.misses += 1
            limit = call.cfg.max_misses
            if counts and limit and agent.misses >= limit and not agent.pending_logout:
                agent.misses = 0
                self._transition(agent, Trigger.PAUSE, now, out, reason=self.config.rna_reason,
                                 call=call)
            else:
                self._release(agent, Trigger.MISS, now, out, call)
        if requeue:
            call.state = CallState.WAITING
            queue = self._queues[call.queue]
            if queue.removed:
                self._overflow(call, call.cfg.max_wait_destination, "queue_removed", now, out)
            else:
                queue.push(call)
                self._dispatch_queue(queue, now, out)

    def _overflow(
        self, call: Call, destination: str | None, reason: str, now: float, out: Out,
    ) -> None:
        ringing = self._withdraw(call, reason, out)
        self._finish(call)
        out.append(cmd.Overflow(call.id, destination, reason))
        self._report(rep.CallOverflowed(
            ts=now, call_id=call.id, queue=call.queue, priority_class=call.priority_class,
            destination=destination, wait=now - call.arrival, reason=reason))
        for agent in ringing:
            self._release(agent, Trigger.CANCEL, now, out, call)

    def _withdraw(self, call: Call, reason: str, out: Out) -> list[Agent]:
        """Take a call out of its queue or off the agents ringing; returns those agents."""
        if call.state is CallState.WAITING:
            try:
                self._queues[call.queue].remove(call)
            except KeyError:
                pass  # overflowed on arrival: never queued
            return []
        ringing = [self._agents[a] for a in call.offered]
        for agent in ringing:
            out.append(cmd.CancelOffer(call.id, agent.id, reason))
            agent.call = None
        call.offered = []
        return ringing

    def _finish(self, call: Call) -> None:
        for timer in (call.ring_timer, call.wait_timer, call.announce_timer, call.relax_timer):
            self._timers.cancel(timer)
        call.state = CallState.ENDED
        self._calls.pop(call.id, None)

    # -- agent transitions --------------------------------------------------------------------

    def _release(
        self, agent: Agent, default: Trigger, now: float, out: Out, call: Call | None = None,
    ) -> None:
        trigger, reason = agent.release_trigger(default)
        self._transition(agent, trigger, now, out, reason=reason, call=call)

    def _transition(
        self, agent: Agent, trigger: Trigger, now: float, out: Out, *, reason: str = "",
        call: Call | None = None,
    ) -> None:
        previous = agent.state
        self._unlist(agent)
        state = agent.apply(trigger, now, reason)
        if self.keep_reports:
            self._reports.append(rep.AgentStateChanged(
                ts=now, agent=agent.id, state=state.value, previous=previous.value,
                reason=agent.reason, device=agent.device,
                queue=call.queue if call else "", call_id=call.id if call else "",
                priority_class=call.priority_class if call else 0))
        if self.agent_state_commands:
            out.append(cmd.SetAgentState(agent.id, agent.device, state.value, agent.reason))
        if state is AgentState.AVAILABLE:
            self._on_available(agent, now, out)
        elif state is AgentState.LOGGED_OUT:
            self._timers.cancel(agent.acw_timer)
            for name in agent.queues:
                queue = self._queues.get(name)
                if queue is None or queue.removed:
                    continue
                queue.staffed.discard(agent.id)
                if not queue.staffed:
                    for waiting in list(queue.waiting()):
                        if waiting.cfg.when_no_agents == "overflow":
                            self._overflow(waiting, waiting.cfg.no_agents_destination,
                                           "no_agents", now, out)

    # -- helpers ------------------------------------------------------------------------------

    def _report(self, event: rep.ReportEvent) -> None:
        if self.keep_reports:
            self._reports.append(event)

    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AcdError(f"unknown agent {agent_id}")
        return agent

    def _call(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise AcdError(f"unknown call {call_id}")
        return call

    def _offer_of(self, agent_id: str, call_id: str) -> tuple[Agent, Call]:
        agent = self._agent(agent_id)
        call = self._call(call_id)
        if (call.state is not CallState.OFFERING or agent.id not in call.offered
                or agent.state is not AgentState.RINGING):
            raise AcdError(f"call {call_id} is not ringing at agent {agent_id}")
        return agent, call
