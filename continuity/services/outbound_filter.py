"""The security filter pipeline applied to mail users send from the webmail (direction OUTBOUND).

Mail the pipeline would reject, quarantine or cannot judge right now (a fail-closed stage
failed) is not queued; the user is told why in one sentence. Tagged and accepted mail goes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from continuity.core.pipeline import Direction, Envelope, Verdict
from continuity.services.filtering import Judge
from continuity.services.outbound import OutboundRefused

log = logging.getLogger("continuity.outbound")

_REFUSED = frozenset({Verdict.REJECT, Verdict.QUARANTINE})


class PipelineOutboundFilter:
    """OutboundFilter on the appliance's filter workers (or a FilterPipeline in tests and the CLI)."""

    def __init__(self, pipeline: Judge) -> None:
        self._pipeline = pipeline

    async def check(
        self, mailbox: str, sender: str, recipients: Sequence[str], content: bytes
    ) -> OutboundRefused | None:
        """None to send, or why not."""
        envelope = Envelope(
            sender=sender,
            recipients=tuple(recipients),
            direction=Direction.OUTBOUND,
            client_helo="webmail",
            authenticated_user=mailbox,
        )
        result = await self._pipeline.evaluate(envelope, content)
        log.info(
            "outbound from <%s>: %s (score %g, fired %s)",
            sender,
            result.verdict.value,
            result.decision.score,
            ",".join(result.fired) or "none",
        )
        if result.verdict in _REFUSED:
            return OutboundRefused(f"the security filter stopped it ({result.public_reason}).")
        if result.verdict is Verdict.TEMPFAIL:
            return OutboundRefused("the security check could not finish; try again in a few minutes.")
        return None
