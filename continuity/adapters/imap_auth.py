"""Logging in to one mailbox on the primary's IMAP: LOGIN as a master user, SASL PLAIN with an authzid, XOAUTH2.

[replay] auth chooses (continuity.config.replay.ImapAuth):

* ``login``: ``LOGIN`` with the name login_format makes (Dovecot's ``alice@example.com*replay``);
* ``plain-authzid``: ``AUTHENTICATE PLAIN`` with the master user as authentication identity and
  the mailbox as authorization identity (RFC 4616), which Cyrus, Dovecot and Exchange accept;
* ``xoauth2``: ``AUTHENTICATE XOAUTH2`` with an app-only token from Entra (Exchange Online), or
  OAUTHBEARER (RFC 7628) when the server offers only that. A token the server refuses is
  renewed once (it may have expired or been revoked early); refused again, or no token to be
  had, raises continuity.errors.PrimaryAuthError so the replay leaves the primary alone.

aioimaplib has no general AUTHENTICATE, so :func:`_authenticate` sends the command itself:
the initial response inline when the server offers SASL-IR, otherwise after its ``+``; an
error challenge (XOAUTH2 and OAUTHBEARER send one before NO) is answered as the mechanism
wants and kept for the error. Secrets go to aioimaplib's ``scrub`` so its debug log omits them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import aioimaplib

from continuity.adapters.imap_guard import ReplyGuard
from continuity.adapters.oauth_token import EntraTokens
from continuity.config.replay import ImapAuth, ReplaySettings
from continuity.core.imap_syntax import quote
from continuity.errors import PrimaryAuthError


class LoginRefusedError(Exception):
    """The primary refused the login (a password, an unknown mailbox, a busy server); detail says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ImapLogin:
    """How to log in to any mailbox of the primary."""

    mode: ImapAuth
    master_user: str = ""
    master_password: str = ""
    login_format: str = "{mailbox}*{master}"
    tokens: EntraTokens | None = None

    @property
    def who(self) -> str:
        """Whom errors name as logging in."""
        return "the Entra app" if self.mode is ImapAuth.XOAUTH2 else self.master_user

    def login_name(self, mailbox: str) -> str:
        """The LOGIN name that opens mailbox as the master user."""
        local, _, domain = mailbox.partition("@")
        return self.login_format.format(mailbox=mailbox, local=local, domain=domain, master=self.master_user)


def login_from_settings(replay: ReplaySettings, tokens: EntraTokens | None = None) -> ImapLogin | None:
    """The login [replay] describes, or None when it is not configured (tokens: share one token cache)."""
    if not replay.imap_configured:
        return None
    password = replay.master_password.get_secret_value() if replay.master_password else ""
    if replay.auth is ImapAuth.XOAUTH2:
        tokens = tokens or EntraTokens(replay.entra)
    return ImapLogin(replay.auth, replay.master_user, password, replay.login_format, tokens)


def _text(lines: list[Any]) -> str:
    parts = [line.decode(errors="replace") if isinstance(line, bytes | bytearray) else str(line) for line in lines]
    return " ".join(part for part in parts if part).strip()


def _challenge_text(challenges: list[bytes]) -> str:
    """What the server's error challenges say (XOAUTH2's base64 JSON, e.g. {"status":"401",...})."""
    said = []
    for challenge in challenges:
        try:
            said.append(base64.b64decode(challenge, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            said.append(challenge.decode("ascii", "replace"))
    return " ".join(text for text in said if text)


async def _authenticate(
    client: aioimaplib.IMAP4_SSL,
    guard: ReplyGuard,
    mechanism: str,
    response: bytes,
    error_reply: bytes,
    deadline: float,
) -> tuple[bool, str]:
    """AUTHENTICATE mechanism with response; (accepted, what the server said when it refused)."""
    protocol = client.protocol
    encoded = base64.b64encode(response).decode("ascii")
    inline = "SASL-IR" in protocol.capabilities
    to_send = [] if inline else [encoded]
    challenges: list[bytes] = []

    def continuation(line: bytes) -> None:
        # The first "+" asks for the initial response (without SASL-IR); any later one is an error
        # challenge, answered as the mechanism wants so the server finishes with NO.
        if to_send:
            answer = to_send.pop().encode("ascii")
        else:
            challenges.append(line[1:].strip())
            answer = base64.b64encode(error_reply).decode("ascii").encode("ascii") if error_reply else b""
        if protocol.transport is not None:
            protocol.transport.write(answer + b"\r\n")

    protocol._continuation = continuation  # aioimaplib only knows continuations of APPEND and IDLE
    try:
        args = (mechanism, encoded) if inline else (mechanism,)
        command = aioimaplib.Command("AUTHENTICATE", protocol.new_tag(), *args, loop=protocol.loop)
        reply = await guard.run("AUTHENTICATE", protocol.execute(command, scrub=encoded), deadline)
    finally:
        del protocol._continuation
    if reply.result != "OK":
        said = " ".join(part for part in (_text(reply.lines), _challenge_text(challenges)) if part)
        return False, said or reply.result
    protocol.state = aioimaplib.AUTH
    # The capabilities before login are not those after it (MOVE, for one).
    await guard.run("CAPABILITY", protocol.capability(), deadline)
    return True, ""


def _oauth_mechanism(client: aioimaplib.IMAP4_SSL, server: str) -> str:
    offered = client.protocol.capabilities
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        if f"AUTH={mechanism}" in offered:
            return mechanism
    raise PrimaryAuthError(server, "authentication", f"IMAP {server} offers neither XOAUTH2 nor OAUTHBEARER")


def _oauth_response(mechanism: str, mailbox: str, token: str, host: str, port: int) -> tuple[bytes, bytes]:
    """(initial response, answer to an error challenge) of XOAUTH2 or OAUTHBEARER (RFC 7628)."""
    if mechanism == "XOAUTH2":
        return f"user={mailbox}\x01auth=Bearer {token}\x01\x01".encode(), b""
    gs2 = "n,a=" + mailbox.replace("=", "=3D").replace(",", "=2C") + ","
    return f"{gs2}\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode(), b"\x01"


async def log_in(
    client: aioimaplib.IMAP4_SSL,
    guard: ReplyGuard,
    login: ImapLogin,
    mailbox: str,
    *,
    server: str,
    host: str,
    port: int,
    deadline: float,
) -> None:
    """Log in to mailbox after the greeting.

    LoginRefusedError when the primary refuses a password login (it may be busy, the mailbox may be
    missing); continuity.core.imap_syntax.ImapSyntaxError for a login name IMAP cannot carry;
    PrimaryAuthError when the app gets no token or the primary refuses even a new one.
    aioimaplib's and the guard's errors (connection, bounds, deadline) pass through.
    """
    if login.mode is ImapAuth.LOGIN:
        name = quote(login.login_name(mailbox))
        reply = await guard.run("LOGIN", client.login(name, login.master_password), deadline)
        if reply.result != "OK":
            raise LoginRefusedError(f"login to {mailbox} as {login.master_user} refused: {_text(reply.lines)}")
        return
    if login.mode is ImapAuth.PLAIN_AUTHZID:
        if "AUTH=PLAIN" not in client.protocol.capabilities:
            raise PrimaryAuthError(server, "authentication", f"IMAP {server} does not offer AUTHENTICATE PLAIN")
        response = f"{mailbox}\0{login.master_user}\0{login.master_password}".encode()
        accepted, said = await _authenticate(client, guard, "PLAIN", response, b"", deadline)
        if not accepted:
            raise LoginRefusedError(f"AUTHENTICATE PLAIN as {login.master_user} for {mailbox} refused: {said}")
        return
    assert login.tokens is not None, "xoauth2 needs a token source"
    mechanism = _oauth_mechanism(client, server)
    token = await login.tokens.token()
    for attempt in range(2):
        response, error_reply = _oauth_response(mechanism, mailbox, token.value, host, port)
        accepted, said = await _authenticate(client, guard, mechanism, response, error_reply, deadline)
        if accepted:
            return
        if attempt == 0 and not token.fresh:
            # A cached token may have expired early or been revoked: ask for a new one, once.
            token = await login.tokens.token(renew=True)
            continue
        raise PrimaryAuthError(
            server, "authentication", f"IMAP {server} refused the app's token for {mailbox} ({mechanism}): {said}"
        )
