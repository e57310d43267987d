"""The ledger read model: account figures, balance details and open holds.

Handlers only read events and change rows of the open batch; the batch writes them
with the tracking record in one transaction. Figures move by the same ``Figures``
rules the Account aggregate uses, so a rebuild from event 1 lands on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from ledger_core.account import ACCOUNT_EVENT_TYPES, Account, account_uuid, transaction_no
from ledger_core.cycles import cycle_start, local_date, local_days, next_boundary
from ledger_core.errors import InvariantViolation
from ledger_core.figures import ZERO, BillingMode, Figures, InvoiceMode
from ledger_core.invoicing import payment_status
from ledger_core.order import ORDER_EVENT_TYPES, Order, is_order_payment, purchaser_email
from ledger_core.subscription import SUBSCRIPTION_EVENT_TYPES, Subscription
from ledger_core.usage import FIELD_NAMES as LINE_FIELDS
from persistence.receipt_outbox import NewReceipt
from projections import bills, orders, subscriptions
from projections.batches import Batch
from projections.rows import (
    AccountRow,
    EventRow,
    HoldRow,
    InvoiceLineRow,
    InvoiceRow,
    MovementType,
    PaymentRow,
    TransactionRow,
)
from projections.views import LedgerViewQueries

RECEIPTED = (MovementType.RECHARGE, MovementType.PAYMENT)  # movements that get a receipt e-mailed
CHARGE_ITEMS = {"subscription": "Subscription", "addon": "Add-on", "service": "Service", "hardware": "Hardware"}
ACCOUNT_TOPICS = tuple(get_topic(getattr(Account, event_type)) for event_type in ACCOUNT_EVENT_TYPES)


class LedgerProjection(Projection[Any]):
    name = "ledger_read_model"
    # Only Account and Subscription events change this read model; others are tracked without being decoded.
    account_topics = frozenset(ACCOUNT_TOPICS)
    topics = (*ACCOUNT_TOPICS,
              *(get_topic(getattr(Subscription, event_type)) for event_type in SUBSCRIPTION_EVENT_TYPES),
              *(get_topic(getattr(Order, event_type)) for event_type in ORDER_EVENT_TYPES))

    def __init__(self, view: LedgerViewQueries) -> None:
        super().__init__(view)
        self._cycles: dict[tuple[int, str], tuple[Any, Any]] = {}  # (anchor day, zone) -> the last cycle seen

    @property
    def _batch(self) -> Batch:
        batch = self.view.batch
        if batch is None:
            raise RuntimeError("events are applied only inside view.batch_at()")
        return batch

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Events that do not touch the read model (client keys) still move the position."""
        self._batch.track(tracking)

    @process_event.register
    def _opened(self, event: Account.AccountOpened, tracking: Tracking) -> None:
        figures = Figures(
            billing_mode=BillingMode(event.billing_mode),
            invoice_mode=InvoiceMode(event.invoice_mode),
            credit_limit=event.credit_limit,
        )
        self._batch.put_account(
            AccountRow(
                aggregate_id=str(event.originator_id), account_id=event.account_id, currency=event.currency, usage_policy=event.usage_policy,
                cycle_anchor_day=event.cycle_anchor_day, tax_rate=event.tax_rate, payer=event.payer,
                figures=figures, opened_at=getattr(event, "opened_at", None) or event.timestamp, updated_at=event.timestamp,
                version=event.originator_version, position=tracking.notification_id,
                billing_settings=_billing_settings(event, cycle_running=True),
            )
        )
        self._index(self._batch, event, tracking, event.account_id)
        self._batch.track(tracking)

    @process_event.register
    def _recharged(self, event: Account.Recharged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_money_in(event.amount))
        self._book(event, tracking, row, MovementType.RECHARGE, "Recharge", event.amount,
                   reference=event.reference, description=event.method,
                   receipt_to=getattr(event, "purchaser_email", None))
        if event.allocations:  # in a billed mode a recharge pays open invoices: it is a payment received too
            self._batch.invoicing.payments.append(PaymentRow(
                tracking.notification_id, transaction_no(row.account_id, event.originator_version), row.account_id,
                event.timestamp, event.amount, event.method or "recharge", event.reference, event.allocations))
        self._allocate(event, event.allocations or [])

    @process_event.register
    def _usage(self, event: Account.UsageRecorded, tracking: Tracking) -> None:
        overdraft_before = self._batch.account(event.originator_id).figures.overdraft
        row = self._move(event, tracking, lambda f: f.after_usage(event.amount))
        self._bill(event, tracking, row, overdraft_before)
        self._book(event, tracking, row, MovementType.EXPENSE, event.product, -event.amount,
                   occurred_at=event.occurred_at, unit_price=event.unit_price, reference=event.idempotency_key,
                   **_shown(event))

    @process_event.register
    def _charge(self, event: Account.ChargePosted, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_charge(event.amount))
        self._book(event, tracking, row, MovementType.EXPENSE, CHARGE_ITEMS[event.kind], -event.amount,
                   reference=event.idempotency_key, description=event.description)

    @process_event.register
    def _credit(self, event: Account.CreditPosted, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_credit(event.amount))
        self._book(event, tracking, row, MovementType.SYSTEM, CHARGE_ITEMS[event.kind], event.amount,
                   reference=event.idempotency_key, description=event.description)

    @process_event.register
    def _reserved(self, event: Account.CreditsReserved, tracking: Tracking) -> None:
        account_id = self._move(event, tracking, lambda f: f.after_reserve(event.amount)).account_id
        self._batch.open_hold(HoldRow(account_id, event.reservation_id, event.amount, event.timestamp,
                                      event.expires_at))

    @process_event.register
    def _settled(self, event: Account.ReservationSettled, tracking: Tracking) -> None:
        overdraft_before = self._batch.account(event.originator_id).figures.overdraft
        row = self._move(event, tracking, lambda f: f.after_settle(event.hold_amount, event.amount))
        self._bill(event, tracking, row, overdraft_before)
        self._batch.close_hold(row.account_id, event.reservation_id)
        self._book(event, tracking, row, MovementType.EXPENSE, event.product, -event.amount,
                   occurred_at=event.occurred_at, reference=event.reservation_id, **_shown(event))

    @process_event.register
    def _released(self, event: Account.ReservationReleased, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_release(event.hold_amount))
        self._batch.close_hold(row.account_id, event.reservation_id)

    @process_event.register
    def _credit_limit(self, event: Account.CreditLimitChanged, tracking: Tracking) -> None:
        self._move(event, tracking, lambda f: f.with_credit_limit(event.credit_limit))

    @process_event.register
    def _invoice_mode(self, event: Account.InvoiceModeChanged, tracking: Tracking) -> None:
        self._move(event, tracking, lambda f: f.with_invoice_mode(InvoiceMode(event.invoice_mode)))

    @process_event.register
    def _billing_mode(self, event: Account.BillingModeChanged, tracking: Tracking) -> None:
        """Pending bills follow the new mode's rule from here: a postpaid account's wait for
        the invoice that takes their usage (a prepaid one moves to postpaid only without
        overdraft, so with no pending bill); a prepaid account's clear once its funds cover
        everything, which may be at once."""
        row = self._move(event, tracking, lambda f: f.with_billing_mode(BillingMode(event.billing_mode)))
        if row.figures.billing_mode is BillingMode.PREPAID and row.figures.overdraft == 0:
            self._clear_pending_bills(row.account_id)

    @process_event.register
    def _allowances_granted(self, event: Account.AllowancesGranted, tracking: Tracking) -> None:
        self._move(event, tracking, lambda f: f)  # no money: the row's version moves on

    @process_event.register
    def _attached_to_test_clock(self, event: Account.TestClockAttached, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.billing_settings = {**row.billing_settings, "test_clock_id": event.test_clock_id}

    @process_event.register
    def _subscription(self, event: Subscription.Event, tracking: Tracking) -> None:
        """A subscription's row (projections/subscriptions.py); its events stay out of the
        account's event index, which counts the account's own versions."""
        changes = self._batch.subscriptions
        changes.put(subscriptions.applied(changes.get(str(event.originator_id)), event, tracking.notification_id))
        self._batch.track(tracking)

    @process_event.register
    def _order(self, event: Order.Event, tracking: Tracking) -> None:
        changes = self._batch.orders
        row = orders.applied(changes.get(str(event.originator_id)), event, tracking.notification_id)
        changes.put(row)
        if type(event).__name__ == "Paid":  # a purchase: its receipt to the buyer and the billing contacts
            account = self._batch.peek_account(account_uuid(row.account_id))  # read only: its row is not written
            if account is None:
                raise InvariantViolation(f"order {row.order_id} was paid on an account the batch lacks")
            buyer = purchaser_email(row.paid_by, row.ordered_by)
            recipients = list(dict.fromkeys([*([buyer] if buyer else []), *(account.payer.get("emails") or [])]))
            if recipients and row.amount > 0:
                self._batch.receipts.append(NewReceipt(receipt_no=row.order_id, account_id=row.account_id,
                                                       recipients=recipients, currency=row.currency,
                                                       amount=row.amount))
        self._batch.track(tracking)

    @process_event.register
    def _usage_policy(self, event: Account.UsagePolicyChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.usage_policy = event.usage_policy

    @process_event.register
    def _billing_details(self, event: Account.BillingDetailsChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.payer = event.payer
        row.tax_rate = event.tax_rate

    # -- invoices ----------------------------------------------------------------
    @process_event.register
    def _drafted(self, event: Account.InvoiceDrafted, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        changes = self._batch.invoicing
        first_day, last_day = local_days(event.period_start, event.period_end, row.time_zone)
        changes.invoices.append(InvoiceRow(
            invoice_id=event.invoice_id, account_id=row.account_id, kind=event.kind, status="draft",
            currency=row.currency, period_start=event.period_start, period_end=event.period_end,
            created_at=event.timestamp, subtotal=event.subtotal, tax=event.tax, total=event.total,
            description=event.description, terms=event.terms, notes=event.notes,
            created_position=tracking.notification_id, updated_at=event.timestamp,
            period_first_day=first_day.isoformat(), period_last_day=last_day.isoformat(),
        ))
        changes.lines.extend(
            InvoiceLineRow(event.invoice_id, n, line["kind"], line["product"], line["description"],
                           line["application_id"], line["app_key"], line["quantity"], line["unit"], line["amount"],
                           line["date_from"], line["date_to"], line["late"])
            for n, line in enumerate(event.lines, start=1)
        )
        if row.figures.billing_mode is BillingMode.POSTPAID:
            pending = self._batch.bills.pending(row.account_id)
            for bill in bills.bills_invoiced(pending, event.lines, row.time_zone):
                bill.invoice_id = event.invoice_id
                self._batch.bills.changed(bill)

    @process_event.register
    def _approved(self, event: Account.InvoiceApproved, tracking: Tracking) -> None:
        if event.kind == "topup":  # a top-up invoice moves money only when it is paid
            self._move(event, tracking, lambda f: f)
        else:
            row = self._move(event, tracking, lambda f: f.after_invoice(event.from_unbilled, event.total))
            if event.tax:
                self._book(event, tracking, row, MovementType.TAX, f"Tax {event.number}", -event.tax,
                           reference=event.number, description=event.invoice_id)
        d = self.view.sql.d
        owed = max(event.total, ZERO)  # a credit note (total < 0) owes nothing: it is paid at once
        self._batch.invoicing.updates.append(
            ("approve", (event.number, d.time_in(event.issued_at), event.due_on, d.amount_in(owed), d.amount_in(ZERO),
                         payment_status(owed, owed).value, d.time_in(event.timestamp), event.invoice_id)))
        self._allocate(event, event.allocations)

    @process_event.register
    def _voided(self, event: Account.InvoiceVoided, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        for bill in self._batch.bills.pending(row.account_id):
            if bill.invoice_id == event.invoice_id:
                bill.invoice_id = None
                self._batch.bills.changed(bill)
        self._batch.invoicing.updates.append(("void", (self.view.sql.d.time_in(event.timestamp), event.invoice_id)))

    @process_event.register
    def _cycle_closed(self, event: Account.CycleClosed, tracking: Tracking) -> None:
        self._move(event, tracking, lambda f: f)

    @process_event.register
    def _paid(self, event: Account.PaymentRecorded, tracking: Tracking) -> None:
        if event.topup:  # the recharge that follows is the money movement
            row = self._move(event, tracking, lambda f: f)
        else:
            row = self._move(event, tracking, lambda f: f.after_payment(event.amount))
            self._book(event, tracking, row, MovementType.PAYMENT, "Payment", event.amount,
                       occurred_at=event.received_at, reference=event.reference, description=event.method)
        self._batch.invoicing.payments.append(PaymentRow(
            tracking.notification_id, event.payment_id, row.account_id, event.received_at, event.amount,
            event.method, event.reference, event.allocations))
        self._allocate(event, event.allocations)

    @process_event.register
    def _refunded(self, event: Account.OverpaymentRefunded, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_refund(event.amount))
        self._book(event, tracking, row, MovementType.SYSTEM, "Refund of overpayment", -event.amount,
                   reference=event.reference)

    @process_event.register
    def _recurring(self, event: Account.RecurringSettingsChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.cycle_anchor_day = event.cycle_anchor_day
        row.billing_settings = {**row.billing_settings, **_billing_settings(event, cycle_running=event.cycle_running)}

    def _allocate(self, event: Any, allocations: list[dict[str, Any]]) -> None:
        d = self.view.sql.d
        row = self._batch.account(event.originator_id)
        paid = {a["invoice_id"] for a in allocations if a["outstanding_after"] <= 0}
        if paid and row.figures.billing_mode is BillingMode.POSTPAID:
            for bill in self._batch.bills.pending(row.account_id):
                if bill.invoice_id in paid:
                    bill.status = bills.CLEARED
                    self._batch.bills.changed(bill)
        for a in allocations:
            self._batch.invoicing.updates.append(
                ("allocate", (d.amount_in(a["outstanding_after"]), d.amount_in(a["paid_after"]),
                              payment_status(a["paid_after"] + a["outstanding_after"], a["outstanding_after"]).value,
                              d.time_in(event.timestamp), a["invoice_id"])))

    @process_event.register
    def _low_balance_threshold(self, event: Account.LowBalanceThresholdChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.low_balance_threshold = event.low_balance_threshold

    @process_event.register
    def _low_balance_reached(self, event: Account.LowBalanceReached, tracking: Tracking) -> None:
        """A signal for ledger.events: no figure moves, but it is indexed like every account event."""
        self._move(event, tracking, lambda f: f)

    def prefetch_bills(self, events: list[Any]) -> None:
        """Reads the bills the batch's usage will add to, in one query (before the events
        are applied; a bill a settings change in the batch moves is read on its own)."""
        batch = self._batch
        batch.bills.prefetch(self.bill_numbers(batch.peek_account, events, batch.bills.numbers))

    def bill_numbers(self, row_of: Callable[[Any], AccountRow | None], events: Sequence[Any],
                     numbers: dict[tuple[Any, ...], str]) -> set[str]:
        """The bills ``events`` add to, given their accounts' rows (``row_of(aggregate id)``);
        also before any batch is open (Projector.prepare_along). ``numbers``: the memo of
        the BillChanges the batch will use (its ``numbers``), where applying them finds them."""
        found = set()
        for event in events:
            if isinstance(event, (Account.UsageRecorded, Account.ReservationSettled)):
                row = row_of(event.originator_id)
                if row is not None:
                    found.add(self._numbered(row, event, numbers)[0])
        return found

    def _bill_number(self, row: AccountRow, event: Any) -> tuple[str, Any, Any]:
        return self._numbered(row, event, self._batch.bills.numbers)

    def _numbered(self, row: AccountRow, event: Any, numbers: dict[tuple[Any, ...], str]) -> tuple[str, Any, Any]:
        """The usage's bill, cycle start and cycle end; worked out once per batch (prefetch
        and apply both ask), keyed in ``numbers`` by everything it depends on."""
        start, end = self._cycle_of(event.occurred_at, row.cycle_anchor_day, row.time_zone)
        key = (row.account_id, event.product, start)
        number = numbers.get(key)
        if number is None:
            number = numbers[key] = bills.bill_number(row.account_id, event.product, start)
        return number, start, end

    def _cycle_of(self, moment: Any, anchor_day: int, zone: str) -> tuple[Any, Any]:
        """The cycle a moment falls in. Usage arrives in time order, mostly in the cycle the
        one before it was in: the last cycle of each anchor day and zone is kept."""
        known = self._cycles.get((anchor_day, zone))
        if known is not None and known[0] <= moment < known[1]:
            return known
        start = cycle_start(moment, anchor_day, zone)
        known = self._cycles[(anchor_day, zone)] = (start, next_boundary(start, anchor_day, zone))
        return known

    def _bill(self, event: Any, tracking: Tracking, row: AccountRow, overdraft_before: Any) -> None:
        """Adds a usage to its bill: the account's, product's and cycle's."""
        number, start, end = self._bill_number(row, event)
        bill = self._batch.bills.get(number) or bills.BillRow(
            bill_no=number, account_id=row.account_id, currency=row.currency, product=event.product,
            cycle_start=start, cycle_end=end,
            created_position=tracking.notification_id, updated_at=event.timestamp,
            cycle_first_day=local_date(start, row.time_zone).isoformat())
        bill.add(event.amount, event.quantity, event.unit, bills.UsageSource.of(event))
        bill.overdraft += min(event.amount, max(row.figures.overdraft - overdraft_before, 0))
        bill.updated_at = event.timestamp
        if row.figures.billing_mode is BillingMode.PREPAID:
            bill.status = bills.CLEARED if row.figures.overdraft == 0 else bills.PENDING
        else:
            bill.status, bill.invoice_id = bills.PENDING, None  # until an invoice takes this usage and is paid
        self._batch.bills.put(bill)

    # -- helpers -----------------------------------------------------------------
    def _clear_pending_bills(self, account_id: str) -> None:
        for bill in self._batch.bills.pending(account_id):
            bill.status = bills.CLEARED
            self._batch.bills.changed(bill)

    def _move(self, event: Any, tracking: Tracking, change: Any) -> AccountRow:
        """Applies a figures change to the event's account row and tracks the event.
        A prepaid account whose funds cover everything again clears its pending bills."""
        batch = self._batch
        row = batch.account(event.originator_id)
        overdraft_before = row.figures.overdraft
        row.figures = change(row.figures).checked()
        if overdraft_before > 0 and row.figures.overdraft == 0 and row.figures.billing_mode is BillingMode.PREPAID:
            self._clear_pending_bills(row.account_id)
        row.updated_at = event.timestamp
        row.version = event.originator_version
        row.position = tracking.notification_id
        self._index(batch, event, tracking, row.account_id)
        batch.track(tracking)
        return row

    @staticmethod
    def _index(batch: Batch, event: Any, tracking: Tracking, account_id: str) -> None:
        """Where and when each account event happened: as-of questions start here."""
        batch.add_event(EventRow(tracking.notification_id, account_id, event.originator_version,
                                       type(event).__name__, event.timestamp))

    def _book(self, event: Any, tracking: Tracking, row: AccountRow, kind: MovementType, item: str,
              signed_amount: Any, **fields: Any) -> None:
        number = transaction_no(row.account_id, event.originator_version)
        buyer = fields.pop("receipt_to", None)
        recipients = list(dict.fromkeys([*([buyer] if buyer else []), *(row.payer.get("emails") or [])]))
        order_money = kind is MovementType.RECHARGE and is_order_payment(fields.get("description", ""))
        if kind in RECEIPTED and recipients and not order_money:  # money received: a receipt to the billing contacts
            self._batch.receipts.append(NewReceipt(receipt_no=number, account_id=row.account_id,
                                                   recipients=list(recipients), currency=row.currency,
                                                   amount=signed_amount))
        self._batch.add_transaction(
            TransactionRow(
                position=tracking.notification_id,
                account_id=row.account_id,
                transaction_no=number,
                booked_at=event.timestamp,
                occurred_at=fields.pop("occurred_at", None) or event.timestamp,
                type=kind,
                item=item,
                amount=signed_amount,
                balance_after=row.figures.current_balance,
                **fields,
            )
        )


def _shown(event: Any) -> dict[str, Any]:
    """The event's usage line fields that balance details show: those TransactionRow declares
    (fields added after an event was stored read None)."""
    state = vars(event)
    return {name: state.get(name) for name in _SHOWN_LINE_FIELDS}


_SHOWN_LINE_FIELDS = tuple(f.name for f in fields(TransactionRow) if f.name in LINE_FIELDS)


def _billing_settings(event: Any, *, cycle_running: bool) -> dict[str, Any]:
    """The account's invoicing settings the read model shows, from AccountOpened or a change."""
    return {"time_zone": event.time_zone, "payment_terms_days": event.payment_terms_days,
            "drafts_need_approval": event.drafts_need_approval, "cycle_running": cycle_running}
