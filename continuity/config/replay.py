"""Settings of the replay into the primary (the ``[replay]`` table and ``[replay.folders]``).

The replay runs in RESTORING: every message the standby received or users wrote in the
webmail goes back into the primary, over IMAP (APPEND as a master user, into the folder
the user left it in, with its flags) or, for received mail, over SMTP to the primary's
receive connector. docs/replay.md explains each setting's effect.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from continuity.config.outbound import TlsPolicy

_DAY = 86400.0


class ReplayMethod(StrEnum):
    """How received mail reaches the primary."""

    # IMAP APPEND into the user's folder with flags and the original INTERNALDATE.
    IMAP = "imap"
    # SMTP to the receive connector (transport rules see it); lands in the Inbox, flags are not kept.
    SMTP = "smtp"


class ImapAuth(StrEnum):
    """How the replay and the IMAP checks log in to a mailbox on the primary."""

    # LOGIN with the name login_format makes of the mailbox and master_user (Dovecot, Exchange on-premises).
    LOGIN = "login"
    # AUTHENTICATE PLAIN: master_user authenticates, the mailbox is the authorization identity (RFC 4616).
    PLAIN_AUTHZID = "plain-authzid"
    # AUTHENTICATE XOAUTH2 (or OAUTHBEARER) with an app-only token from Microsoft Entra (Exchange Online).
    XOAUTH2 = "xoauth2"


class EntraAppSettings(BaseModel):
    """The app registration whose client-credential tokens open mailboxes in Exchange Online ([replay.entra])."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(default="", description="Directory (tenant) id of the app registration.")
    client_id: str = Field(default="", description="Application (client) id of the app registration.")
    client_secret: SecretStr | None = Field(default=None, description="A client secret of the app.")
    client_secret_file: Path | None = Field(default=None, description="File holding the client secret instead.")
    certificate_file: Path | None = Field(
        default=None, description="PEM file with the app's certificate private key (instead of a secret)."
    )
    certificate_thumbprint: str = Field(
        default="", description="SHA-1 thumbprint (hex) of the certificate uploaded to the app registration."
    )
    authority: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra's login endpoint (sovereign clouds: https://login.microsoftonline.us, ...).",
    )
    scope: str = Field(default="https://outlook.office365.com/.default", description="Scope of the token.")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle for the token endpoint's certificate.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds a token request may take.")

    @field_validator("authority")
    @classmethod
    def _https(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if not text.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return text

    @model_validator(mode="after")
    def _credential(self) -> EntraAppSettings:
        given = [self.client_secret is not None, self.client_secret_file is not None, self.certificate_file is not None]
        if sum(given) > 1:
            raise ValueError("set one of client_secret, client_secret_file and certificate_file")
        if self.certificate_file is not None and not self.certificate_thumbprint:
            raise ValueError("certificate_file needs certificate_thumbprint")
        return self

    @property
    def configured(self) -> bool:
        """True when the tenant, the client and one credential are set."""
        credential = self.client_secret or self.client_secret_file or self.certificate_file
        return bool(self.tenant_id and self.client_id and credential)


class DedupCheck(StrEnum):
    """When the replay looks for an earlier copy on the primary before delivering."""

    # Only for a message whose earlier attempt may have reached the primary (interrupted, timed out).
    ATTEMPTED = "attempted"
    # Before every delivery (slower on large folders).
    ALWAYS = "always"


class ReplayFolders(BaseModel):
    """Names of the standard folders on the primary (Exchange's well-known folders by default)."""

    model_config = ConfigDict(extra="forbid")

    inbox: str = Field(default="INBOX", description="The Inbox on the primary.")
    sent: str = Field(default="Sent Items", description="Where mail sent from the webmail goes.")
    drafts: str = Field(default="Drafts", description="Where drafts written in the webmail go.")
    trash: str = Field(default="Deleted Items", description="Where mail deleted in the webmail goes.")
    junk: str = Field(default="Junk Email", description="Where mail in the webmail's Junk folder goes.")
    user_parent: str = Field(
        default="", description="Parent folder of the folders users created (empty: at the top level, beside Inbox)."
    )

    @field_validator("inbox", "sent", "drafts", "trash", "junk", "user_parent")
    @classmethod
    def _printable(cls, value: str) -> str:
        text = value.strip()
        if any(not char.isprintable() for char in text):
            raise ValueError("must not contain control characters")
        return text


class ReplaySettings(BaseModel):
    """Replay of the standby's mail into the primary after restoration."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Replay into the primary in RESTORING (needs [primary] host).")
    method: ReplayMethod = Field(
        default=ReplayMethod.IMAP,
        description="imap: APPEND into the user's folders with flags; smtp: received mail to the receive connector.",
    )
    master_user: str = Field(
        default="", description="IMAP account allowed to open every mailbox (Dovecot master user, Exchange admin)."
    )
    master_password: SecretStr | None = Field(default=None, description="Password of the master user.")
    auth: ImapAuth = Field(
        default=ImapAuth.LOGIN,
        description=(
            "How the replay and the IMAP checks log in to a mailbox: login (login_format), plain-authzid "
            "(AUTHENTICATE PLAIN as master_user for the mailbox) or xoauth2 ([replay.entra], Exchange Online)."
        ),
    )
    entra: EntraAppSettings = Field(
        default_factory=EntraAppSettings, description="The Entra app whose tokens open mailboxes (auth = xoauth2)."
    )
    login_format: str = Field(
        default="{mailbox}*{master}",
        description=(
            "IMAP login name for a mailbox; placeholders {mailbox}, {local}, {domain}, {master} "
            "(Dovecot: '{mailbox}*{master}', Exchange on-premises: '{domain}\\{master}\\{local}')."
        ),
    )
    tls_verify: bool = Field(default=True, description="Verify the primary's IMAP and SMTP certificates.")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle for the primary's certificates.")
    smtp_tls: TlsPolicy = Field(default=TlsPolicy.OPPORTUNISTIC, description="TLS policy of SMTP replay.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Most deliveries in flight at once (connections).")
    connections_per_mailbox: int = Field(
        default=2, ge=1, le=16, description="Most IMAP connections (deliveries in flight) to one mailbox at once."
    )
    rate: float = Field(default=50.0, ge=0, description="Most messages per second (0: no limit).")
    mailbox_rate: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Most messages per second into one mailbox (0: no limit); Exchange throttles per mailbox, and a "
            "throttled mailbox is paused alone for the backoff the server suggests."
        ),
    )
    max_message_size: int = Field(
        default=35 * 1024 * 1024,
        ge=1024,
        le=150 * 1024 * 1024,
        description=(
            "Largest message (bytes) replayed by IMAP; a bigger one fails at once with the reason in the "
            "manifest and status (Exchange Online: 35 MB by default, 150 MB at most)."
        ),
    )
    batch: int = Field(default=50, ge=1, le=1000, description="Messages claimed per mailbox at once.")
    timeout: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds each IMAP or SMTP step may take (an IMAP command's deadline; an APPEND gets a second more per "
            "256 KiB of message)."
        ),
    )
    reply_line_max: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Longest line of the primary's IMAP replies, in bytes (SEARCH results: reply_listing_max).",
    )
    reply_lines_max: int = Field(
        default=100_000,
        ge=100,
        description="Most lines in one IMAP reply of the primary (LIST, SEARCH; other commands at most 10,000).",
    )
    reply_fetch_max: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="Most literal bytes in one FETCH reply of the primary (the marker headers of up to 50 messages).",
    )
    reply_listing_max: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        description="Most bytes of one LIST or SEARCH reply of the primary (a SEARCH result is one line).",
    )
    plan_batch: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description=(
            "Standby copies the planner looks at per batch (one transaction each); delivery starts with the first "
            "batch while the rest is planned."
        ),
    )
    filter_processes: int = Field(
        default=1,
        ge=0,
        le=32,
        description=(
            "Worker processes that run the filter pipeline on replayed mail, beside the process that delivers it "
            "(0: filter in the main process). About one per spare CPU core; each holds its own copy of the rules."
        ),
    )
    dedup_check: DedupCheck = Field(
        default=DedupCheck.ATTEMPTED,
        description="Look for an earlier copy (Message-ID and content hash) before an APPEND: attempted or always.",
    )
    retry_initial: float = Field(
        default=60.0, gt=0, description="Seconds before retrying a deferred message; doubled per attempt."
    )
    retry_max: float = Field(default=3600.0, gt=0, description="Longest wait between retries of one message.")
    give_up_after: float = Field(
        default=5 * _DAY, gt=0, description="Seconds a deferred message is retried before it counts as failed."
    )
    warn_before: float = Field(
        default=_DAY, ge=0, description="Seconds before giving up at which the admins are warned."
    )
    throttle_pause: float = Field(
        default=2.0, gt=0, description="Pause after the primary throttles (4xx, 'server busy'); doubled while it lasts."
    )
    throttle_pause_max: float = Field(default=300.0, gt=0, description="Longest pause after throttling.")
    latency_factor: float = Field(
        default=3.0, gt=1, description="Slow down when delivery latency exceeds this multiple of its baseline."
    )
    keep_delivered_days: float = Field(
        default=7.0, ge=0, description="Days replayed messages stay on the standby before they are pruned."
    )
    primary_networks: list[str] = Field(
        default_factory=list,
        description="Networks the primary sends from (besides [primary] host); its mail is held after a compromise.",
    )
    stragglers: bool = Field(
        default=True, description="After failback, replay mail that still reaches the standby (MX caches)."
    )
    poll: float = Field(default=2.0, gt=0, description="Seconds between looks for new work while replaying.")
    manifest_dir: Path | None = Field(
        default=None, description="Where manifests are written (default DATA_DIR/replay)."
    )
    folders: ReplayFolders = Field(default_factory=ReplayFolders, description="Folder names on the primary.")

    @field_validator("login_format")
    @classmethod
    def _login_format(cls, value: str) -> str:
        try:
            value.format(mailbox="m", local="l", domain="d", master="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown placeholder or bad braces ({exc}); use {{mailbox}} {{local}} {{domain}} {{master}}"
            ) from None
        return value

    @field_validator("primary_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(item.strip(), strict=False)) for item in value]

    @model_validator(mode="after")
    def _pairs(self) -> ReplaySettings:
        if bool(self.master_user) != (self.master_password is not None):
            raise ValueError("master_user and master_password must be set together")
        if self.auth is ImapAuth.XOAUTH2 and not self.entra.configured:
            raise ValueError("auth = xoauth2 needs [replay.entra] tenant_id, client_id and a secret or certificate")
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max must not be shorter than retry_initial")
        if self.warn_before >= self.give_up_after:
            raise ValueError("warn_before must be shorter than give_up_after")
        return self

    @property
    def imap_configured(self) -> bool:
        """True when the replay can log in to mailboxes (IMAP replay and every de-duplication check need it)."""
        if self.auth is ImapAuth.XOAUTH2:
            return self.entra.configured
        return bool(self.master_user)
