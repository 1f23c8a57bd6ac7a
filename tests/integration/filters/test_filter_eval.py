"""`continuity filter eval` on the project's labelled corpus and on public ham; `filter check` on one file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.appliance import ServeProcess
from tests.support.spamassassin import ham_corpus

CORPUS = Path(__file__).parents[2] / "data" / "corpus"


def _server(tmp_path: Path) -> ServeProcess:
    server = ServeProcess(tmp_path)
    server.cli("mailbox", "add", "alice@example.com", "--name", "Alice Example")
    server.cli("mailbox", "add", "bob@example.com", "--name", "Bob Example")
    return server


def test_labelled_corpus(tmp_path: Path) -> None:
    server = _server(tmp_path)
    result = json.loads(server.cli("filter", "eval", str(CORPUS), "--json").stdout)
    by_label: dict[str, list[str]] = {}
    for outcome in result["outcomes"]:
        by_label.setdefault(outcome["label"], []).append(outcome["verdict"])
    assert set(by_label) == {"ham", "bec", "hijack", "lookalike", "malware"}
    assert len(by_label["bec"]) >= 8 and len(by_label["hijack"]) >= 5
    assert result["precision"] == 1.0
    assert result["recall"] == 1.0
    assert all(verdict in ("accept", "tag") for verdict in by_label["ham"])
    table = server.cli("filter", "eval", str(CORPUS)).stdout
    assert "precision 1.000" in table and "bec (bad)" in table and "ham (good)" in table


def test_public_ham_false_positives(tmp_path: Path) -> None:
    corpus = ham_corpus(tmp_path / "sa")
    server = _server(tmp_path)
    result = json.loads(server.cli("filter", "eval", str(corpus), "--json").stdout)
    assert len(result["outcomes"]) == 2750
    assert result["false_positive_rate"] <= 0.005  # quarantined or rejected
    tagged = sum(1 for outcome in result["outcomes"] if outcome["verdict"] != "accept")
    assert tagged / 2750 <= 0.02


def test_filter_check_prints_every_stage(tmp_path: Path) -> None:
    server = _server(tmp_path)
    path = CORPUS / "bec" / "01-en-vendor-spoof-freemail-reply.eml"
    data = json.loads(server.cli("filter", "check", str(path), "--json").stdout)
    stages = [stage["stage"] for stage in data["stages"]]
    assert stages[:4] == ["attachments", "urls", "hijack", "bec"]  # auth is off in tests; clamd/rspamd not set
    assert data["verdict"] == "quarantine"
    bec = next(stage for stage in data["stages"] if stage["stage"] == "bec")
    assert "bec.bank_change" in {finding["code"] for finding in bec["findings"]}
    text = server.cli("filter", "check", str(path)).stdout
    assert "Verdict: quarantine" in text and "X-Continuity-Verdict: quarantine" in text
    assert "185.220.101.4" in text  # the client address comes from the Received field
