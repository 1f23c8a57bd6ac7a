"""External alerts: the appliance's own shape and Microsoft Graph security alerts."""

from __future__ import annotations

import pytest

from continuity.core.external_alerts import AlertScope, parse_alert
from continuity.core.signals import Severity
from continuity.errors import InvalidInputError


def test_the_native_shape() -> None:
    alert = parse_alert(
        {
            "mailbox": "Alice@Example.com",
            "title": "Impossible travel",
            "severity": "HIGH",
            "source": "siem",
            "evidence": {"ip": "203.0.113.9", "country": "XX"},
            "id": "case-17",
        }
    )
    assert alert.mailboxes == ("alice@example.com",) and alert.scope is AlertScope.MAILBOX
    assert alert.severity is Severity.HIGH and alert.source == "siem" and alert.reference == "case-17"
    assert alert.evidence == ("ip: 203.0.113.9", "country: XX")


def test_an_alert_about_the_primary_needs_no_mailbox() -> None:
    alert = parse_alert({"scope": "primary", "title": "Web shell on the Exchange server"})
    assert alert.scope is AlertScope.PRIMARY and alert.mailboxes == () and alert.severity is None


def test_a_graph_security_alert() -> None:
    alert = parse_alert(
        {
            "id": "da1",
            "title": "Suspicious inbox forwarding",
            "severity": "informational",
            "serviceSource": "microsoftDefenderForOffice365",
            "evidence": [
                {"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "bob@example.com"},
                {
                    "@odata.type": "#microsoft.graph.security.userEvidence",
                    "userAccount": {"userPrincipalName": "carol@example.net"},
                },
                {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "198.51.100.7"},
            ],
        }
    )
    assert alert.mailboxes == ("bob@example.com", "carol@example.net")
    assert alert.severity is Severity.LOW and alert.source == "microsoftDefenderForOffice365"
    assert any("198.51.100.7" in line for line in alert.evidence)


def test_a_graph_alert_about_the_primary_server() -> None:
    alert = parse_alert(
        {
            "title": "Exchange server exploited",
            "severity": "high",
            "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "EXCH01.corp"}],
        },
        primary_hosts=frozenset({"exch01"}),
    )
    assert alert.scope is AlertScope.PRIMARY


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "JSON object"),
        ({"title": "x"}, "'mailbox' is required"),
        ({"mailbox": "alice@example.com"}, "'title' is required"),
        ({"mailbox": "not an address", "title": "x"}, "not an address"),
        ({"mailbox": "alice@example.com", "title": "x", "severity": "apocalyptic"}, "severity"),
        ({"scope": "everything", "title": "x"}, "scope"),
        ({"title": "x", "evidence": [{"@odata.type": "#microsoft.graph.security.ipEvidence"}]}, "names no mailbox"),
    ],
)
def test_unusable_alerts_are_refused_with_a_reason(payload: object, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        parse_alert(payload)
