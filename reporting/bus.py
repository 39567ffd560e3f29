"""The event bus: reporting events from producers (the ACD adapter) to consumers (event log,
reporting). ARCHITECTURE.md, "Events": in-process fan-out by default, NATS JetStream when
several nodes run or reporting runs as its own process.

- `LocalBus`: `publish` hands each batch to every subscriber at once, in the caller's task.
- `NatsBus`: `publish` queues the batch; a sender task publishes each event, msgpack of its
  `to_dict()`, on ``<prefix>.<type>`` (default ``softswitch.events.<type>``) into one JetStream
  stream, awaiting the server's ack in order. `subscribe(callback, durable=NAME)` reads through
  a durable pull consumer: a reporting process that stops and starts again resumes after the
  last batch it acknowledged (at-least-once; a batch is acked after its callback returns).

`publish` never blocks and never raises: producers are the call path. `flush()` waits until
everything published so far has been handed on (LocalBus: at once; NatsBus: acked by the
server).

This module imports only `reporting.events` of the project.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgpack

from reporting.events import ReportEvent, from_dict

__all__ = ["DEFAULT_STREAM", "DEFAULT_SUBJECT_PREFIX", "Callback", "EventBus", "LocalBus",
           "NatsBus", "Subscription", "decode", "encode"]

log = logging.getLogger(__name__)

DEFAULT_STREAM = "SOFTSWITCH_EVENTS"
DEFAULT_SUBJECT_PREFIX = "softswitch.events"

Callback = Callable[[list[ReportEvent]], Awaitable[None] | None]


def encode(event: ReportEvent) -> bytes:
    """The wire form of `event`: msgpack of `to_dict()`."""
    return msgpack.packb(event.to_dict(), use_bin_type=True)


def decode(payload: bytes) -> ReportEvent:
    """The event `encode()` produced."""
    return from_dict(msgpack.unpackb(payload, raw=False))


class Subscription(Protocol):
    async def stop(self) -> None:
        """Stop delivering; a durable consumer keeps its position for the next subscribe."""


class EventBus(Protocol):
    def publish(self, events: Sequence[ReportEvent]) -> None:
        """Hand `events` (one batch, in order) to the bus; never blocks, never raises."""

    async def subscribe(self, callback: Callback, *, durable: str | None = None) -> Subscription:
        """Call `callback(batch)` for events published from now on (durable: since last ack)."""

    async def flush(self) -> None:
        """Wait until everything published so far has been handed on."""

    async def close(self) -> None:
        """Stop subscriptions and senders; safe to call twice."""


# -- in-process --------------------------------------------------------------------------------


class _LocalSubscription:
    def __init__(self, bus: LocalBus, callback: Callback) -> None:
        self._bus, self.callback = bus, callback

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._bus._subs.remove(self)


class LocalBus:
    """In-process fan-out: every subscriber gets every batch, synchronously, in order.

    A callback returning an awaitable is run as a task (awaited by `flush()`); one that raises
    is logged and the others still get the batch.
    """

    def __init__(self) -> None:
        self._subs: list[_LocalSubscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def publish(self, events: Sequence[ReportEvent]) -> None:
        if not events:
            return
        batch = list(events)
        for sub in list(self._subs):
            try:
                result = sub.callback(list(batch))
            except Exception:
                log.exception("event bus subscriber %r failed", sub.callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event bus subscriber failed", exc_info=task.exception())

    async def subscribe(self, callback: Callback, *,
                        durable: str | None = None) -> _LocalSubscription:
        sub = _LocalSubscription(self, callback)
        self._subs.append(sub)
        return sub

    async def flush(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        self._subs.clear()


# -- NATS JetStream ----------------------------------------------------------------------------


class _NatsSubscription:
    def __init__(self, sub: Any, callback: Callback, batch: int) -> None:
        self._sub, self._callback, self._batch = sub, callback, batch
        self._task = asyncio.create_task(self._run(), name="nats-events-consumer")

    async def _run(self) -> None:
        import nats.errors

        while True:
            try:
                msgs = await self._sub.fetch(self._batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event bus: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            events: list[ReportEvent] = []
            for m in msgs:
                try:
                    events.append(decode(m.data))
                except Exception:
                    log.exception("event bus: undecodable event on %s skipped", m.subject)
            try:
                result = self._callback(events) if events else None
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not acked: redelivered after the consumer's ack wait.
                log.exception("event bus subscriber failed; batch will be redelivered")
                continue
            for m in msgs:
                await m.ack()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()


class NatsBus:
    """JetStream bus (the `nats-py` client). `start()` connects and ensures the stream."""

    def __init__(self, url: str = "nats://127.0.0.1:4222", *, stream: str = DEFAULT_STREAM,
                 subject_prefix: str = DEFAULT_SUBJECT_PREFIX, batch: int = 256) -> None:
        self.url, self.stream, self.prefix, self.batch = url, stream, subject_prefix, batch
        self._nc: Any = None
        self._js: Any = None
        self._queue: asyncio.Queue[list[ReportEvent]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._subs: list[_NatsSubscription] = []
        self.published = 0
        self.failed = 0

    async def start(self) -> None:
        import nats

        if self._nc is not None:
            return
        self._nc = await nats.connect(self.url, name="softswitch", connect_timeout=5,
                                      max_reconnect_attempts=-1)
        self._js = self._nc.jetstream()
        subjects = [f"{self.prefix}.>"]
        try:
            info = await self._js.stream_info(self.stream)
        except Exception:
            await self._js.add_stream(name=self.stream, subjects=subjects)
        else:
            if info.config.subjects != subjects:
                await self._js.update_stream(name=self.stream, subjects=subjects)
        self._sender = asyncio.create_task(self._send_loop(), name="nats-events-publisher")

    @property
    def js(self) -> Any:
        if self._js is None:
            raise RuntimeError("NatsBus is not started")
        return self._js

    def publish(self, events: Sequence[ReportEvent]) -> None:
        if events:
            self._queue.put_nowait(list(events))

    async def _send_loop(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                for event in batch:
                    # One at a time: the stream keeps the publish order.
                    await self._send(event)
            finally:
                self._queue.task_done()

    async def _send(self, event: ReportEvent) -> None:
        subject = f"{self.prefix}.{event.type_name}"
        payload = encode(event)
        for attempt in range(3):
            try:
                await self.js.publish(subject, payload, stream=self.stream)
                self.published += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == 2:
                    self.failed += 1
                    log.exception("event bus: publishing %s failed; event dropped", subject)
                    return
                await asyncio.sleep(0.2 * (attempt + 1))

    async def subscribe(self, callback: Callback, *,
                        durable: str | None = None) -> _NatsSubscription:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        # Durable: everything the stream holds the first time, then resume after the last ack.
        # Ephemeral: only what is published from now on, removed when idle.
        config = (ConsumerConfig(ack_wait=30) if durable else
                  ConsumerConfig(deliver_policy=DeliverPolicy.NEW, inactive_threshold=60))
        sub = await self.js.pull_subscribe(f"{self.prefix}.>", durable=durable,
                                           stream=self.stream, config=config)
        handle = _NatsSubscription(sub, callback, self.batch)
        self._subs.append(handle)
        return handle

    async def flush(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), timeout=5)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
            self._sender = None
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.drain()
