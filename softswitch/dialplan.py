"""The dialplan, sans-I/O: what a dialled string means.

Today a dialled string is an extension of the directory or nothing. The dialplan is a value
built from a directory: a reload builds a new one and calls already routed keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from softswitch.directory import Directory

__all__ = ["FEATURE_CODES", "Application", "Dialplan", "Extension", "NotFound", "Route"]

# Agent feature codes (ACD-0, ACD-4): login, logout, aux, available.
FEATURE_CODES = frozenset({"*11", "*12", "*13", "*14"})


@dataclass(frozen=True, slots=True)
class Extension:
    """Ring the registered contacts of directory user `user`."""

    user: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """Nothing answers to the dialled string (the caller gets 404, RFC 3261 §21.4.5)."""

    dialled: str


@dataclass(frozen=True, slots=True)
class Application:
    """The switch answers itself: a service number ("service") or a feature code ("feature")."""

    kind: str
    number: str


Route = Extension | NotFound | Application


class Dialplan:
    __slots__ = ("directory", "services")

    def __init__(self, directory: Directory, services: frozenset[str] = frozenset()) -> None:
        self.directory = directory
        self.services = services

    def resolve(self, dialled: str) -> Route:
        # Visual separators a phone may keep in a dialled number (RFC 3966 §5.1.1).
        number = dialled.strip()
        for ch in "-.() ":
            number = number.replace(ch, "")
        if number in self.services:
            return Application("service", number)
        if number in FEATURE_CODES:
            return Application("feature", number)
        if number and self.directory.lookup(number) is not None:
            return Extension(number)
        return NotFound(dialled)
