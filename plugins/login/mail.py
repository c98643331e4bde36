"""Sending email through the configured SMTP server (stdlib smtplib in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from donjon.plugins.login.settings import SMTPConfiguration


class MailError(Exception):
    """The SMTP server could not be reached or refused the message."""


def build_message(smtp: SMTPConfiguration, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((smtp.FromName, smtp.From))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=smtp.From.rpartition("@")[2] or None)
    message.set_content(text)
    return message


def _send(smtp: SMTPConfiguration, message: EmailMessage) -> None:
    host, port = smtp.address()
    timeout = smtp.Timeout.total_seconds()
    context = ssl.create_default_context()
    try:
        if smtp.TLS and port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if smtp.TLS and port != 465:
                client.starttls(context=context)
                client.ehlo()
            if smtp.User:
                client.login(smtp.User, smtp.Password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"sending mail through {smtp.Host} failed: {exc}") from exc


async def send_mail(smtp: SMTPConfiguration, to: str, subject: str, text: str) -> None:
    """Send a plain-text email; MailError when the server cannot be used."""
    if not smtp.enabled:
        raise MailError("no SMTP server is configured (Plugins.login.SMTPConfiguration.Host)")
    await asyncio.to_thread(_send, smtp, build_message(smtp, to, subject, text))
