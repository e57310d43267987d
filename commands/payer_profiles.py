"""Payer profile handlers (ledger_core/payer_profile.py): addresses and payment methods.

A profile changes in a write of its account's (which must exist), saved on its own version:
two changes at once collide and the later one is decided again on the saved profile."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from commands.bookings import Booking
from commands.unit_of_work import Changed, UnitOfWork
from ledger_core.account import Account
from ledger_core.commands import RemoveAddress, RemovePaymentMethod, SaveAddress, SavePaymentMethod
from ledger_core.errors import InvariantViolation
from ledger_core.payer_profile import PayerProfile, PaymentMethod, profile_uuid


def load_profile(app: Application[UUID], account_id: str, *, to_change: bool = True) -> PayerProfile:
    """The account's profile; an empty new one if it has none yet."""
    try:
        found = app.repository.get(profile_uuid(account_id), deepcopy_from_cache=to_change)
    except AggregateNotFoundError:
        return PayerProfile(account_id=account_id)
    if not isinstance(found, PayerProfile):
        raise InvariantViolation(f"the payer profile of {account_id} is a {type(found).__name__}")
    return found


def _changed(unit: UnitOfWork, account_id: str, change: Callable[[PayerProfile], None]) -> Booking:
    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        profile = load_profile(unit.app, account_id)
        change(profile)
        return Booking(account_id, None), [profile]

    return unit.booked(account_id, decide)


def save_address(command: SaveAddress, unit: UnitOfWork) -> Booking:
    c = command

    def change(profile: PayerProfile) -> None:
        if c.address_id in profile.addresses:
            profile.update_address(c.address_id, c.address)
            if c.make_default:
                profile.set_default_address(c.address_id)
        else:
            profile.add_address(c.address_id, c.address, make_default=c.make_default)

    return _changed(unit, c.account_id, change)


def remove_address(command: RemoveAddress, unit: UnitOfWork) -> Booking:
    return _changed(unit, command.account_id, lambda profile: profile.remove_address(command.address_id))


def save_payment_method(command: SavePaymentMethod, unit: UnitOfWork) -> Booking:
    c = command

    def change(profile: PayerProfile) -> None:
        if c.payment_method_id in profile.payment_methods:
            if c.changes:
                profile.update_payment_method(c.payment_method_id, **c.changes)
            if c.make_default:
                profile.set_default_payment_method(c.payment_method_id)
        else:
            method = PaymentMethod(**{"provider": "", "token": "", **c.changes})  # a missing one is refused
            profile.add_payment_method(c.payment_method_id, method, make_default=c.make_default)

    return _changed(unit, c.account_id, change)


def remove_payment_method(command: RemovePaymentMethod, unit: UnitOfWork) -> Booking:
    return _changed(unit, command.account_id, lambda profile: profile.remove_payment_method(command.payment_method_id))
