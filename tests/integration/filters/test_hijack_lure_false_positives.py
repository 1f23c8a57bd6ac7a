"""The lure and payment-pressure findings on good mail: the corpus's ham and the SpamAssassin public ham.

``continuity filter eval --json`` reports per finding code how often it fired on good
mail; the findings added for hijack-shaped replies without history and for payment
pressure from unknown senders fire on no more than 0.5% of it, and on every hostile
corpus case of their kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.appliance import ServeProcess
from tests.support.spamassassin import ham_corpus

CORPUS = Path(__file__).parents[2] / "data" / "corpus"
NEW_CODES = (
    "hijack.archive_link",
    "hijack.download_link",
    "hijack.attachment_password",
    "bec_wording.payment_pressure",
)


def _eval(tmp_path: Path, corpus: Path) -> dict[str, Any]:
    server = ServeProcess(tmp_path)
    server.cli("mailbox", "add", "alice@example.com", "--name", "Alice Example")
    server.cli("mailbox", "add", "bob@example.com", "--name", "Bob Example")
    result: dict[str, Any] = json.loads(server.cli("filter", "eval", str(corpus), "--json").stdout)
    return result


def _fired_on_good(result: dict[str, Any]) -> int:
    good = {o["file"] for o in result["outcomes"] if o["label"] == "ham" and set(o["codes"]) & set(NEW_CODES)}
    return len(good)


def test_new_findings_on_the_corpus(tmp_path: Path) -> None:
    result = _eval(tmp_path, CORPUS)
    assert _fired_on_good(result) == 0
    lures = [o for o in result["outcomes"] if o["label"] == "hijack" and o["file"][:2] in ("06", "07", "08", "09")]
    assert len(lures) == 4
    for outcome in lures:
        assert outcome["verdict"] == "quarantine"
        assert "hijack.attachment_password" in outcome["codes"]
        assert {"hijack.archive_link", "hijack.download_link"} & set(outcome["codes"])
    pressure = [o for o in result["outcomes"] if o["file"].startswith(("09-en-freemail", "10-nl-new-domain"))]
    assert [o["verdict"] for o in pressure] == ["quarantine", "quarantine"]
    assert all("bec_wording.payment_pressure" in o["codes"] for o in pressure)
    findings = result["findings"]
    assert findings["hijack.archive_link"]["fired_good"] == 0 and findings["hijack.archive_link"]["fired_bad"] >= 3
    assert result["stages"]["bec_wording"]["precision"] == 1.0


def test_new_findings_on_public_ham(tmp_path: Path) -> None:
    result = _eval(tmp_path, ham_corpus(tmp_path / "sa"))
    assert len(result["outcomes"]) == 2750
    assert _fired_on_good(result) / 2750 <= 0.005
