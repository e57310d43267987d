"""An account's payer profile: invoice addresses (several, one default) and payment methods.

A payment method is a payment provider's token plus what a person recognises it by
(brand, last four digits, expiry). A card number is never stored: any text of a profile
(and of an account's payer details) that looks like one is refused (ledger_core/text.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.errors import InvalidInput
from ledger_core.text import refuse_card_numbers, unsafe_character

MAX_ADDRESSES = 20
MAX_PAYMENT_METHODS = 20
MAX_FIELD_CHARS = 200
ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Address:
    label: str = ""  # "Head office", "Billing"
    name: str = ""
    organization: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""  # ISO 3166-1 alpha-2
    tax_id: str = ""


ADDRESS_FIELDS = tuple(f.name for f in fields(Address))


@dataclass(frozen=True)
class PaymentMethod:
    provider: str  # who holds the card: "stripe", "adyen", ...
    token: str  # the provider's reference to it
    brand: str = ""  # visa, mastercard, ...
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None


def profile_uuid(account_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"payer-profile/{account_id}")


def checked_text(value: object, field: str, *, limit: int = MAX_FIELD_CHARS) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} is text of at most {limit} characters", field=field)
    problem = unsafe_character(value)
    if problem is not None:
        raise InvalidInput(f"{field} holds {problem}", field=field)
    refuse_card_numbers(value, field)
    return value


def checked_address(given: dict[str, Any]) -> Address:
    unknown = set(given) - set(ADDRESS_FIELDS)
    if unknown:
        raise InvalidInput(f"an address has no field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    address = Address(**{name: checked_text(value, name) for name, value in given.items()})
    if address.country and not COUNTRY_PATTERN.fullmatch(address.country):
        raise InvalidInput("country is an ISO 3166-1 alpha-2 code such as SG", field="country")
    return address


def checked_method(method: PaymentMethod) -> PaymentMethod:
    for name in ("provider", "token", "brand"):
        checked_text(getattr(method, name), name)
    if not method.provider or not method.token:
        raise InvalidInput("a payment method needs its provider and the provider's token", field="token")
    if method.last4 and not re.fullmatch(r"\d{4}", method.last4):
        raise InvalidInput("last4 is the card's last four digits", field="last4")
    if method.exp_month is not None and not 1 <= method.exp_month <= 12:
        raise InvalidInput("exp_month is 1-12", field="exp_month")
    if method.exp_year is not None and not 2000 <= method.exp_year <= 2200:
        raise InvalidInput("exp_year is a four-digit year", field="exp_year")
    return method


def _item_id(item_id: object, field: str) -> str:
    if not isinstance(item_id, str) or not ITEM_ID_PATTERN.fullmatch(item_id):
        raise InvalidInput(f"{field} is 1-64 letters, digits, '.', '_' or '-'", field=field)
    return item_id


class PayerProfile(Aggregate):
    @staticmethod
    def create_id(account_id: str) -> UUID:
        return profile_uuid(account_id)

    @event("Started")
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.addresses: dict[str, Address] = {}
        self.default_address: str | None = None
        self.payment_methods: dict[str, PaymentMethod] = {}
        self.default_payment_method: str | None = None

    # -- addresses -----------------------------------------------------------------------
    def add_address(self, address_id: str, given: dict[str, Any], *, make_default: bool = False) -> None:
        _item_id(address_id, "address_id")
        if address_id in self.addresses:
            raise InvalidInput(f"address {address_id!r} exists already; update it", field="address_id")
        if len(self.addresses) >= MAX_ADDRESSES:
            raise InvalidInput(f"a payer has at most {MAX_ADDRESSES} addresses", field="address_id")
        checked_address(given)
        self._address_set(address_id=address_id, address=given,
                          make_default=make_default or self.default_address is None)

    def update_address(self, address_id: str, given: dict[str, Any]) -> None:
        current = self._address(address_id)
        merged = {**vars(current), **given}
        checked_address(merged)
        self._address_set(address_id=address_id, address=merged, make_default=False)

    @event("AddressSet")
    def _address_set(self, address_id: str, address: dict[str, Any], make_default: bool) -> None:
        self.addresses[address_id] = Address(**address)
        if make_default:
            self.default_address = address_id

    def set_default_address(self, address_id: str) -> None:
        self._address(address_id)
        if self.default_address != address_id:
            self._address_set(address_id=address_id, address=vars(self.addresses[address_id]), make_default=True)

    def remove_address(self, address_id: str) -> None:
        self._address(address_id)
        self._address_removed(address_id=address_id)

    @event("AddressRemoved")
    def _address_removed(self, address_id: str) -> None:
        del self.addresses[address_id]
        if self.default_address == address_id:  # the oldest left takes over
            self.default_address = next(iter(self.addresses), None)

    def _address(self, address_id: str) -> Address:
        found = self.addresses.get(address_id)
        if found is None:
            raise InvalidInput(f"no address {address_id!r}", field="address_id")
        return found

    # -- payment methods -------------------------------------------------------------------
    def add_payment_method(self, method_id: str, method: PaymentMethod, *, make_default: bool = False) -> None:
        _item_id(method_id, "payment_method_id")
        if method_id in self.payment_methods:
            raise InvalidInput(f"payment method {method_id!r} exists already", field="payment_method_id")
        if len(self.payment_methods) >= MAX_PAYMENT_METHODS:
            raise InvalidInput(f"a payer has at most {MAX_PAYMENT_METHODS} payment methods", field="payment_method_id")
        checked_method(method)
        self._payment_method_set(method_id=method_id, method=vars(method),
                                 make_default=make_default or self.default_payment_method is None)

    def update_payment_method(self, method_id: str, **changes: Any) -> None:
        """A new expiry, brand or token for the same card ("edit card")."""
        current = self._method(method_id)
        updated = checked_method(replace(current, **changes))
        self._payment_method_set(method_id=method_id, method=vars(updated), make_default=False)

    @event("PaymentMethodSet")
    def _payment_method_set(self, method_id: str, method: dict[str, Any], make_default: bool) -> None:
        self.payment_methods[method_id] = PaymentMethod(**method)
        if make_default:
            self.default_payment_method = method_id

    def set_default_payment_method(self, method_id: str) -> None:
        method = self._method(method_id)
        if self.default_payment_method != method_id:
            self._payment_method_set(method_id=method_id, method=vars(method), make_default=True)

    def remove_payment_method(self, method_id: str) -> None:
        self._method(method_id)
        self._payment_method_removed(method_id=method_id)

    @event("PaymentMethodRemoved")
    def _payment_method_removed(self, method_id: str) -> None:
        del self.payment_methods[method_id]
        if self.default_payment_method == method_id:
            self.default_payment_method = next(iter(self.payment_methods), None)

    def _method(self, method_id: str) -> PaymentMethod:
        found = self.payment_methods.get(method_id)
        if found is None:
            raise InvalidInput(f"no payment method {method_id!r}", field="payment_method_id")
        return found
