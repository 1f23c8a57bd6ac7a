"""scripts/demo tells a new admin how to sign in to the webmail, with a password it really set."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from continuity.config.settings import Settings
from continuity.passwords import check_password_policy

DEMO = Path(__file__).parents[2] / "scripts" / "demo"


def test_the_demo_prints_the_webmail_url_address_and_password() -> None:
    script = DEMO.read_text()
    password = re.search(r'^password="([^"]+)"$', script, re.MULTILINE)
    assert password, "scripts/demo sets the demo password in one variable"
    check_password_policy(password.group(1))
    assert re.search(r'printf \'%s\\n\' "\$password" \| "\$\{continuity\[@\]\}" mailbox add alice@example.com', script)
    printed = script[script.index("cat <<TXT") : script.index("\nTXT\n")]
    assert "http://127.0.0.1:8080/login" in printed
    assert "alice@example.com" in printed and "$password" in printed


def test_the_demo_configuration_lets_a_browser_sign_in_over_plain_http(tmp_path: Path) -> None:
    script = DEMO.read_text()
    toml = script[script.index("<<TOML\n") + len("<<TOML\n") : script.index("\nTOML\n")]
    data = tomllib.loads(toml.replace("$root", str(tmp_path)))
    settings = Settings.model_validate(data)
    assert settings.web.listen == "127.0.0.1:8080" and settings.webmail.cookie_secure is False
