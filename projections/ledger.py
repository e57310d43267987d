"""The ledger read model: account figures, balance details and open holds.

Handlers only read events and change rows of the open batch; the batch writes them
with the tracking record in one transaction. Figures move by the same ``Figures``
rules the Account aggregate uses, so a rebuild from event 1 lands on the same numbers.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from ledger_core.account import ACCOUNT_EVENT_TYPES, Account, transaction_no
from ledger_core.figures import BillingMode, Figures, InvoiceMode
from projections.rows import AccountRow, EventRow, HoldRow, MovementType, TransactionRow
from projections.views import Batch, LedgerViewQueries

CHARGE_ITEMS = {"subscription": "Subscription", "addon": "Add-on", "service": "Service", "hardware": "Hardware"}


class LedgerProjection(Projection[Any]):
    name = "ledger_read_model"
    # Only Account events change this read model; others are tracked without being decoded.
    topics = tuple(get_topic(getattr(Account, event_type)) for event_type in ACCOUNT_EVENT_TYPES)

    def __init__(self, view: LedgerViewQueries) -> None:
        super().__init__(view)

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
                figures=figures, opened_at=event.timestamp, updated_at=event.timestamp,
                version=event.originator_version, position=tracking.notification_id,
            )
        )
        self._index(self._batch, event, tracking, event.account_id)
        self._batch.track(tracking)

    @process_event.register
    def _recharged(self, event: Account.Recharged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_money_in(event.amount))
        self._book(event, tracking, row, MovementType.RECHARGE, "Recharge", event.amount,
                   reference=event.reference, description=event.method)

    @process_event.register
    def _usage(self, event: Account.UsageRecorded, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_usage(event.amount))
        self._book(event, tracking, row, MovementType.EXPENSE, event.product, -event.amount,
                   occurred_at=event.occurred_at, product=event.product, application_id=event.application_id,
                   app_key=event.app_key, quantity=event.quantity, unit=event.unit, unit_price=event.unit_price,
                   reference=event.idempotency_key)

    @process_event.register
    def _charge(self, event: Account.ChargePosted, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_charge(event.amount))
        self._book(event, tracking, row, MovementType.EXPENSE, CHARGE_ITEMS[event.kind], -event.amount,
                   reference=event.idempotency_key, description=event.description)

    @process_event.register
    def _reserved(self, event: Account.CreditsReserved, tracking: Tracking) -> None:
        account_id = self._move(event, tracking, lambda f: f.after_reserve(event.amount)).account_id
        self._batch.open_hold(HoldRow(account_id, event.reservation_id, event.amount, event.timestamp,
                                      event.expires_at))

    @process_event.register
    def _settled(self, event: Account.ReservationSettled, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f.after_settle(event.hold_amount, event.amount))
        self._batch.close_hold(row.account_id, event.reservation_id)
        self._book(event, tracking, row, MovementType.EXPENSE, event.product, -event.amount,
                   occurred_at=event.occurred_at, product=event.product, application_id=event.application_id,
                   app_key=event.app_key, quantity=event.quantity, unit=event.unit,
                   reference=event.reservation_id)

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
    def _usage_policy(self, event: Account.UsagePolicyChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.usage_policy = event.usage_policy

    @process_event.register
    def _billing_details(self, event: Account.BillingDetailsChanged, tracking: Tracking) -> None:
        row = self._move(event, tracking, lambda f: f)
        row.payer = event.payer
        row.tax_rate = event.tax_rate

    # -- helpers -----------------------------------------------------------------
    def _move(self, event: Any, tracking: Tracking, change: Any) -> AccountRow:
        """Applies a figures change to the event's account row and tracks the event."""
        batch = self._batch
        row = batch.account(event.originator_id)
        row.figures = change(row.figures).checked()
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
        self._batch.add_transaction(
            TransactionRow(
                position=tracking.notification_id,
                account_id=row.account_id,
                transaction_no=transaction_no(row.account_id, event.originator_version),
                booked_at=event.timestamp,
                occurred_at=fields.pop("occurred_at", None) or event.timestamp,
                type=kind,
                item=item,
                amount=signed_amount,
                balance_after=row.figures.current_balance,
                **fields,
            )
        )
