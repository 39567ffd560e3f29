"""Persistent storage: one `Store` interface, SQLite and PostgreSQL implementations.

`open_store(url)` picks the backend by URL scheme:

- ``sqlite:///relative/path`` (relative to the current directory), ``sqlite:////absolute/path``,
  ``sqlite://:memory:``;
- ``postgresql://user[:password]@host:port/db`` (or ``postgres://``), optionally with
  ``?schema=NAME`` to keep the tables in that PostgreSQL schema (created when missing).

The store is returned unopened: ``await store.open()`` connects and applies migrations.
"""

from __future__ import annotations

from softswitch.store.base import Binding, Store, StoreError
from softswitch.store.postgres import PostgresStore
from softswitch.store.sqlite import MEMORY, SqliteStore

__all__ = ["Binding", "PostgresStore", "SqliteStore", "Store", "StoreError", "open_store"]


def open_store(url: str) -> Store:
    """The store `url` names, not yet opened; raise `StoreError` for an unusable URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreError(f"store url {url!r}: expected scheme://...")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest == MEMORY:
            return SqliteStore(MEMORY)
        if not rest.startswith("/") or len(rest) < 2:
            raise StoreError(
                f"store url {url!r}: use sqlite:///relative/path, sqlite:////absolute/path"
                " or sqlite://:memory:"
            )
        # After "sqlite://", one slash separates the (empty) host from the path; what
        # follows is the path itself, absolute when it starts with another slash.
        return SqliteStore(rest[1:])
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise StoreError(f"store url {url!r}: scheme must be sqlite, postgresql or postgres")
