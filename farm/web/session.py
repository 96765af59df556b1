"""The monitor's session cookie, CSRF tokens and flash messages: signed values, pure functions.

A session holds the sha256 of the API token that logged in (the ``api_tokens`` row's key),
never the token: a leaked cookie cannot be replayed against the REST API, and every request
looks the hash up again, so revoking the token ends its sessions at once. Each session has a
random nonce; its CSRF token is an HMAC of that nonce, so it is bound to this session and a
new login gets a new one. Everything is signed with HMAC-SHA256 under a secret generated once
into the data directory (:func:`secret`); time is a parameter, so the tests need no clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SESSION_COOKIE = "farm_session"
LOGIN_COOKIE = "farm_login"
FLASH_COOKIE = "farm_flash"
# A session lasts a working week at most; revoking its token ends it sooner.
SESSION_MAX_AGE_S = 7 * 24 * 3600
LOGIN_MAX_AGE_S = 3600
FLASH_MAX_AGE_S = 60
_VERSION = "v1"


@dataclass(frozen=True)
class Session:
    token_hash: str
    nonce: str
    issued_at: int


def secret(data_dir: Path) -> bytes:
    """The signing key: 32 random bytes made once into ``data_dir/web_secret`` (mode 0600,
    created exclusively, so two API processes starting at once agree on one). API replicas on
    several hosts must share this file; rotating it logs every session out."""
    path = Path(data_dir).resolve() / "web_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:  # a half-written file from a racing first start: read it once more
        key = path.read_text().strip()
    return bytes.fromhex(key)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(key, f"{purpose}:{data}".encode(), hashlib.sha256).digest())


def sign(key: bytes, purpose: str, value: dict[str, Any]) -> str:
    """``value`` as JSON, signed for one ``purpose`` (a flash cannot pass for a session)."""
    body = _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())
    return f"{_VERSION}.{body}.{_mac(key, purpose, body)}"


def unsign(key: bytes, purpose: str, signed: str | None) -> dict[str, Any] | None:
    """The value ``sign`` made, or None if it is absent, malformed or not signed by ``key``."""
    if not signed:
        return None
    parts = signed.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        return None
    if not hmac.compare_digest(parts[2], _mac(key, purpose, parts[1])):
        return None
    try:
        value = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def new_session(token_hash: str, now: float) -> Session:
    return Session(token_hash, secrets.token_urlsafe(16), int(now))


def encode_session(key: bytes, session: Session) -> str:
    return sign(
        key, "session", {"h": session.token_hash, "n": session.nonce, "t": session.issued_at}
    )


def decode_session(key: bytes, cookie: str | None, now: float) -> Session | None:
    """The cookie's session if it is genuine and younger than ``SESSION_MAX_AGE_S``."""
    value = unsign(key, "session", cookie)
    if value is None:
        return None
    h, n, t = value.get("h"), value.get("n"), value.get("t")
    if not (isinstance(h, str) and isinstance(n, str) and isinstance(t, int)):
        return None
    if not 0 <= now - t <= SESSION_MAX_AGE_S:
        return None
    return Session(h, n, t)


def csrf_token(key: bytes, nonce: str) -> str:
    """The CSRF token of a session (its nonce) or of a login form (the login cookie's)."""
    return _mac(key, "csrf", nonce)


def csrf_ok(key: bytes, nonce: str | None, submitted: str | None) -> bool:
    if not nonce or not submitted:
        return False
    return hmac.compare_digest(csrf_token(key, nonce), submitted)


def same_origin(host: str | None, origin: str | None, referer: str | None) -> bool:
    """Whether a POST comes from a page of this site: its ``Origin`` (every current browser
    sends one with a form POST), else its ``Referer``, names the host the request was sent to.
    Neither: refused, as a browser that sends neither cannot be told from a forged request.
    Only the host and port are compared, so a TLS proxy in front (https outside, http here)
    passes as long as it forwards ``Host``."""
    if not host:
        return False
    source = origin if origin and origin != "null" else referer
    if not source:
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never ``//evil`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
