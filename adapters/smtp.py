"""Sending e-mail over SMTP: one connection, opened for the first message and reused.

The reminder sender (service/reminder_sender.py) hands messages here and learns only
whether each went out (MailNotSent says why not); nothing else of smtplib leaks out.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType


class MailNotSent(Exception):
    """The server refused the message or could not be reached; the text says which."""


@dataclass(frozen=True)
class SmtpServer:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout_s: int = 30  # each round trip


class SmtpMailer:
    """Sends messages over one connection; a failure closes it and the next message reconnects."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self._connection: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        try:
            if self._connection is None:
                self._connection = self._connect()
            self._connection.send_message(message)
        except (OSError, smtplib.SMTPException, ValueError) as error:  # ValueError: a header the mail can't carry
            self.close()
            raise MailNotSent(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.starttls:
                connection.starttls(context=ssl.create_default_context())
            if s.user and s.password:
                connection.login(s.user, s.password)
        except BaseException:
            connection.close()
            raise
        return connection
