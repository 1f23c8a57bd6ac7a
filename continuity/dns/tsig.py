"""The TSIG key that signs the MX updates and the reads that verify them: from the settings or a BIND key file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.tsig

from continuity.config.dns import DnsSettings
from continuity.errors import ConfigError

_KEY_FILE = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{[^}]*?algorithm\s+"?(?P<algorithm>[\w-]+)"?\s*;[^}]*?secret\s+"(?P<secret>[^"]+)"',
    re.S,
)


@dataclass(frozen=True, slots=True)
class TsigCredentials:
    """A TSIG key ready for dnspython."""

    name: str
    algorithm: str
    secret: str

    @classmethod
    def from_settings(cls, settings: DnsSettings) -> TsigCredentials:
        """From [dns] tsig_key_file, or tsig_key_name + tsig_secret; ConfigError when neither is usable."""
        if settings.tsig_key_file is not None:
            return cls.from_key_file(settings.tsig_key_file)
        if not settings.tsig_key_name or settings.tsig_secret is None:
            raise ConfigError("dns: set tsig_key_file, or tsig_key_name and tsig_secret, to sign updates.")
        return cls(settings.tsig_key_name, settings.tsig_algorithm.value, settings.tsig_secret.get_secret_value())

    @classmethod
    def from_key_file(cls, path: Path) -> TsigCredentials:
        """Read a BIND key file as written by tsig-keygen."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"dns.tsig_key_file: cannot read {path}: {exc.strerror}.") from exc
        match = _KEY_FILE.search(text)
        if match is None:
            raise ConfigError(f'dns.tsig_key_file: {path} is not a BIND key file (key "name" {{ ... }};).')
        return cls(match["name"], match["algorithm"], match["secret"])

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        """The keyring dnspython signs with."""
        name = dns.name.from_text(self.name)
        return {name: dns.tsig.Key(name, self.secret, self.algorithm)}
