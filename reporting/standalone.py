"""`softswitch reporting`: the reporting service as its own process on NATS JetStream.

Start-up, so that a crash or a restart loses no event and counts none twice:

1. `last_seq` = the stream's last sequence now; rows the store holds are not rewritten
   (`ReportingService.persist_after`).
2. Replay: an ephemeral consumer reads the stream from local midnight minus
   `replay_lookback_s` (by the messages' stream time) up to `last_seq`, into the service —
   the intervals still open and today's figures come back.
3. Live: the durable consumer (``[reporting] durable``) resumes where the last run acked;
   whatever it delivers with a stream sequence <= `last_seq` was in the replay, so it is acked
   without being counted (a batch in flight when the last run died comes back that way). A
   batch is acked (AckPolicy ALL: its last message) only after the service took it.

Clock closes of intervals are held while the consumer has a backlog (a full batch came), so
events behind the clock are not pushed into a later interval. Then the HTTP app
(reporting/server.py) serves on ``[reporting] listen``; SIGTERM/SIGINT stop it gracefully
(the final tick stores what is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from datetime import UTC, datetime
from typing import Any

import uvicorn

from reporting.bus import NatsBus, decode
from reporting.events import ReportEvent
from reporting.server import make_reporting_app
from reporting.service import ReportingService, replay_start, settings_from_config

__all__ = ["StandaloneReporting", "StreamFeed"]

log = logging.getLogger("softswitch.reporting")

BATCH = 1000


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def,override]
        yield  # the runner owns the signals


class StreamFeed:
    """A ReportingService fed from the JetStream stream: replay since `since` up to the
    stream's last sequence now, then a consumer from there (module docstring). `durable`
    None: an ephemeral consumer starting right after the replay (the switch's embedded
    service; its state dies with the process and is replayed again at the next start)."""

    def __init__(self, bus: NatsBus, service: ReportingService, *,
                 durable: str | None) -> None:
        self.bus, self.service, self.durable = bus, service, durable
        self.caught_up = False
        self.replayed = 0
        self.skipped = 0
        self.last_seq = 0
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, since: float) -> None:
        info = await self.bus.js.stream_info(self.bus.stream)
        self.last_seq = int(info.state.last_seq)
        await self._replay(since)
        log.info("reporting: %d events replayed from the stream (up to seq %d)",
                 self.replayed, self.last_seq)
        await self._subscribe()
        self._task = asyncio.create_task(self._consume(), name="reporting-consumer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # a durable keeps its position
            self._sub = None

    async def _replay(self, since: float) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if self.last_seq == 0:
            return
        sub = await self.bus.js.pull_subscribe(
            f"{self.bus.prefix}.>", stream=self.bus.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                  opt_start_time=datetime.fromtimestamp(since, UTC),
                                  ack_policy=AckPolicy.NONE, inactive_threshold=30))
        try:
            seq = 0
            while seq < self.last_seq:
                try:
                    msgs = await sub.fetch(BATCH, timeout=2.0)
                except TimeoutError:
                    break  # nothing since `since`
                events: list[ReportEvent] = []
                for m in msgs:
                    seq = m.metadata.sequence.stream
                    if seq > self.last_seq:
                        break
                    with contextlib.suppress(Exception):
                        events.append(decode(m.data))
                self.service.ingest(events)
                self.replayed += len(events)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _subscribe(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        durable = self.durable
        js = self.bus.js
        if durable is None:
            self._sub = await js.pull_subscribe(
                f"{self.bus.prefix}.>", stream=self.bus.stream,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                      opt_start_seq=self.last_seq + 1,
                                      ack_policy=AckPolicy.ALL, ack_wait=30,
                                      max_ack_pending=10 * BATCH, inactive_threshold=60))
            return
        try:
            await js.consumer_info(self.bus.stream, durable)
        except NotFoundError:
            # First run: the replay covered the stream so far; start after it.
            await js.add_consumer(self.bus.stream, ConsumerConfig(
                durable_name=durable, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.last_seq + 1, ack_policy=AckPolicy.ALL, ack_wait=30,
                filter_subject=f"{self.bus.prefix}.>", max_ack_pending=10 * BATCH))
        self._sub = await js.pull_subscribe(f"{self.bus.prefix}.>", durable=durable,
                                            stream=self.bus.stream)

    async def _consume(self) -> None:
        import nats.errors

        service = self.service
        while True:
            try:
                msgs = await self._sub.fetch(BATCH, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                self.caught_up = True
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reporting: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            events: list[ReportEvent] = []
            for m in msgs:
                if m.metadata.sequence.stream <= self.last_seq:
                    self.skipped += 1  # counted by the replay
                    continue
                try:
                    events.append(decode(m.data))
                except Exception:
                    log.exception("reporting: undecodable event on %s skipped", m.subject)
            try:
                service.ingest(events)
            except Exception:
                # A bug. Acked all the same: part of the batch is counted already, and a
                # redelivery would come after later batches (out of order, partly twice).
                log.exception("reporting: a batch of %d events failed part-way", len(events))
            if msgs:
                await msgs[-1].ack()  # AckPolicy ALL: the whole batch
            self.caught_up = len(msgs) < BATCH


class StandaloneReporting:
    def __init__(self, config: Any, store: Any, *, clock: Any = time.time) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.bus: NatsBus | None = None
        self.service: ReportingService | None = None
        self.feed: StreamFeed | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._http: _Server | None = None
        self._closing = False

    # -- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        ev = self.config.events
        self.bus = bus = NatsBus(ev.nats_url, stream=ev.nats_stream,
                                 subject_prefix=ev.nats_subject_prefix)
        await bus.start()
        settings = settings_from_config(self.config)
        self.service = service = ReportingService(self.store, settings, publish=bus.publish,
                                                  clock=self.clock)
        await self._start_http()
        service.persist_after = await self.store.last_report_interval()
        since = replay_start(self.clock(), settings)
        self.feed = StreamFeed(bus, service, durable=self.config.reporting.durable)
        service.ready = lambda: self.feed is not None and self.feed.caught_up
        await self.feed.start(since)
        self._tasks.append(asyncio.create_task(service.run(), name="reporting-ticks"))

    async def _start_http(self) -> None:
        host, _, port = self.config.reporting.listen.rpartition(":")
        app = make_reporting_app(lambda: self.service, lambda: self.store,
                                 lambda: self.config,
                                 ready=lambda: self.feed is not None and self.feed.caught_up,
                                 stats=lambda: {"replayed": self.feed.replayed,
                                                "skipped": self.feed.skipped}
                                 if self.feed is not None else {},
                                 clock=self.clock, closing=lambda: self._closing)
        cfg = uvicorn.Config(app, host=host.strip("[]"), port=int(port), log_level="warning",
                             lifespan="off", access_log=False, loop="none")
        self._http = server = _Server(cfg)
        cfg.load()
        server.lifespan = cfg.lifespan_class(cfg)
        try:
            await server.startup()
        except SystemExit:
            server.should_exit = True
        if server.should_exit or not server.started:
            raise OSError(f"cannot listen for HTTP on {self.config.reporting.listen}")
        self._tasks.append(asyncio.create_task(server.main_loop(), name="reporting-http"))

    # -- run / stop -----------------------------------------------------------------------

    async def stop(self) -> None:
        self._closing = True  # live streams end within web.CLOSE_POLL_S
        if self.feed is not None:
            await self.feed.stop()
        if self.service is not None:
            self.service.stop()  # the final tick stores what is closed
        for task in self._tasks:
            if task.get_name() == "reporting-ticks":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)
        if self._http is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await self._http.shutdown()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.bus is not None:
            await self.bus.close()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            await self.store.open()
            await self.start()
            log.info("softswitch reporting ready: http %s, durable %s",
                     self.config.reporting.listen, self.config.reporting.durable)
            await stop.wait()
        finally:
            await self.stop()
            with contextlib.suppress(Exception):
                await self.store.close()
            log.info("reporting stopped")
