"""The `Plugins.login` configuration section: the SMTP server the hosted login mails through.

`SMTPConfiguration` has ZITADEL's keys. `Host` is `host:port` (port 25 when
left out); `TLS` true means TLS: implicit on port 465, STARTTLS on any other
port; false sends in the clear (a local relay). An empty `Host` leaves email
off: the password reset page then says so instead of sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from donjon.core.settings import InvalidSetting

#: The plugin's name: its key under `Plugins` and in BUILTIN_PLUGINS.
NAME = "login"


@dataclass
class SMTPConfiguration:
    #: `host:port` of the SMTP server; empty: no email.
    Host: str = ""
    #: User name for SMTP AUTH; empty: no authentication.
    User: str = ""
    Password: str = ""
    #: TLS (implicit on port 465, STARTTLS otherwise); false: plain SMTP.
    TLS: bool = True
    #: The sender address, and the name shown with it.
    From: str = ""
    FromName: str = "donjon"
    #: How long to wait for the SMTP server.
    Timeout: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if self.Host and not self.From:
            raise InvalidSetting("From", "a sender address", "(empty)")
        if self.Host:
            _host, _, port = self.Host.rpartition(":") if ":" in self.Host else (self.Host, "", "")
            if port and not port.isdigit():
                raise InvalidSetting("Host", "host:port", self.Host)

    @property
    def enabled(self) -> bool:
        return bool(self.Host)

    def address(self) -> tuple[str, int]:
        host, sep, port = self.Host.rpartition(":")
        if not sep:
            return self.Host, 25
        return host, int(port)


@dataclass
class LoginSettings:
    SMTPConfiguration: SMTPConfiguration = field(default_factory=SMTPConfiguration)
    #: How long the browser keeps the session cookie.
    CookieMaxAge: timedelta = timedelta(days=30)
    #: At most this many sessions are remembered per browser (newest kept).
    MaxSessionsPerBrowser: int = 10

    def __post_init__(self) -> None:
        if self.MaxSessionsPerBrowser < 1:
            raise InvalidSetting(
                "MaxSessionsPerBrowser", "1 or more", str(self.MaxSessionsPerBrowser)
            )


def login_settings(runtime: object) -> LoginSettings:
    """The parsed section of this runtime (defaults when the section is absent)."""
    found = getattr(runtime, "plugin_settings", {}).get(NAME)
    return found if isinstance(found, LoginSettings) else LoginSettings()
