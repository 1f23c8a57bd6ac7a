"""Settings: sources and precedence, error sentences, redaction and the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from continuity.config.loader import load_settings
from continuity.config.reference import render_reference
from continuity.config.show import render_effective
from continuity.config.types import HostPort, parse_host_port
from continuity.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_run_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("CONTINUITY_")]:
        monkeypatch.delenv(key)
    settings = load_settings(None)
    assert settings.smtp.listen_address == HostPort("127.0.0.1", 2525)
    assert settings.web.listen_address == HostPort("127.0.0.1", 8080)
    assert settings.database_path == Path("data/continuity.db")
    assert not settings.primary.configured


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('domains = ["Example.COM"]\n[smtp]\nlisten = "127.0.0.1:25"\nmax_errors = 7\n')
    monkeypatch.setenv("CONTINUITY_CONFIG", str(config))
    monkeypatch.setenv("CONTINUITY_SMTP__LISTEN", "[::1]:2526")
    settings = load_settings(None)
    assert settings.domains == ["example.com"]
    assert settings.smtp.max_errors == 7
    assert settings.smtp.listen_address == HostPort("::1", 2526)


def test_every_problem_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[smtp]\nlisten = "x"\nmax_errors = 0\n[nonsense]\na = 1\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert any("smtp.listen" in line for line in lines)
    assert any("smtp.max_errors" in line for line in lines)
    assert any("unknown key 'nonsense'" in line for line in lines)


@pytest.mark.parametrize("text", ["127.0.0.1", "[::1]", "host:99999", "::1:25", "[nothex]:25"])
def test_bad_host_port(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_show_redacts_secrets_and_omits_unset() -> None:
    class Section(BaseModel):
        token: SecretStr = SecretStr("very-secret")
        unset: str | None = None
        name: str = "visible"

    text = render_effective(Section())
    assert "very-secret" not in text
    assert 'token = "**********"' in text
    assert "unset" not in text and 'name = "visible"' in text


def test_reference_document_is_current() -> None:
    checked_in = (ROOT / "docs" / "configuration.md").read_text()
    assert checked_in == render_reference(), "run: continuity config reference > docs/configuration.md"


def test_reference_defaults_are_toml() -> None:
    # A default in the reference can be copied into the configuration file as it is.
    import tomllib

    for line in render_reference().splitlines():
        if not line.startswith("| `"):
            continue
        key, _type, default = (cell.strip() for cell in line.split("|")[1:4])
        value = default.strip("`")
        if value == "not set" or key == "`smtp.hostname`":
            continue
        assert "<" not in value, f"{key}: {value}"
        tomllib.loads(f"x = {value}")
    weights = next(line for line in render_reference().splitlines() if "`monitor.weights`" in line)
    assert "`{ smtp = 1.0, imap = 0.5, https = 0.25, canary = 0.5 }`" in weights


@pytest.mark.parametrize("tls", ["opportunistic", "none"])
def test_outbound_auth_needs_required_and_verified_tls(tmp_path: Path, tls: str) -> None:
    config = tmp_path / "c.toml"
    smart_host = '[outbound]\nsmart_host = "smtp.example.net:587"\nusername = "appliance"\npassword = "pw"\n'
    config.write_text(smart_host + ("" if tls == "opportunistic" else f'tls = "{tls}"\n'))
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert 'username/password need tls = "required"' in str(error.value) and f'not "{tls}"' in str(error.value)
    config.write_text(smart_host + 'tls = "required"\n')
    assert load_settings(config).outbound.username == "appliance"


def test_relay_listener_password_length_and_session_default(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    feeds = '[feeds]\nrelay_listen = "127.0.0.1:2526"\nrelay_username = "exchange"\n'
    config.write_text(feeds + 'relay_password = "s3cret-relay"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert "feeds: relay_password must be at least 16 characters" in str(error.value)
    config.write_text(feeds + 'relay_password = "a-long-enough-relay-secret"\n')
    feeds_settings = load_settings(config).feeds
    assert feeds_settings.relay_max_sessions == 20 and feeds_settings.relay_auth_max_failures == 5
