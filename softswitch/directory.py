"""The directory: who may register and call, with their digest credentials.

HA1 values are computed once when the directory is built (at start-up and on reload), so a
digest verification costs one hash of the request, not a password hash per REGISTER.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from softswitch.config import Config

__all__ = ["Directory", "DirectoryDiff", "User", "UserEntry", "ha1"]


class UserEntry(Protocol):
    """What `Directory.from_users` reads from each entry (`config.UserConfig` fits)."""

    @property
    def extension(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ha1(self) -> str | None: ...
    @property
    def ha1_sha256(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class User:
    """A directory entry; an HA1 is `None` when only the other one was configured."""

    extension: str
    name: str
    ha1_md5: str | None
    ha1_sha256: str | None
    contact: str | None = None  # a static contact (gateway) rung besides registered ones


class DirectoryDiff(NamedTuple):
    """Extensions added, removed and changed (name or credentials) between two directories."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """RFC 7616 §3.4.2: HA1 = H(username ":" realm ":" password), lower-case hex."""
    data = f"{username}:{realm}:{password}".encode()
    if algorithm == "MD5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unsupported digest algorithm {algorithm!r}")


class Directory:
    """Users by extension (the digest username); immutable once built."""

    __slots__ = ("_users", "realm")

    def __init__(self, users: Iterable[User], realm: str) -> None:
        self.realm = realm
        self._users: dict[str, User] = {}
        for user in users:
            if user.extension in self._users:
                raise ValueError(f"duplicate extension {user.extension!r}")
            self._users[user.extension] = user

    @classmethod
    def from_users(cls, users: Iterable[UserEntry], realm: str) -> Directory:
        """Build from configured users, hashing plain passwords for `realm` once."""
        built: list[User] = []
        md5: str | None
        sha: str | None
        for entry in users:
            if entry.password is not None:
                md5 = ha1("MD5", entry.extension, realm, entry.password)
                sha = ha1("SHA-256", entry.extension, realm, entry.password)
            else:
                md5 = entry.ha1.lower() if entry.ha1 else None
                sha = entry.ha1_sha256.lower() if entry.ha1_sha256 else None
            built.append(User(entry.extension, entry.name, md5, sha,
                              getattr(entry, "contact", None)))
        return cls(built, realm)

    @classmethod
    def from_config(cls, config: Config) -> Directory:
        """The directory a configuration describes; the realm is `sip.domain`."""
        return cls.from_users(config.users, config.sip.domain)

    def lookup(self, username: str) -> User | None:
        # RFC 3261 §19.1.4: the user part compares case-sensitively.
        return self._users.get(username)

    def __contains__(self, username: object) -> bool:
        return username in self._users

    def __len__(self) -> int:
        return len(self._users)

    def __iter__(self) -> Iterator[User]:
        return iter(self._users.values())

    def diff(self, other: Directory) -> DirectoryDiff:
        """What changes when `other` replaces this directory (for reload logs)."""
        mine, theirs = self._users, other._users
        return DirectoryDiff(
            added=tuple(sorted(theirs.keys() - mine.keys())),
            removed=tuple(sorted(mine.keys() - theirs.keys())),
            changed=tuple(sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])),
        )

    def __repr__(self) -> str:
        return f"Directory({len(self)} users, realm={self.realm!r})"
