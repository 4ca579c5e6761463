"""Users, their password resets, and the emails sent to them in the background."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.clock import Clock, require_aware
from domain.errors import Conflict, InvalidValue, NotFound

PASSWORD_RESET_LIFETIME = dt.timedelta(hours=24)
"""How long a password reset token can be used."""


class UserNotFound(NotFound):
    type = "user-not-found"
    kind = "user"


class PasswordResetNotFound(NotFound):
    type = "password-reset-not-found"
    kind = "password reset"


class EmailAlreadyRegistered(Conflict, ValueError):
    """Another user already registered with this email address."""

    type = "email-already-registered"

    def __init__(self, email: str) -> None:
        super().__init__(f"{email} is already registered")
        self.email = email


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: UUID
    email: str
    name: str
    registered_at: dt.datetime
    welcomed_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if "@" not in self.email:
            raise InvalidValue(f"not an email address: {self.email!r}")
        require_aware("registered_at", self.registered_at)
        require_aware("welcomed_at", self.welcomed_at)

    def welcomed(self, at: dt.datetime) -> User:
        return dataclasses.replace(self, welcomed_at=at)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordReset:
    """A request to reset a password: a secret token valid until `expires_at`, used once."""

    id: UUID
    user_id: UUID
    token: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        require_aware("requested_at", self.requested_at)
        require_aware("expires_at", self.expires_at)
        require_aware("used_at", self.used_at)

    @classmethod
    def issue(cls, *, reset_id: UUID, user_id: UUID, token: str, now: dt.datetime) -> PasswordReset:
        return cls(
            id=reset_id,
            user_id=user_id,
            token=token,
            requested_at=now,
            expires_at=now + PASSWORD_RESET_LIFETIME,
        )

    def is_pending(self, now: dt.datetime) -> bool:
        """Not used yet and not expired."""
        return self.used_at is None and now < self.expires_at

    def used(self, at: dt.datetime) -> PasswordReset:
        return dataclasses.replace(self, used_at=at)


class UserRepository(Protocol):
    """The users of the service."""

    async def add(self, user: User) -> None:
        """Store a new user, or replace the stored one with the same id."""

    async def get(self, user_id: UUID) -> User | None:
        """The user with this id, or None."""

    async def get_by_email(self, email: str) -> User | None:
        """The user registered with this email address (compared case-insensitively), or None."""

    async def count_registered_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """How many users registered in `[start, end)`."""


class PasswordResetRepository(Protocol):
    """Password reset requests."""

    async def add(self, reset: PasswordReset) -> None:
        """Store a new reset, or replace the stored one with the same id."""

    async def get(self, reset_id: UUID) -> PasswordReset | None:
        """The reset with this id, or None."""


class EmailSender(Protocol):
    """Delivers email messages."""

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send one plain-text message; raises on failure so that the job is retried."""


class EmailJobs:
    """Emails to users. Each one is idempotent where a repeat would bother the user."""

    def __init__(
        self,
        users: UserRepository,
        resets: PasswordResetRepository,
        email: EmailSender,
        clock: Clock,
    ) -> None:
        self._users = users
        self._resets = resets
        self._email = email
        self._clock = clock

    async def send_welcome(self, user_id: UUID) -> bool:
        """Welcome a new user once; returns False when they were already welcomed.

        Raises:
            UserNotFound: no user has this id.
        """
        user = await self._user(user_id)
        if user.welcomed_at is not None:
            return False
        await self._email.send(
            user.email, "Welcome!", f"Hello {user.name}, welcome aboard. We are glad you joined."
        )
        await self._users.add(user.welcomed(self._clock.now()))
        return True

    async def send_password_reset(self, user_id: UUID, reset_id: UUID) -> None:
        """Email the reset token to the user.

        Raises:
            UserNotFound, PasswordResetNotFound: the user or the reset does not exist.
        """
        user = await self._user(user_id)
        reset = await self._reset(reset_id)
        await self._email.send(
            user.email,
            "Reset your password",
            f"Hello {user.name}, use this code to reset your password: {reset.token}\n"
            f"It expires at {reset.expires_at:%Y-%m-%d %H:%M} UTC.",
        )

    async def remind_password_reset(self, reset_id: UUID) -> bool:
        """Remind the user of a reset still pending; returns False (and sends nothing) when it
        was used or has expired.

        Raises:
            PasswordResetNotFound, UserNotFound: the reset or its user does not exist.
        """
        reset = await self._reset(reset_id)
        if not reset.is_pending(self._clock.now()):
            return False
        user = await self._user(reset.user_id)
        await self._email.send(
            user.email,
            "Your password reset is waiting",
            f"Hello {user.name}, you asked to reset your password but have not done it yet. "
            f"Your code: {reset.token}",
        )
        return True

    async def _user(self, user_id: UUID) -> User:
        user = await self._users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def _reset(self, reset_id: UUID) -> PasswordReset:
        reset = await self._resets.get(reset_id)
        if reset is None:
            raise PasswordResetNotFound(reset_id)
        return reset
