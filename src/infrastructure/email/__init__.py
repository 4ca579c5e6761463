"""Adapters of the domain's `EmailSender` port."""

from infrastructure.email.logging_sender import LoggingEmailSender, SentEmail

__all__ = ["LoggingEmailSender", "SentEmail"]
