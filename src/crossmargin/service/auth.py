"""API keys and roles: who may do what.

Keys are random (``cm_`` + 32 url-safe bytes), shown once, stored as their SHA-256. Roles:

* ``owner`` - reads and moves only the accounts whose ``owner`` is the key's owner;
* ``oracle`` - pushes prices, reads oracle states;
* ``admin`` - risk parameters, manual liquidation, opening accounts, reads everything;
* ``auditor`` - reads everything, changes nothing.

A request for another owner's account is answered exactly like one for an account that does
not exist (404, same message), so a key cannot probe which ids exist.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crossmargin.errors import InputError
from crossmargin.service import db

Role = Literal["owner", "oracle", "admin", "auditor"]
ROLES: tuple[Role, ...] = ("owner", "oracle", "admin", "auditor")


@dataclass(frozen=True)
class Principal:
    """The caller behind a key."""

    name: str
    role: Role
    owner: str | None

    def can_read_all(self) -> bool:
        return self.role in ("admin", "auditor")

    def owns(self, owner: str) -> bool:
        return self.role == "owner" and self.owner == owner


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    engine: Engine, name: str, role: str, owner: str | None = None, key: str | None = None
) -> str:
    """Store a new key (hashed) and return it in clear text - the only time it is shown.

    ``key`` fixes the value (only ``serve --demo`` does, so that the README's examples run).
    """
    if role not in ROLES:
        raise InputError("role", role, f"must be one of {', '.join(ROLES)}")
    if role == "owner" and not owner:
        raise InputError("owner", owner, "an owner key needs the owner it acts for")
    key = key or "cm_" + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(db.api_keys.c.name).where(db.api_keys.c.name == name)
        ).first()
        if exists:
            raise InputError("name", name, "a key with this name exists")
        connection.execute(
            db.api_keys.insert().values(
                key_hash=hash_key(key),
                name=name,
                role=role,
                owner=owner if role == "owner" else None,
                created_s=time.time(),
            )
        )
    return key


class KeyStore:
    """Looks keys up by hash (cached: a key's role never changes; revocation deletes it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, Principal] = {}

    def principal(self, key: str | None) -> Principal | None:
        if not key or len(key) > 200:
            return None
        digest = hash_key(key)
        found = self._cache.get(digest)
        if found is not None:
            return found
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(db.api_keys).where(db.api_keys.c.key_hash == digest)
            ).first()
        if row is None:
            return None
        principal = Principal(row.name, row.role, row.owner)
        self._cache[digest] = principal
        return principal
