"""Failures of sign-in and access. The backend maps them to its ErrorCode."""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a message for translation (`make messages` extracts it; the backend translates
    `AccessError.message` when it renders the error). `auth` imports nothing from `backend`."""
    return message


class AccessError(Exception):
    """Base class; `message` is safe to show a client."""

    message = N_("access denied")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class Unauthenticated(AccessError):
    """No usable token. The message never says which check failed (that would help an attacker)."""

    message = N_("a valid bearer token is required")


class Forbidden(AccessError):
    """Signed in, but the role or scope does not allow the operation."""

    message = N_("not allowed for your role")
