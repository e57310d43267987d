"""An account's invoicing state, typed, and the decisions made on it alone.

The Account (ledger_core/account.py) holds one ``InvoiceBook``: what is unbilled, the
drafts, the issued invoices still owed, the prepaid top-ups awaiting payment and the
credit not yet applied. Its ``plan_*`` methods decide without changing anything; the
Account records their outcome in an event, and the event's body calls the matching
method here that changes the state. ``check`` states the invariants that tie the book
to the account's figures.

Unbilled amounts are kept as *entries*: usage summed per local day, product,
application, AppKey and unit; each charge on its own. An invoice takes whole entries,
so no charge can be invoiced twice. Amounts are costs: positive = the customer owes (DR).
Invoice lines and allocations stay plain dicts: they are what events carry.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger_core.errors import InvariantViolation
from ledger_core.figures import ZERO
from ledger_core.invoicing import MAX_INVOICE_LINES, InvoiceKind, lines_of, total_of
from ledger_core.usage import UsageLine

MAX_ENTRIES_PER_INVOICE = MAX_INVOICE_LINES * 31  # entries are per day: a month of each line at most


@dataclass
class Entry:
    """Unbilled money of one day: usage summed per product, application, AppKey and unit,
    or one charge or carried-over balance on its own."""

    date: str  # the local day, ISO
    kind: str  # usage, charge, carry_over
    product: str
    description: str
    amount: Decimal
    application_id: str | None = None
    app_key: str | None = None
    unit: str | None = None
    quantity: Decimal | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Entry:
        return replace(self)  # every field is an immutable value

    def add(self, amount: Decimal, quantity: Decimal | None) -> None:
        self.amount += amount
        if quantity is not None:
            self.quantity = quantity if self.quantity is None else self.quantity + quantity


@dataclass
class Draft:
    kind: str  # an InvoiceKind
    entries: dict[str, Entry]
    subtotal: Decimal
    total: Decimal
    from_unbilled: Decimal  # what approving it moves from expecting invoice

    def __deepcopy__(self, memo: dict[int, Any]) -> Draft:
        return replace(self, entries={k: replace(e) for k, e in self.entries.items()})


@dataclass
class OpenInvoice:
    """An issued invoice with money still owed on it."""

    number: str
    issued_at: datetime
    total: Decimal
    outstanding: Decimal

    def __deepcopy__(self, memo: dict[int, Any]) -> OpenInvoice:
        return replace(self)  # every field is an immutable value


@dataclass(frozen=True)
class Topup:
    """A prepaid top-up invoice awaiting its payment in full."""

    number: str
    total: Decimal
    subtotal: Decimal  # becomes a recharge once paid

    def __deepcopy__(self, memo: dict[int, Any]) -> Topup:
        return self  # frozen, of immutable values


@dataclass(frozen=True)
class DraftPlan:
    lines: list[dict[str, Any]]
    subtotal: Decimal
    tax: Decimal
    from_unbilled: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax


@dataclass
class InvoiceBook:
    unbilled: dict[str, Entry] = field(default_factory=dict)
    drafts: dict[str, Draft] = field(default_factory=dict)
    open_invoices: dict[str, OpenInvoice] = field(default_factory=dict)
    topups: dict[str, Topup] = field(default_factory=dict)
    unapplied_credit: Decimal = ZERO  # money in not yet applied to an invoice
    invoice_count: int = 0  # invoices drafted so far: the next one's id

    def __deepcopy__(self, memo: dict[int, Any]) -> InvoiceBook:
        """The library copies an aggregate out of its cache for every command: this copy
        knows which parts are immutable values, which the generic deepcopy would walk."""
        return InvoiceBook({k: replace(e) for k, e in self.unbilled.items()},
                           {k: copy.deepcopy(d, memo) for k, d in self.drafts.items()},
                           {k: replace(i) for k, i in self.open_invoices.items()},
                           dict(self.topups), self.unapplied_credit, self.invoice_count)

    # -- unbilled entries --------------------------------------------------------
    def add_usage(self, day: date, cost: Decimal, line: UsageLine) -> None:
        key = "|".join((day.isoformat(), "usage", line.product, line.application_id or "", line.app_key or "",
                        line.unit or ""))
        entry = self.unbilled.get(key)
        if entry is None:
            self.unbilled[key] = Entry(day.isoformat(), "usage", line.product, line.product, cost,
                                       line.application_id, line.app_key, line.unit, line.quantity)
        else:
            entry.add(cost, line.quantity)

    def add_single(self, day: date, cost: Decimal, *, kind: str, reference: str, description: str,
                   product: str) -> None:
        """A charge or a carried-over balance: an entry of its own, never summed with others."""
        self.unbilled[f"{day.isoformat()}|{kind}|{reference}"] = Entry(day.isoformat(), kind, product, description,
                                                                       cost)

    def due(self, before: date, since: date | None = None) -> list[str]:
        """Keys of the unbilled entries dated before ``before`` (and on or after ``since``), oldest first."""
        return sorted(key for key, entry in self.unbilled.items()
                      if entry.date < before.isoformat() and (since is None or entry.date >= since.isoformat()))

    def unbilled_total(self) -> Decimal:
        return sum((entry.amount for entry in self.unbilled.values()), ZERO)

    def forget_unbilled(self) -> None:
        """Invoice mode none keeps every movement unbilled for good, and holds no credit."""
        self.unbilled.clear()
        self.unapplied_credit = ZERO

    # -- drafts --------------------------------------------------------------------
    def next_invoice_sequence(self) -> int:
        return self.invoice_count + 1

    def plan_draft(self, keys: list[str], period_start: date | None, tax: Any,
                   topup_line: dict[str, Any] | None = None) -> DraftPlan:
        """The lines and totals of an invoice of the entries ``keys`` (or of one top-up
        line); ``tax(taxable)`` gives the tax on an amount."""
        entries = [self.unbilled[k] for k in keys]
        lines = [topup_line] if topup_line else lines_of(entries, period_start)
        if len(lines) > MAX_INVOICE_LINES:
            raise InvariantViolation(f"an invoice has at most {MAX_INVOICE_LINES} lines (entries are summed per "
                                     f"day and product): {len(lines)}")
        subtotal = total_of(lines)
        # A balance carried over from mode none holds money in and usage taxed nowhere else: not taxed.
        taxed = tax(total_of(x for x in lines if x["kind"] != "carry_over"))
        from_unbilled = ZERO if topup_line else sum((e.amount for e in entries), ZERO)
        return DraftPlan(lines, subtotal, taxed, from_unbilled)

    def drafted(self, invoice_id: str, kind: str, keys: Iterable[str], subtotal: Decimal, total: Decimal,
                from_unbilled: Decimal) -> None:
        self.invoice_count += 1
        self.drafts[invoice_id] = Draft(kind, {k: self.unbilled.pop(k) for k in keys}, subtotal, total, from_unbilled)

    def voided(self, invoice_id: str) -> None:
        """A dropped draft's entries go back to unbilled, summed with any that arrived meanwhile."""
        for key, entry in self.drafts.pop(invoice_id).entries.items():
            current = self.unbilled.get(key)
            if current is None:
                self.unbilled[key] = replace(entry)
            else:
                current.add(entry.amount, entry.quantity)

    # -- issuing ---------------------------------------------------------------------
    def plan_approval(self, invoice_id: str, now: datetime) -> list[dict[str, Any]]:
        """Where the credit goes once the draft is issued: to it first, then the oldest open ones."""
        draft = self.drafts[invoice_id]
        if draft.kind == InvoiceKind.TOPUP:
            return []
        owed = max(draft.total, ZERO)
        open_after = {**self.open_invoices, invoice_id: OpenInvoice("~", now, owed, owed)}
        allocations, _ = allocate(self.unapplied_credit + max(-draft.total, ZERO), open_after, first=invoice_id)
        return allocations

    def approved(self, invoice_id: str, number: str, issued_at: datetime, total: Decimal, from_unbilled: Decimal,
                 allocations: list[dict[str, Any]]) -> Draft:
        """Issues the draft; returns it (the account moves its figures by it)."""
        draft = self.drafts.pop(invoice_id)
        if (draft.total, draft.from_unbilled) != (total, from_unbilled):
            raise InvariantViolation(f"approval of {invoice_id} does not match its draft")
        if draft.kind == InvoiceKind.TOPUP:
            self.topups[invoice_id] = Topup(number, total, draft.subtotal)
            return draft
        if total > 0:
            self.open_invoices[invoice_id] = OpenInvoice(number, issued_at, total, total)
        self.unapplied_credit += max(-total, ZERO)  # a credit note adds to the credit
        self.apply(allocations)
        return draft

    # -- money applied -----------------------------------------------------------------
    def allocations(self, amount: Decimal, first: str | None = None) -> list[dict[str, Any]]:
        allocations, _ = allocate(amount, self.open_invoices, first=first)
        return allocations

    def credit(self, amount: Decimal, allocations: list[dict[str, Any]]) -> None:
        self.unapplied_credit += amount
        self.apply(allocations)

    def apply(self, allocations: list[dict[str, Any]]) -> None:
        for allocation in allocations:
            invoice = self.open_invoices[allocation["invoice_id"]]
            invoice.outstanding = allocation["outstanding_after"]
            self.unapplied_credit -= allocation["amount"]
            if invoice.outstanding == 0:
                del self.open_invoices[allocation["invoice_id"]]

    def refunded(self, amount: Decimal) -> None:
        self.unapplied_credit -= amount

    def topup_paid(self, invoice_id: str) -> None:
        self.topups.pop(invoice_id)

    def owed_on(self, invoice_id: str) -> Decimal:
        """What a payment of the invoice must bring: a top-up's total (it is paid in full),
        an open invoice's outstanding amount, else nothing."""
        if invoice_id in self.topups:
            return self.topups[invoice_id].total
        invoice = self.open_invoices.get(invoice_id)
        return ZERO if invoice is None else invoice.outstanding

    # -- invariants --------------------------------------------------------------------
    def check(self, expecting_invoice: Decimal, amount_due: Decimal) -> None:
        """The book agrees with the account's figures; cheap enough after every invoicing event."""
        outstanding = sum((i.outstanding for i in self.open_invoices.values()), ZERO)
        drafted = sum((d.from_unbilled for d in self.drafts.values()), ZERO)
        if expecting_invoice != -(self.unbilled_total() + drafted):
            raise InvariantViolation(f"unbilled {expecting_invoice} differs from its entries")
        if amount_due != self.unapplied_credit - outstanding:
            raise InvariantViolation(f"amount due {amount_due} != credit {self.unapplied_credit} - {outstanding}")
        if self.unapplied_credit < 0 or (self.unapplied_credit > 0 and outstanding > 0):
            raise InvariantViolation("credit must be applied to open invoices before it is kept")

    # -- the state as snapshots of class version 1 held it -------------------------------
    @classmethod
    def from_plain(cls, state: Mapping[str, Any]) -> InvoiceBook:
        def entries(plain: Mapping[str, Any]) -> dict[str, Entry]:
            return {k: Entry(e["date"], e["kind"], e["product"], e["description"], e["amount"],
                             e["application_id"], e["app_key"], e["unit"], e["quantity"]) for k, e in plain.items()}

        return cls(
            unbilled=entries(state["unbilled"]),
            drafts={i: Draft(d["kind"], entries(d["entries"]), d["subtotal"], d["total"], d["from_unbilled"])
                    for i, d in state["drafts"].items()},
            open_invoices={i: OpenInvoice(o["number"], o["issued_at"], o["total"], o["outstanding"])
                           for i, o in state["open_invoices"].items()},
            topups={i: Topup(t["number"], t["total"], t["subtotal"]) for i, t in state["topups"].items()},
            unapplied_credit=state["unapplied_credit"],
            invoice_count=state["invoice_count"],
        )


def allocate(amount: Decimal, open_invoices: Mapping[str, OpenInvoice],
             first: str | None = None) -> tuple[list[dict[str, Any]], Decimal]:
    """Applies ``amount`` to the named invoice, then to the oldest open ones.
    Returns the allocations (with each invoice's outstanding and paid after) and what is left."""
    if amount < 0:
        raise InvariantViolation(f"only money in is allocated: {amount}")
    order = sorted(open_invoices, key=lambda i: (open_invoices[i].issued_at, open_invoices[i].number))
    if first is not None and first in open_invoices:
        order.remove(first)
        order.insert(0, first)
    allocations: list[dict[str, Any]] = []
    left = amount
    for invoice_id in order:
        if left <= 0:
            break
        invoice = open_invoices[invoice_id]
        applied = min(left, invoice.outstanding)
        if applied <= 0:
            continue
        left -= applied
        after = invoice.outstanding - applied
        allocations.append({"invoice_id": invoice_id, "amount": applied, "outstanding_after": after,
                            "paid_after": invoice.total - after})
    return allocations, left
