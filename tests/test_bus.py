"""The event bus: in-process fan-out, and NATS JetStream through the real server.

NATS is expected at ``nats://127.0.0.1:4222`` (override with ``SOFTSWITCH_TEST_NATS``). When it
cannot be reached the NATS cases are skipped, except on CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from reporting.bus import LocalBus, NatsBus, decode, encode
from reporting.events import AgentStateChanged, CallAnswered, CallQueued, ReportEvent

NATS_URL = os.environ.get("SOFTSWITCH_TEST_NATS", "nats://127.0.0.1:4222")


def events(n: int, start: int = 0) -> list[ReportEvent]:
    out: list[ReportEvent] = []
    for i in range(start, start + n):
        kind = i % 3
        if kind == 0:
            out.append(CallQueued(ts=1_700_000_000.0 + i, call_id=f"c{i}", queue="q"))
        elif kind == 1:
            out.append(CallAnswered(ts=1_700_000_000.0 + i, call_id=f"c{i}", queue="q",
                                    agent="a", wait=1.5))
        else:
            out.append(AgentStateChanged(ts=1_700_000_000.0 + i, agent="a", state="idle",
                                         previous="busy", reason="ünï"))
    return out


def test_encode_decode_round_trip() -> None:
    for e in events(6):
        assert decode(encode(e)) == e


async def test_local_bus_fans_out_to_every_subscriber_in_order() -> None:
    bus = LocalBus()
    got_a: list[ReportEvent] = []
    got_b: list[ReportEvent] = []
    got_async: list[ReportEvent] = []

    async def slow(batch: list[ReportEvent]) -> None:
        await asyncio.sleep(0)
        got_async.extend(batch)

    def broken(batch: list[ReportEvent]) -> None:
        raise RuntimeError("subscriber bug")

    await bus.subscribe(got_a.extend)
    await bus.subscribe(broken)
    sub_b = await bus.subscribe(got_b.extend)
    await bus.subscribe(slow)
    bus.publish(events(3))
    bus.publish([])
    assert got_a == got_b == events(3)  # synchronous for plain callbacks
    await sub_b.stop()
    bus.publish(events(2, start=3))
    await bus.flush()
    assert got_a == got_async == events(5)
    assert got_b == events(3)
    await bus.close()


# -- NATS JetStream ----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def nats_bus_args() -> AsyncIterator[dict[str, str]]:
    """A fresh stream + subject prefix on the real server, deleted afterwards."""
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0,
                                allow_reconnect=False)
    except Exception as exc:
        message = f"NATS at {NATS_URL} unreachable ({type(exc).__name__}: {exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    token = secrets.token_hex(4)
    args = {"url": NATS_URL, "stream": f"TEST_EVENTS_{token}",
            "subject_prefix": f"test.{token}.events"}
    try:
        yield args
    finally:
        try:
            await nc.jetstream().delete_stream(args["stream"])
        except Exception:
            pass
        await nc.close()


async def _until(pred: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_nats_bus_round_trip(nats_bus_args: dict[str, str]) -> None:
    bus = NatsBus(nats_bus_args["url"], stream=nats_bus_args["stream"],
                  subject_prefix=nats_bus_args["subject_prefix"])
    await bus.start()
    try:
        got: list[ReportEvent] = []
        await bus.subscribe(got.extend)
        sent = events(20)
        bus.publish(sent[:7])
        bus.publish(sent[7:])
        await bus.flush()
        assert bus.published == 20 and bus.failed == 0
        await _until(lambda: len(got) >= 20)
        assert got == sent
        # On the wire: one subject per event type, msgpack of to_dict().
        info = await bus.js.stream_info(nats_bus_args["stream"])
        assert info.state.messages == 20
        msg = await bus.js.get_last_msg(nats_bus_args["stream"],
                                        f"{nats_bus_args['subject_prefix']}.call_answered")
        assert decode(msg.data) == sent[19]
    finally:
        await bus.close()


async def test_nats_durable_consumer_resumes_without_losing_events(
        nats_bus_args: dict[str, str]) -> None:
    producer = NatsBus(nats_bus_args["url"], stream=nats_bus_args["stream"],
                       subject_prefix=nats_bus_args["subject_prefix"])
    await producer.start()
    try:
        # Published before the reporting process ever ran: a new durable gets them too.
        producer.publish(events(5))
        await producer.flush()

        reporting = NatsBus(nats_bus_args["url"], stream=nats_bus_args["stream"],
                            subject_prefix=nats_bus_args["subject_prefix"])
        await reporting.start()
        got: list[ReportEvent] = []
        await reporting.subscribe(got.extend, durable="reporting")
        producer.publish(events(5, start=5))
        await producer.flush()
        await _until(lambda: len(got) >= 10)
        await reporting.close()  # the reporting process stops ...

        producer.publish(events(10, start=10))  # ... events keep coming meanwhile ...
        await producer.flush()

        again = NatsBus(nats_bus_args["url"], stream=nats_bus_args["stream"],
                        subject_prefix=nats_bus_args["subject_prefix"])
        await again.start()  # ... and it starts again: resumes after the last ack
        try:
            await again.subscribe(got.extend, durable="reporting")
            producer.publish(events(5, start=20))
            await producer.flush()
            await _until(lambda: len(got) >= 25)
            await asyncio.sleep(0.3)  # nothing extra (no replay of acked events)
            assert got == events(25)
        finally:
            await again.close()
    finally:
        await producer.close()
