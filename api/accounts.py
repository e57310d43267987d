"""/v1/accounts: accounts, their figures, money movements, holds and balance details.

Handlers translate HTTP to service calls and back, nothing more. Reads come from the
read models; every write answers with the figures after it (read-your-writes).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint as SmorestBlueprint

from api.auth import allow, caller
from api.errors import LedgerParser
from api.schemas import (
    AccountPageSchema,
    AccountQuerySchema,
    AccountSchema,
    AsOfQuerySchema,
    BalanceSchema,
    BookingSchema,
    ChargeSchema,
    EventQuerySchema,
    HistoryPageSchema,
    HoldListSchema,
    OpenAccountSchema,
    RechargeSchema,
    ReleaseSchema,
    ReserveSchema,
    SettleSchema,
    TransactionPageSchema,
    TransactionQuerySchema,
    UpdateAccountSchema,
    UsageSchema,
)
from commands.bookings import Booking
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.client_key import MAX_KEY_LENGTH
from ledger_core.errors import InvalidInput
from ledger_core.figures import Figures
from ledger_core.usage import FIELD_NAMES as LINE_FIELDS
from ledger_core.usage import UsageLine
from projections.rows import AccountFilter, AccountRow, EventFilter, TransactionFilter
from service.history import account_events, figures_as_of
from service.ledger_service import LedgerService


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = LedgerParser()


blp = Blueprint("accounts", __name__, url_prefix="/v1/accounts", description="Accounts and their money")


def service() -> LedgerService:
    return current_app.extensions["ledger"]


def balance_of(row: AccountRow) -> dict[str, Any]:
    return figures_of(row.account_id, row.currency, row.figures, row.updated_at, row.version)


def figures_of(account_id: str, currency: str, f: Figures, as_of: datetime, version: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "currency": currency,
        "usable_credits": f.usable_credits,
        "reserved_credits": f.reserved,
        "expecting_invoice": f.expecting_invoice,
        "amount_due": f.amount_due,
        "current_balance": f.current_balance,
        "credit_limit": f.credit_limit,
        "overdraft": f.overdraft,
        "as_of": as_of,
        "version": version,
    }


def account_of(row: AccountRow) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "currency": row.currency,
        "billing_mode": row.figures.billing_mode.value,
        "invoice_mode": row.figures.invoice_mode.value,
        "usage_policy": row.usage_policy,
        "credit_limit": row.figures.credit_limit,
        "cycle_anchor_day": row.cycle_anchor_day,
        "tax_rate": row.tax_rate,
        "payer": row.payer,
        **row.billing_settings,
        "test_clock_id": row.test_clock_id,
        "opened_at": row.opened_at,
        "balance": balance_of(row),
        "low_balance_threshold": row.low_balance_threshold,
    }


IDEMPOTENCY_HEADER = "Idempotency-Key"


def keyed(body: dict[str, Any], *, required: bool = False, field: str = "idempotency_key") -> dict[str, Any]:
    """The body with its idempotency key, given in the body or as the Idempotency-Key header
    (both: they must agree)."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is not None:
        if not 1 <= len(header) <= MAX_KEY_LENGTH or not header.isprintable():
            raise _field_error(field, f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_LENGTH} printable characters")
        if body.get(field, header) != header:
            raise _field_error(field, f"{field} and the {IDEMPOTENCY_HEADER} header differ")
        body = {**body, field: header}
    if required and field not in body:
        raise _field_error(field, f"give {field}, or the {IDEMPOTENCY_HEADER} header")
    return body


def without_line(body: dict[str, Any]) -> dict[str, Any]:
    """The body's fields besides its usage line's (those go into one UsageLine)."""
    return {name: value for name, value in body.items() if name not in LINE_FIELDS}


def _field_error(field: str, message: str) -> InvalidInput:
    """Shaped as the schemas' own errors: details.fields names the field."""
    return InvalidInput(message, fields={field: [message]})


def booked(account_id: str, booking: Booking, *, sign: int, reservation_id: str | None = None,
           status: str | None = None) -> dict[str, Any]:
    amount = None if booking.amount is None else sign * booking.amount + Decimal(0)
    after = booking.after
    balance = (balance_of(service().account_row(account_id)) if after is None
               else figures_of(account_id, after.currency, after.figures, after.as_of, after.version))
    return {
        "transaction_no": booking.transaction_no,
        "amount": amount,
        "reservation_id": reservation_id,
        "status": status,
        "replayed": booking.replayed,
        "balance": balance,
    }


@blp.route("")
class Accounts(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(AccountQuerySchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Find customers: search the account id and the payer's name, organization and
        e-mails; filter by modes, currency, amount due and overdraft; each row with its figures."""
        who = caller()
        rows, after = service().view.find_accounts(AccountFilter(
            text=query.get("q"), billing_mode=query.get("billing_mode"), invoice_mode=query.get("invoice_mode"),
            currency=query.get("currency"), has_amount_due=query.get("has_amount_due"),
            in_overdraft=query.get("in_overdraft"), newest_first=query["sort"] == "newest",
            accounts=None if who.accounts is None else tuple(sorted(who.accounts)),
            after=decode_account_cursor(query["cursor"]) if "cursor" in query else None), query["limit"])
        return {"items": [account_of(r) for r in rows],
                "next_cursor": None if after is None else encode_account_cursor(after)}

    @allow(Role.ADMIN, all_accounts=True)
    @blp.arguments(OpenAccountSchema)
    @blp.response(201, AccountSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Open an account."""
        svc = service()
        svc.handle(commands.OpenAccount(**body))
        return account_of(svc.account_row(body["account_id"]))


@blp.route("/<account_id>")
class AccountResource(MethodView):
    @allow(Role.SERVICE, Role.FINANCE)
    @blp.response(200, AccountSchema)
    def get(self, account_id: str) -> dict[str, Any]:
        """An account's settings, payer details and figures."""
        return account_of(service().account_row(account_id))

    @allow(Role.ADMIN)
    @blp.arguments(UpdateAccountSchema)
    @blp.response(200, AccountSchema)
    def patch(self, body: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Change credit limit, invoice mode, usage policy, tax rate or payer details, all at once or none."""
        svc = service()
        svc.handle(commands.UpdateAccount(account_id, **body))
        return account_of(svc.account_row(account_id))


@blp.route("/<account_id>/balance")
class Balance(MethodView):
    @allow(Role.SERVICE, Role.FINANCE, Role.AUDITOR)
    @blp.arguments(AsOfQuerySchema, location="query")
    @blp.response(200, BalanceSchema)
    def get(self, query: dict[str, Any], account_id: str) -> dict[str, Any]:
        """The five figures, with credit limit and overdraft; with `as_of`, as they stood then
        (replayed from the account's events up to that log position or time)."""
        if "as_of" not in query:
            return balance_of(service().account_row(account_id))
        kind, point = query["as_of"]
        past = figures_as_of(service(), account_id, **{kind: point})
        return figures_of(past.account_id, past.currency, past.figures, past.as_of, past.version)


@blp.route("/<account_id>/recharges")
class Recharges(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(RechargeSchema)
    @blp.response(201, BookingSchema)
    @blp.alt_response(200, schema=BookingSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Money in (top-up)."""
        body = keyed(body)
        booking = service().handle(commands.Recharge(account_id, **body))
        return booked(account_id, booking, sign=1), (200 if booking.replayed else 201)


@blp.route("/<account_id>/usage")
class Usage(MethodView):
    @allow(Role.SERVICE)
    @blp.arguments(UsageSchema)
    @blp.response(201, BookingSchema)
    @blp.alt_response(200, schema=BookingSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """A priced usage charge: a positive cost, booked as DR. Once per idempotency key."""
        body = keyed(body, required=True)
        line = UsageLine.of(body)
        booking = service().handle(commands.RecordUsage(account_id, line=line, **without_line(body)))
        return booked(account_id, booking, sign=-1), (200 if booking.replayed else 201)


@blp.route("/<account_id>/charges")
class Charges(MethodView):
    @allow(Role.SERVICE)
    @blp.arguments(ChargeSchema)
    @blp.response(201, BookingSchema)
    @blp.alt_response(200, schema=BookingSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """A subscription, add-on, service or hardware charge. Once per idempotency key."""
        body = keyed(body, required=True)
        booking = service().handle(commands.PostCharge(account_id, **body))
        return booked(account_id, booking, sign=-1), (200 if booking.replayed else 201)


@blp.route("/<account_id>/reservations")
class Reservations(MethodView):
    @allow(Role.SERVICE, Role.FINANCE)
    @blp.response(200, HoldListSchema)
    def get(self, account_id: str) -> dict[str, Any]:
        """Open holds."""
        svc = service()
        svc.account_row(account_id)
        return {"items": svc.view.holds(account_id)}

    @allow(Role.SERVICE)
    @blp.arguments(ReserveSchema)
    @blp.response(201, BookingSchema)
    def post(self, body: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Hold credits for an ongoing transaction; refused if usable credits would go below zero."""
        booking = service().handle(commands.Reserve(account_id, **body))
        return booked(account_id, booking, sign=1, reservation_id=body["reservation_id"], status="open")


@blp.route("/<account_id>/reservations/<reservation_id>/settle")
class Settle(MethodView):
    @allow(Role.SERVICE)
    @blp.arguments(SettleSchema)
    @blp.response(200, BookingSchema)
    def post(self, body: dict[str, Any], account_id: str, reservation_id: str) -> dict[str, Any]:
        """The transaction succeeded: its final amount (at most the hold) is booked as usage."""
        line = UsageLine.of(body)
        booking = service().handle(commands.Settle(account_id, reservation_id, line=line, **without_line(body)))
        return booked(account_id, booking, sign=-1, reservation_id=reservation_id, status="settled")


@blp.route("/<account_id>/reservations/<reservation_id>/release")
class Release(MethodView):
    @allow(Role.SERVICE)
    @blp.arguments(ReleaseSchema)
    @blp.response(200, BookingSchema)
    def post(self, body: dict[str, Any], account_id: str, reservation_id: str) -> dict[str, Any]:
        """The transaction failed or was cancelled: the hold returns to usable credits."""
        booking = service().handle(commands.Release(account_id, reservation_id, **body))
        result = booked(account_id, booking, sign=1, reservation_id=reservation_id, status="released")
        result["transaction_no"] = None
        return result


@blp.route("/<account_id>/transactions")
class Transactions(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @blp.arguments(TransactionQuerySchema, location="query")
    @blp.response(200, TransactionPageSchema)
    def get(self, query: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Balance details, newest first, with filters and cursor pagination; `as_of` keeps
        only what was booked up to that log position or time."""
        svc = service()
        svc.account_row(account_id)
        page = svc.view.transactions(transaction_filter(account_id, query), limit=query["limit"])
        next_cursor = None if page.next_before_position is None else encode_cursor(page.next_before_position)
        return {"items": page.rows, "next_cursor": next_cursor}


def transaction_filter(account_id: str, query: dict[str, Any]) -> TransactionFilter:
    """The read-model filter of a TransactionQuerySchema query (the list and its exports)."""
    as_of_kind, as_of_point = query.get("as_of", ("", None))
    zone = service().account_row(account_id).time_zone  # a day or a month means the account's local days

    def start(name: str) -> datetime | None:
        return query[name].start(zone) if name in query else None

    def end(name: str) -> datetime | None:
        return query[name].end(zone) if name in query else None

    return TransactionFilter(
        account_id=account_id,
        type=query.get("type"),
        product=query.get("product"),
        booked_from=start("from_"),
        booked_to=end("to"),
        occurred_from=start("occurred_from"),
        occurred_to=end("occurred_to"),
        application_id=query.get("application_id"),
        text=query.get("q"),
        before_position=decode_cursor(query["cursor"]) if "cursor" in query else None,
        as_of_position=as_of_point if as_of_kind == "position" else None,
        as_of_time=as_of_point if as_of_kind == "time" else None,
    )


@blp.route("/<account_id>/events")
class Events(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @blp.arguments(EventQuerySchema, location="query")
    @blp.response(200, HistoryPageSchema)
    def get(self, query: dict[str, Any], account_id: str) -> dict[str, Any]:
        """The account's domain events in log order: payload, cause, chain link (read-only; auditors)."""
        items, next_position = account_events(service(), EventFilter(
            account_id=account_id,
            type=query.get("type"),
            time_from=query.get("from_"),
            time_to=query.get("to"),
            after_position=decode_cursor(query["cursor"]) if "cursor" in query else None,
        ), limit=query["limit"])
        return {"items": items, "next_cursor": None if next_position is None else encode_cursor(next_position)}


def encode_account_cursor(after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def decode_account_cursor(cursor: str) -> tuple[str, str]:
    try:
        opened, account_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        datetime.fromisoformat(opened)
        return str(opened), str(account_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("p"):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
