"""The one dispatcher: every command value has exactly one handler, and commands check
their own fields when they are built."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commands.ledger import HANDLERS, handler_of
from ledger_core import commands
from ledger_core.errors import InvalidAmount, InvalidInput, InvariantViolation
from ledger_core.usage import UsageLine


def test_every_command_has_its_handler_and_nothing_else_is_dispatched():
    assert set(HANDLERS) == set(commands.Command.__subclasses__())

    class Unknown(commands.Command):
        pass

    with pytest.raises(InvariantViolation):
        handler_of(Unknown())


def test_a_command_checks_and_normalises_its_fields_when_built():
    usage = commands.RecordUsage("acme", idempotency_key="k", line=UsageLine("sms", quantity="3"), unit_price="0.1")
    assert (usage.unit_price, usage.line.quantity, usage.amount) == (Decimal("0.1"), Decimal(3), None)
    assert commands.Recharge("acme", amount="5").amount == Decimal("5.000000")
    with pytest.raises(InvalidAmount):
        commands.Recharge("acme", amount="1e3")
    with pytest.raises(InvalidInput):
        commands.RecordUsage("acme", idempotency_key="k", line=UsageLine("sms"), amount="1", unit_price="1")
    with pytest.raises(InvalidInput):
        commands.RecordUsage("acme", idempotency_key="", line=UsageLine("sms"), amount="1")
    with pytest.raises(InvalidInput):
        UsageLine("")
    with pytest.raises(InvalidInput):
        UsageLine("sms", app_key="x" * 129)


def test_a_usage_line_keeps_old_fingerprints_and_reads_old_events():
    assert UsageLine("sms").fingerprinted() == {"product": "sms", "application_id": None, "app_key": None,
                                                 "quantity": None, "unit": None}
    assert UsageLine("sms", channel_account="W-1").fingerprinted()["channel_account"] == "W-1"

    class OldEvent:  # stored before channel_account and application_name existed
        def __init__(self) -> None:
            self.product, self.application_id, self.app_key, self.quantity, self.unit = "sms", "a", None, None, None

    line = UsageLine.of_event(OldEvent())
    assert (line.product, line.application_id, line.channel_account, line.application_name) == ("sms", "a", None, None)
