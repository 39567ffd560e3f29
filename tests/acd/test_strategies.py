"""Each routing strategy picks the agent it promises (acd/strategies.py via the engine)."""

from __future__ import annotations

from acd import events as ev
from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.engine import Engine

from .helpers import arrive, engine_for, login, offers, serve

AGENTS = ["a1", "a2", "a3"]


def _ready(strategy: str, **kwargs: object) -> Engine:
    engine = engine_for(QueueConfig("q", strategy=strategy, **kwargs), AGENTS)  # type: ignore[arg-type]
    for i, agent in enumerate(AGENTS):  # logged in a1 first: a1 is longest idle
        login(engine, agent, now=float(i))
    return engine


def _route(engine: Engine, call: str, now: float) -> str:
    (got,) = offers(arrive(engine, call, "q", now))
    return got[1]


def test_longest_idle() -> None:
    engine = _ready("longest_idle")
    assert _route(engine, "c1", 10.0) == "a1"
    serve(engine, "c1", "a1", 11.0)  # a1 idle again since 11: now the freshest
    assert _route(engine, "c2", 12.0) == "a2"
    assert _route(engine, "c3", 13.0) == "a3"
    assert _route(engine, "c4", 14.0) == "a1"


def test_round_robin_remembers_where_it_stopped() -> None:
    engine = _ready("round_robin")
    assert _route(engine, "c1", 10.0) == "a1"
    serve(engine, "c1", "a1", 10.0)
    assert _route(engine, "c2", 11.0) == "a2"
    serve(engine, "c2", "a2", 11.0)
    assert _route(engine, "c3", 12.0) == "a3"
    serve(engine, "c3", "a3", 12.0)
    assert _route(engine, "c4", 13.0) == "a1"  # wraps


def test_linear_always_starts_from_the_first() -> None:
    engine = _ready("linear")
    assert _route(engine, "c1", 10.0) == "a1"
    serve(engine, "c1", "a1", 10.0)
    assert _route(engine, "c2", 11.0) == "a1"
    assert _route(engine, "c3", 12.0) == "a2"


def test_ring_all_first_answer_wins() -> None:
    engine = _ready("ring_all")
    out = arrive(engine, "c1", "q", 10.0)
    assert offers(out) == [("c1", "a1"), ("c1", "a2"), ("c1", "a3")]
    out = engine.handle_event(ev.AgentAnswered("a2", "c1"), 11.0)
    cancelled = sorted(c.agent for c in out if type(c).__name__ == "CancelOffer")
    assert cancelled == ["a1", "a3"]
    assert offers(arrive(engine, "c2", "q", 12.0)) == [("c2", "a1"), ("c2", "a3")]


def test_ring_all_timeout_is_nobodys_miss() -> None:
    engine = _ready("ring_all", ring_timeout=5.0, max_misses=1)
    arrive(engine, "c1", "q", 10.0)
    out = engine.handle_timer(15.0)
    assert len(offers(out)) == 3  # everyone rung again, nobody paused


def test_fewest_calls_and_least_talk_time() -> None:
    engine = _ready("fewest_calls")
    for i in range(3):
        (call, got), = offers(arrive(engine, f"x{i}", "q", 10.0 + i))
        engine.handle_event(ev.AgentAnswered(got, call), 10.0 + i)
        engine.handle_event(ev.CallEnded(call), 10.5 + i)
    # each freed agent goes behind the others at equal counts: the calls spread one each
    counts = {a: engine.agent(a).calls_by_queue.get("q", 0) for a in AGENTS}
    assert sorted(counts.values()) == [1, 1, 1]
    engine = _ready("least_talk_time")
    arrive(engine, "c1", "q", 10.0)
    serve(engine, "c1", "a1", 10.0)  # 0 s of talk
    arrive(engine, "c2", "q", 11.0)
    engine.handle_event(ev.AgentAnswered("a2", "c2"), 11.0)
    engine.handle_event(ev.CallEnded("c2"), 311.0)  # a2 talked 300 s
    assert _route(engine, "c3", 312.0) == "a3"  # a1 and a3 have 0 s: a3 idle longer
    assert _route(engine, "c4", 313.0) == "a1"
    assert _route(engine, "c5", 314.0) == "a2"


def test_fewest_calls_prefers_the_least_used() -> None:
    engine = _ready("fewest_calls")
    arrive(engine, "c1", "q", 10.0)
    serve(engine, "c1", "a1", 10.0)
    arrive(engine, "c2", "q", 11.0)
    serve(engine, "c2", "a2", 11.0)
    assert _route(engine, "c3", 12.0) == "a3"


def test_random_is_seeded_and_reproducible() -> None:
    picks = []
    for _ in range(2):
        engine = _ready("random", seed=42)
        got = []
        for i in range(6):
            agent = _route(engine, f"c{i}", 10.0 + i)
            got.append(agent)
            serve(engine, f"c{i}", agent, 10.0 + i)
        picks.append(got)
    assert picks[0] == picks[1] and len(set(picks[0])) > 1


def test_skills_levels_requirements_and_relaxing_penalties() -> None:
    queue = QueueConfig("q", strategy="skills", relax_interval=60.0, requirements={"tax": 3})
    config = AcdConfig.build([queue], [
        AgentConfig("novice", {"q": 0}, skills={"tax": 1}),
        AgentConfig("expert", {"q": 0}, skills={"tax": 5}),
        AgentConfig("good", {"q": 0}, skills={"tax": 3}),
        AgentConfig("backup", {"q": 1}, skills={"tax": 5}),
    ])
    engine = Engine(config)
    login(engine, "novice", "good", "expert", "backup")
    assert _route(engine, "c1", 1.0) == "expert"  # best level among penalty 0
    assert _route(engine, "c2", 2.0) == "good"
    engine.handle_event(ev.AgentAnswered("expert", "c1"), 2.0)
    engine.handle_event(ev.AgentAnswered("good", "c2"), 2.0)
    assert offers(arrive(engine, "c3", "q", 3.0)) == []  # novice too weak, backup penalised
    out = engine.handle_timer(63.0)  # one step: penalty 1 allowed, levels -1
    assert offers(out) == [("c3", "backup")]
    engine.handle_event(ev.AgentAnswered("backup", "c3"), 63.0)
    arrive(engine, "c4", "q", 64.0)
    assert offers(engine.handle_timer(124.0)) == []  # needs tax >= 2: still not the novice
    assert offers(engine.handle_timer(184.0)) == [("c4", "novice")]
