"""API tokens: random bearer secrets of which only the sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from farm.audit import Actor, record
from farm.config import Settings
from farm.db import session_scope
from farm.errors import FarmError
from farm.models import ApiToken

PREFIX = "farm_"
# How stale a token's last_used_at may be before a request writes it again.
LAST_USED_EVERY_S = 60


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name is recorded as the submitter of their jobs."""

    name: str
    read_only: bool
    # May change the shared farm's policy (projects, limits); see farm.api.admin.
    admin: bool = False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    settings: Settings,
    name: str,
    *,
    read_only: bool = False,
    admin: bool = False,
    actor: Actor | None = None,
) -> str:
    """Make a token and return it; it is shown once and never stored in the clear. An
    ``admin`` token may also change projects and limits; a read-only one cannot be admin."""
    if read_only and admin:
        raise FarmError("a token is read-only or admin, not both")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with session_scope(settings) as s:
            s.add(
                ApiToken(name=name, token_hash=hash_token(token), read_only=read_only, admin=admin)
            )
            s.flush()  # a taken name fails here, before its audit row
            detail = {"read_only": read_only, "admin": admin}
            record(s, actor, "token_create", "token", name, detail)
    except IntegrityError:
        raise FarmError(f"a token named {name!r} exists already") from None
    return token


def authenticate(settings: Settings, token: str) -> Principal | None:
    """Who holds this token, if it is valid (see :func:`principal_by_hash`)."""
    return principal_by_hash(settings, hash_token(token))


def principal_by_hash(settings: Settings, token_hash: str) -> Principal | None:
    """Who holds the token with this hash, if it is valid: the API's bearer tokens and the
    monitor's sessions (which keep only the hash) both come here. Its ``last_used_at`` is
    written at most once in ``LAST_USED_EVERY_S`` (the condition is in the UPDATE, so API
    replicas agree on it): a request while it is fresh reads one row and writes nothing."""
    stale = or_(
        ApiToken.last_used_at.is_(None),
        ApiToken.last_used_at < func.now() - timedelta(seconds=LAST_USED_EVERY_S),
    )
    with session_scope(settings) as s:
        row = s.execute(
            select(ApiToken.id, ApiToken.name, ApiToken.read_only, ApiToken.admin, stale).where(
                ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)
            )
        ).one_or_none()
        if row is None:
            return None
        token_id, name, read_only, admin, is_stale = row
        if is_stale:
            s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, stale)
                .values(last_used_at=func.now())
                .execution_options(synchronize_session=False)
            )
        return Principal(name, read_only, admin)


def revoke(settings: Settings, name: str, *, actor: Actor | None = None) -> None:
    with session_scope(settings) as s:
        row = s.execute(
            select(ApiToken).where(ApiToken.name == name).with_for_update()
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            raise FarmError(f"no active token named {name!r}")
        row.revoked_at = func.now()
        record(s, actor, "token_revoke", "token", name)


def list_tokens(settings: Settings) -> list[dict[str, str | bool | None]]:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    with session_scope(settings) as s:
        return [
            {
                "name": t.name,
                "read_only": t.read_only,
                "admin": t.admin,
                "created_at": iso(t.created_at),
                "last_used_at": iso(t.last_used_at),
                "revoked_at": iso(t.revoked_at),
            }
            for t in s.execute(select(ApiToken).order_by(ApiToken.id)).scalars()
        ]
