"""Errors the core raises; protocol edges map them to their own formats."""

from __future__ import annotations


class DonjonError(Exception):
    """Base of every error donjon raises on purpose."""


class ConfigError(DonjonError):
    """A configuration key is unknown or its value has the wrong type."""


class MasterKeyError(ConfigError):
    """The master key is missing, has the wrong length or does not match the store."""


class UnknownEventTypeError(DonjonError):
    """An event whose type no plugin registered was pushed or read."""


class ConcurrencyError(DonjonError):
    """Another writer appended to the aggregate since the command read it."""


class UniqueConstraintError(DonjonError):
    """A unique value (user name, domain, client id) is already taken."""

    def __init__(self, message: str, *, unique_type: str, unique_field: str) -> None:
        super().__init__(message)
        self.unique_type = unique_type
        self.unique_field = unique_field


class SetupError(DonjonError):
    """A setup step failed, or setup has not completed."""


class PluginError(DonjonError):
    """A plugin could not be loaded, enabled or disabled."""


class TokenRefused(DonjonError):
    """A `customize_token` implementation refuses to let the token (or userinfo) be issued."""
