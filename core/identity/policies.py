"""Policies (ZITADEL's "settings"): instance defaults with org overrides.

Only the password complexity policy's defaults and its check are here yet;
the stored policies (events, read models, org overrides) come next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from donjon.core.settings import Settings




@dataclass(frozen=True, slots=True)
class PasswordComplexity:
    min_length: int = 8
    has_uppercase: bool = True
    has_lowercase: bool = True
    has_number: bool = True
    has_symbol: bool = True


def default_password_complexity(settings: Settings) -> PasswordComplexity:
    return PasswordComplexity()


def password_problems(policy: PasswordComplexity, password: str) -> list[str]:
    """What `password` lacks under `policy`, as phrases ("has at least 8 characters")."""
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"has at least {policy.min_length} characters")
    if policy.has_uppercase and not any(c.isupper() for c in password):
        problems.append("has an upper-case letter")
    if policy.has_lowercase and not any(c.islower() for c in password):
        problems.append("has a lower-case letter")
    if policy.has_number and not any(c.isdigit() for c in password):
        problems.append("has a digit")
    if policy.has_symbol and not any(not c.isalnum() for c in password):
        problems.append("has a symbol")
    return problems
