"""Webhooks: a job's events POSTed as signed JSON to the URL its spec names.

Deliveries are written in the same transaction as the state change that causes them (an
outbox), then sent by the sweeper's loop with exponential backoff for a bounded time, and
every attempt is recorded so a wrangler can see what was not delivered.

Receivers verify ``X-Farm-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw request body
under the farm's webhook secret (``FARM_WEBHOOK_SECRET``), with a constant-time compare.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.config import Settings
from farm.db import session_scope
from farm.models import WebhookDelivery
from farm.states import JobState

log = logging.getLogger(__name__)

EVENT_FOR_STATE = {
    JobState.RUNNING: "started",
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.CANCELED: "canceled",
}
SIGNATURE_HEADER = "X-Farm-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does; shipped so pipelines can import it."""
    return hmac.compare_digest(sign(secret, body), header)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def next_delay_s(attempts: int, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))


def give_up(created_at: datetime, now: datetime, window_s: float) -> bool:
    return (now - created_at).total_seconds() >= window_s


class JobFacts(Protocol):
    """What a delivery needs of its job: a :class:`~farm.models.Job`, or the row the state
    machine's update returned."""

    id: int
    name: str
    kind: str
    error: str | None
    webhook_url: str | None
    webhook_events: list[str]


def enqueue(session: Session, job: JobFacts, state: JobState, when: datetime) -> None:
    """Called by the state machine when a job's state changes."""
    event = EVENT_FOR_STATE.get(state)
    if event is None or not job.webhook_url or event not in job.webhook_events:
        return
    payload = {
        "event": f"job.{event}",
        "job": {"id": job.id, "name": job.name, "kind": job.kind, "state": state.value},
        "error": job.error,
        "at": when.isoformat(),
    }
    session.add(
        WebhookDelivery(
            job_id=job.id, event=event, url=job.webhook_url, payload=payload, next_attempt_at=when
        )
    )


def secret(settings: Settings) -> str:
    """The farm's webhook secret: the setting, else one generated once into the data dir."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = Path(settings.data_dir).resolve() / "webhook_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def deliver_due(settings: Settings, client: httpx.Client | None = None, limit: int = 50) -> int:
    """Attempt every due delivery once; returns how many were delivered."""
    key = secret(settings)
    done = 0
    own = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_s)
    try:
        with session_scope(settings) as session:
            now = session.execute(select(func.now())).scalar_one()
            due = session.execute(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
            for d in due:
                body = encode(d.payload)
                d.attempts += 1
                try:
                    r = http.post(
                        d.url,
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            SIGNATURE_HEADER: sign(key, body),
                            "X-Farm-Event": f"job.{d.event}",
                            "X-Farm-Delivery": str(d.id),
                        },
                    )
                    d.last_status_code = r.status_code
                    d.last_error = None if r.is_success else r.text[:500]
                    ok = r.is_success
                except httpx.HTTPError as e:
                    d.last_error = f"{type(e).__name__}: {e}"[:500]
                    ok = False
                if ok:
                    d.status, d.delivered_at = "delivered", now
                    done += 1
                elif give_up(d.created_at, now, settings.webhook_retry_window_s):
                    d.status = "failed"
                    log.warning(
                        "webhook %s for job %s undelivered: %s", d.id, d.job_id, d.last_error
                    )
                else:
                    d.next_attempt_at = now + timedelta(seconds=next_delay_s(d.attempts))
    finally:
        if own:
            http.close()
    return done
