"""/v1/plans (the catalog) and /v1/accounts/{id}/subscriptions.

Every change that moves money takes an idempotency key (body or Idempotency-Key header) and
answers with the money it moved and the account's figures after it. ``.../preview`` answers
what a change would post and do to the open cycle's invoice, writing nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.accounts import Blueprint, balance_of, decode_cursor, encode_cursor, keyed, service
from api.auth import allow, visible_account
from api.schemas import DEFAULT_PAGE_ROWS, BalanceSchema, choice_field, key_field, text_field
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.catalog import MAX_PLAN_NAME, PLAN_ID_PATTERN, Period, Plan, PlanKind
from ledger_core.figures import ZERO
from ledger_core.subscription import MAX_QUANTITY, Item, Subscription
from projections.subscriptions import SubscriptionFilter
from projections.views import MAX_PAGE_ROWS
from service.subscriptions import preview_change, reprice_plan
from service.wire import Amount, Quantity, UtcDateTime

plans = Blueprint("plans", __name__, url_prefix="/v1/plans", description="The catalog: packages and add-ons")
subscriptions = Blueprint("subscriptions", __name__, url_prefix="/v1/accounts",
                          description="An account's subscriptions")
all_subscriptions = Blueprint("subscription_list", __name__, url_prefix="/v1/subscriptions",
                              description="Subscriptions across accounts")

PLAN_ID = fields.String(required=True, validate=validate.Regexp(PLAN_ID_PATTERN))
CHANGES = ("add_addon", "remove_addon", "change_package", "cancel", "reactivate")


# -- shapes --------------------------------------------------------------------------
class NewPlanSchema(Schema):
    plan_id = PLAN_ID
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in PlanKind]))
    name = text_field(MAX_PLAN_NAME, required=True)
    period = fields.String(required=True, validate=validate.OneOf([p.value for p in Period]))
    currency = fields.String(required=True)
    price = Amount(required=True, metadata={"description": "per period, before tax"})
    allowances = fields.Dict(keys=fields.String(), values=Quantity(), load_default=dict,
                             metadata={"description": "included per period, e.g. seats, chatbot_sessions"})


class PriceSchema(Schema):
    price = Amount(required=True)
    allowances = fields.Dict(keys=fields.String(), values=Quantity(),
                             metadata={"description": "default: the current version's"})
    applies_now = fields.Boolean(load_default=False, metadata={
        "description": "running subscriptions take it at once, prorated (default: at their next renewal)"})


class PlanVersionSchema(Schema):
    version = fields.Integer()
    price = Amount()
    allowances = fields.Dict(keys=fields.String(), values=Quantity())


class PlanSchema(Schema):
    plan_id = fields.String()
    kind = fields.String()
    name = fields.String()
    period = fields.String()
    currency = fields.String()
    retired = fields.Boolean()
    current = fields.Nested(PlanVersionSchema)
    versions = fields.List(fields.Nested(PlanVersionSchema))


class PlanListSchema(Schema):
    items = fields.List(fields.Nested(PlanSchema))


class SubscriptionQuerySchema(Schema):
    account_id = text_field(64)
    status = choice_field(("active", "cancelled"))
    plan_id = fields.String(validate=validate.Regexp(PLAN_ID_PATTERN), metadata={"description": "the package"})
    period = choice_field([p.value for p in Period], metadata={"description": "billing cycle: monthly or yearly"})
    payment_method_id = text_field(64)
    q = text_field(128, metadata={"description": "in the subscription id, its plans' ids and names, the subscriber"})
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class AccountSubscriptionQuerySchema(SubscriptionQuerySchema):
    class Meta:
        exclude = ("account_id",)  # in the path


class SubscriptionRowSchema(Schema):
    subscription_id = fields.String()
    account_id = fields.String()
    status = fields.String()
    plan_id = fields.String()
    plan_name = fields.String()
    period = fields.String()
    currency = fields.String()
    amount_per_period = Amount()
    period_start = fields.String(metadata={"description": "first local day of the current period"})
    next_payment_date = fields.String(allow_none=True)
    cancel_at_period_end = fields.Boolean()
    addons = fields.List(fields.String(), metadata={"description": "the add-ons' plan ids"})
    subscriber = fields.String()
    payment_method_id = fields.String(allow_none=True)
    created_at = UtcDateTime()


class SubscriptionPageSchema(Schema):
    items = fields.List(fields.Nested(SubscriptionRowSchema))
    next_cursor = fields.String(allow_none=True)


class SubscribeSchema(Schema):
    plan_id = PLAN_ID
    subscriber = text_field(200, load_default="", metadata={"description": "who subscribed"})
    payment_method_id = text_field(64, metadata={"description": "the payer profile's method that pays it "
                                                                "(default: the profile's default)"})
    subscription_id = fields.String(validate=validate.Regexp(r"^sub_[A-Za-z0-9]{1,40}$"))
    idempotency_key = key_field()


class ChangeSchema(Schema):
    """One change: what it needs depends on ``change``."""

    change = fields.String(required=True, validate=validate.OneOf(CHANGES))
    plan_id = fields.String(validate=validate.Regexp(PLAN_ID_PATTERN))
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, MAX_QUANTITY))
    at_renewal = fields.Boolean(load_default=False, metadata={"description": "change_package: from the next period"})
    at_period_end = fields.Boolean(load_default=True, metadata={"description": "cancel: false cancels now"})
    idempotency_key = key_field()

    @validates_schema
    def _plan_given(self, data: dict[str, Any], **_: Any) -> None:
        if data["change"] in ("add_addon", "remove_addon", "change_package") and "plan_id" not in data:
            raise ValidationError(f"{data['change']} needs plan_id", field_name="plan_id")


class ItemSchema(Schema):
    plan_id = fields.String()
    kind = fields.String()
    name = fields.String()
    version = fields.Integer()
    price = Amount(metadata={"description": "per period, this version's"})
    quantity = fields.Integer()
    allowances = fields.Dict(keys=fields.String(), values=Quantity())
    active = fields.Boolean()
    charged_this_period = Amount(metadata={"description": "net of credits"})


class SubscriptionSchema(Schema):
    subscription_id = fields.String()
    account_id = fields.String()
    subscriber = fields.String()
    payment_method_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "active or cancelled"})
    deleted = fields.Boolean()
    period = fields.String()
    currency = fields.String()
    period_start = fields.Date(metadata={"description": "first local day of the current period"})
    period_last_day = fields.Date(metadata={"description": "last local day, inclusive"})
    next_payment_date = fields.Date(allow_none=True, metadata={"description": "the renewal; null if it ends"})
    cancel_at_period_end = fields.Boolean()
    cancelled_on = fields.Date(allow_none=True)
    scheduled_package = fields.String(allow_none=True, metadata={"description": "plan taken at the renewal"})
    amount_per_period = Amount()
    package = fields.Nested(ItemSchema)
    addons = fields.List(fields.Nested(ItemSchema))


class ChangedSchema(Schema):
    subscription = fields.Nested(SubscriptionSchema)
    amount = Amount(metadata={"description": "net money this request moved: + charged, - credited"})
    replayed = fields.Boolean()
    balance = fields.Nested(BalanceSchema)


class MovementSchema(Schema):
    type = fields.String(metadata={"description": "Expense (a charge) or System (a credit)"})
    amount = Amount(metadata={"description": "signed as booked: - charged, + credited"})
    description = fields.String()


class InvoiceEffectSchema(Schema):
    subtotal = Amount()
    tax = Amount()
    total = Amount()


class PreviewSchema(Schema):
    movements = fields.List(fields.Nested(MovementSchema))
    net = Amount(metadata={"description": "+ charged, - credited"})
    invoiced_at_once = fields.Boolean(metadata={"description": "itemized mode: each on its own invoice now"})
    next_invoice_before = fields.Nested(InvoiceEffectSchema)
    next_invoice_after = fields.Nested(InvoiceEffectSchema)


# -- JSON ------------------------------------------------------------------------------
def plan_of(plan: Plan) -> dict[str, Any]:
    versions = [{"version": v.version, "price": v.price, "allowances": v.allowances} for v in plan.versions]
    return {"plan_id": plan.plan_id, "kind": plan.kind, "name": plan.name, "period": plan.period,
            "currency": plan.currency, "retired": plan.retired, "current": versions[-1], "versions": versions}


def _item(item: Item) -> dict[str, Any]:
    o = item.offer
    return {"plan_id": o.plan_id, "kind": o.kind, "name": o.name, "version": o.version, "price": o.price,
            "quantity": item.quantity, "allowances": o.allowances, "active": item.since is not None,
            "charged_this_period": item.charged}


def subscription_of(sub: Subscription) -> dict[str, Any]:
    renews = sub.status == "active" and not sub.cancel_at_period_end
    return {
        "subscription_id": sub.subscription_id, "account_id": sub.account_id, "status": sub.status,
        "subscriber": sub.subscriber, "payment_method_id": sub.payment_method_id,
        "deleted": sub.deleted, "period": sub.period, "currency": sub.currency, "period_start": sub.period_start,
        "period_last_day": sub.period_end - timedelta(days=1), "next_payment_date": sub.period_end if renews else None,
        "cancel_at_period_end": sub.cancel_at_period_end, "cancelled_on": sub.cancelled_on,
        "scheduled_package": sub.scheduled_package.plan_id if sub.scheduled_package else None,
        "amount_per_period": sum((i.amount for i in sub.items), ZERO),
        "package": _item(sub.package), "addons": [_item(i) for i in sub.addons.values()],
    }


def subscription_page(query: dict[str, Any], account_id: str | None) -> dict[str, Any]:
    found = SubscriptionFilter(account_id=account_id, status=query.get("status"), plan_id=query.get("plan_id"),
                               period=query.get("period"), payment_method_id=query.get("payment_method_id"),
                               text=query.get("q"),
                               before_position=decode_cursor(query["cursor"]) if "cursor" in query else None)
    rows, next_position = service().view.subscriptions(found, query["limit"])
    items = [{**{name: getattr(r, name) for name in ("subscription_id", "account_id", "status", "plan_id",
                                                      "plan_name", "period", "currency", "amount_per_period",
                                                      "period_start", "next_payment_date", "cancel_at_period_end",
                                                      "created_at", "subscriber", "payment_method_id")},
              "addons": [x["plan_id"] for x in r.items[1:]]} for r in rows]
    return {"items": items, "next_cursor": None if next_position is None else encode_cursor(next_position)}


def _change_command(account_id: str, subscription_id: str, body: dict[str, Any]) -> Any:
    change, key = body["change"], body.get("idempotency_key")
    if change == "add_addon":
        return commands.AddAddon(account_id, subscription_id, plan_id=body["plan_id"], quantity=body["quantity"],
                                 idempotency_key=key)
    if change == "remove_addon":
        return commands.RemoveAddon(account_id, subscription_id, plan_id=body["plan_id"], idempotency_key=key)
    if change == "change_package":
        return commands.ChangePackage(account_id, subscription_id, plan_id=body["plan_id"],
                                      at_renewal=body["at_renewal"], idempotency_key=key)
    if change == "cancel":
        return commands.CancelSubscription(account_id, subscription_id, at_period_end=body["at_period_end"],
                                           idempotency_key=key)
    return commands.ReactivateSubscription(account_id, subscription_id, idempotency_key=key)


def _changed(account_id: str, subscription_id: str, booking: Any) -> dict[str, Any]:
    svc = service()
    return {"subscription": subscription_of(svc.commands.subscription(account_id, subscription_id)),
            "amount": booking.amount, "replayed": booking.replayed, "balance": balance_of(svc.account_row(account_id))}


# -- routes ------------------------------------------------------------------------------
@plans.route("")
class Plans(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @plans.response(200, PlanListSchema)
    def get(self) -> dict[str, Any]:
        """Every plan, oldest first, retired ones too."""
        return {"items": [plan_of(p) for p in service().commands.plans()]}

    @allow(Role.ADMIN)
    @plans.arguments(NewPlanSchema)
    @plans.response(201, PlanSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        return plan_of(service().handle(commands.CreatePlan(body.pop("plan_id"), **body)))


@plans.route("/<plan_id>")
class PlanResource(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @plans.response(200, PlanSchema)
    def get(self, plan_id: str) -> dict[str, Any]:
        return plan_of(service().commands.plan(plan_id))


@plans.route("/<plan_id>/prices")
class PlanPrices(MethodView):
    @allow(Role.ADMIN)
    @plans.arguments(PriceSchema)
    @plans.response(200, PlanSchema)
    def post(self, body: dict[str, Any], plan_id: str) -> dict[str, Any]:
        """A new version: new subscriptions take it; running ones at their next renewal, or at
        once (prorated: the old price's unused days credited) with `applies_now`."""
        plan, _ = reprice_plan(service(), commands.RepricePlan(plan_id, **body))
        return plan_of(plan)


@plans.route("/<plan_id>/retire")
class PlanRetire(MethodView):
    @allow(Role.ADMIN)
    @plans.response(200, PlanSchema)
    def post(self, plan_id: str) -> dict[str, Any]:
        """No new subscriptions or add-ons of it; running ones go on and renew."""
        return plan_of(service().handle(commands.RetirePlan(plan_id)))


@all_subscriptions.route("")
class AllSubscriptions(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @all_subscriptions.arguments(SubscriptionQuerySchema, location="query")
    @all_subscriptions.response(200, SubscriptionPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Subscriptions, newest first, deleted ones left out: filters, search and a cursor."""
        return subscription_page(query, visible_account(query.get("account_id")))


@subscriptions.route("/<account_id>/subscriptions")
class Subscriptions(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @subscriptions.arguments(AccountSubscriptionQuerySchema, location="query")
    @subscriptions.response(200, SubscriptionPageSchema)
    def get(self, query: dict[str, Any], account_id: str) -> dict[str, Any]:
        """The account's subscriptions, as /v1/subscriptions lists them."""
        service().account_row(account_id)
        return subscription_page(query, account_id)

    @allow(Role.FINANCE, Role.SERVICE)
    @subscriptions.arguments(SubscribeSchema)
    @subscriptions.response(201, ChangedSchema)
    @subscriptions.alt_response(200, schema=ChangedSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """Subscribe to a package: its first period, from today, is charged in full."""
        body = keyed(body)
        booking = service().handle(commands.Subscribe(account_id, **body))
        return _changed(account_id, booking.transaction_no, booking), 200 if booking.replayed else 201


@subscriptions.route("/<account_id>/subscriptions/<subscription_id>")
class SubscriptionResource(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @subscriptions.response(200, SubscriptionSchema)
    def get(self, account_id: str, subscription_id: str) -> dict[str, Any]:
        return subscription_of(service().commands.subscription(account_id, subscription_id))

    @allow(Role.FINANCE, Role.SERVICE)
    @subscriptions.response(200, SubscriptionSchema)
    def delete(self, account_id: str, subscription_id: str) -> dict[str, Any]:
        """Delete a cancelled subscription: hidden from lists, kept in history."""
        service().handle(commands.DeleteSubscription(account_id, subscription_id))
        return subscription_of(service().commands.subscription(account_id, subscription_id))


@subscriptions.route("/<account_id>/subscriptions/<subscription_id>/changes")
class Changes(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @subscriptions.arguments(ChangeSchema)
    @subscriptions.response(200, ChangedSchema)
    def post(self, body: dict[str, Any], account_id: str, subscription_id: str) -> dict[str, Any]:
        """Add or remove an add-on, change the package (now, prorated, or at renewal), cancel
        (at the period's end, or now with the unused days credited) or reactivate."""
        booking = service().handle(_change_command(account_id, subscription_id, keyed(body)))
        return _changed(account_id, subscription_id, booking)


@subscriptions.route("/<account_id>/subscriptions/<subscription_id>/preview")
class Preview(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @subscriptions.arguments(ChangeSchema)
    @subscriptions.response(200, PreviewSchema)
    def post(self, body: dict[str, Any], account_id: str, subscription_id: str) -> dict[str, Any]:
        """What the change would post and do to the open cycle's invoice; nothing is written."""
        change = _change_command(account_id, subscription_id, {**body, "idempotency_key": None})
        return preview_change(service(), account_id, change)
