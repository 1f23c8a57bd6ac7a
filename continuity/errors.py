"""The one exception tree of the appliance.

Every error the appliance raises on purpose derives from :class:`ContinuityError`.
Errors that reach an SMTP client carry a reply code, an enhanced status code and a
public text; the private detail is only logged.
"""

from __future__ import annotations


class ContinuityError(Exception):
    """Base class of every deliberate error of the appliance."""


class ConfigError(ContinuityError):
    """The configuration is invalid; the message is one sentence per problem, naming the key."""


class StorageError(ContinuityError):
    """The store could not durably write or read; callers answer SMTP with 451 4.3.0."""


class NotFoundError(ContinuityError):
    """A named object (mailbox, queued message) does not exist."""


class InvalidInputError(ContinuityError):
    """Input from an operator or a file is malformed; the message says what and where."""


class SmtpReplyError(ContinuityError):
    """An error that is answered to an SMTP client as a reply line.

    ``public`` is what the client sees; ``detail`` goes to the log only.
    """

    def __init__(self, code: int, enhanced: str, public: str, detail: str = "") -> None:
        super().__init__(f"{code} {enhanced} {public}")
        self.code = code
        self.enhanced = enhanced
        self.public = public
        self.detail = detail

    @property
    def reply(self) -> str:
        """The reply line, without CRLF."""
        return f"{self.code} {self.enhanced} {self.public}"


class PrimaryReplyError(ContinuityError):
    """The primary's reply broke a bound the appliance sets (too long, too many lines, too slow).

    A compromised or broken primary is in the threat model: ``bound`` names the limit that
    was exceeded and ``server`` the host:port that exceeded it; the connection is dropped and
    the replay gives up on that server for a while.
    """

    def __init__(self, server: str, bound: str, detail: str) -> None:
        super().__init__(f"IMAP {server}: {detail} (bound: {bound})")
        self.server = server
        self.bound = bound
        self.detail = detail


class DirectorySourceError(ContinuityError):
    """The directory (Active Directory or Entra ID) could not be read; the message says which and why."""


class PrimaryAuthError(PrimaryReplyError):
    """The primary or Entra's token endpoint refused the credentials the replay logs in with.

    Wrong secret, revoked app, a token the primary refuses even when new: retrying each
    message would only repeat the refusal, so the replay gives up on the primary for a while
    (as after a reply that broke a bound) and every message stays queued. ``bound`` says which
    step refused ("authentication", "token endpoint", "credential"); the message is ``detail``.
    """

    def __init__(self, server: str, bound: str, detail: str) -> None:
        super().__init__(server, bound, detail)
        self.args = (detail,)

    def __str__(self) -> str:
        return self.detail


class UnreadableContentError(ContinuityError):
    """A stored message could not be parsed within its deadline (or its parse failed); show its source instead."""
