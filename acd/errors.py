"""The one exception type of the ACD engine: an input that cannot be applied."""

from __future__ import annotations


class AcdError(Exception):
    """An input the engine refuses (unknown agent or call, illegal transition, bad config).

    The engine turns it into a `Refused` command; nothing changed when it is raised.
    """
