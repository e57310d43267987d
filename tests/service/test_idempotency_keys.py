"""Idempotency keys (usage, charges) are rows of a keys table written with the booking's
event: a second claim of a key rolls its whole append back, whoever makes it."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from eventsourcing.persistence import IntegrityError

from consumer.store import ConsumerStore
from ledger_core.client_key import ClientKey, KeyKind, KeyStatus, fingerprint
from ledger_core.commands import RecordUsage
from ledger_core.errors import IdempotencyKeyReused
from ledger_core.money import Money
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import figures, last_position, open_account


def test_a_batch_that_claims_a_key_an_earlier_write_claimed_writes_nothing_at_all(service):
    open_account(service)
    service.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
    before, ledger = last_position(service), service.commands
    extras = AppendExtras(sources={"test:0": 7})
    with pytest.raises(IntegrityError):
        with ledger.batch(extras, accounts=["acme"]) as batch:  # keys not looked up first: the save must collide
            batch.handle(RecordUsage("acme", idempotency_key="other", amount="2", line=UsageLine(product="sms")))
            batch.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
    assert last_position(service) == before
    assert service.commands.recorder.claimed([("acme", "usage", "other")]) == []
    assert ConsumerStore(service.commands).positions("test:") == {}  # nor the batch's position
    assert figures(service)["expecting_invoice"] == "-1.000000"


def test_a_batch_answers_keys_looked_up_first_as_repeats_and_books_the_new_ones(service):
    open_account(service)
    first = service.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
    ledger = service.commands
    keys = [("acme", KeyKind.USAGE, "k"), ("acme", KeyKind.USAGE, "new")]
    with ledger.batch(AppendExtras(), accounts=["acme"], keys=keys) as batch:
        again = batch.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
        new = batch.handle(RecordUsage("acme", idempotency_key="new", amount="2", line=UsageLine(product="sms")))
        twice = batch.handle(RecordUsage("acme", idempotency_key="new", amount="2", line=UsageLine(product="sms")))
        with pytest.raises(IdempotencyKeyReused):
            batch.handle(RecordUsage("acme", idempotency_key="new", amount="3", line=UsageLine(product="sms")))
    service.projector.catch_up(until=batch.position)
    assert (again.replayed, again.transaction_no) == (True, first.transaction_no)
    assert (twice.replayed, twice.transaction_no, new.replayed) == (True, new.transaction_no, False)
    assert figures(service)["expecting_invoice"] == "-3.000000"


def test_keys_claimed_as_aggregates_before_the_keys_table_existed_still_book_once(database, clock):
    service = LedgerService(Settings(database=database), clock=clock)
    open_account(service)
    # As the previous version fingerprinted it: amounts as the wire parsed them (6 places).
    request = {"product": "sms", "occurred_at": None, "amount": Decimal("1.500000"), "unit_price": None,
               "quantity": None, "unit": None, "application_id": None, "app_key": None, "currency": None}
    account = service.commands.account("acme")  # as the previous version booked usage: event + ClientKey
    number = account.record_usage(Money.of("1.5", "SGD"), UsageLine("sms"), unit_price=None, occurred_at=clock(),
                                  idempotency_key="old")
    legacy = ClientKey(account_id="acme", kind=KeyKind.USAGE.value, key="old", request_fingerprint=fingerprint(request),
                       transaction_no=number, amount=Decimal("1.5"), status=KeyStatus.DONE.value)
    recorder = service.commands.recorder
    table = recorder.keys_table if not database.is_postgres else f'"{database.schema}"."{recorder.keys_table}"'
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(f"DROP TABLE {table}")  # the database as it was before the keys table
    service.commands.save(account, legacy)
    service.close()

    upgraded = LedgerService(Settings(database=database), clock=clock)  # creates the table, copies the old keys
    try:
        again = upgraded.handle(RecordUsage("acme", idempotency_key="old", amount="1.5", line=UsageLine(product="sms")))
        assert (again.replayed, again.transaction_no, again.amount) == (True, number, Decimal("1.5"))
        with pytest.raises(IdempotencyKeyReused):
            upgraded.handle(RecordUsage("acme", idempotency_key="old", amount="2", line=UsageLine(product="sms")))
        upgraded.projector.catch_up()
        assert figures(upgraded)["expecting_invoice"] == "-1.500000"  # booked once
        restarted = LedgerService(Settings(database=database), clock=clock)  # the table exists: nothing copied twice
        assert restarted.commands.recorder.claimed([("acme", "usage", "old")])[0].transaction_no == number
        restarted.close()
    finally:
        upgraded.close()


def test_a_write_that_loses_on_a_claimed_key_leaves_its_connection_fit_for_the_next_writes(service, database, clock):
    open_account(service)
    service.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
    # Another process with one connection, whose first append loses on the key: statements
    # skipped after the collision must not be taken for prepared on that connection.
    other = LedgerService(Settings(database=dataclasses.replace(database, pool_size=1, max_overflow=0)), clock=clock)
    try:
        ledger = other.commands
        with pytest.raises(IntegrityError):
            with ledger.batch(AppendExtras(), accounts=["acme"]) as batch:  # keys not looked up: the save collides
                batch.handle(RecordUsage("acme", idempotency_key="new", amount="2", line=UsageLine(product="sms")))
                batch.handle(RecordUsage("acme", idempotency_key="k", amount="1", line=UsageLine(product="sms")))
        for n in range(3):
            other.run(lambda l, n=n: l.handle(RecordUsage("acme", idempotency_key=f"after-{n}", amount="1",
                                                          line=UsageLine(product="sms"))))
        assert figures(other)["expecting_invoice"] == "-4.000000"
    finally:
        other.close()
