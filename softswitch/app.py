"""The switch process: wires config, store, SIP core, transports and HTTP, and owns the clocks.

``Switch`` is the only object that reads the clock and arms timers: it keeps ONE timer handle
for the SIP core (re-armed after every input from ``core.get_timer()``) plus two slow
housekeeping tasks (store write-behind, expiry sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import uvicorn

from media.player import load_clip
from media.relay import RtpRelay
from reporting.bus import EventBus, LocalBus, NatsBus
from reporting.events import CallEnded, ReportEvent
from reporting.service import (
    ReportingService,
    ReportingSettings,
    replay_start,
    settings_from_config,
)
from softswitch.b2bua import (
    B2bua,
    Bridge,
    Command,
    LegAnswered,
    LegEnded,
    LegFailed,
    LocalCall,
    LocalEnded,
    PlayMoh,
    ReleaseMedia,
    StopMoh,
    Transferred,
    WriteCdr,
    static_contact_host,
)
from softswitch.config import Config, ConfigError, load_config
from softswitch.contact_centre import ContactCentre
from softswitch.core import SipCore
from softswitch.dialplan import Dialplan
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.media_clock import MediaClockDriver
from softswitch.registrar import AuthThrottle, Registrar, RegistrarSettings
from softswitch.sip.digest import DigestAuthenticator
from softswitch.sip.message import Peer
from softswitch.sip.timers import Timers
from softswitch.sip.transaction import TransactionLayer
from softswitch.store import open_store
from softswitch.store.base import Cdr, Store
from softswitch.trace import Tracer
from softswitch.transport import Transports

__all__ = ["Switch", "configure_logging"]

log = logging.getLogger("softswitch")

FLUSH_INTERVAL = 0.2  # seconds between write-behind batches of binding changes
SWEEP_INTERVAL = 1.0  # seconds between expiry sweeps
DNS_REFRESH_INTERVAL = 300.0  # seconds between lookups of static contacts' host names


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z"
        ))
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The trace logger speaks whenever a target is set, whatever the level.
    logging.getLogger("softswitch.trace").setLevel(logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Third-party chatter (aiosqlite logs every statement at DEBUG) stays out of our log.
    for name in ("aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the switch owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


# Keys a reload cannot apply to a running process (reload() warns, naming them).
# Reporting: they shape stored rows (interval length, T, S, formula, the local day); a
# `softswitch reports rebuild` recomputes stored days with the new values after a restart.
RESTART_KEYS: tuple[tuple[str, str], ...] = (
    ("store", "url"), ("http", "listen"),
    ("reporting", "interval_min"), ("reporting", "sl_threshold_s"),
    ("reporting", "sl_thresholds"), ("reporting", "short_abandon_s"),
    ("reporting", "sl_formula"), ("web", "timezone"),
)


def _restart_keys(running: Config, new: Config, *, embedded: bool) -> list[tuple[str, str]]:
    """(``[section] key``, warning) of the RESTART_KEYS whose value in `new` differs from
    the one the process runs with (`running`: its config at start)."""
    out = []
    for section, key in RESTART_KEYS:
        if getattr(getattr(running, section), key) == getattr(getattr(new, section), key):
            continue
        name = f"[{section}] {key}"
        if section == "web":
            # Pages and /cdr show times in the new zone at once; reporting days do not move.
            text = (f"{name} changed: pages show times in the new zone now, but reporting "
                    f"days and intervals take it at the next restart (until then they keep "
                    f"{getattr(running.web, key)})")
        elif section == "reporting" and not embedded:
            text = (f"{name} changed: takes effect at the next restart of `softswitch "
                    f"reporting` (it reads its config at start)")
        else:
            text = (f"{name} changed: takes effect at the next restart; the running value "
                    f"({getattr(getattr(running, section), key)!r}) stays until then")
        out.append((name, text))
    return out


class Switch:
    def __init__(self, config_path: str | Path, config: Config | None = None) -> None:
        self.config_path = Path(config_path)
        self.config: Config = config if config is not None else load_config(self.config_path)
        # What RESTART_KEYS run with: a reload compares against these, not the last reload.
        self.boot_config: Config = self.config
        self.store: Store | None = None
        self.core: SipCore | None = None
        self.transports: Transports | None = None
        self.location = LocationService()
        self.directory = Directory.from_config(self.config)
        self.throttle = AuthThrottle()
        self.tracer = Tracer(self.config.log.trace)
        self.running = False
        self.started_at = time.time()
        self._started_mono = 0.0
        self.reloads_applied = 0
        self.reloads_refused = 0
        self.last_reload: dict[str, Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._http: _EmbeddedServer | None = None
        self._stopped = asyncio.Event()
        self._closed = False
        self._reload_lock = asyncio.Lock()
        self.bound: list[tuple[str, str, int]] = []
        self.http_bound: tuple[str, int] | None = None
        self.relay: RtpRelay | None = None
        # The one media clock (music on hold): one timer for every generated stream.
        self.media_clock: MediaClockDriver | None = None
        self.b2bua: B2bua | None = None
        self.contact_centre: ContactCentre | None = None
        self._cdr_tasks: set[asyncio.Task[None]] = set()
        self.cdrs_written = 0
        self.cdrs_failed = 0
        # Reporting events: published on the bus, written behind to the store's event log.
        self.bus: EventBus | None = None
        self._event_log: list[ReportEvent] = []
        self.events_logged = 0
        # The CMS reporting service when [reporting] embedded (else `softswitch reporting`).
        self.reporting: ReportingService | None = None
        self._reporting_task: asyncio.Task[None] | None = None
        self._reporting_feed: Any = None  # StreamFeed when the bus is NATS

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._started_mono = loop.time()
        log.info("starting softswitch with %s (%d users)", self.config_path, len(self.directory))
        self.store = open_store(cfg.store.url)
        await self.store.open()
        restored = self.location.load(await self.store.load_bindings(), time.time())
        log.info("store %s open, %d bindings restored", _redact(cfg.store.url), restored)

        secret = await self._nonce_secret()
        auth = DigestAuthenticator(
            cfg.sip.domain, secret=secret, algorithms=cfg.auth.algorithms,
            nonce_ttl=cfg.auth.nonce_ttl_s,
        )
        self._apply_throttle(cfg)
        registrar = Registrar(
            self.directory, self.location, auth, _registrar_settings(cfg), self.throttle,
            server=cfg.sip.user_agent,
        )
        timers = Timers(t1=cfg.sip.t1_ms / 1000, t2=cfg.sip.t2_ms / 1000, t4=cfg.sip.t4_ms / 1000)
        self.core = SipCore(
            registrar, TransactionLayer(timers), server=cfg.sip.user_agent,
            max_message_bytes=cfg.sip.max_message_bytes, tracer=self.tracer,
            on_registration=self._log_registration,
        )
        low, high = cfg.media.port_range
        self.relay = RtpRelay(cfg.media.address, low, high, loop)
        self.media_clock = MediaClockDriver(self.relay, loop)
        self.b2bua = B2bua(
            self.core.transactions, registrar, _dialplan(self.directory, cfg), self.location,
            self.relay.allocate, domain=cfg.sip.domain, media_address=cfg.media.address,
            ring_timeout=float(cfg.calls.ring_timeout_s), timers=timers,
            server=cfg.sip.user_agent,
        )
        self.b2bua.trusted = cfg.sip.trusted
        self.b2bua.resolved = await _resolve_contacts(cfg, {})
        self.core.b2bua = self.b2bua
        self.contact_centre = ContactCentre(cfg, self.b2bua, self.relay, self.media_clock,
                                            self._run_b2bua, loop, store=self.store)
        await self._start_bus(cfg, loop)
        self.transports = Transports(
            self.core, after_input=self._rearm, max_size=cfg.sip.max_message_bytes
        )
        for lst in cfg.sip.listeners:
            host, port = await self.transports.listen(
                lst.transport, lst.host, lst.port, self._ssl_context(cfg)
            )
            self.bound.append((lst.transport, host, port))
            # Our sent-by and Contact for requests the B2BUA sends over this transport.
            self.b2bua.local.setdefault(lst.transport, (host, port))
        await self._start_http(cfg)
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="store-flush"))
        self._tasks.append(asyncio.create_task(self._event_log_loop(), name="event-log"))
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="expiry-sweep"))
        self._tasks.append(asyncio.create_task(self._dns_loop(), name="dns-refresh"))
        self.running = True
        _tune_gc()
        log.info("softswitch ready: sip %s, http %s:%d",
                 ", ".join(f"{t}:{h}:{p}" for t, h, p in self.bound),
                 *(self.http_bound or ("-", 0)))

    async def _start_http(self, cfg: Config) -> None:
        from softswitch.http import make_http_app

        config = uvicorn.Config(
            make_http_app(self), host=cfg.http.host, port=cfg.http.port,
            log_level="warning", lifespan="off", access_log=False, loop="none",
        )
        self._http = server = _EmbeddedServer(config)
        config.load()
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit:  # uvicorn exits the process when it cannot bind
            server.should_exit = True
        if server.should_exit or not server.started:
            self._http = None
            raise OSError(f"cannot listen for HTTP on {cfg.http.listen}")
        servers = getattr(self._http, "servers", [])
        if servers and servers[0].sockets:
            self.http_bound = servers[0].sockets[0].getsockname()[:2]
        self._tasks.append(asyncio.create_task(self._http.main_loop(), name="http"))

    async def stop(self) -> None:
        """Close everything that was opened; safe after a failed or partial start."""
        if self._closed:
            return
        self._closed = True
        self.running = False
        log.info("stopping")
        if self._timer is not None:
            self._timer.cancel()
        if self.contact_centre is not None:
            self.contact_centre.close()
        if self.b2bua is not None and self.core is not None and self.transports is not None:
            # Live calls end with BYE (or a final response) and their CDRs are written.
            loop = asyncio.get_running_loop()
            out = self.core.split(self.b2bua.hangup_all("shutdown", loop.time(), time.time()))
            self.transports.send_all(out)
            self._run_commands()
            if self._cdr_tasks:
                await asyncio.gather(*self._cdr_tasks, return_exceptions=True)
        if self._reporting_feed is not None:
            await self._reporting_feed.stop()
        if self.reporting is not None and self._reporting_task is not None:
            # Its final tick stores every interval closed by now (the open one is rebuilt
            # from the event log at the next start).
            self.reporting.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._reporting_task), 10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.transports is not None:
            await self.transports.close()
        if self._http is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await self._http.shutdown()
        try:
            await self._flush()
        except Exception:
            log.exception("final write of bindings failed; %d changes not stored",
                          len(self.location.take_changes()[0]))
        try:
            if self.bus is not None:
                await self.bus.close()
            await self._flush_events()
        except Exception:
            log.exception("final write of the event log failed; %d events not stored",
                          len(self._event_log))
        finally:
            if self.media_clock is not None:
                self.media_clock.close()
            if self.relay is not None:
                self.relay.close()
            if self.store is not None:
                with contextlib.suppress(Exception):
                    await self.store.close()
            log.info("stopped")
            self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop_requested.set)
        loop.add_signal_handler(signal.SIGINT, stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        pidfile: Path | None = None
        try:
            await self.start()
            pidfile = self._pidfile()
            try:
                pidfile.parent.mkdir(parents=True, exist_ok=True)
                pidfile.write_text(f"{os.getpid()}\n")
            except OSError:
                pidfile = None
            await stop_requested.wait()
        finally:
            await self.stop()
            if pidfile is not None:
                with contextlib.suppress(OSError):
                    pidfile.unlink()

    def _pidfile(self) -> Path:
        return Path("var") / f"softswitch-{self.http_bound[1] if self.http_bound else 0}.pid"

    # -- timers -----------------------------------------------------------------------------
    def _rearm(self) -> None:
        """Keep one timer at the core's earliest deadline (called after every input)."""
        assert self.core is not None
        if self.core.commands:
            self._run_commands()
        when = self.core.get_timer()
        if when is None:
            return
        if self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        assert self.core is not None and self.transports is not None
        self._timer = None
        self._timer_at = None
        loop = asyncio.get_running_loop()
        try:
            out = self.core.handle_timer(loop.time(), time.time())
            if out:
                self.transports.send_all(out)
        except Exception:
            log.exception("error in SIP timer")
        self._rearm()

    def _run_b2bua(self, commands: list[Command]) -> None:
        """Carry out B2BUA commands asked for outside a SIP input (the contact centre)."""
        assert self.core is not None and self.transports is not None
        out = self.core.split(commands)
        if out:
            self.transports.send_all(out)
        self._rearm()

    def _run_commands(self) -> None:
        """Carry out what the B2BUA asked of the relay and the store."""
        assert self.core is not None
        commands, self.core.commands = self.core.commands, []
        for cmd in commands:
            try:
                if type(cmd) is Bridge:
                    assert self.relay is not None
                    self.relay.bridge(cmd.port_a, cmd.a, cmd.port_b, cmd.b)
                elif type(cmd) is ReleaseMedia:
                    assert self.relay is not None
                    for port in cmd.ports:
                        if self.media_clock is not None:
                            self.media_clock.stop(port)
                        self.relay.release(port)
                elif type(cmd) is PlayMoh:
                    # Hold (RFC 3264 §8.4): the held party hears music instead of the holder.
                    assert self.relay is not None and self.media_clock is not None
                    self.relay.detach(cmd.holder_port)
                    self.media_clock.play(cmd.port, load_clip(self.config.media.moh),
                                          cmd.payload_type)
                elif type(cmd) is StopMoh:
                    assert self.relay is not None and self.media_clock is not None
                    self.media_clock.stop(cmd.port)
                    self.relay.continue_stream(cmd.port)
                elif type(cmd) in (LocalCall, LegAnswered, LegFailed, LegEnded, LocalEnded,
                                   Transferred):
                    assert self.contact_centre is not None
                    self.contact_centre.handle(cmd)  # type: ignore[arg-type]
                elif type(cmd) is WriteCdr:
                    self._publish_call_ended(cmd.cdr)
                    task = asyncio.ensure_future(self._write_cdr(cmd))
                    self._cdr_tasks.add(task)
                    task.add_done_callback(self._cdr_tasks.discard)
            except Exception:
                log.exception("B2BUA command %r failed", cmd)

    def _publish_call_ended(self, cdr: Cdr) -> None:
        """Every CDR also goes on the event bus (and so into the event log) as CallEnded."""
        if self.bus is None:
            return
        self.bus.publish([CallEnded(
            ts=cdr.ended_at, call_id=cdr.call_id, caller=cdr.caller, callee=cdr.callee,
            started_at=cdr.started_at, answered_at=cdr.answered_at, duration=cdr.duration,
            billable=cdr.billable, disposition=cdr.disposition, hangup_cause=cdr.hangup_cause,
            hangup_side=cdr.hangup_side)])

    async def _write_cdr(self, cmd: WriteCdr) -> None:
        if self.store is None:
            return
        try:
            await self.store.write_cdr(cmd.cdr)
            self.cdrs_written += 1
        except Exception:
            self.cdrs_failed += 1
            log.exception("CDR not written: %s", cmd.cdr)

    def _check_media(self, now: float, wall: float) -> None:
        """RTP inactivity ends a dead call: an answered leg silent for media.inactivity_s."""
        if self.b2bua is None or self.relay is None or self.core is None:
            return
        limit = self.config.media.inactivity_s
        out = []
        for call in list(self.b2bua.calls.values()):
            if call.state != "answered":
                continue
            # A holder may send nothing while on hold (inactive, RFC 3264 §8.4).
            ports = [p for p, leg in ((call.a_port, "a"), (call.b_port, "b"))
                     if call.held_by != leg]
            last = [self.relay.last_rx(p) for p in ports]
            if any(t is not None and now - t > limit for t in last):
                log.info("call %d: no RTP for %ds, hanging up", call.id, limit)
                out.extend(self.core.split(self.b2bua.hangup(call, "rtp_timeout", now, wall)))
        if out and self.transports is not None:
            self.transports.send_all(out)
        if out or self.core.commands:
            self._rearm()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._flush()
            except Exception:
                log.exception("store write-behind failed; will retry")

    async def _flush(self) -> None:
        if self.store is None or not self.location.has_changes():
            return
        upserts, deletes = self.location.take_changes()
        try:
            if upserts:
                await self.store.upsert_bindings(upserts)
            if deletes:
                await self.store.delete_bindings(deletes)
        except BaseException:
            # Put them back so the next flush retries; nothing is lost while we run. Also on
            # cancellation: stop() cancels the flush loop mid-write, then flushes once more.
            self.location.restore_changes(upserts, deletes)
            raise

    async def _start_bus(self, cfg: Config, loop: asyncio.AbstractEventLoop) -> None:
        """The event bus, the event-log writer on it, and the ACD's reports onto it."""
        if cfg.events.bus == "nats":
            bus = NatsBus(cfg.events.nats_url, stream=cfg.events.nats_stream,
                          subject_prefix=cfg.events.nats_subject_prefix)
            await bus.start()
            self.bus = bus
            # Shared durable: with several nodes each event is logged once (by one of them).
            # The batch is acked only after this returns, so store it before returning: a
            # crash then re-delivers what was not yet written (at-least-once, never lost).
            await bus.subscribe(self._store_events_now, durable="softswitch-event-log")
        else:
            self.bus = LocalBus()
            await self.bus.subscribe(self._event_log.extend)
        assert self.contact_centre is not None
        bus_ = self.bus

        def publish(reports: list[ReportEvent]) -> None:
            # The engine stamps events with loop time; the bus and the log carry wall clock.
            offset = time.time() - loop.time()
            bus_.publish([dataclasses.replace(r, ts=offset + r.ts) for r in reports])

        self.contact_centre.report_listeners.append(publish)
        if cfg.reporting.embedded:
            await self._start_reporting(cfg)

    async def _start_reporting(self, cfg: Config) -> None:
        """The CMS service on this process's bus: recovered from the event log first, then
        fed every event; its loop closes and stores intervals (docs/metrics.md)."""
        assert self.bus is not None
        service = ReportingService(self.store, settings_from_config(cfg),
                                   publish=self.bus.publish)
        if isinstance(self.bus, NatsBus):
            # Replayed from the stream, then an ephemeral consumer right after the replay:
            # every node's service sees every event (reporting/standalone.py).
            from reporting.standalone import StreamFeed

            assert self.store is not None
            service.persist_after = await self.store.last_report_interval()
            feed = self._reporting_feed = StreamFeed(self.bus, service, durable=None)
            service.ready = lambda: feed.caught_up
            await feed.start(replay_start(time.time(), service.settings))
        else:
            await service.start()  # replays the store's event log
            # Called synchronously in the publisher's turn, in publish order.
            await self.bus.subscribe(service.ingest)
        self.reporting = service
        self._reporting_task = asyncio.create_task(service.run(), name="reporting")

    def reporting_settings(self) -> ReportingSettings:
        if self.reporting is not None:
            return self.reporting.settings
        return settings_from_config(self.config)

    async def _store_events_now(self, events: list[ReportEvent]) -> None:
        assert self.store is not None
        await self.store.append_events(events)
        self.events_logged += len(events)

    async def _event_log_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._flush_events()
            except Exception:
                log.exception("event log write-behind failed; will retry")

    async def _flush_events(self) -> None:
        if self.store is None or not self._event_log:
            return
        batch, self._event_log[:] = list(self._event_log), []
        try:
            await self.store.append_events(batch)
        except BaseException:
            self._event_log[:0] = batch  # retried by the next flush, order kept
            raise
        self.events_logged += len(batch)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            wall = time.time()
            for b in self.location.sweep(wall):
                log.info("registration expired user=%s contact=%s", b.aor, b.contact)
            self.throttle.sweep(wall)
            try:
                self._check_media(asyncio.get_running_loop().time(), wall)
            except Exception:
                log.exception("media inactivity check failed")
            if self.transports is not None:
                self.transports.close_idle(asyncio.get_running_loop().time())

    async def _dns_loop(self) -> None:
        """Static contacts named by host name follow their DNS records."""
        while True:
            await asyncio.sleep(DNS_REFRESH_INTERVAL)
            if self.b2bua is not None:
                self.b2bua.resolved = await _resolve_contacts(self.config,
                                                              self.b2bua.resolved)

    # -- reload -----------------------------------------------------------------------------
    async def reload(self) -> dict[str, Any]:
        """Re-read the config file; apply it whole, or refuse it whole and keep running."""
        async with self._reload_lock:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                self.reloads_refused += 1
                log.error("reload refused, running config kept:\n  %s", "\n  ".join(exc.errors))
                result = {"applied": False, "errors": exc.errors, "changes": []}
                self.last_reload = {"at": time.time(), **result}
                return result
            restart = _restart_keys(self.boot_config, new, embedded=self.reporting is not None)
            changes = await self._apply(new)
            self.reloads_applied += 1
            log.info("reload applied: %s", "; ".join(changes) if changes else "no changes")
            warnings = [text for _, text in restart]
            for text in warnings:
                log.warning("reload: %s", text)
            result = {"applied": True, "errors": [], "changes": changes,
                      "warnings": warnings, "restart_required": [key for key, _ in restart]}
            self.last_reload = {"at": time.time(), **result}
            return result

    async def _apply(self, new: Config) -> list[str]:
        old = self.config
        assert self.core is not None and self.transports is not None
        changes: list[str] = []
        directory = Directory.from_config(new)
        diff = self.directory.diff(directory)
        if diff.added or diff.removed or diff.changed:
            changes.append(
                f"users +{len(diff.added)} -{len(diff.removed)} ~{len(diff.changed)}"
            )
        self.directory = directory
        if self.b2bua is not None:
            # New calls route with the new dialplan; calls in progress keep their legs.
            self.b2bua.dialplan = _dialplan(directory, new)
            self.b2bua.ring_timeout = float(new.calls.ring_timeout_s)
            self.b2bua.trusted = new.sip.trusted
            self.b2bua.resolved = await _resolve_contacts(new, self.b2bua.resolved)
        registrar = self.core.registrar
        registrar.directory = directory
        registrar.settings = _registrar_settings(new)
        registrar.server = new.sip.user_agent
        if old.auth != new.auth or old.sip.domain != new.sip.domain:
            secret = new.auth.secret.encode() if new.auth.secret else registrar.auth._secret
            registrar.auth = DigestAuthenticator(
                new.sip.domain, secret=secret, algorithms=new.auth.algorithms,
                nonce_ttl=new.auth.nonce_ttl_s,
            )
            changes.append("auth settings")
        self._apply_throttle(new)
        if self.contact_centre is not None and (
                (old.agents, old.queues, old.priority_rules, old.services, old.contact_centre)
                != (new.agents, new.queues, new.priority_rules, new.services,
                    new.contact_centre)):
            self.contact_centre.apply_config(new)
            changes.append("contact centre (new calls)")
        if self.reporting is not None and (old.agents, old.queues, old.reporting, old.web) != (
                new.agents, new.queues, new.reporting, new.web):
            changes.extend(self.reporting.apply_settings(settings_from_config(new)))
        if old.log != new.log:
            configure_logging(new.log.level)
            self.tracer.set(new.log.trace)
            changes.append(f"log level {new.log.level}, trace {list(new.log.trace)}")
        if old.sip.listen != new.sip.listen:
            changes.extend(await self._relisten(old, new))
        if (old.sip.t1_ms, old.sip.t2_ms, old.sip.t4_ms) != (
            new.sip.t1_ms, new.sip.t2_ms, new.sip.t4_ms
        ):
            self.core.transactions.timers = Timers(
                t1=new.sip.t1_ms / 1000, t2=new.sip.t2_ms / 1000, t4=new.sip.t4_ms / 1000
            )
            changes.append("SIP timers (new transactions)")
        # Bindings of users who are gone no longer route: drop them.
        for name in diff.removed:
            for contact in list(self.location.bindings_of(name)):
                self.location.remove(name, contact)
        self.config = new
        return changes

    async def _relisten(self, old: Config, new: Config) -> list[str]:
        assert self.transports is not None
        changes = []
        old_set = set(old.sip.listeners)
        new_set = set(new.sip.listeners)
        for lst in new_set - old_set:
            host, port = await self.transports.listen(
                lst.transport, lst.host, lst.port, self._ssl_context(new)
            )
            self.bound.append((lst.transport, host, port))
            changes.append(f"listening on {lst.transport}:{host}:{port}")
        for lst in old_set - new_set:
            await self.transports.close_listener(lst.transport, lst.host, lst.port)
            self.bound = [b for b in self.bound if b != tuple(lst)]
            changes.append(f"closed {lst.transport}:{lst.host}:{lst.port}")
        return changes

    # -- views ------------------------------------------------------------------------------
    def uptime(self) -> float:
        return asyncio.get_running_loop().time() - self._started_mono if self.running else 0.0

    def registrations(self) -> list[dict[str, Any]]:
        wall = time.time()
        out = []
        for aor in sorted(self.location.aors()):
            for b in self.location.lookup(aor, wall):
                out.append({
                    "user": aor, "contact": b.contact, "expires_in": int(b.expires_at - wall),
                    "received": b.received, "user_agent": b.user_agent,
                })
        return out

    def status(self) -> dict[str, Any]:
        regs = self.registrations()
        return {
            "version": _version(),
            "pid": os.getpid(),
            "config": str(self.config_path),
            "started_at": self.started_at,
            "uptime_s": round(self.uptime(), 3),
            "listen": [f"{t}:{h}:{p}" for t, h, p in self.bound],
            "users": len(self.directory),
            "registered_users": len({r["user"] for r in regs}),
            "registrations": regs,
            "reloads": {"applied": self.reloads_applied, "refused": self.reloads_refused,
                        "last": self.last_reload},
            "trace": self.tracer.targets(),
        }

    # -- helpers ----------------------------------------------------------------------------
    def _log_registration(
        self, kind: str, aor: str, source: Peer, contacts: tuple[str, ...]
    ) -> None:
        log.info("%s user=%s from=%s:%s:%d contacts=%s", kind, aor, source.transport,
                 source.host, source.port, ",".join(contacts))

    def _apply_throttle(self, cfg: Config) -> None:
        self.throttle.limit = cfg.auth.failure_limit
        self.throttle.window = cfg.auth.failure_window_s
        self.throttle.block = cfg.auth.block_s

    async def _nonce_secret(self) -> bytes:
        """The configured secret, else one kept in the store so nonces survive a restart."""
        if self.config.auth.secret:
            return self.config.auth.secret.encode()
        assert self.store is not None
        stored = await self.store.get_meta("nonce_secret")
        if stored is None:
            stored = os.urandom(32).hex()
            await self.store.set_meta("nonce_secret", stored)
        return bytes.fromhex(stored)

    @staticmethod
    def _ssl_context(cfg: Config) -> ssl.SSLContext | None:
        if not cfg.sip.tls_certificate:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cfg.sip.tls_certificate, cfg.sip.tls_private_key)
        return ctx


def _dialplan(directory: Directory, cfg: Config) -> Dialplan:
    return Dialplan(directory, frozenset(s.number for s in cfg.services))


async def _resolve_contacts(cfg: Config, previous: dict[str, str]) -> dict[str, str]:
    """The addresses of the host names in static contacts (A/AAAA through the system
    resolver, IPv4 first). A name that does not resolve now keeps its previous address, so a
    DNS outage does not take a gateway away; a name never resolved is not rung (logged)."""
    loop = asyncio.get_running_loop()
    names = {name for u in cfg.users if u.contact
             and (name := static_contact_host(u.contact)) is not None}
    resolved: dict[str, str] = {}
    for name in sorted(names):
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM),
                                           5.0)
        except (OSError, TimeoutError) as exc:
            log.warning("cannot resolve %s (%s)%s", name, exc or "timeout",
                        f"; keeping {previous[name]}" if name in previous else "")
            if name in previous:
                resolved[name] = previous[name]
            continue
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        address = str(infos[0][4][0])
        if previous.get(name) != address:
            log.info("static contact host %s is %s", name, address)
        resolved[name] = address
    return resolved


def _tune_gc() -> None:
    """Keep the cyclic GC off the SIP hot path.

    Objects that exist after start-up (config, directory, restored bindings) move to the
    permanent generation, and the young generation is collected less often: with tens of
    thousands of live transactions the default thresholds cost ~5% CPU and 100 ms+ pauses
    (measured: 129 ms worst pause at 4,000 registrations/s, 16 ms with these settings).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _registrar_settings(cfg: Config) -> RegistrarSettings:
    r = cfg.registrar
    return RegistrarSettings(r.min_expires, r.max_expires, r.default_expires, r.max_contacts)


def _redact(url: str) -> str:
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        head, tail = url.split("@", 1)
        scheme_user = head.rsplit(":", 1)[0]
        return f"{scheme_user}:***@{tail}"
    return url


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("softswitch")
    except Exception:
        return "unknown"
