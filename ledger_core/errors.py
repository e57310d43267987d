"""Domain errors. Each has a stable machine code; the edges map its category to a status.

Categories: ``invalid`` (bad input), ``not_found``, ``conflict`` (state clash,
retry may help or the request is a duplicate), ``rule`` (a business rule says no).
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerError(Exception):
    code: ClassVar[str] = "ledger_error"
    category: ClassVar[str] = "invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# -- invalid input -------------------------------------------------------------
class InvalidInput(LedgerError):
    code = "invalid_input"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class InvalidCurrency(InvalidInput):
    code = "invalid_currency"


# -- not found -----------------------------------------------------------------
class AccountNotFound(LedgerError):
    code = "account_not_found"
    category = "not_found"


class ReservationNotFound(LedgerError):
    code = "reservation_not_found"
    category = "not_found"


# -- conflicts -----------------------------------------------------------------
class AccountExists(LedgerError):
    code = "account_exists"
    category = "conflict"


class ReservationExists(LedgerError):
    code = "reservation_exists"
    category = "conflict"


class ReservationClosed(LedgerError):
    """The hold was already settled, released or expired."""

    code = "reservation_closed"
    category = "conflict"


class ReservationExpired(LedgerError):
    code = "reservation_expired"
    category = "conflict"


class IdempotencyKeyReused(LedgerError):
    """The same idempotency key came with a different request."""

    code = "idempotency_key_reused"
    category = "conflict"


class ConcurrentModification(LedgerError):
    """Another writer kept winning the race for this account; the client may retry."""

    code = "concurrent_modification"
    category = "conflict"


# -- business rules ------------------------------------------------------------
class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"
    category = "rule"


class InsufficientCredits(LedgerError):
    code = "insufficient_credits"
    category = "rule"


class SettleExceedsHold(LedgerError):
    code = "settle_exceeds_hold"
    category = "rule"


class TooManyOpenReservations(LedgerError):
    code = "too_many_open_reservations"
    category = "rule"


class InvoiceModeChangeBlocked(LedgerError):
    code = "invoice_mode_change_blocked"
    category = "rule"


class BillingModeChangeBlocked(LedgerError):
    code = "billing_mode_change_blocked"
    category = "rule"


class InvariantViolation(LedgerError):
    """A ledger invariant failed: a bug, never a user error. Raised, not asserted,
    so that ``python -O`` keeps the check."""

    code = "invariant_violation"
    category = "internal"


class InvoiceNotFound(LedgerError):
    code = "invoice_not_found"
    category = "not_found"


class InvoiceNotDraft(LedgerError):
    """Only drafts can be approved or voided."""

    code = "invoice_not_draft"
    category = "conflict"


class InvoiceNotOpen(LedgerError):
    """A payment named an invoice that is paid already (or was never issued)."""

    code = "invoice_not_open"
    category = "conflict"


class NothingToInvoice(LedgerError):
    code = "nothing_to_invoice"
    category = "rule"


class InvoicingNotAvailable(LedgerError):
    """The account's invoice mode (none) or billing mode does not allow the command."""

    code = "invoicing_not_available"
    category = "rule"


class RefundExceedsCredit(LedgerError):
    code = "refund_exceeds_credit"
    category = "rule"


class BillNotFound(LedgerError):
    code = "bill_not_found"
    category = "not_found"


class TransactionNotFound(LedgerError):
    code = "transaction_not_found"
    category = "not_found"


# -- identity ------------------------------------------------------------------
class Unauthenticated(LedgerError):
    """No credentials, or credentials that are not a live key."""

    code = "unauthenticated"
    category = "unauthenticated"


class Forbidden(LedgerError):
    """A valid key whose role may not do this."""

    code = "forbidden"
    category = "forbidden"


class ApiKeyNotFound(LedgerError):
    code = "api_key_not_found"
    category = "not_found"


class ApiKeyRevoked(LedgerError):
    code = "api_key_revoked"
    category = "conflict"


class UnsafeText(InvalidInput):
    """Text holding NUL, another control character or a lone surrogate (ledger_core/text.py)."""

    code = "invalid_text"


class AmountOutOfRange(LedgerError):
    """The movement would take a figure to 10^15 or beyond, the ledger's bound for amounts."""

    code = "amount_out_of_range"
    category = "rule"


class RateLimited(LedgerError):
    code = "rate_limited"
    category = "rate_limited"


class Overloaded(LedgerError):
    """More writes wait in this server process than it queues: refused at once, nothing stored."""

    code = "overloaded"
    category = "unavailable"


class WriteInterrupted(LedgerError):
    """The batch a write was decided in was interrupted before it could answer (the process
    stopping it): retried with its idempotency key, the write lands once."""

    code = "write_interrupted"
    category = "unavailable"


class CloseInFuture(LedgerError):
    """A cycle can be closed only once it has ended: not at a time still to come."""

    code = "close_in_future"
    category = "rule"


class InvoiceDateOutOfRange(LedgerError):
    """An invoice dated in the future, too far back, before what it bills, or due before it is issued."""

    code = "invoice_date_out_of_range"
    category = "rule"


class TestClockNotFound(LedgerError):
    __test__ = False
    code = "test_clock_not_found"
    category = "not_found"


class TestClockRule(LedgerError):
    """A test clock only moves forward, a bounded step at a time, and holds a bounded number of accounts."""

    __test__ = False
    code = "test_clock_refused"
    category = "rule"


# -- catalog and subscriptions ----------------------------------------------------
class PlanNotFound(LedgerError):
    code = "plan_not_found"
    category = "not_found"


class PlanExists(LedgerError):
    code = "plan_exists"
    category = "conflict"


class PlanRetired(LedgerError):
    code = "plan_retired"
    category = "rule"


class SubscriptionNotFound(LedgerError):
    code = "subscription_not_found"
    category = "not_found"


class SubscriptionNotActive(LedgerError):
    """The change needs an active subscription (or, to delete or reactivate, a cancelled one)."""

    code = "subscription_not_active"
    category = "rule"


class SubscriptionExists(LedgerError):
    code = "subscription_exists"
    category = "conflict"


class CardNumberRefused(InvalidInput):
    """A text that looks like a payment card number: the ledger never stores one."""

    code = "card_number_refused"


class OrderNotFound(LedgerError):
    code = "order_not_found"
    category = "not_found"


class OrderExists(LedgerError):
    code = "order_exists"
    category = "conflict"


class OrderNotPending(LedgerError):
    """Paying or cancelling an order that is completed or cancelled already."""

    code = "order_not_pending"
    category = "conflict"
