"""A provider's secret from its settings: the SecretStr itself or a file holding it, and which setting it came from."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from continuity.errors import ConfigError


def secret_from(table: str, key: str, value: SecretStr | None, file: Path | None, what: str) -> tuple[str, str]:
    """The secret and the setting it came from (``dns.<table>.<key>`` or ``.credential_file``).

    ConfigError names the setting when the file cannot be read or is empty, or neither is set.
    """
    if file is not None:
        setting = f"dns.{table}.credential_file"
        try:
            secret = file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{setting}: cannot read {file}: {exc.strerror}.") from exc
        if not secret:
            raise ConfigError(f"{setting}: {file} is empty.")
        return secret, setting
    if value is None or not value.get_secret_value():
        raise ConfigError(f"dns.{table}: set {key} or credential_file ({what}) to use provider '{table}'.")
    return value.get_secret_value(), f"dns.{table}.{key}"
