"""The five figures of an account and how each kind of money movement changes them.

One place decides which figure a movement lands in (it depends on the invoice mode);
the Account aggregate and the read-model projection both apply these same rules, so
the live read model and a replay cannot drift apart.

Sign convention (customer's side): positive = CR (in the customer's favour),
negative = DR (the customer owes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from ledger_core.errors import InvariantViolation

ZERO = Decimal("0.000000")


class BillingMode(StrEnum):
    PREPAID = "prepaid"
    POSTPAID = "postpaid"


class InvoiceMode(StrEnum):
    ITEMIZED = "itemized"
    CONSOLIDATED = "consolidated"
    NONE = "none"


# By value, for code that turns stored text into modes often (an enum's call by value costs about 0.5 us).
BILLING_MODES = {mode.value: mode for mode in BillingMode}
INVOICE_MODES = {mode.value: mode for mode in InvoiceMode}


class UsagePolicy(StrEnum):
    """What to do with usage that would take usable credits below zero."""

    ALLOW_OVERDRAFT = "allow_overdraft"  # record it; it shows as overdraft
    BLOCK = "block"  # reject it with insufficient_credits


@dataclass(frozen=True)
class Figures:
    billing_mode: BillingMode
    invoice_mode: InvoiceMode
    credit_limit: Decimal
    expecting_invoice: Decimal = ZERO  # unbilled
    amount_due: Decimal = ZERO  # billed, plus money applied to it
    reserved: Decimal = ZERO  # open holds; never negative

    # -- derived figures -------------------------------------------------------
    @property
    def current_balance(self) -> Decimal:
        return self.expecting_invoice + self.amount_due

    @property
    def usable_credits(self) -> Decimal:
        if self.billing_mode is BillingMode.POSTPAID:
            return self.credit_limit + self.expecting_invoice - self.reserved
        return self.current_balance + self.credit_limit - self.reserved

    @property
    def overdraft(self) -> Decimal:
        """What was spent beyond the account's own money (prepaid) or beyond the credit
        limit (postpaid). Holds are not spending, so they do not count."""
        if self.billing_mode is BillingMode.POSTPAID:
            headroom = self.credit_limit + self.expecting_invoice
        else:
            headroom = self.current_balance
        return max(ZERO, -headroom)

    # -- movements -------------------------------------------------------------
    def _moved(self, unbilled: Decimal = ZERO, billed: Decimal = ZERO, reserved: Decimal = ZERO) -> Figures:
        # Built directly rather than with dataclasses.replace: replays call this for every event.
        return Figures(self.billing_mode, self.invoice_mode, self.credit_limit, self.expecting_invoice + unbilled,
                       self.amount_due + billed, self.reserved + reserved)

    def after_money_in(self, amount: Decimal) -> Figures:
        """A recharge: billed modes credit amount due, mode none keeps it unbilled."""
        if self.invoice_mode is InvoiceMode.NONE:
            return self._moved(unbilled=amount)
        return self._moved(billed=amount)

    def after_usage(self, cost: Decimal) -> Figures:
        """Usage stays unbilled in every mode until a cycle is invoiced."""
        return self._moved(unbilled=-cost)

    def after_charge(self, cost: Decimal) -> Figures:
        """A charge lands unbilled; in itemized mode its own invoice bills it in the same write."""
        return self._moved(unbilled=-cost)

    def after_credit(self, amount: Decimal) -> Figures:
        """A credit (unused subscription days) lands unbilled in the customer's favour: the
        next invoice takes it off; in itemized mode its own credit note does at once."""
        return self._moved(unbilled=amount)

    def after_reserve(self, amount: Decimal) -> Figures:
        return self._moved(reserved=amount)

    def after_release(self, hold: Decimal) -> Figures:
        return self._moved(reserved=-hold)

    def after_settle(self, hold: Decimal, cost: Decimal) -> Figures:
        return self._moved(unbilled=-cost, reserved=-hold)

    def after_invoice(self, from_unbilled: Decimal, total: Decimal) -> Figures:
        """An issued invoice takes its lines' costs out of unbilled and bills its total
        (lines plus tax): the current balance moves by the tax only."""
        return self._moved(unbilled=from_unbilled, billed=-total)

    def after_payment(self, amount: Decimal) -> Figures:
        return self._moved(billed=amount)

    def after_refund(self, amount: Decimal) -> Figures:
        return self._moved(billed=-amount)

    def with_credit_limit(self, credit_limit: Decimal) -> Figures:
        return replace(self, credit_limit=credit_limit)

    def with_invoice_mode(self, invoice_mode: InvoiceMode) -> Figures:
        return replace(self, invoice_mode=invoice_mode)

    def with_billing_mode(self, billing_mode: BillingMode) -> Figures:
        """No money moves: the stored figures stay, usable credits and overdraft follow the new formula."""
        return replace(self, billing_mode=billing_mode)

    # -- invariants ------------------------------------------------------------
    def checked(self) -> Figures:
        if self.reserved < 0:
            raise InvariantViolation(f"reserved credits went negative: {self.reserved}")
        if self.credit_limit < 0:
            raise InvariantViolation(f"credit limit went negative: {self.credit_limit}")
        if self.invoice_mode is InvoiceMode.NONE and self.amount_due != 0:
            raise InvariantViolation(f"amount due must stay 0 in invoice mode none: {self.amount_due}")
        return self
