"""``continuity webmail ...`` beside a running appliance: sessions end, the second factor goes, links work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import tomli_w

from tests.support.appliance import TEST_DOMAINS, clean_env
from tests.support.webmail import WebmailClient, webmail_appliance


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


async def test_operator_levers_on_webmail_accounts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "continuity.toml"
    public = {"public_url": "https://standby.example.com"}
    config.write_text(tomli_w.dumps({"data_dir": str(data), "domains": TEST_DOMAINS, "webmail": public}))
    async with webmail_appliance(data, webmail=public) as running:
        web = WebmailClient(running)
        try:
            await web.login()
            assert (await web.get("/mail")).status_code == 200
            await running.store.webmail_auth.start_totp("alice@example.com", "JBSWY3DPEHPK3PXP")
            await running.store.webmail_auth.use_totp_step("alice@example.com", 1, enable=True)

            ended = await asyncio.to_thread(
                _cli, config, "webmail", "sign-out", "alice@example.com", "--reason", "compromise"
            )
            assert ended.returncode == 0 and ended.stdout.strip() == "ended 1 webmail session of alice@example.com"
            assert (await web.get("/mail")).headers["location"] == "/login"

            reset = await asyncio.to_thread(
                _cli, config, "webmail", "reset-totp", "alice@example.com", "--reason", "lost phone"
            )
            assert reset.returncode == 0 and "removed" in reset.stdout
            assert await running.store.webmail_auth.totp("alice@example.com") is None
            assert (await web.login()).headers["location"] == "/mail"  # no second step any more

            refused = await asyncio.to_thread(
                _cli, config, "webmail", "activation-link", "alice@example.com", "--reason", "x"
            )
            assert refused.returncode == 1 and "already has a password" in refused.stderr
            link = await asyncio.to_thread(
                _cli, config, "webmail", "activation-link", "bob@example.com", "--reason", "by phone"
            )
            assert link.returncode == 0 and link.stdout.startswith("https://standby.example.com/activate/")
            path = link.stdout.strip().removeprefix("https://standby.example.com")
            assert "bob@example.com" in (await web.get(path)).text
            missing = await asyncio.to_thread(
                _cli, config, "webmail", "sign-out", "nobody@example.com", "--reason", "x"
            )
            assert missing.returncode == 1 and "there is no mailbox nobody@example.com" in missing.stderr

            actions = [entry.record.action for entry in await running.store.audit.list()]
            assert [action for action in actions if action.startswith("webmail.")] == [
                "webmail.sign_out",
                "webmail.totp_reset",
                "webmail.activation_link",
            ]
        finally:
            await web.close()
