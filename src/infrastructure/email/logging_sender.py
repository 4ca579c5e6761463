"""An email sender for development and tests: it logs each message and keeps it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SentEmail:
    to: str
    subject: str
    body: str


class LoggingEmailSender:
    """Delivers nothing: logs the recipient and subject (never the body, which may hold
    secrets such as reset codes) and appends the message to `sent`."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append(SentEmail(to=to, subject=subject, body=body))
        logger.info("email to %s: %s", to, subject, extra={"action": "email_sent"})

    def sent_to(self, to: str) -> list[SentEmail]:
        """The messages sent to this address, in order."""
        return [message for message in self.sent if message.to == to]
