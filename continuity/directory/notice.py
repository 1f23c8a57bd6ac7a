"""What the admins are told when the removal guard stops a sync (an announcement for the Notifier)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuardNotice:
    """A sync refused by the guard: how many mailboxes it would have disabled, and a sample of them."""

    appliance: str
    source: str
    removals: int
    limit: int
    sample: tuple[str, ...]

    @property
    def subject(self) -> str:
        """The mail subject."""
        return f"[continuity {self.appliance}] directory sync refused: {self.removals} mailboxes would be disabled"

    def payload(self) -> dict[str, object]:
        """The webhook body."""
        return {
            "appliance": self.appliance,
            "type": "directory.sync.refused",
            "source": self.source,
            "removals": self.removals,
            "limit": self.limit,
            "sample": list(self.sample),
        }

    def text(self) -> str:
        """The mail body."""
        lines = [
            f"The continuity appliance {self.appliance} stopped a sync from the directory ({self.source}):",
            f"it would have disabled {self.removals} standby mailboxes, more than the limit of {self.limit}",
            "([directory] max_removals). Nothing was changed.",
            "",
            "Mailboxes it would disable (first ones):",
            *[f"  {address}" for address in self.sample],
            "",
            "If the directory is right, run 'continuity directory sync --allow-removals' on the appliance.",
            "If it is not (a mistaken filter, or someone wiping accounts), fix the directory first.",
        ]
        return "\n".join(lines) + "\n"
