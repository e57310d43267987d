"""The invoices read model's SQL, rows and batched changes (PostgreSQL and SQLite).

Invoices are written once when drafted and then changed in place (approval, payments,
void), so besides appends a batch keeps an ordered list of updates; each update
carries every value it sets (from the event), so nothing is read back to write it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from persistence.dialect import lower_bound, upper_bound
from projections.rows import InvoiceFilter, InvoiceLineRow, InvoiceRow, PaymentRow

if TYPE_CHECKING:
    from persistence.dialect import Dialect

INVOICE_TABLES = ("invoices", "invoice_lines", "payments", "payment_allocations")
INVOICE_COLUMNS = (
    "invoice_id", "account_id", "kind", "status", "currency", "period_start", "period_end", "created_at", "subtotal",
    "tax", "total", "description", "terms", "notes", "created_position", "number", "issued_at", "due_on", "paid",
    "outstanding", "payment_status", "updated_at", "period_first_day", "period_last_day",
)
LINE_COLUMNS = (
    "invoice_id", "line_no", "kind", "product", "description", "application_id", "app_key", "quantity", "unit",
    "amount", "date_from", "date_to", "late",
)
PAYMENT_COLUMNS = ("position", "payment_id", "account_id", "received_at", "amount", "method", "reference",
                   "allocations")
# Who is owed what, by status: the dashboard's sums.
DASHBOARD_GROUPS = ("currency", "status", "payment_status")  # never a sum across currencies


class InvoiceSQL:
    def __init__(self, dialect: Dialect, qualify: Callable[[str], str], index_prefix: str) -> None:
        self.d = dialect
        self.invoices = qualify("invoices")
        self.lines = qualify("invoice_lines")
        self.payments = qualify("payments")
        self.allocations = qualify("payment_allocations")  # which payments paid an invoice, by index
        self.index_prefix = index_prefix

    def ddl(self) -> list[str]:
        a, t, p = self.d.amount_type, self.d.time_type, self.index_prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {self.invoices} ("
            "invoice_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, "
            f"currency TEXT NOT NULL, period_start {t} NOT NULL, period_end {t} NOT NULL, created_at {t} NOT NULL, "
            f"subtotal {a} NOT NULL, tax {a} NOT NULL, total {a} NOT NULL, description TEXT NOT NULL, "
            "terms TEXT NOT NULL, notes TEXT NOT NULL, created_position BIGINT NOT NULL UNIQUE, number TEXT UNIQUE, "
            f"issued_at {t}, due_on TEXT, paid {a} NOT NULL, outstanding {a} NOT NULL, payment_status TEXT NOT NULL, "
            f"updated_at {t}, period_first_day TEXT NOT NULL, period_last_day TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {p}_invoices_account ON {self.invoices} (account_id, created_position)",
            # Lists and reminders page newest first under status filters.
            f"CREATE INDEX IF NOT EXISTS {p}_invoices_status ON {self.invoices} "
            "(status, payment_status, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_invoices_payment ON {self.invoices} (payment_status, created_position)",
            f"CREATE TABLE IF NOT EXISTS {self.lines} ("
            "invoice_id TEXT NOT NULL, line_no INTEGER NOT NULL, kind TEXT NOT NULL, product TEXT NOT NULL, "
            "description TEXT NOT NULL, application_id TEXT, app_key TEXT, "
            f"quantity {a}, unit TEXT, amount {a} NOT NULL, date_from TEXT NOT NULL, date_to TEXT NOT NULL, "
            "late BOOLEAN NOT NULL, PRIMARY KEY (invoice_id, line_no))",
            f"CREATE TABLE IF NOT EXISTS {self.payments} ("
            "position BIGINT PRIMARY KEY, payment_id TEXT NOT NULL, account_id TEXT NOT NULL, "
            f"received_at {t} NOT NULL, amount {a} NOT NULL, method TEXT NOT NULL, reference TEXT NOT NULL, "
            "allocations TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {p}_payments_account ON {self.payments} (account_id, position)",
            f"CREATE INDEX IF NOT EXISTS {p}_payments_id ON {self.payments} (account_id, payment_id)",
            f"CREATE TABLE IF NOT EXISTS {self.allocations} ("
            "invoice_id TEXT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (invoice_id, position))",
        ]

    def dump(self) -> list[tuple[str, str]]:
        return [
            ("invoices", f"SELECT * FROM {self.invoices} ORDER BY invoice_id{self.d.bytewise}"),
            ("invoice_lines", f"SELECT * FROM {self.lines} ORDER BY invoice_id{self.d.bytewise}, line_no"),
            ("payments", f"SELECT * FROM {self.payments} ORDER BY position"),
            ("payment_allocations", f"SELECT * FROM {self.allocations} ORDER BY invoice_id{self.d.bytewise}, position"),
        ]

    def insert(self, table: str, columns: tuple[str, ...]) -> str:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([self.d.param] * len(columns))})"

    # -- updates: each sets values taken from one event ---------------------------
    def approve(self) -> str:
        p = self.d.param
        return (f"UPDATE {self.invoices} SET status = 'approved', number = {p}, issued_at = {p}, due_on = {p}, "
                f"outstanding = {p}, paid = {p}, payment_status = {p}, updated_at = {p} WHERE invoice_id = {p}")

    def void(self) -> str:
        p = self.d.param
        zero = "'0.000000'" if self.d.text_amounts else "0"  # as the dialect stores amounts
        return (f"UPDATE {self.invoices} SET status = 'void', payment_status = 'none_owed', outstanding = {zero}, "
                f"updated_at = {p} WHERE invoice_id = {p}")

    def allocate(self) -> str:
        p = self.d.param
        return (f"UPDATE {self.invoices} SET outstanding = {p}, paid = {p}, "
                f"payment_status = {p}, updated_at = {p} "
                f"WHERE invoice_id = {p}")

    # -- reads -------------------------------------------------------------------
    def select_invoice(self) -> str:
        return f"SELECT * FROM {self.invoices} WHERE invoice_id = {self.d.param} OR number = {self.d.param}"

    def select_lines(self) -> str:
        return f"SELECT * FROM {self.lines} WHERE invoice_id = {self.d.param} ORDER BY line_no"

    def select_payments_of(self) -> str:
        return (f"SELECT * FROM {self.payments} WHERE position IN "
                f"(SELECT position FROM {self.allocations} WHERE invoice_id = {self.d.param}) ORDER BY position")

    def invoice_conditions(self, f: InvoiceFilter) -> list[tuple[str, Any]]:
        overdue = None if f.due_status is None else f.today
        return [
            ("1 = 1", ()),
            ("account_id = ?", f.account_id),
            ("number = ?", f.number),
            ("status = ?", f.status),
            ("payment_status = ?", f.payment_status),
            # payment_status, not outstanding > 0: SQLite keeps amounts as text, and text > 0 always
            ("status = 'approved' AND payment_status <> 'paid' AND due_on < ?",
             overdue if f.due_status == "overdue" else None),
            ("NOT (status = 'approved' AND payment_status <> 'paid' AND due_on < ?)",
             overdue if f.due_status == "not_due" else None),
            *lower_bound(self.d, f.period_from, "period_end > ?", "period_last_day >= ?"),
            *upper_bound(self.d, f.period_to, "period_start < ?", "period_first_day <= ?"),
            ("created_position < ?", f.before_position),
        ]

    def dashboard(self, where: str) -> str:
        return (f"SELECT currency, status, payment_status, COUNT(*) AS invoices, SUM(total) AS total, "
                f"SUM(paid) AS paid, SUM(outstanding) AS outstanding FROM {self.invoices} WHERE {where} "
                f"GROUP BY currency, status, payment_status")

    def dashboard_rows(self, where: str) -> str:
        return (f"SELECT currency, status, payment_status, 1 AS invoices, total, paid, outstanding "
                f"FROM {self.invoices} WHERE {where}")


class InvoiceCodec:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def invoice_params(self, r: InvoiceRow) -> tuple[Any, ...]:
        d = self.d
        return (
            r.invoice_id, r.account_id, r.kind, r.status, r.currency, d.time_in(r.period_start), d.time_in(r.period_end),
            d.time_in(r.created_at), d.amount_in(r.subtotal), d.amount_in(r.tax), d.amount_in(r.total), r.description,
            r.terms, r.notes, r.created_position, r.number, d.time_in(r.issued_at), r.due_on, d.amount_in(r.paid),
            d.amount_in(r.outstanding), r.payment_status, d.time_in(r.updated_at), r.period_first_day,
            r.period_last_day,
        )

    def invoice(self, r: Any) -> InvoiceRow:
        d = self.d
        values = {c: r[c] for c in INVOICE_COLUMNS}
        for c in ("subtotal", "tax", "total", "paid", "outstanding"):
            values[c] = d.amount_out(values[c])
        for c in ("period_start", "period_end", "created_at", "issued_at", "updated_at"):
            values[c] = d.time_out(values[c])
        return InvoiceRow(**values)

    def line_params(self, r: InvoiceLineRow) -> tuple[Any, ...]:
        d = self.d
        return (r.invoice_id, r.line_no, r.kind, r.product, r.description, r.application_id, r.app_key,
                d.amount_in(r.quantity), r.unit, d.amount_in(r.amount), r.date_from, r.date_to, r.late)

    def line(self, r: Any) -> InvoiceLineRow:
        d = self.d
        values = {c: r[c] for c in LINE_COLUMNS}
        values["quantity"] = d.amount_out(values["quantity"])
        values["amount"] = d.amount_out(values["amount"])
        values["late"] = bool(values["late"])
        return InvoiceLineRow(**values)

    def payment_params(self, r: PaymentRow) -> tuple[Any, ...]:
        d = self.d
        allocations = json.dumps([{k: str(v) for k, v in a.items()} for a in r.allocations], sort_keys=True)
        return (r.position, r.payment_id, r.account_id, d.time_in(r.received_at), d.amount_in(r.amount), r.method,
                r.reference, allocations)

    def payment(self, r: Any) -> PaymentRow:
        d = self.d
        allocations = [
            {"invoice_id": a["invoice_id"], "amount": Decimal(a["amount"]),
             "outstanding_after": Decimal(a["outstanding_after"]), "paid_after": Decimal(a["paid_after"])}
            for a in json.loads(r["allocations"])
        ]
        return PaymentRow(r["position"], r["payment_id"], r["account_id"], d.time_out(r["received_at"]),
                          d.amount_out(r["amount"]), r["method"], r["reference"], allocations)


class InvoiceChanges:
    """One batch's invoice changes: new rows, then updates in event order."""

    def __init__(self) -> None:
        self.invoices: list[InvoiceRow] = []
        self.lines: list[InvoiceLineRow] = []
        self.payments: list[PaymentRow] = []
        self.updates: list[tuple[str, tuple[Any, ...]]] = []  # (statement name, values)

    def flush(self, sql: InvoiceSQL, codec: InvoiceCodec, cursor: Any) -> None:
        for table, columns, rows in (
            (sql.invoices, INVOICE_COLUMNS, map(codec.invoice_params, self.invoices)),
            (sql.lines, LINE_COLUMNS, map(codec.line_params, self.lines)),
            (sql.payments, PAYMENT_COLUMNS, map(codec.payment_params, self.payments)),
            (sql.allocations, ("invoice_id", "position"),
             ((a["invoice_id"], p.position) for p in self.payments for a in p.allocations)),
        ):
            rows = list(rows)
            if rows:
                cursor.executemany(sql.insert(table, columns), rows)
        for name, values in self.updates:
            cursor.execute(getattr(sql, name)(), values)
