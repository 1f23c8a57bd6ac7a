"""Server-side sessions and CSRF protection of the webmail.

A session is a random 256-bit cookie value; the store keeps only its SHA-256, with the
mailbox, the sign-in stage and a per-session CSRF token. Every sign-in step issues a new
cookie value and deletes the previous session (no fixation: a value planted before
sign-in never becomes authenticated). Sessions end after ``session_idle_minutes``
without a request and ``session_max_hours`` after sign-in, whatever the activity.

Every POST carries a CSRF token in the form: the session's token once signed in, or,
on the sign-in and activation forms, a token that must equal a pre-session cookie
(double submit). Requests whose Origin header names another site are refused too, and
the cookies are SameSite=Strict.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from litestar import Request
from litestar.datastructures import Cookie

from continuity.config.webmail import WebmailSettings
from continuity.core.webmail_models import SessionRecord, SessionStage
from continuity.store.webmail_protocol import WebmailAuthRepository

CSRF_FIELD = "csrf_token"
_TOUCH_EVERY = 30.0


@dataclass(frozen=True, slots=True)
class CookieNames:
    """Cookie names; the __Host- prefix (Secure, Path=/, no Domain) when cookies are Secure."""

    session: str
    pre: str

    @classmethod
    def of(cls, secure: bool) -> CookieNames:
        """Names for the given cookie security."""
        prefix = "__Host-" if secure else ""
        return cls(f"{prefix}cw_session", f"{prefix}cw_pre")


def new_token() -> str:
    """A random URL-safe token of 256 bits."""
    return secrets.token_urlsafe(32)


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


class SessionManager:
    """Creates, finds and ends sessions; builds the cookies."""

    def __init__(self, auth: WebmailAuthRepository, settings: WebmailSettings) -> None:
        self._auth = auth
        self._settings = settings
        self.names = CookieNames.of(settings.cookie_secure)

    def _cookie(self, key: str, value: str, max_age: int | None) -> Cookie:
        return Cookie(
            key=key,
            value=value,
            path="/",
            max_age=max_age,
            secure=self._settings.cookie_secure,
            httponly=True,
            samesite="strict",
        )

    def session_cookie(self, token: str) -> Cookie:
        """The cookie carrying a new session."""
        return self._cookie(self.names.session, token, None)

    def clear_session_cookie(self) -> Cookie:
        """A cookie that removes the session cookie."""
        return self._cookie(self.names.session, "", 0)

    def pre_cookie(self, token: str) -> Cookie:
        """The pre-session cookie of the sign-in forms."""
        return self._cookie(self.names.pre, token, 3600)

    async def start(self, mailbox: str, stage: SessionStage, client: str, previous: SessionRecord | None) -> str:
        """A new session (ending previous); returns the cookie value."""
        if previous is not None:
            await self._auth.delete_session(previous.token_hash)
        token = new_token()
        await self._auth.create_session(token, mailbox, new_token(), stage, client)
        return token

    def expired(self, record: SessionRecord, now: float) -> bool:
        """True when record's idle or absolute lifetime is over."""
        return (
            now - record.last_seen > self._settings.session_idle_minutes * 60
            or now - record.created_at > self._settings.session_max_hours * 3600
        )

    async def find(self, request: Request) -> SessionRecord | None:  # type: ignore[type-arg]
        """The live session of request, or None (an expired one is deleted)."""
        token = request.cookies.get(self.names.session)
        if not token or len(token) > 100:
            return None
        record = await self._auth.session(token)
        if record is None:
            return None
        now = time.time()
        if self.expired(record, now):
            await self._auth.delete_session(record.token_hash)
            return None
        if now - record.last_seen > _TOUCH_EVERY:
            await self._auth.touch_session(record.token_hash, now)
        return record

    async def end(self, record: SessionRecord) -> None:
        """Sign out."""
        await self._auth.delete_session(record.token_hash)

    async def sweep(self) -> int:
        """Delete every expired session."""
        now = time.time()
        return await self._auth.delete_expired_sessions(
            now - self._settings.session_idle_minutes * 60, now - self._settings.session_max_hours * 3600
        )
