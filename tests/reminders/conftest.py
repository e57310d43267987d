"""A real SMTP server (aiosmtpd) in the test process, and the invoices the tests remind."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from service.reminder_sender import SenderSettings
from tests.reminders.scenario import Invoices, make_invoices


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class MailServer:
    """Collects every message it accepts; can be stopped and started again on its port."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sender_settings(smtp: MailServer) -> SenderSettings:
    return SenderSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="billing@ledger.test",
                          smtp_timeout_s=5, batch_rows=10, max_attempts=3, retry_delay_s=60, lease_s=600)


@pytest.fixture
def invoices(service, clock) -> Invoices:
    return make_invoices(service, clock)
