"""Tokens of the control server: created once, stored only as a hash, checked per request.

A token is ``hg_`` followed by 43 URL-safe characters from :func:`secrets.token_urlsafe`
(256 bits). The storage keeps its SHA-256 (a salt adds nothing to a random 256-bit secret), its
role (``admin`` or ``agent``), a name and the times it was created and revoked, in the table
``hypergraph_tokens`` of the sweep storage itself, so one database holds everything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from hypergraph.exceptions import ConfigError, InvalidParameterError
from hypergraph.logging import get_logger

__all__ = ["ROLES", "Principal", "TokenStore", "hash_token"]

logger = get_logger(__name__)

#: Roles a token can have: admins create and cancel sweeps and read their state; agents take
#: trials and report on the trials they hold.
ROLES = ("admin", "agent")
_PREFIX = "hg_"

_META = sa.MetaData()
TOKENS = sa.Table(
    "hypergraph_tokens", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)


def hash_token(token: str) -> str:
    """SHA-256 of ``token`` (hex), the only form the storage keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The holder of a valid token."""

    id: int
    name: str
    role: str


class TokenStore:
    """Tokens in the table ``hypergraph_tokens`` of a storage (any SQLAlchemy URL).

    Args:
        url: SQLAlchemy URL of the sweep storage.
        engine: An engine to share (otherwise one is created for ``url``).
        cache_seconds: How long a checked token is trusted without asking the database again
            (a revocation takes effect within this time).
    """

    def __init__(self, url: str | None = None, engine: sa.Engine | None = None,
                 cache_seconds: float = 2.0) -> None:
        from hypergraph.sweeps._store import _normalise_url, _redact

        if engine is None:
            if url is None:
                raise ConfigError("TokenStore needs a storage URL or an engine.")
            url = _normalise_url(url)
            kwargs: dict[str, Any] = ({"connect_args": {"timeout": 60}}
                                      if url.startswith("sqlite") else {"pool_pre_ping": True})
            engine = sa.create_engine(url, **kwargs)
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        try:
            _META.create_all(self.engine)
        except (OperationalError, sa.exc.ArgumentError, ImportError) as err:
            raise ConfigError(f"Cannot open the storage '{_redact(str(engine.url))}': "
                              f"{str(err).splitlines()[0]}") from None

    def create(self, role: str, name: str = "") -> tuple[str, Principal]:
        """Create a token; return it (shown once, never stored) and its principal."""
        if role not in ROLES:
            raise InvalidParameterError(f"Unknown role '{role}'; choose {' or '.join(ROLES)}.")
        token = _PREFIX + secrets.token_urlsafe(32)
        name = name or f"{role}-{secrets.token_hex(3)}"
        if len(name) > 100:
            raise InvalidParameterError("A token name has at most 100 characters.")
        with self.engine.begin() as conn:
            key = conn.execute(TOKENS.insert().values(
                name=name, role=role, hash=hash_token(token), created_at=_now())
            ).inserted_primary_key
        tid = key[0] if key is not None else 0
        return token, Principal(int(tid), name, role)

    def revoke(self, key: str) -> int:
        """Revoke the live tokens whose name is ``key``, or the token ``key`` itself (or its id
        as ``#ID``); return how many were revoked."""
        cond = TOKENS.c.name == key
        if key.startswith(_PREFIX):
            cond = TOKENS.c.hash == hash_token(key)
        elif key.startswith("#") and key[1:].isdigit():
            cond = TOKENS.c.id == int(key[1:])
        with self.engine.begin() as conn:
            count = conn.execute(TOKENS.update().where(cond & TOKENS.c.revoked_at.is_(None))
                                 .values(revoked_at=_now())).rowcount
        with self._lock:
            self._cache.clear()
        return int(count)

    def list(self) -> list[dict[str, Any]]:
        """Every token (id, name, role, created_at, revoked_at), never the secret or its hash."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(TOKENS.c.id, TOKENS.c.name, TOKENS.c.role,
                                          TOKENS.c.created_at, TOKENS.c.revoked_at)
                                .order_by(TOKENS.c.id))
            return [dict(r._mapping) for r in rows]

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """``(True, principal or None)`` when ``token`` was checked less than
        ``cache_seconds`` ago (no database access: the server's event loop asks this first),
        ``(False, None)`` when :meth:`check` must ask the database."""
        if not token.startswith(_PREFIX) or len(token) > 200:
            return True, None
        with self._lock:
            hit = self._cache.get(hash_token(token))
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return True, hit[1]
        return False, None

    def check(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked ``token``; ``None`` otherwise."""
        known, found = self.cached(token)
        if known:
            return found
        digest = hash_token(token)
        now = time.monotonic()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TOKENS).where(
                (TOKENS.c.hash == digest) & TOKENS.c.revoked_at.is_(None))).first()
        found = None
        if row is not None and hmac.compare_digest(row.hash, digest):
            found = Principal(int(row.id), str(row.name), str(row.role))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, found)
        return found


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
