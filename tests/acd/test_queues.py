"""Priority ordering, FIFO within a class, ageing, positions (acd/queues.py via the engine)."""

from __future__ import annotations

from acd import events as ev
from acd.config import QueueConfig
from acd.queues import Call, CallQueue
from acd.strategies import make_strategy

from .helpers import arrive, engine_for, login, offers


def _queue(cfg: QueueConfig) -> CallQueue:
    return CallQueue(cfg, make_strategy(cfg))


def _call(cfg: QueueConfig, name: str, klass: int, t: float, seq: int) -> Call:
    return Call(name, cfg, "", "", "", klass, "", t, seq)


def test_strict_classes_then_fifo() -> None:
    cfg = QueueConfig("q")
    q = _queue(cfg)
    calls = [_call(cfg, f"c{i}", k, float(i), i) for i, k in enumerate([2, 1, 2, 0, 1])]
    for c in calls:
        q.push(c)
    assert [c.id for c in q.waiting()] == ["c3", "c1", "c4", "c0", "c2"]
    assert [q.position(c) for c in calls] == [4, 2, 5, 1, 3]
    q.remove(calls[3])
    assert q.head() is calls[1]
    assert len(q) == 4


def test_ageing_gains_one_class_per_interval() -> None:
    cfg = QueueConfig("q", ageing=60.0)
    q = _queue(cfg)
    old_low = _call(cfg, "low", 2, 0.0, 0)  # ranks like a class-0 call arriving at 120
    q.push(old_low)
    q.push(_call(cfg, "high-early", 0, 100.0, 1))
    q.push(_call(cfg, "high-late", 0, 130.0, 2))
    q.push(_call(cfg, "mid", 1, 50.0, 3))  # ranks like class 0 at 110
    assert [c.id for c in q.waiting()] == ["high-early", "mid", "low", "high-late"]


def test_low_class_wait_is_bounded_with_ageing() -> None:
    """A steady stream of class-0 calls starves class 2 without ageing, not with it."""
    for ageing, served in ((None, False), (30.0, True)):
        engine = engine_for(QueueConfig("q", ageing=ageing), agents=["a1"])
        login(engine, "a1")
        arrive(engine, "busy", "q", 0.0, priority_class=0)
        engine.handle_event(ev.AgentAnswered("a1", "busy"), 0.0)
        arrive(engine, "low", "q", 1.0, priority_class=2)
        current, got_low = "busy", False
        for i in range(20):  # one new high-priority call every 10 s, each served in 10 s
            t = 10.0 * (i + 1)
            arrive(engine, f"h{i}", "q", t - 5.0, priority_class=0)
            out = engine.handle_event(ev.CallEnded(current), t)
            (call, agent), = offers(out)
            engine.handle_event(ev.AgentAnswered(agent, call), t)
            current = call
            if call == "low":
                got_low = True
                assert t <= 1.0 + 2 * 30.0 + 10.0  # waited at most its lead, plus one call
                break
        assert got_low is served


def test_fifo_within_class_through_engine() -> None:
    engine = engine_for(QueueConfig("q"), agents=["a1"])
    for i in range(5):
        arrive(engine, f"c{i}", "q", float(i), priority_class=1)
    arrive(engine, "vip", "q", 10.0, priority_class=0)
    assert engine.waiting("q") == ["vip", "c0", "c1", "c2", "c3", "c4"]
    out = login(engine, "a1", now=11.0)
    assert offers(out) == [("vip", "a1")]
