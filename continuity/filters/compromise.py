"""Compromised-mailbox stage: outbound mail that a stolen mailbox, not its owner, would send.

Runs on OUTBOUND mail only (the primary's mail through the relay feed, and webmail):

- a reply into a known conversation that does not fit it (the reply-chain hijack signs of
  continuity.filters.hijack: a link domain the thread never used, a risky attachment, a
  changed sending fingerprint, a sender who was not part of it, dropped participants),
  sent from our own server: several signs together are a hijacked reply;
- a request to pay to bank details the organisation itself never used before (change-of-bank
  wording with an IBAN or account number), sent from our own mailbox.

The organisation's own accounts are learned from the outbound mail the pipeline lets through.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Protocol

from continuity.core.filter_records import AccountObservation
from continuity.core.message_view import MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport
from continuity.filters.bank_details import change_wording, find_account_numbers, find_ibans
from continuity.filters.domains import registrable
from continuity.filters.hijack import ThreadMemory, hijack_findings

# Summed hijack scores from which an outbound reply counts as hijacked (e.g. a new link domain
# and a risky attachment, or a new link domain from a changed fingerprint).
HIJACK_SCORE = 7.0
_LONG_TEXT = 20_000


class OwnAccounts(Protocol):
    """What the stage needs from the account memory."""

    async def accounts(self, correspondent: str) -> frozenset[str]:
        """Accounts this correspondent (here: our own organisation) used before."""
        ...

    def remember_accounts(self, observation: AccountObservation) -> None:
        """Buffer accounts an organisation used."""
        ...


def _bank_signs(message: MessageView) -> tuple[str | None, tuple[str, ...]]:
    text = f"{message.subject}\n{message.text}"
    return change_wording(text), (*find_ibans(text), *find_account_numbers(text))


class CompromiseStage:
    """Outbound hijacked replies and bank-detail changes from our own mailboxes."""

    name = "compromise"

    def __init__(
        self,
        threads: ThreadMemory,
        accounts: OwnAccounts,
        internal_domains: frozenset[str],
        executor: Executor | None = None,
    ) -> None:
        self._threads = threads
        self._accounts = accounts
        self._internal = internal_domains
        self._executor = executor

    async def _signs(self, message: MessageView) -> tuple[str | None, tuple[str, ...]]:
        if len(message.text) > _LONG_TEXT:
            return await asyncio.get_running_loop().run_in_executor(self._executor, _bank_signs, message)
        return _bank_signs(message)

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        if envelope.direction is not Direction.OUTBOUND or message.sender is None:
            return StageReport()
        found: list[Finding] = []
        if message.is_reply:
            history = await self._threads.thread(message.thread_ids)
            signs = hijack_findings(envelope, message, history, self._internal)
            score = sum(sign.score for sign in signs)
            evidence = tuple(f"{sign.message}: {', '.join(sign.evidence)}" for sign in signs)
            if score >= HIJACK_SCORE:
                found.append(
                    Finding(
                        "compromise.hijacked_reply",
                        8.0,
                        "a reply from our own server into an earlier conversation looks like an attacker's",
                        evidence,
                    )
                )
            elif signs:
                found.append(
                    Finding(
                        "compromise.unusual_reply",
                        min(score, 3.0),
                        "a reply sent from our own server does not fit its conversation",
                        evidence,
                    )
                )
        if message.text or message.subject:
            change, accounts = await self._signs(message)
            if change and accounts:
                own = registrable(message.sender.domain)
                known = await self._accounts.accounts(own)
                new = tuple(account for account in accounts if account not in known)
                if new:
                    found.append(
                        Finding(
                            "compromise.bank_change",
                            8.0,
                            "asks, from our own mailbox, to pay to bank details we never used",
                            (change, *new[:3], f"known accounts of {own}: {len(known)}"),
                        )
                    )
        return StageReport(findings=tuple(found))

    def learn(self, envelope: Envelope, message: MessageView) -> None:
        """Remember the accounts our own outbound mail names (once the pipeline let it through)."""
        if envelope.direction is not Direction.OUTBOUND or message.sender is None:
            return
        text = f"{message.subject}\n{message.text}"
        accounts = frozenset((*find_ibans(text), *find_account_numbers(text)))
        if accounts:
            self._accounts.remember_accounts(
                AccountObservation(registrable(message.sender.domain), accounts, time.time())
            )
