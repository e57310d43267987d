"""/v1/invoices, /v1/payments and the invoicing routes under /v1/accounts/{id}.

Handlers translate HTTP to service calls and back. Lists come from the invoices read
model; writes answer after the read model caught up with them (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask.views import MethodView

from api.accounts import Blueprint, balance_of, booked, decode_cursor, encode_cursor, keyed, service
from api.auth import allow, visible, visible_account
from api.invoice_schemas import (
    CloseCyclesSchema,
    DashboardQuerySchema,
    DashboardSchema,
    FutureInvoiceSchema,
    InvoiceDefaultsSchema,
    InvoiceDetailSchema,
    InvoiceIdsSchema,
    InvoicePageSchema,
    InvoiceQuerySchema,
    ManualInvoiceSchema,
    PaymentPageSchema,
    PaymentQuerySchema,
    PaymentResultSchema,
    PaymentSchema,
    PredictionSchema,
    RefundSchema,
    UsagePreviewQuerySchema,
    UsagePreviewSchema,
)
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.cycles import local_date, local_days
from ledger_core.errors import InvoiceNotFound
from projections.rows import InvoiceFilter, InvoiceRow
from service.documents import account_days, account_rows, account_zones, invoice_due_status
from service.invoicing import (
    close_account_cycles,
    future_invoice,
    invoice_dashboard,
    invoice_defaults,
    issue_manual_invoice,
    predict_invoice,
    preview_usage_invoice,
)

invoices = Blueprint("invoices", __name__, url_prefix="/v1/invoices", description="Invoices")
payments = Blueprint("payments", __name__, url_prefix="/v1/payments", description="Payments received")
billing = Blueprint("billing", __name__, url_prefix="/v1/accounts", description="An account's invoicing")


def invoice_of(row: InvoiceRow, zone_of: Callable[[str], str], today_of: Callable[[str], date]) -> dict[str, Any]:
    """The invoice's JSON; its period also as the local days it covers, as every document
    shows it; due status by its account's today (UTC days; a test clock's, if attached)."""
    zone = zone_of(row.account_id)
    first_day, last_day = local_days(row.period_start, row.period_end, zone)
    return {**{name: getattr(row, name) for name in row.__slots__},
            "due_status": invoice_due_status(row, today_of(row.account_id)),
            "period_first_day": first_day, "period_last_day": last_day,
            "issue_date": None if row.issued_at is None else local_date(row.issued_at, zone)}


def invoice_filter(query: dict[str, Any]) -> InvoiceFilter:
    """The read-model filter; a due status filter is decided by the named account's today,
    across accounts by the real one (an attached account's invoices then by real time)."""
    account_id = visible_account(query.get("account_id"))
    today = service().now_for(account_id).date()
    return InvoiceFilter(
        account_id=account_id, number=query.get("number"), status=query.get("status"),
        payment_status=query.get("payment_status"), due_status=query.get("due_status"),
        period_from=query.get("period_from"), period_to=query.get("period_to"), today=today.isoformat(),
        before_position=decode_cursor(query["cursor"]) if "cursor" in query else None,
    )


def find_invoice(invoice_id: str) -> InvoiceRow:
    """The invoice (by id or number), if the caller may see its account."""
    return visible(service().view.invoice(invoice_id), InvoiceNotFound(f"no invoice {invoice_id!r}",
                                                                       invoice_id=invoice_id))


def _detail(invoice_id: str) -> dict[str, Any]:
    view = service().view
    row = find_invoice(invoice_id)
    return {**invoice_of(row, account_zones(service()), account_days(service())),
            "lines": view.invoice_lines(row.invoice_id),
            "payments": view.invoice_payments(row.invoice_id)}


@invoices.route("")
class InvoiceList(MethodView):
    @allow(Role.FINANCE)
    @invoices.arguments(InvoiceQuerySchema, location="query")
    @invoices.response(200, InvoicePageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Invoices, newest first, with filters and cursor pagination."""
        rows, next_position = service().view.invoices(invoice_filter(query), query["limit"])
        zone_of, today_of = account_zones(service()), account_days(service())
        return {"items": [invoice_of(r, zone_of, today_of) for r in rows],
                "next_cursor": None if next_position is None else encode_cursor(next_position)}


@invoices.route("/dashboard")
class Dashboard(MethodView):
    @allow(Role.FINANCE)
    @invoices.arguments(DashboardQuerySchema, location="query")
    @invoices.response(200, DashboardSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Counts per status (over every currency) and, per currency, the same counts with
        their sums: amounts in different currencies are never added together."""
        return invoice_dashboard(service(), invoice_filter(query))


@invoices.route("/defaults")
class Defaults(MethodView):
    @allow(Role.FINANCE)
    @invoices.response(200, InvoiceDefaultsSchema)
    def get(self) -> dict[str, Any]:
        """The issuer's terms & conditions and customer notes: every invoice issued
        prints them unless its request gives its own."""
        wording = invoice_defaults(service())
        return {"terms": wording.terms, "notes": wording.notes}

    @allow(Role.ADMIN)
    @invoices.arguments(InvoiceDefaultsSchema)
    @invoices.response(200, InvoiceDefaultsSchema)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set either or both texts ("" clears one); invoices already made keep theirs."""
        wording = service().handle(commands.SetInvoiceDefaults(**body))
        return {"terms": wording.terms, "notes": wording.notes}


@invoices.route("/<invoice_id>")
class InvoiceResource(MethodView):
    @allow(Role.FINANCE)
    @invoices.response(200, InvoiceDetailSchema)
    def get(self, invoice_id: str) -> dict[str, Any]:
        """One invoice (by id or number) with its lines and the payments applied to it."""
        return _detail(invoice_id)


@invoices.route("/<invoice_id>/approve")
class Approve(MethodView):
    @allow(Role.FINANCE)
    @invoices.response(200, InvoiceDetailSchema)
    def post(self, invoice_id: str) -> dict[str, Any]:
        """Issue a draft: it gets its number and its total moves from unbilled to billed."""
        find_invoice(invoice_id)
        service().handle(commands.ApproveInvoice(invoice_id))
        return _detail(invoice_id)


@invoices.route("/<invoice_id>/void")
class Void(MethodView):
    @allow(Role.FINANCE)
    @invoices.response(200, InvoiceDetailSchema)
    def post(self, invoice_id: str) -> dict[str, Any]:
        """Drop a draft; its usage goes back to unbilled for the next invoice."""
        find_invoice(invoice_id)
        service().handle(commands.VoidInvoice(invoice_id))
        return _detail(invoice_id)


@payments.route("")
class PaymentList(MethodView):
    @allow(Role.FINANCE)
    @payments.arguments(PaymentQuerySchema, location="query")
    @payments.response(200, PaymentPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Payments received, newest first."""
        before = decode_cursor(query["cursor"]) if "cursor" in query else None
        rows = service().view.payments(visible_account(query.get("account_id")), query["limit"] + 1, before)
        more = len(rows) > query["limit"]
        rows = rows[: query["limit"]]
        account_of = account_rows(service())
        items = [{**{name: getattr(row, name) for name in row.__dataclass_fields__},
                  "currency": account_of(row.account_id).currency} for row in rows]
        return {"items": items, "next_cursor": encode_cursor(rows[-1].position) if more else None}


@billing.route("/<account_id>/invoices")
class ManualInvoice(MethodView):
    @allow(Role.FINANCE)
    @billing.arguments(ManualInvoiceSchema)
    @billing.response(201, InvoiceDetailSchema)
    @billing.alt_response(200, schema=InvoiceDetailSchema, description="A repeat of an earlier claim's payment_id")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """Create a manual invoice: prepaid top-up or postpaid usage of a date range;
        with `claim`, the payment received is recorded with it in the same write (create
        and claim), and its payment_id makes a repeat of the request harmless."""
        if "claim" not in body:  # with a claim, its payment_id is the key
            body = keyed(body)
        given = ("terms", "notes", "idempotency_key", "description", "invoice_date", "due_date")
        fields = {k: body[k] for k in given if k in body}
        paid = commands.PaymentReceived(**body["claim"]) if "claim" in body else None
        if body["type"] == "topup":
            command = commands.InvoiceTopup(account_id, amount=body["amount"], paid=paid, **fields)
        else:
            command = commands.InvoiceUsage(account_id, date_from=body["date_from"], date_to=body["date_to"],
                                            paid=paid, **fields)
        invoice_id, created = issue_manual_invoice(service(), command)
        return _detail(invoice_id), 201 if created else 200


@billing.route("/<account_id>/payments")
class RecordPayment(MethodView):
    @allow(Role.FINANCE)
    @billing.arguments(PaymentSchema)
    @billing.response(201, PaymentResultSchema)
    @billing.alt_response(200, schema=PaymentResultSchema, description="A repeat of an earlier payment_id")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """Record a payment: the named invoice first, else the oldest open ones; the rest stays as credit."""
        booking = service().handle(commands.RecordPayment(account_id, **body))
        return booked(account_id, booking, sign=1), (200 if booking.replayed else 201)


@billing.route("/<account_id>/refunds")
class Refund(MethodView):
    @allow(Role.FINANCE)
    @billing.arguments(RefundSchema)
    @billing.response(201, PaymentResultSchema)
    @billing.alt_response(200, schema=PaymentResultSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Pay unapplied credit (an overpayment) back: a System movement."""
        body = keyed(body)
        booking = service().handle(commands.RefundOverpayment(account_id, **body))
        return booked(account_id, booking, sign=1), (200 if booking.replayed else 201)


@billing.route("/<account_id>/cycles/close")
class CloseCycles(MethodView):
    @allow(Role.FINANCE)
    @billing.arguments(CloseCyclesSchema)
    @billing.response(200, InvoiceIdsSchema)
    def post(self, body: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Close every cycle of the account that ended by `as_of`, issuing what its invoice mode asks for."""
        svc = service()
        made = close_account_cycles(svc, account_id, body.get("as_of"))
        return {"invoice_ids": made, "balance": balance_of(svc.account_row(account_id))}


@billing.route("/<account_id>/invoices/future")
class Future(MethodView):
    @allow(Role.FINANCE)
    @billing.response(200, FutureInvoiceSchema)
    def get(self, account_id: str) -> dict[str, Any]:
        """The next invoice: its period, cut-off date and whether it will be a draft."""
        return future_invoice(service(), account_id)


@billing.route("/<account_id>/invoices/prediction")
class Prediction(MethodView):
    @allow(Role.FINANCE)
    @billing.response(200, PredictionSchema)
    def get(self, account_id: str) -> dict[str, Any]:
        """Amount so far this cycle and a month-end estimate (method in the answer and docs/money.md)."""
        return predict_invoice(service(), account_id)


@billing.route("/<account_id>/invoices/preview")
class UsagePreview(MethodView):
    @allow(Role.FINANCE)
    @billing.arguments(UsagePreviewQuerySchema, location="query")
    @billing.response(200, UsagePreviewSchema)
    def get(self, query: dict[str, Any], account_id: str) -> dict[str, Any]:
        """What a manual usage invoice of the date range would bill: its records per local
        day, product and application, its lines and totals; nothing is written."""
        return preview_usage_invoice(service(), account_id, query["date_from"], query["date_to"])
