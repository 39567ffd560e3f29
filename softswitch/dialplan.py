"""The dialplan, sans-I/O: what a dialled string means.

Today a dialled string is an extension of the directory or nothing. The dialplan is a value
built from a directory: a reload builds a new one and calls already routed keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from softswitch.directory import Directory

__all__ = ["Dialplan", "Extension", "NotFound", "Route"]


@dataclass(frozen=True, slots=True)
class Extension:
    """Ring the registered contacts of directory user `user`."""

    user: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """Nothing answers to the dialled string (the caller gets 404, RFC 3261 §21.4.5)."""

    dialled: str


Route = Extension | NotFound


class Dialplan:
    __slots__ = ("directory",)

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def resolve(self, dialled: str) -> Route:
        # Visual separators a phone may keep in a dialled number (RFC 3966 §5.1.1).
        number = dialled.strip()
        for ch in "-.() ":
            number = number.replace(ch, "")
        if number and self.directory.lookup(number) is not None:
            return Extension(number)
        return NotFound(dialled)
