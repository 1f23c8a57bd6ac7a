"""Settings of compromise signals and the responses to them (the ``[signals]`` table).

The thresholds feed continuity.core.baseline (spikes against each mailbox's own history,
hard caps, never-seen recipients, bounce bursts); the response policy feeds
continuity.core.signals. docs/signals.md explains the defaults.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from continuity.core.addresses import normalize_address
from continuity.core.baseline import RatePolicy
from continuity.core.signals import PrimaryAction, ResponsePolicy, Severity, SignalKind

_MIN_TOKEN = 32


class SignalSettings(BaseModel):
    """Per-mailbox baselines, compromise signals and the responses they trigger."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Watch the feeds' mail for signs of compromised mailboxes.")
    history_days: int = Field(default=28, ge=1, le=366, description="Days of sending history kept per mailbox.")
    spike_factor: float = Field(
        default=3.0, gt=1, description="A spike is this many times the mailbox's busiest hour in its history."
    )
    min_messages_per_hour: int = Field(
        default=30, ge=1, description="Messages per hour never counted as a spike, whatever the history."
    )
    min_recipients_per_hour: int = Field(
        default=100, ge=1, description="Recipients per hour never counted as a spike, whatever the history."
    )
    max_messages_per_hour: int = Field(
        default=2000, ge=1, description="Hard cap: more messages per hour from one mailbox is always a signal."
    )
    max_recipients_per_hour: int = Field(
        default=10000, ge=1, description="Hard cap: more recipients per hour from one mailbox is always a signal."
    )
    min_new_recipients: int = Field(
        default=20, ge=1, description="Never-seen recipients per hour needed before their share counts."
    )
    new_recipient_share: float = Field(
        default=0.8, gt=0, le=1, description="Share of never-seen recipients in the last hour that is a signal."
    )
    bounces_per_hour: int = Field(
        default=20, ge=1, description="Hard bounces per hour of one mailbox that are a signal."
    )
    exempt_mailboxes: list[str] = Field(
        default_factory=list,
        description="Mailboxes whose sending rate and recipients are not judged (other signals still apply).",
    )
    severities: dict[SignalKind, Severity] = Field(
        default_factory=dict, description="Severity per signal kind, overriding the defaults (docs/signals.md)."
    )
    notify_at: Severity = Field(default=Severity.MEDIUM, description="Lowest severity that notifies anyone.")
    contain_at: Severity = Field(
        default=Severity.HIGH, description="Lowest severity that contains the mailbox (its relayed mail is held)."
    )
    notify_user: bool = Field(default=True, description="Mail the user's alternate address about their mailbox.")
    notify_admins: bool = Field(
        default=True, description="Mail [notify] admin_emails and notify_emails, and call the [notify] webhook."
    )
    notify_emails: list[str] = Field(
        default_factory=list, description="More addresses told about signals (a reseller, a security team)."
    )
    primary_action: PrimaryAction = Field(
        default=PrimaryAction.RECOMMEND,
        description="When signals say the primary itself is compromised: off, recommend, or failover (COMPROMISED).",
    )
    primary_mailboxes: int = Field(
        default=3, ge=2, description="Mailboxes with high signals within primary_window that implicate the primary."
    )
    primary_window: float = Field(default=3600.0, gt=0, description="Seconds over which primary_mailboxes count.")
    webhook_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for external alerts (POST /api/v1/signals), at least 32 characters; "
        "the admin token is accepted too.",
    )
    imap_checks: bool = Field(
        default=False,
        description="Check sampled messages on the primary over IMAP (Sent Items, Inbox) as the [replay] master user.",
    )
    imap_sample_rate: float = Field(default=0.05, ge=0, le=1, description="Share of messages checked over IMAP.")
    sent_check_delay: float = Field(
        default=60.0, gt=0, description="Seconds after relaying before the Sent Items check."
    )
    inbox_check_delay: float = Field(
        default=20.0, gt=0, description="Seconds after delivery to the primary before the Inbox check."
    )
    sent_folders: list[str] = Field(
        default_factory=lambda: ["Sent Items"], description="Folders on the primary where sent mail is kept."
    )
    imap_timeout: float = Field(default=20.0, gt=0, description="Seconds one IMAP check may take.")
    imap_concurrency: int = Field(default=2, ge=1, le=16, description="IMAP checks running at once.")

    @field_validator("exempt_mailboxes", "notify_emails")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [normalize_address(item) for item in value]

    @field_validator("webhook_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _MIN_TOKEN:
            raise ValueError(f"the webhook token must have at least {_MIN_TOKEN} characters")
        return value

    def rate_policy(self) -> RatePolicy:
        """The thresholds of continuity.core.baseline."""
        return RatePolicy(
            spike_factor=self.spike_factor,
            min_messages=self.min_messages_per_hour,
            min_recipients=self.min_recipients_per_hour,
            max_messages=self.max_messages_per_hour,
            max_recipients=self.max_recipients_per_hour,
            min_new_recipients=self.min_new_recipients,
            new_recipient_share=self.new_recipient_share,
            bounces_per_hour=self.bounces_per_hour,
        )

    def response_policy(self) -> ResponsePolicy:
        """The response policy of continuity.core.signals."""
        return ResponsePolicy(
            notify_at=self.notify_at,
            contain_at=self.contain_at,
            notify_user=self.notify_user,
            notify_admins=self.notify_admins,
            primary_action=self.primary_action,
            severities=dict(self.severities),
        )
