"""[directory] settings: off by default, plain LDAP only when allowed, one Entra credential."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from continuity.config.directory import ActiveDirectorySettings, DirectorySettings, EntraSettings, LdapSecurity
from continuity.directory.core.records import SourceKind


def test_the_sync_is_off_by_default() -> None:
    settings = DirectorySettings()
    assert settings.source is SourceKind.NONE and settings.interval == 600.0 and settings.max_removals is None


def test_plain_ldap_needs_allow_plain() -> None:
    with pytest.raises(ValidationError, match="sends the password in clear; set allow_plain = true"):
        ActiveDirectorySettings(url="ldap://dc", security=LdapSecurity.PLAIN)
    assert ActiveDirectorySettings(url="ldap://dc", security=LdapSecurity.PLAIN, allow_plain=True).allow_plain


def test_a_source_needs_its_connection() -> None:
    with pytest.raises(ValidationError, match=r"source = ad needs ad.url and ad.base_dn"):
        DirectorySettings(source=SourceKind.AD)
    with pytest.raises(ValidationError, match=r"source = entra needs entra.tenant_id and entra.client_id"):
        DirectorySettings(source=SourceKind.ENTRA)


def test_one_entra_credential_only() -> None:
    with pytest.raises(ValidationError, match="set one of client_secret, credential_file or certificate_file"):
        EntraSettings(client_secret="x", certificate_file="/etc/app.pem")  # type: ignore[arg-type]
