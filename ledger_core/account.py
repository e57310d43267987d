"""The Account aggregate: one customer's money, in one currency.

Public methods validate and decide; the private ``@event`` methods only change state,
because the library runs their bodies again every time the account is rebuilt from its
events. No clock, no I/O in them: times arrive as arguments.

State: settings and figures in plain attributes (``figures`` rebuilds the value object
from them on demand), open holds as ``Hold`` values (ledger_core/holds.py) and the
invoicing state in one typed ``InvoiceBook`` (ledger_core/invoice_book.py), which also
makes the decisions that need nothing else. Snapshots of class version 1 held the last
two as plain dicts: ``upcast_v1_v2`` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core import invoicing as inv
from ledger_core.account_settings import (
    parse_anchor_day,
    parse_choice,
    parse_credit_limit,
    parse_low_balance_threshold,
    parse_tax_rate,
    parse_terms,
)
from ledger_core.allowances import Grants, drawn, regranted, used_up
from ledger_core.cycles import cycle_start, local_date, local_midnight, next_boundary, parse_time_zone, periods_ended
from ledger_core.errors import (
    AmountOutOfRange,
    BillingModeChangeBlocked,
    InsufficientCredits,
    InvalidInput,
    InvariantViolation,
    InvoiceModeChangeBlocked,
    InvoiceNotDraft,
    InvoiceNotFound,
    InvoiceNotOpen,
    InvoicingNotAvailable,
    NothingToInvoice,
    RefundExceedsCredit,
    ReservationExpired,
    ReservationNotFound,
    SettleExceedsHold,
    TooManyOpenReservations,
)
from ledger_core.figures import BILLING_MODES, INVOICE_MODES, ZERO, BillingMode, Figures, InvoiceMode, UsagePolicy
from ledger_core.holds import MAX_OPEN_HOLDS, Hold, expired_holds
from ledger_core.invoice_book import MAX_ENTRIES_PER_INVOICE, Draft, DraftPlan, Entry, InvoiceBook
from ledger_core.money import MAX_AMOUNT, Money, parse_currency, price, tax_on
from ledger_core.text import refuse_card_numbers
from ledger_core.usage import UsageLine, carries_usage_line

# Fixed forever: account UUIDs are derived from the client's account id with it.
LEDGER_NAMESPACE = UUID("4f1f6a52-3c0e-5b7e-9a57-2d3c6e1b0a11")
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_CYCLES_PER_CLOSE = 36  # an account stopped for years catches up in a few calls, not one huge write

# Hands out the next gapless invoice number for an issue date; the command layer owns the counter.
NumberFor = Callable[[date], str]


def account_uuid(account_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"account/{account_id}")


def transaction_no(account_id: str, version: int) -> str:
    """The human reference of a money movement: stable, unique, derived from the event."""
    return f"{account_id}:{version:08d}"


def parse_account_id(account_id: object) -> str:
    if not isinstance(account_id, str) or not ACCOUNT_ID_PATTERN.fullmatch(account_id):
        raise InvalidInput(
            "account_id must be 1-64 characters of letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit",
            field="account_id",
        )
    return account_id


class Account(Aggregate):
    class_version = 3  # of snapshots: 1 kept holds and the invoicing state as plain dicts; 2 had no allowances

    # Usable credits below which a LowBalanceReached is recorded; None = off. A class
    # default, so accounts (and snapshots) from before the setting existed read None.
    low_balance_threshold = None
    # The test clock whose time is this account's "now" (ledger_core/test_clocks.py); None:
    # real time, for good. A class default for the same reason as the threshold's.
    test_clock_id = None

    @staticmethod
    def create_id(account_id: str) -> UUID:
        return account_uuid(account_id)

    # -- opening ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        *,
        account_id: str,
        currency: str,
        billing_mode: str,
        invoice_mode: str,
        credit_limit: object = ZERO,
        usage_policy: str = UsagePolicy.ALLOW_OVERDRAFT,
        cycle_anchor_day: int = 1,
        tax_rate: object = ZERO,
        payer: dict[str, Any] | None = None,
        time_zone: str = "UTC",
        payment_terms_days: int = inv.DEFAULT_PAYMENT_TERMS_DAYS,
        drafts_need_approval: bool | None = None,
        opened_at: datetime | None = None,
        low_balance_threshold: object = None,
        test_clock_id: str | None = None,
    ) -> Account:
        threshold = parse_low_balance_threshold(low_balance_threshold)
        rate = parse_tax_rate(tax_rate)
        billing = parse_choice(BillingMode, billing_mode, "billing_mode")
        account = cls(
            account_id=parse_account_id(account_id),
            currency=parse_currency(currency),
            billing_mode=billing.value,
            invoice_mode=parse_choice(InvoiceMode, invoice_mode, "invoice_mode").value,
            usage_policy=parse_choice(UsagePolicy, usage_policy, "usage_policy").value,
            credit_limit=parse_credit_limit(credit_limit),
            cycle_anchor_day=parse_anchor_day(cycle_anchor_day),
            tax_rate=rate,
            payer=_checked_payer(dict(payer or {})),
            time_zone=parse_time_zone(time_zone),
            payment_terms_days=parse_terms(payment_terms_days),
            # Recurring postpaid invoices wait for approval unless told otherwise; prepaid
            # invoices only record what the funds already paid.
            drafts_need_approval=billing is BillingMode.POSTPAID if drafts_need_approval is None
            else bool(drafts_need_approval),
            opened_at=opened_at,
        )
        if threshold is not None:  # its own event: AccountOpened keeps the shape stored events have
            account.change_low_balance_threshold(threshold)
        if test_clock_id is not None:  # only when opened: an account's time never changes kind
            account._attached_to_test_clock(test_clock_id=test_clock_id)
        return account

    @event("TestClockAttached")
    def _attached_to_test_clock(self, test_clock_id: str) -> None:
        self.test_clock_id = test_clock_id

    @event("AccountOpened")
    def __init__(
        self,
        account_id: str,
        currency: str,
        billing_mode: str,
        invoice_mode: str,
        usage_policy: str,
        credit_limit: Decimal,
        cycle_anchor_day: int,
        tax_rate: Decimal,
        payer: dict[str, Any],
        time_zone: str = "UTC",
        payment_terms_days: int = inv.DEFAULT_PAYMENT_TERMS_DAYS,
        drafts_need_approval: bool = False,
        opened_at: datetime | None = None,
    ) -> None:
        self.account_id = account_id
        self.currency = currency
        self.billing_mode = billing_mode
        self.invoice_mode = invoice_mode
        self.usage_policy = usage_policy
        self.credit_limit = credit_limit
        self.cycle_anchor_day = cycle_anchor_day
        self.tax_rate = tax_rate
        self.payer = payer
        self.expecting_invoice = ZERO
        self.amount_due = ZERO
        self.reserved = ZERO
        self.holds: dict[str, Hold] = {}
        # -- invoicing state (see ledger_core.invoicing) --
        self.time_zone = time_zone
        self.payment_terms_days = payment_terms_days
        self.drafts_need_approval = drafts_need_approval
        self.cycle_running = True
        # The start of the first cycle not yet closed: the one the account opened in.
        self.closed_through = cycle_start(opened_at or self.created_on, cycle_anchor_day, time_zone)
        self.book = InvoiceBook()
        self.allowances: Grants = {}  # what its subscriptions include (ledger_core/allowances.py)

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot of class version 2: from before allowances."""
        state.setdefault("allowances", {})

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot of class version 1: holds and the invoicing state were plain dicts."""
        state["holds"] = {rid: Hold(h["amount"], h["expires_at"]) for rid, h in state["holds"].items()}
        plain = {name: state.pop(name) for name in ("unbilled", "drafts", "open_invoices", "topups",
                                                    "unapplied_credit", "invoice_count")}
        state["book"] = InvoiceBook.from_plain(plain)

    # -- figures ---------------------------------------------------------------
    @property
    def figures(self) -> Figures:
        return Figures(  # a write reads them several times: the modes are looked up
            billing_mode=BILLING_MODES[self.billing_mode],
            invoice_mode=INVOICE_MODES[self.invoice_mode],
            credit_limit=self.credit_limit,
            expecting_invoice=self.expecting_invoice,
            amount_due=self.amount_due,
            reserved=self.reserved,
        )

    def _set_figures(self, figures: Figures) -> None:
        figures.checked()
        self.expecting_invoice = figures.expecting_invoice
        self.amount_due = figures.amount_due
        self.reserved = figures.reserved
        self.credit_limit = figures.credit_limit
        self.invoice_mode = figures.invoice_mode.value
        self.billing_mode = figures.billing_mode.value

    @property
    def next_transaction_no(self) -> str:
        return transaction_no(self.account_id, self.version + 1)

    def _own(self, money: Money) -> Decimal:
        return money.require_currency(self.currency).amount

    # -- money in --------------------------------------------------------------
    def recharge(self, money: Money, *, reference: str, method: str, purchaser_email: str | None = None) -> str:
        """Money in; ``purchaser_email`` gets its receipt too (a recharge of the balance bought by a person)."""
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a recharge amount must be positive", field="amount")
        self._require_within_bounds(self.figures.after_money_in(amount))
        number = self.next_transaction_no
        allocations = self.book.allocations(amount) if self._invoicing else []
        self._recharged(amount=amount, reference=reference, method=method, allocations=allocations,
                        purchaser_email=purchaser_email)
        return number

    @event("Recharged")
    def _recharged(self, amount: Decimal, reference: str, method: str,
                   allocations: list[dict[str, Any]] | None = None, purchaser_email: str | None = None) -> None:
        self._set_figures(self.figures.after_money_in(amount))
        if self._invoicing:
            self.book.credit(amount, allocations or [])

    # -- money out -------------------------------------------------------------
    def record_usage(self, cost: Money, line: UsageLine, *, unit_price: Decimal | None, occurred_at: datetime,
                     idempotency_key: str) -> str:
        """Books usage; priced per unit, it first takes what the account's allowances named
        like its product still include, and is charged for the rest only."""
        amount, taken = self._usage_cost(cost, line, unit_price, occurred_at)
        if self.usage_policy == UsagePolicy.BLOCK:
            self._require_usable(amount)
        self._require_within_bounds(self.figures.after_usage(amount))
        number = self.next_transaction_no
        self._usage_recorded(amount=amount, unit_price=unit_price, occurred_at=occurred_at,
                             idempotency_key=idempotency_key, **line.stored(),
                             allowance_used=[[s, free] for s, free in taken] or None)
        return number

    @event("UsageRecorded")
    @carries_usage_line
    def _usage_recorded(self, amount: Decimal, unit_price: Decimal | None, occurred_at: datetime,
                        idempotency_key: str, allowance_used: list[list[Any]] | None = None, **line: Any) -> None:
        self._set_figures(self.figures.after_usage(amount))
        self._add_usage(occurred_at, amount, UsageLine.restored(line))
        if allowance_used:
            used_up(self.allowances, line["product"], [(s, Decimal(free)) for s, free in allowance_used])

    def usage_cost(self, cost: Money, line: UsageLine, unit_price: Decimal | None, occurred_at: datetime) -> Decimal:
        """What ``record_usage`` of this would charge, the allowances' free units taken off."""
        return self._usage_cost(cost, line, unit_price, occurred_at)[0]

    def _usage_cost(self, cost: Money, line: UsageLine, unit_price: Decimal | None,
                    occurred_at: datetime) -> tuple[Decimal, list[tuple[str, Decimal]]]:
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a usage cost must not be negative", field="amount")
        if unit_price is None or line.quantity is None or line.product not in self.allowances:
            return amount, []
        taken = drawn(self.allowances, line.product, line.quantity, occurred_at)
        if not taken:
            return amount, []
        # the one rounding, on the units charged
        return price(line.quantity - sum((free for _, free in taken), ZERO), unit_price), taken

    def grant_allowances(self, subscription_id: str, amounts: dict[str, Decimal], until: datetime) -> None:
        """A subscription's allowances for its period ending ``until`` (none: it ended)."""
        grants = regranted(self.allowances, subscription_id, amounts, until)
        if grants != self.allowances:
            self._allowances_granted(subscription_id=subscription_id, amounts=dict(amounts), until=until)

    @event("AllowancesGranted")
    def _allowances_granted(self, subscription_id: str, amounts: dict[str, Decimal], until: datetime) -> None:
        self.allowances = regranted(self.allowances, subscription_id, amounts, until)

    def post_charge(self, cost: Money, *, kind: str, description: str, idempotency_key: str, now: datetime,
                    number_for: NumberFor, wording: inv.Wording = inv.NO_WORDING) -> str:
        """Books a charge; itemized mode invoices it at once, on an invoice of its own."""
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a charge must not be negative", field="amount")
        self._require_within_bounds(self.figures.after_charge(amount))
        number = self.next_transaction_no
        self._charge_posted(amount=amount, kind=kind, description=description, idempotency_key=idempotency_key,
                            booked_at=now)
        self._itemized_at_once("charge", number, description, now, number_for, wording)
        return number

    def _itemized_at_once(self, entry_kind: str, number: str, description: str, now: datetime,
                          number_for: NumberFor, wording: inv.Wording) -> None:
        """Itemized mode: the charge (or credit) just booked goes on an invoice of its own at once."""
        if self.invoice_mode != InvoiceMode.ITEMIZED:
            return
        key = next(k for k, e in self.book.unbilled.items() if e.kind == entry_kind and k.endswith(f"|{number}"))
        invoice_id = self._draft(inv.InvoiceKind.CHARGE, [key], now, now, description=description, wording=wording)
        self.approve_invoice(invoice_id, now=now, number_for=number_for)

    @event("ChargePosted")
    def _charge_posted(self, amount: Decimal, kind: str, description: str, idempotency_key: str,
                       booked_at: datetime | None = None) -> None:
        self._set_figures(self.figures.after_charge(amount))
        if self._invoicing:
            self.book.add_single(local_date(booked_at or self.modified_on, self.time_zone), amount, kind="charge",
                                 reference=transaction_no(self.account_id, self.version + 1),
                                 description=description or kind, product=kind)

    def post_credit(self, credit: Money, *, kind: str, description: str, idempotency_key: str, now: datetime,
                    number_for: NumberFor, wording: inv.Wording = inv.NO_WORDING) -> str:
        """Gives back part of a charge (a subscription's unused days): a System movement in the
        customer's favour; itemized mode issues it as a credit note of its own at once."""
        amount = self._own(credit)
        if amount <= 0:
            raise InvalidInput("a credit must be positive", field="amount")
        if kind not in CHARGE_KINDS:
            raise InvariantViolation(f"no charge kind {kind!r}")
        self._require_within_bounds(self.figures.after_credit(amount))
        number = self.next_transaction_no
        self._credit_posted(amount=amount, kind=kind, description=description, idempotency_key=idempotency_key,
                            booked_at=now)
        self._itemized_at_once("credit", number, description, now, number_for, wording)
        return number

    @event("CreditPosted")
    def _credit_posted(self, amount: Decimal, kind: str, description: str, idempotency_key: str,
                       booked_at: datetime) -> None:
        self._set_figures(self.figures.after_credit(amount))
        if self._invoicing:
            self.book.add_single(local_date(booked_at, self.time_zone), -amount, kind="credit",
                                 reference=transaction_no(self.account_id, self.version + 1),
                                 description=description or kind, product=kind)

    # -- holds -----------------------------------------------------------------
    def reserve(self, money: Money, *, reservation_id: str, expires_at: datetime | None) -> None:
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a reservation amount must be positive", field="amount")
        if len(self.holds) >= MAX_OPEN_HOLDS:
            raise TooManyOpenReservations(f"an account may hold at most {MAX_OPEN_HOLDS} open reservations")
        self._require_usable(amount)
        self._require_within_bounds(self.figures.after_reserve(amount))
        self._credits_reserved(reservation_id=reservation_id, amount=amount, expires_at=expires_at)

    @event("CreditsReserved")
    def _credits_reserved(self, reservation_id: str, amount: Decimal, expires_at: datetime | None) -> None:
        self.holds[reservation_id] = Hold(amount, expires_at)
        self._set_figures(self.figures.after_reserve(amount))

    def settle(self, reservation_id: str, cost: Money, line: UsageLine, *, now: datetime) -> str:
        hold = self._open_hold(reservation_id)
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a settled amount must not be negative", field="amount")
        if amount > hold.amount:
            raise SettleExceedsHold("the final amount is larger than the hold", hold=hold.amount, amount=amount)
        if hold.expired(now):
            raise ReservationExpired("the hold expired before it was settled", expires_at=hold.expires_at)
        number = self.next_transaction_no
        self._reservation_settled(reservation_id=reservation_id, hold_amount=hold.amount, amount=amount,
                                  occurred_at=now, **line.stored())
        return number

    @event("ReservationSettled")
    @carries_usage_line
    def _reservation_settled(self, reservation_id: str, hold_amount: Decimal, amount: Decimal, occurred_at: datetime,
                             **line: Any) -> None:
        del self.holds[reservation_id]
        self._set_figures(self.figures.after_settle(hold_amount, amount))
        self._add_usage(occurred_at, amount, UsageLine.restored(line))

    def release(self, reservation_id: str, *, reason: str) -> None:
        if reason not in RELEASE_REASONS:
            raise InvalidInput(f"reason must be one of {', '.join(RELEASE_REASONS)}", field="reason")
        hold = self._open_hold(reservation_id)
        self._reservation_released(reservation_id=reservation_id, hold_amount=hold.amount, reason=reason)

    def expire_holds(self, now: datetime) -> list[str]:
        """Releases every hold whose expiry has passed; returns their ids."""
        due = expired_holds(self.holds, now)
        for reservation_id in due:
            self.release(reservation_id, reason="expired")
        return due

    @event("ReservationReleased")
    def _reservation_released(self, reservation_id: str, hold_amount: Decimal, reason: str) -> None:
        del self.holds[reservation_id]
        self._set_figures(self.figures.after_release(hold_amount))

    # -- settings --------------------------------------------------------------
    def change_credit_limit(self, credit_limit: object) -> None:
        limit = parse_credit_limit(credit_limit)
        if limit != self.credit_limit:
            self._credit_limit_changed(credit_limit=limit)

    @event("CreditLimitChanged")
    def _credit_limit_changed(self, credit_limit: Decimal) -> None:
        self._set_figures(self.figures.with_credit_limit(credit_limit))

    def change_invoice_mode(self, invoice_mode: str) -> None:
        mode = parse_choice(InvoiceMode, invoice_mode, "invoice_mode")
        if mode == self.invoice_mode:
            return
        if mode is InvoiceMode.NONE and (self.amount_due != 0 or self.book.drafts or self.book.open_invoices):
            raise InvoiceModeChangeBlocked(
                "amount due must be settled to 0 and no draft invoice may be open before switching to "
                "invoice mode none",
                amount_due=self.amount_due,
                drafts=len(self.book.drafts),
            )
        self._invoice_mode_changed(invoice_mode=mode.value)

    @event("InvoiceModeChanged")
    def _invoice_mode_changed(self, invoice_mode: str) -> None:
        was_invoicing = self._invoicing
        self._set_figures(self.figures.with_invoice_mode(InvoiceMode(invoice_mode)))
        if not self._invoicing:
            self.book.forget_unbilled()  # amount due is 0 and no invoice is open (see change_invoice_mode)
        elif not was_invoicing and self.expecting_invoice != 0:
            # What stayed unbilled under mode none goes on the next invoice as one line.
            self.book.add_single(local_date(self.closed_through, self.time_zone), -self.expecting_invoice,
                                 kind="carry_over", reference=str(self.version + 1),
                                 description="Balance carried over from invoice mode none", product="carry_over")

    def change_billing_mode(self, billing_mode: str) -> None:
        """Prepaid <-> postpaid, effective from its event: no money moves (expecting invoice,
        amount due, current balance and reserved credits stay); usable credits and overdraft
        follow the new mode's formula and the credit limit its meaning (an overdraft
        allowance when prepaid, a borrowing limit on unbilled usage when postpaid). A prepaid
        account settles its overdraft first: its pending bills wait for funds, which
        postpaid bills do not know how to wait for."""
        mode = parse_choice(BillingMode, billing_mode, "billing_mode")
        if mode.value == self.billing_mode:
            return
        if mode is BillingMode.POSTPAID and self.figures.overdraft > 0:
            raise BillingModeChangeBlocked(
                f"a prepaid account in overdraft ({self.figures.overdraft}) settles it before it moves to postpaid",
                overdraft=self.figures.overdraft)
        self._billing_mode_changed(billing_mode=mode.value)

    @event("BillingModeChanged")
    def _billing_mode_changed(self, billing_mode: str) -> None:
        self._set_figures(self.figures.with_billing_mode(BillingMode(billing_mode)))

    def change_usage_policy(self, usage_policy: str) -> None:
        policy = parse_choice(UsagePolicy, usage_policy, "usage_policy")
        if policy != self.usage_policy:
            self._usage_policy_changed(usage_policy=policy.value)

    @event("UsagePolicyChanged")
    def _usage_policy_changed(self, usage_policy: str) -> None:
        self.usage_policy = usage_policy

    def change_billing_details(self, *, payer: dict[str, Any] | None = None, tax_rate: object = None) -> None:
        new_payer = self.payer if payer is None else {**self.payer, **_checked_payer(payer)}
        new_rate = self.tax_rate if tax_rate is None else parse_tax_rate(tax_rate)
        if new_payer != self.payer or new_rate != self.tax_rate:
            self._billing_details_changed(payer=new_payer, tax_rate=new_rate)

    @event("BillingDetailsChanged")
    def _billing_details_changed(self, payer: dict[str, Any], tax_rate: Decimal) -> None:
        self.payer = payer
        self.tax_rate = tax_rate

    # -- invoicing ---------------------------------------------------------------
    @property
    def _invoicing(self) -> bool:
        return self.invoice_mode != InvoiceMode.NONE

    def _add_usage(self, occurred_at: datetime, cost: Decimal, line: UsageLine) -> None:
        if self._invoicing:
            self.book.add_usage(local_date(occurred_at, self.time_zone), cost, line)

    def _require_invoicing(self) -> None:
        if not self._invoicing:
            raise InvoicingNotAvailable("invoice mode none issues no invoices and takes no payments; use a recharge")

    def close_cycles(self, *, now: datetime, number_for: NumberFor, wording: inv.Wording = inv.NO_WORDING) -> list[str]:
        """Closes every cycle that ended by ``now``; returns the ids of the invoices it made.

        Each closed cycle invoices the entries dated before its end, late ones included
        (they show their own dates). Mode none closes the cycle and moves nothing."""
        made: list[str] = []
        if not self.cycle_running:
            return made
        for start, end in periods_ended(self.closed_through, self.cycle_anchor_day, self.time_zone, now,
                                        MAX_CYCLES_PER_CLOSE):
            keys = self.book.due(before=local_date(end, self.time_zone)) if self._invoicing else []
            if keys:
                invoice_id = self._draft(inv.InvoiceKind.CYCLE, keys, start, end, wording=wording)
                if not self.drafts_need_approval:
                    self.approve_invoice(invoice_id, now=now, number_for=number_for)
                made.append(invoice_id)
            self._cycle_closed(period_start=start, period_end=end)
        return made

    @event("CycleClosed")
    def _cycle_closed(self, period_start: datetime, period_end: datetime) -> None:
        if period_start != self.closed_through:
            raise InvariantViolation(f"cycles close in order, none skipped: {period_start} after {self.closed_through}")
        self.closed_through = period_end

    def invoice_usage(self, date_from: date, date_to: date, *, now: datetime, number_for: NumberFor,
                      wording: inv.Wording = inv.NO_WORDING, description: str = "", invoice_date: date | None = None,
                      due_date: date | None = None) -> str:
        """A manual postpaid invoice of the unbilled entries dated ``date_from``..``date_to``,
        dated ``invoice_date`` (not before the range's last day, or today if that is later)."""
        keys = self._usage_to_invoice(date_from, date_to)
        dates = inv.issue_dates(local_date(now, self.time_zone), self.payment_terms_days, invoice_date, due_date,
                                not_before=date_to)
        invoice_id = self._draft(inv.InvoiceKind.MANUAL, keys, *self.days_as_period(date_from, date_to),
                                 description=description, wording=wording)
        self.approve_invoice(invoice_id, now=now, number_for=number_for, dates=dates)
        return invoice_id

    def preview_usage_invoice(self, date_from: date, date_to: date) -> tuple[list[Entry], DraftPlan]:
        """What ``invoice_usage`` of the range would bill, deciding nothing: the unbilled
        entries (per day, product, application, AppKey and unit) and the invoice's plan."""
        keys = self._usage_to_invoice(date_from, date_to)
        period_start, _ = self.days_as_period(date_from, date_to)
        return [self.book.unbilled[k] for k in keys], self._plan(keys, period_start)

    def cycle_invoice_plan(self, now: datetime) -> DraftPlan:
        """What the invoice of the cycle that contains ``now`` would bill of what is unbilled
        and dated in that cycle, as things stand; decides nothing."""
        start = cycle_start(now, self.cycle_anchor_day, self.time_zone)
        end = next_boundary(start, self.cycle_anchor_day, self.time_zone)
        keys = self.book.due(before=local_date(end, self.time_zone), since=local_date(start, self.time_zone)) \
            if self._invoicing else []
        return self._plan(keys, start)

    def _usage_to_invoice(self, date_from: date, date_to: date) -> list[str]:
        self._require_invoicing()
        if date_to < date_from:
            raise InvalidInput("date_to must not be before date_from", field="date_to")
        keys = self.book.due(before=date.fromordinal(date_to.toordinal() + 1), since=date_from)
        if not keys:
            raise NothingToInvoice(f"nothing unbilled from {date_from} to {date_to}")
        if len(keys) > MAX_ENTRIES_PER_INVOICE:
            raise InvalidInput("too many unbilled entries for one invoice; invoice a shorter date range")
        return keys

    def days_as_period(self, first: date, last: date) -> tuple[datetime, datetime]:
        """The local days ``first``..``last`` (inclusive) as the period of an invoice: UTC start and end."""
        return local_midnight(first, self.time_zone), local_midnight(date.fromordinal(last.toordinal() + 1),
                                                                     self.time_zone)

    def invoice_topup(self, money: Money, *, description: str, now: datetime, number_for: NumberFor,
                      wording: inv.Wording = inv.NO_WORDING, invoice_date: date | None = None,
                      due_date: date | None = None) -> str:
        """A prepaid invoice for credits: it moves no money until it is paid in full,
        then its amount before tax becomes a recharge."""
        self._require_invoicing()
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a top-up amount must be positive", field="amount")
        dates = inv.issue_dates(local_date(now, self.time_zone), self.payment_terms_days, invoice_date, due_date)
        [line] = inv.lines_of([Entry(dates.issued.isoformat(), "topup", "credits", description or "Credits", amount)],
                              None)
        invoice_id = self._draft(inv.InvoiceKind.TOPUP, [], now, now, topup_line=line, wording=wording)
        self.approve_invoice(invoice_id, now=now, number_for=number_for, dates=dates)
        return invoice_id

    def _draft(self, kind: inv.InvoiceKind, keys: list[str], period_start: datetime, period_end: datetime, *,
               topup_line: dict[str, Any] | None = None, description: str = "",
               wording: inv.Wording = inv.NO_WORDING) -> str:
        if len(keys) > MAX_ENTRIES_PER_INVOICE:
            raise InvalidInput("too many unbilled entries for one invoice; invoice a shorter date range")
        plan = self._plan(keys, period_start, topup_line)
        invoice_id = inv.invoice_id(self.account_id, self.book.next_invoice_sequence())
        self._invoice_drafted(
            invoice_id=invoice_id, kind=kind.value, period_start=period_start, period_end=period_end, entry_keys=keys,
            lines=plan.lines, subtotal=plan.subtotal, tax=plan.tax, total=plan.total,
            from_unbilled=plan.from_unbilled, description=description, terms=wording.terms, notes=wording.notes,
        )
        return invoice_id

    def _plan(self, keys: list[str], period_start: datetime, topup_line: dict[str, Any] | None = None) -> DraftPlan:
        return self.book.plan_draft(keys, local_date(period_start, self.time_zone),
                                    lambda taxable: tax_on(taxable, self.tax_rate, self.currency), topup_line)

    @event("InvoiceDrafted")
    def _invoice_drafted(self, invoice_id: str, kind: str, period_start: datetime, period_end: datetime,
                         entry_keys: list[str], lines: list[dict[str, Any]], subtotal: Decimal, tax: Decimal,
                         total: Decimal, from_unbilled: Decimal, description: str, terms: str, notes: str) -> None:
        self.book.drafted(invoice_id, kind, entry_keys, subtotal, total, from_unbilled)

    def approve_invoice(self, invoice_id: str, *, now: datetime, number_for: NumberFor,
                        dates: inv.IssueDates | None = None) -> str:
        """Issues a draft: it gets its gapless number (of its invoice date's year) and, but
        for top-ups, bills its total. An invoice dated before today takes effect at the
        start of that local day, so it is owed (and paid) before those issued later."""
        draft = self._draft_of(invoice_id)
        today = local_date(now, self.time_zone)
        dates = dates or inv.issue_dates(today, self.payment_terms_days)
        issued_at = now if dates.issued == today else local_midnight(dates.issued, self.time_zone)
        allocations = self.book.plan_approval(invoice_id, issued_at)
        number = number_for(dates.issued)
        self._invoice_approved(invoice_id=invoice_id, number=number, issued_at=issued_at, due_on=dates.due.isoformat(),
                               allocations=allocations, kind=draft.kind, from_unbilled=draft.from_unbilled,
                               total=draft.total, tax=draft.total - draft.subtotal)
        return number

    @event("InvoiceApproved")
    def _invoice_approved(self, invoice_id: str, number: str, issued_at: datetime, due_on: str,
                          allocations: list[dict[str, Any]], kind: str, from_unbilled: Decimal, total: Decimal,
                          tax: Decimal) -> None:
        # kind, from_unbilled, total and tax repeat the draft's, so readers need only this event.
        draft = self.book.approved(invoice_id, number, issued_at, total, from_unbilled, allocations)
        if draft.kind == inv.InvoiceKind.TOPUP:
            return
        self._set_figures(self.figures.after_invoice(from_unbilled, total))
        self.check_books()

    def void_invoice(self, invoice_id: str) -> None:
        """A draft is dropped; its entries go back to unbilled for the next invoice."""
        self._draft_of(invoice_id)
        self._invoice_voided(invoice_id=invoice_id)

    @event("InvoiceVoided")
    def _invoice_voided(self, invoice_id: str) -> None:
        self.book.voided(invoice_id)

    def _draft_of(self, invoice_id: str) -> Draft:
        draft = self.book.drafts.get(invoice_id)
        if draft is not None:
            return draft
        if invoice_id in self.book.open_invoices or invoice_id in self.book.topups or self._is_own_invoice(invoice_id):
            raise InvoiceNotDraft(f"invoice {invoice_id!r} is not a draft", invoice_id=invoice_id)
        raise InvoiceNotFound(f"no invoice {invoice_id!r} on this account", invoice_id=invoice_id)

    def _is_own_invoice(self, invoice_id: str) -> bool:
        parsed = inv.parse_invoice_id(invoice_id)
        return parsed is not None and parsed[0] == self.account_id and 0 < parsed[1] <= self.book.invoice_count

    # -- payments ----------------------------------------------------------------
    def record_payment(self, money: Money, *, payment_id: str, invoice_id: str | None, method: str,
                       reference: str, received_at: datetime) -> list[dict[str, Any]]:
        """Applies a payment to the named invoice, else the oldest open ones; what is left
        stays as credit (CR on amount due) for later invoices. Paying a top-up invoice in
        full turns its amount before tax into a recharge."""
        self._require_invoicing()
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a payment amount must be positive", field="amount")
        self._require_within_bounds(self.figures.after_payment(amount))
        if invoice_id is not None and invoice_id in self.book.topups:
            topup = self.book.topups[invoice_id]
            if amount != topup.total:
                raise InvalidInput(f"a top-up invoice is paid in full: {topup.total}", field="amount")
            allocations = [{"invoice_id": invoice_id, "amount": amount, "outstanding_after": ZERO, "paid_after": amount}]
            self._payment_recorded(payment_id=payment_id, amount=amount, method=method, reference=reference,
                                   received_at=received_at, allocations=allocations, topup=True)
            self.recharge(Money(topup.subtotal, self.currency), reference=topup.number, method=method)
            return allocations
        if invoice_id is not None and invoice_id not in self.book.open_invoices:
            if self._is_own_invoice(invoice_id):
                raise InvoiceNotOpen(f"invoice {invoice_id!r} is not open for payment", invoice_id=invoice_id)
            raise InvoiceNotFound(f"no invoice {invoice_id!r} on this account", invoice_id=invoice_id)
        allocations = self.book.allocations(amount, first=invoice_id)
        self._payment_recorded(payment_id=payment_id, amount=amount, method=method, reference=reference,
                               received_at=received_at, allocations=allocations, topup=False)
        return allocations

    def owed_on(self, invoice_id: str) -> Decimal:
        return self.book.owed_on(invoice_id)

    @event("PaymentRecorded")
    def _payment_recorded(self, payment_id: str, amount: Decimal, method: str, reference: str, received_at: datetime,
                          allocations: list[dict[str, Any]], topup: bool) -> None:
        if topup:
            self.book.topup_paid(allocations[0]["invoice_id"])
            return
        self._set_figures(self.figures.after_payment(amount))
        self.book.credit(amount, allocations)
        self.check_books()

    def refund_overpayment(self, money: Money, *, reference: str) -> str:
        """Pays unapplied credit back to the customer (a System movement)."""
        self._require_invoicing()
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a refund amount must be positive", field="amount")
        credit = self.book.unapplied_credit
        if amount > credit:
            raise RefundExceedsCredit(f"only {credit} of credit can be refunded", credit=credit, requested=amount)
        number = self.next_transaction_no
        self._overpayment_refunded(amount=amount, reference=reference)
        return number

    @event("OverpaymentRefunded")
    def _overpayment_refunded(self, amount: Decimal, reference: str) -> None:
        self._set_figures(self.figures.after_refund(amount))
        self.book.refunded(amount)
        self.check_books()

    # -- recurring settings ------------------------------------------------------
    def change_recurring(self, *, now: datetime, cycle_running: bool | None = None,
                         cycle_anchor_day: int | None = None, payment_terms_days: int | None = None,
                         drafts_need_approval: bool | None = None, time_zone: str | None = None) -> None:
        """Cycle settings, effective from the next boundary. A restarted cycle starts with
        the cycle that contains ``now``; unbilled entries of the stopped months go on its invoice."""
        settings = {
            "cycle_running": self.cycle_running if cycle_running is None else bool(cycle_running),
            "cycle_anchor_day": self.cycle_anchor_day if cycle_anchor_day is None else parse_anchor_day(cycle_anchor_day),
            "payment_terms_days": self.payment_terms_days if payment_terms_days is None else parse_terms(payment_terms_days),
            "drafts_need_approval": self.drafts_need_approval if drafts_need_approval is None
            else bool(drafts_need_approval),
            "time_zone": self.time_zone if time_zone is None else parse_time_zone(time_zone),
        }
        closed_through = self.closed_through
        if settings["cycle_running"] and not self.cycle_running:
            closed_through = max(closed_through, cycle_start(now, settings["cycle_anchor_day"], settings["time_zone"]))
        current = {k: getattr(self, k) for k in settings}
        if settings != current or closed_through != self.closed_through:
            self._recurring_settings_changed(closed_through=closed_through, **settings)

    @event("RecurringSettingsChanged")
    def _recurring_settings_changed(self, cycle_running: bool, cycle_anchor_day: int, payment_terms_days: int,
                                    drafts_need_approval: bool, time_zone: str, closed_through: datetime) -> None:
        self.cycle_running = cycle_running
        self.cycle_anchor_day = cycle_anchor_day
        self.payment_terms_days = payment_terms_days
        self.drafts_need_approval = drafts_need_approval
        self.time_zone = time_zone
        self.closed_through = closed_through

    def check_books(self) -> None:
        """The invoicing invariants (InvoiceBook.check); none in invoice mode none."""
        if self._invoicing:
            self.book.check(self.expecting_invoice, self.amount_due)

    # -- low balance -----------------------------------------------------------
    def change_low_balance_threshold(self, threshold: object) -> None:
        """None turns the signal off. Setting it never signals by itself: only a later
        movement that crosses it does."""
        value = parse_low_balance_threshold(threshold)
        if value != self.low_balance_threshold:
            self._low_balance_threshold_changed(low_balance_threshold=value)

    @event("LowBalanceThresholdChanged")
    def _low_balance_threshold_changed(self, low_balance_threshold: Decimal | None) -> None:
        self.low_balance_threshold = low_balance_threshold

    @event("LowBalanceReached")
    def _low_balance_reached(self, usable_credits: Decimal, threshold: Decimal, crossed_version: int) -> None:
        """A signal, no state: whether the next crossing signals again follows from the figures."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        """Every new event goes through here (replays do not), so one check covers every
        kind of movement, today's and those added later: when an event takes usable
        credits from >= threshold to < threshold, a LowBalanceReached follows it in the
        same append. Once per crossing: signalling again needs usable credits to be back
        at or above the threshold first."""
        threshold = self.low_balance_threshold
        if threshold is None or event_class.__name__ in _NOT_MOVEMENTS:
            super().trigger_event(event_class, **kwargs)
            return
        before = self.figures.usable_credits
        super().trigger_event(event_class, **kwargs)
        after = self.figures.usable_credits
        if before >= threshold > after:
            self._low_balance_reached(usable_credits=after, threshold=threshold, crossed_version=self.version)

    # -- rules -----------------------------------------------------------------
    def _require_within_bounds(self, after: Figures) -> None:
        """Every figure stays below 10^15 in size, the bound of a single amount: sums past
        it would outgrow what documents, exports and clients are built to show."""
        for name in ("expecting_invoice", "amount_due", "current_balance", "reserved"):
            value = getattr(after, name)
            if abs(value) >= MAX_AMOUNT:
                raise AmountOutOfRange(f"this would take {name} to {value}, beyond the ledger's bound of 10^15",
                                       figure=name, value=value)

    def _require_usable(self, amount: Decimal) -> None:
        usable = self.figures.usable_credits
        if usable - amount < 0:
            raise InsufficientCredits(
                f"usable credits {usable} do not cover {amount}",
                usable_credits=usable,
                requested=amount,
            )

    def _open_hold(self, reservation_id: str) -> Hold:
        hold = self.holds.get(reservation_id)
        if hold is None:
            raise ReservationNotFound(f"no open reservation {reservation_id!r}", reservation_id=reservation_id)
        return hold


def _checked_payer(payer: dict[str, Any]) -> dict[str, Any]:
    refuse_card_numbers(payer, "payer")  # an address or a name is no place for a card number
    return payer


RELEASE_REASONS = ("failed", "expired", "cancelled")
ACCOUNT_EVENT_TYPES = (
    "AccountOpened", "Recharged", "UsageRecorded", "ChargePosted", "CreditsReserved", "ReservationSettled",
    "ReservationReleased", "CreditLimitChanged", "InvoiceModeChanged", "UsagePolicyChanged", "BillingDetailsChanged",
    "InvoiceDrafted", "InvoiceApproved", "InvoiceVoided", "CycleClosed", "PaymentRecorded", "OverpaymentRefunded",
    "RecurringSettingsChanged",
    "LowBalanceThresholdChanged", "LowBalanceReached", "BillingModeChanged", "TestClockAttached", "CreditPosted",
    "AllowancesGranted",
)
_NOT_MOVEMENTS = frozenset({"LowBalanceThresholdChanged", "LowBalanceReached", "TestClockAttached",
                            "AllowancesGranted"})
CHARGE_KINDS = ("subscription", "addon", "service", "hardware")
