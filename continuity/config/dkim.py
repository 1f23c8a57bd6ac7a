"""Settings of DKIM signing for mail the appliance sends (the ``[dkim]`` table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from continuity.core.addresses import normalize_domain


class DkimKey(BaseModel):
    """One signing key: the domain it signs for, its selector and its PEM private key file."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(description="Domain of the From address this key signs (d= tag).")
    selector: str = Field(description="DNS selector of the public key (s= tag): SELECTOR._domainkey.DOMAIN.")
    private_key: Path = Field(description="PEM file of the RSA or Ed25519 private key.")

    @field_validator("domain")
    @classmethod
    def _domain_normalized(cls, value: str) -> str:
        return normalize_domain(value)


class DkimSettings(BaseModel):
    """Keys used to DKIM-sign outbound mail; a sender domain without a key is sent unsigned."""

    model_config = ConfigDict(extra="forbid")

    keys: list[DkimKey] = Field(
        default_factory=list,
        description="Signing keys, as [[dkim.keys]] tables with domain, selector and private_key.",
    )

    def key_for(self, domain: str) -> DkimKey | None:
        """The key for domain, or None."""
        return next((key for key in self.keys if key.domain == domain), None)
