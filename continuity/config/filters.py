"""Settings of the security filter pipeline (the ``[filters]`` table and its stage tables)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from continuity.config.types import parse_host_port
from continuity.core.pipeline import Verdict, VerdictPolicy

_STAGE_DOC = "Run this stage."
_TIMEOUT_DOC = "Seconds the stage may take; past it the stage counts as failed."
_FAIL_OPEN_DOC = "On failure or timeout: true ignores the stage, false answers tempfail (451)."


class PolicySettings(BaseModel):
    """How findings become a verdict (accept, tag, quarantine, tempfail, reject)."""

    model_config = ConfigDict(extra="forbid")

    tag_score: float = Field(default=4.0, ge=0, description="Total score that tags a message (0: never).")
    quarantine_score: float = Field(default=8.0, ge=0, description="Total score that quarantines (0: never).")
    reject_score: float = Field(default=0.0, ge=0, description="Total score that rejects at SMTP time (0: never).")
    actions: dict[str, Verdict] = Field(
        default_factory=lambda: {
            "clamd.virus": Verdict.REJECT,
            "attachments.executable": Verdict.REJECT,
            "attachments.archive_bomb": Verdict.REJECT,
            "auth.dmarc_reject": Verdict.REJECT,
            "auth.dmarc_quarantine": Verdict.QUARANTINE,
            "urls.blocklisted": Verdict.QUARANTINE,
            "rspamd.reject": Verdict.REJECT,
            "bec.invoice_near_duplicate": Verdict.QUARANTINE,
        },
        description=(
            "Finding code (e.g. `bec.bank_change`) or stage name (e.g. `clamd`) mapped to the verdict it imposes, "
            "whatever the score; setting this table replaces the defaults."
        ),
    )

    def policy(self) -> VerdictPolicy:
        """The core policy object."""
        return VerdictPolicy(self.tag_score, self.quarantine_score, self.reject_score, dict(self.actions))


class StageSettings(BaseModel):
    """Settings every stage has."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description=_STAGE_DOC)
    timeout: float = Field(default=10.0, gt=0, description=_TIMEOUT_DOC)
    fail_open: bool = Field(default=True, description=_FAIL_OPEN_DOC)


class AuthSettings(StageSettings):
    """SPF, DKIM, DMARC and ARC; writes Authentication-Results."""

    timeout: float = Field(default=15.0, gt=0, description=_TIMEOUT_DOC)
    authserv_id: str = Field(default="", description="Name in Authentication-Results (default: smtp.hostname).")


class AttachmentSettings(StageSettings):
    """Dangerous attachments by content and name, archives and archive bombs."""

    max_archive_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024, description="Most bytes decompressed from one archive before it is a bomb."
    )
    max_archive_ratio: int = Field(default=200, ge=2, description="Largest compression ratio of an archive member.")
    max_archive_entries: int = Field(default=5000, ge=1, description="Most entries in one archive before it is a bomb.")
    max_nesting: int = Field(default=4, ge=1, description="Deepest archive-in-archive nesting that is opened.")


class UrlSettings(StageSettings):
    """Links: local blocklists and mismatched link text."""

    blocklists: list[Path] = Field(
        default_factory=list, description="Files of blocked domains, one per line (# comments); reread when changed."
    )


class HijackSettings(StageSettings):
    """Reply-chain hijack detection from the thread store."""

    retention_days: int = Field(default=180, ge=1, description="Days a thread is remembered.")


class AttachmentTextSettings(BaseModel):
    """Bounds on reading the text of PDF, OOXML and ODF attachments for the fraud stages."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Read document attachments' text for bank details.")
    max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest attachment read; a larger one is unreadable."
    )
    max_pages: int = Field(default=50, ge=1, description="Most pages of a PDF (parts of a document) read.")
    max_chars: int = Field(default=200_000, ge=1000, description="Most characters of text kept per attachment.")
    max_member_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Most bytes one zip member or PDF stream may unpack to; past it the document is unreadable.",
    )
    max_ratio: int = Field(default=200, ge=2, description="Largest compression ratio of a zip member (past 1 MiB).")
    seconds: float = Field(
        default=2.0,
        gt=0,
        description="Time budget for reading one message's attachments, checked between pages; the rest is unread.",
    )
    max_page_objects: int = Field(
        default=30_000,
        ge=1000,
        description="Most objects (operators, operands) of a PDF page's content or a form it draws; past it: unread.",
    )
    max_documents: int = Field(default=10, ge=1, description="Most document attachments read per message.")


class BecSettings(StageSettings):
    """Invoice fraud and impersonation: bank details, lookalike domains, display names, freemail."""

    freemail_lists: list[Path] = Field(
        default_factory=list, description="Extra files of freemail domains (one per line) besides the built-in list."
    )
    correspondent_domains: list[str] = Field(
        default_factory=list,
        description="Partner domains to protect from lookalikes, besides the protected domains and known senders.",
    )
    attachment_text: AttachmentTextSettings = Field(
        default_factory=AttachmentTextSettings, description="Reading bank details in document attachments."
    )
    near_duplicate_similarity: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity from which two documents are near-duplicates (MinHash of shingles).",
    )
    near_duplicate_days: int = Field(
        default=60, ge=1, description="Days a document's fingerprint is compared with later documents."
    )


class BecWordingSettings(StageSettings):
    """Payment requests with urgency or secrecy from free mail or newly seen domains (no directory match needed)."""


class ClamdSettings(StageSettings):
    """ClamAV's clamd over INSTREAM; used only when address is set."""

    fail_open: bool = Field(default=False, description=_FAIL_OPEN_DOC)
    timeout: float = Field(default=30.0, gt=0, description=_TIMEOUT_DOC)
    address: str = Field(default="", description="clamd's HOST:PORT or the path of its Unix socket; empty: not used.")

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        text = value.strip()
        if text and not text.startswith("/"):
            return str(parse_host_port(text))
        return text


class RspamdSettings(StageSettings):
    """rspamd's HTTP protocol (/checkv2); used only when url is set."""

    url: str = Field(default="", description="Base URL of rspamd's normal worker, e.g. http://127.0.0.1:11333.")
    password: SecretStr | None = Field(default=None, description="Password header for rspamd when it requires one.")

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if text and not text.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http:// or https:// URL")
        return text


class FilterSettings(BaseModel):
    """The security filter pipeline run on inbound, outbound and replayed mail."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Master switch: false stores every message unfiltered.")
    resolver: list[str] = Field(
        default_factory=list,
        description="DNS servers (HOST:PORT) for SPF/DKIM/DMARC; empty uses the system resolver.",
    )
    dns_timeout: float = Field(default=5.0, gt=0, description="Seconds per DNS lookup.")
    dns_cache_size: int = Field(default=20_000, ge=0, description="DNS answers kept in memory (0: no cache).")
    processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Worker processes that parse and judge messages (ingest, webmail, replay); 0: one per CPU core. "
            "The serving process never parses a message itself."
        ),
    )
    deadline: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds one message may take to be judged, parsing included; past it the worker is killed and "
            "replaced and the message is unscannable. Keep it above the longest stage timeout."
        ),
    )
    unscannable: Verdict = Field(
        default=Verdict.QUARANTINE,
        description=(
            "What happens to a message that could not be judged (deadline passed, a worker died on it): "
            "quarantine (stored and held with the finding content.unscannable, 250), tempfail (451) or reject (550)."
        ),
    )
    worker_memory: int = Field(
        default=4096, ge=0, description="Address space of one worker process, in MiB (0: no limit)."
    )
    policy: PolicySettings = Field(default_factory=PolicySettings, description="Verdict policy.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Mail authentication stage.")
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings, description="Attachment stage.")
    urls: UrlSettings = Field(default_factory=UrlSettings, description="URL stage.")
    hijack: HijackSettings = Field(default_factory=HijackSettings, description="Reply-chain hijack stage.")
    bec: BecSettings = Field(default_factory=BecSettings, description="BEC and invoice fraud stage.")
    bec_wording: BecWordingSettings = Field(
        default_factory=BecWordingSettings, description="BEC wording stage (payment pressure from unknown senders)."
    )
    compromise: StageSettings = Field(
        default_factory=StageSettings,
        description="Compromised-mailbox stage: hijacked replies and bank-detail changes in outbound mail.",
    )
    clamd: ClamdSettings = Field(default_factory=ClamdSettings, description="clamd virus scanner (optional).")
    rspamd: RspamdSettings = Field(default_factory=RspamdSettings, description="rspamd (optional).")

    @field_validator("unscannable")
    @classmethod
    def _unscannable_holds_or_refuses(cls, value: Verdict) -> Verdict:
        if value not in (Verdict.QUARANTINE, Verdict.TEMPFAIL, Verdict.REJECT):
            raise ValueError("unscannable must be quarantine, tempfail or reject")
        return value

    @property
    def worker_count(self) -> int:
        """The number of worker processes (processes, or one per CPU core)."""
        return self.processes or max(1, os.cpu_count() or 1)

    @field_validator("resolver")
    @classmethod
    def _resolvers_parse(cls, value: list[str]) -> list[str]:
        return [str(parse_host_port(item)) for item in value]
