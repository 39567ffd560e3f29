"""Small builders shared by the ACD tests."""

from __future__ import annotations

from collections.abc import Iterable

from acd import commands as cmd
from acd import events as ev
from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.engine import Engine


def engine_for(
    queue: QueueConfig, agents: Iterable[str] = ("a1", "a2", "a3"), **kwargs: object,
) -> Engine:
    config = AcdConfig.build(
        [queue], [AgentConfig(a, {queue.name: 0}) for a in agents], **kwargs)
    return Engine(config)


def login(engine: Engine, *agents: str, now: float = 0.0) -> list[cmd.Command]:
    out: list[cmd.Command] = []
    for agent in agents:
        out += engine.handle_event(ev.AgentLoggedIn(agent, f"dev-{agent}"), now)
    return out


def offers(commands: list[cmd.Command]) -> list[tuple[str, str]]:
    """(call, agent) of each OfferCall, in order."""
    return [(c.call_id, c.agent) for c in commands if isinstance(c, cmd.OfferCall)]


def of_type(commands: list[cmd.Command], kind: type) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def arrive(engine: Engine, call: str, queue: str, now: float, **kwargs: object
           ) -> list[cmd.Command]:
    return engine.handle_event(ev.CallArrived(call, queue, **kwargs), now)  # type: ignore[arg-type]


def serve(engine: Engine, call: str, agent: str, now: float) -> list[cmd.Command]:
    """Answer then end `call` at `now`."""
    out = engine.handle_event(ev.AgentAnswered(agent, call), now)
    return out + engine.handle_event(ev.CallEnded(call), now)
