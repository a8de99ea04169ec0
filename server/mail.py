"""Outgoing mail: SMTP through aiosmtplib, or an outbox folder for the one-node default.

Mail bodies carry links with single-use tokens; they are never logged. In outbox mode the
message is written to ``<data>/outbox`` and its link printed on the console, so a person running
``just run`` can confirm an account without a mail server.
"""

from __future__ import annotations

import asyncio
import os
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("Mailer", "OutboxMailer", "SmtpMailer", "compose")


class Mailer(Protocol):
    """Sends one message."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise."""
        ...


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="securepacs.invalid")
    message.set_content(body)
    return message


class OutboxMailer:
    """Writes ``.eml`` files (owner-readable only) and prints their links."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").replace("@", "_") + ".eml"
        descriptor = os.open(self.outbox / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(message.as_bytes())
        links = [w for w in message.get_content().split() if w.startswith(("http://", "https://"))]
        # The console is the mail client of a one-node install; a server log never sees this.
        print(f"[outbox] mail to {message['To']}: {message['Subject']}", flush=True)  # noqa: T201
        for link in links:
            print(f"[outbox]   {link}", flush=True)  # noqa: T201


class SmtpMailer:
    """Delivers through ``smtp://``, ``smtp+starttls://`` or ``smtps://host:port``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = parts.scheme == "smtp+starttls"
        self.port = parts.port or (465 if self.use_tls else 587 if self.start_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=30,
        )
