"""rspamd stage: rspamd's HTTP protocol (``POST /checkv2``), used only when ``[filters.rspamd] url`` is set.

rspamd's action becomes a finding code (``rspamd.reject``, ``rspamd.add_header``,
``rspamd.soft_reject``...) scored with rspamd's own score, with its strongest symbols as
evidence; the verdict policy decides what each means (by default ``rspamd.reject``
rejects). "no action" and "greylist" add no finding.
"""

from __future__ import annotations

import httpx

from continuity.core.message_view import MessageView
from continuity.core.pipeline import Envelope, Finding, StageReport


class RspamdError(Exception):
    """rspamd did not give a usable answer."""


class RspamdStage:
    """Spam and phishing scoring by rspamd."""

    name = "rspamd"

    def __init__(self, url: str, password: str = "", timeout: float = 10.0) -> None:
        self._url = url.rstrip("/") + "/checkv2"
        self._password = password
        self._client = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        headers = {"From": envelope.sender or "<>", "Helo": envelope.client_helo or "unknown"}
        if envelope.client_address:
            headers["IP"] = envelope.client_address
        if self._password:
            headers["Password"] = self._password
        if envelope.authenticated_user:
            headers["User"] = envelope.authenticated_user
        request_headers = list(headers.items()) + [("Rcpt", rcpt) for rcpt in envelope.recipients]
        try:
            response = await self._client.post(self._url, content=message.raw, headers=request_headers)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RspamdError(f"rspamd at {self._url} failed: {exc}") from exc
        action = str(data.get("action", "no action"))
        score = float(data.get("score", 0.0))
        if action in ("no action", "greylist"):
            return StageReport(headers=(("X-Continuity-Rspamd", f"{action}; score={score:.2f}"),))
        symbols = data.get("symbols") or {}
        strongest = sorted(symbols.values(), key=lambda symbol: -abs(float(symbol.get("score", 0.0))))[:5]
        evidence = tuple(f"{symbol.get('name')}={float(symbol.get('score', 0.0)):.1f}" for symbol in strongest)
        code = "rspamd." + action.replace(" ", "_")
        return StageReport(
            findings=(Finding(code, max(score, 0.0), f"looks like spam or phishing to rspamd ({action})", evidence),),
            headers=(("X-Continuity-Rspamd", f"{action}; score={score:.2f}"),),
        )
