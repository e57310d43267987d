"""/v1/accounts/{id}/payer-profile: invoice addresses and payment methods.

A payment method is a provider's token with its brand, last four digits and expiry. Any
request here that carries what looks like a card number (13-19 digits passing the Luhn
check), in any field, known or not, is refused with 400 ``card_number_refused`` before
anything else is read of it."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.accounts import Blueprint, service
from api.auth import allow
from api.schemas import text_field
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.payer_profile import ADDRESS_FIELDS, MAX_FIELD_CHARS, PayerProfile
from ledger_core.text import refuse_card_numbers

blp = Blueprint("payer_profiles", __name__, url_prefix="/v1/accounts",
                description="Payer profile: invoice addresses and payment methods")


@blp.before_request
def _no_card_numbers() -> None:
    if request.method in ("POST", "PUT", "PATCH"):
        refuse_card_numbers(request.get_json(silent=True), "body")


AddressFields = {name: text_field(MAX_FIELD_CHARS) for name in ADDRESS_FIELDS}


class AddressSchema(Schema.from_dict(AddressFields)):  # type: ignore[misc]
    default = fields.Boolean(load_default=False, metadata={"description": "make it the default address"})


class PaymentMethodSchema(Schema):
    provider = text_field(64)
    token = text_field(200, metadata={"description": "the provider's reference to the card, never its number"})
    brand = text_field(32)
    last4 = fields.String(validate=validate.Regexp(r"^\d{4}$"))
    exp_month = fields.Integer(strict=True, validate=validate.Range(1, 12))
    exp_year = fields.Integer(strict=True, validate=validate.Range(2000, 2200))
    default = fields.Boolean(load_default=False)


class AddressOutSchema(Schema.from_dict({name: fields.String() for name in ADDRESS_FIELDS})):  # type: ignore[misc]
    address_id = fields.String()
    default = fields.Boolean()


class PaymentMethodOutSchema(Schema):
    payment_method_id = fields.String()
    provider = fields.String()
    token = fields.String()
    brand = fields.String()
    last4 = fields.String()
    exp_month = fields.Integer(allow_none=True)
    exp_year = fields.Integer(allow_none=True)
    default = fields.Boolean()


class ProfileSchema(Schema):
    account_id = fields.String()
    addresses = fields.List(fields.Nested(AddressOutSchema))
    payment_methods = fields.List(fields.Nested(PaymentMethodOutSchema))


def profile_of(profile: PayerProfile) -> dict[str, Any]:
    return {
        "account_id": profile.account_id,
        "addresses": [{"address_id": a, **vars(address), "default": a == profile.default_address}
                      for a, address in profile.addresses.items()],
        "payment_methods": [{"payment_method_id": m, **vars(method), "default": m == profile.default_payment_method}
                            for m, method in profile.payment_methods.items()],
    }


def _profile(account_id: str) -> dict[str, Any]:
    return profile_of(service().commands.payer_profile(account_id))


@blp.route("/<account_id>/payer-profile")
class Profile(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.response(200, ProfileSchema)
    def get(self, account_id: str) -> dict[str, Any]:
        return _profile(account_id)


@blp.route("/<account_id>/payer-profile/addresses/<address_id>")
class AddressResource(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.arguments(AddressSchema)
    @blp.response(200, ProfileSchema)
    def put(self, body: dict[str, Any], account_id: str, address_id: str) -> dict[str, Any]:
        """Add the address, or change the fields given; `default` makes it the default."""
        make_default = body.pop("default")
        service().handle(commands.SaveAddress(account_id, address_id, address=body, make_default=make_default))
        return _profile(account_id)

    @allow(Role.FINANCE, Role.SERVICE)
    @blp.response(200, ProfileSchema)
    def delete(self, account_id: str, address_id: str) -> dict[str, Any]:
        service().handle(commands.RemoveAddress(account_id, address_id))
        return _profile(account_id)


@blp.route("/<account_id>/payer-profile/payment-methods/<payment_method_id>")
class PaymentMethodResource(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.arguments(PaymentMethodSchema)
    @blp.response(200, ProfileSchema)
    def put(self, body: dict[str, Any], account_id: str, payment_method_id: str) -> dict[str, Any]:
        """Add a payment method (provider and token), or change its fields (edit card)."""
        make_default = body.pop("default")
        service().handle(commands.SavePaymentMethod(account_id, payment_method_id, changes=body,
                                                    make_default=make_default))
        return _profile(account_id)

    @allow(Role.FINANCE, Role.SERVICE)
    @blp.response(200, ProfileSchema)
    def delete(self, account_id: str, payment_method_id: str) -> dict[str, Any]:
        service().handle(commands.RemovePaymentMethod(account_id, payment_method_id))
        return _profile(account_id)
