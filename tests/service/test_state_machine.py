"""Random command sequences against the ledger, on SQLite and PostgreSQL.

An independent model (plain arithmetic written from LEDGER_SEMANTICS.md, sharing no
code with the ledger) predicts every figure and every rejection. After every step the
invariants are checked on the read model and on the aggregate; at the end of each run
the read model is rebuilt from event 1 into fresh tables and must match row for row.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ledger_core.commands import (
    AddAddon,
    ApproveInvoice,
    CancelSubscription,
    ChangePackage,
    CloseCycles,
    CreatePlan,
    OpenAccount,
    PostCharge,
    ReactivateSubscription,
    Recharge,
    RecordPayment,
    RecordUsage,
    Release,
    RemoveAddon,
    RenewSubscription,
    Reserve,
    Settle,
    Subscribe,
    UpdateAccount,
    VoidInvoice,
)
from ledger_core.errors import LedgerError
from ledger_core.usage import UsageLine
from persistence.database import DatabaseConfig
from projections.catchup import Projector
from projections.rows import InvoiceFilter, TransactionFilter
from service.history import figures_as_of
from service.ledger_service import LedgerService, make_view
from service.settings import Settings
from tests.conftest import FakeClock

EXAMPLES = int(os.environ.get("LEDGER_HYPOTHESIS_EXAMPLES", "25"))
STEPS = int(os.environ.get("LEDGER_HYPOTHESIS_STEPS", "30"))
MICRO = Decimal("0.000001")

amounts = st.decimals(min_value=-5, max_value=500, places=6, allow_nan=False, allow_infinity=False)
positive_amounts = st.decimals(min_value="0.000001", max_value=300, places=6)
keys = st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6"])
reservation_ids = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])


class Model:
    """The ledger as LEDGER_SEMANTICS.md describes it, in the plainest arithmetic."""

    def __init__(self, billing: str, invoice: str, limit: Decimal, policy: str, rate: Decimal) -> None:
        self.billing, self.invoice, self.limit, self.policy, self.rate = billing, invoice, limit, policy, rate
        self.approval = billing == "postpaid"  # set when opened; a billing mode change keeps it
        self.unbilled = Decimal(0)
        self.billed = Decimal(0)
        self.holds: dict[str, tuple[Decimal, Any]] = {}
        self.closed: dict[str, str] = {}
        self.keys: dict[tuple[str, str], tuple[Any, Decimal]] = {}
        # invoicing: costs not yet on an invoice (taxed) and a balance carried over from mode none (untaxed)
        self.pending: list[Decimal] = []
        self.carried = Decimal(0)
        self.drafts: dict[str, tuple[Decimal, Decimal]] = {}  # invoice id -> (taxed, carried)
        self.open: list[Decimal] = []  # outstanding of issued invoices, oldest first
        self.credit = Decimal(0)

    def book_cost(self, cost: Decimal) -> None:
        self.unbilled -= cost
        if self.invoice != "none":
            self.pending.append(cost)

    def issue(self, taxed: Decimal, carried: Decimal) -> None:
        """An invoice: its costs leave unbilled; lines plus tax (2 places, half up) are billed."""
        total = taxed + carried + (taxed * self.rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        self.unbilled += taxed + carried
        self.billed -= total
        if total > 0:
            self.open.append(total)
        else:
            self.credit -= total
        self.apply_credit()

    def money_in(self, amount: Decimal) -> None:
        self.billed += amount
        self.credit += amount
        self.apply_credit()

    def apply_credit(self) -> None:
        for n, outstanding in enumerate(self.open):
            applied = min(self.credit, outstanding)
            self.open[n] -= applied
            self.credit -= applied
        self.open = [o for o in self.open if o > 0]

    @property
    def reserved(self) -> Decimal:
        return sum((amount for amount, _ in self.holds.values()), Decimal(0))

    @property
    def usable(self) -> Decimal:
        if self.billing == "postpaid":
            return self.limit + self.unbilled - self.reserved
        return self.unbilled + self.billed + self.limit - self.reserved


def plain(number: Decimal) -> str:
    """As a client writes an amount: digits and a point, never an exponent (str() may give "1E-9")."""
    return f"{number:f}"


class LedgerMachine(RuleBasedStateMachine):
    make_service: Callable[[], tuple[LedgerService, Callable[[], None]]]

    def __init__(self) -> None:
        super().__init__()
        self.service, self._cleanup = self.make_service()
        self.clock: FakeClock = self.service.clock  # type: ignore[assignment]
        self.reported: list[tuple[int, Any, Any]] = []  # (position, time, figures) after each step

    # -- driving both ------------------------------------------------------------------
    def attempt(self, expected_error: str | None, command: Callable[[Any], Any]) -> Any:
        try:
            result = self.service.run(command)
        except LedgerError as error:
            assert error.code == expected_error, f"ledger said {error.code}: {error.message}; model said {expected_error}"
            return None
        assert expected_error is None, f"ledger accepted what the model rejects with {expected_error}"
        return result

    @initialize(
        billing=st.sampled_from(["prepaid", "postpaid"]),
        invoice=st.sampled_from(["itemized", "consolidated", "none"]),
        limit=st.decimals(min_value=0, max_value=1000, places=6),
        policy=st.sampled_from(["allow_overdraft", "block"]),
        rate=st.sampled_from([Decimal(0), Decimal("0.09"), Decimal("0.175")]),
    )
    def open(self, billing: str, invoice: str, limit: Decimal, policy: str, rate: Decimal) -> None:
        self.model = Model(billing, invoice, limit, policy, rate)
        self.attempt(None, lambda l: l.handle(OpenAccount(account_id="acc", currency="SGD", billing_mode=billing,
                                                          invoice_mode=invoice, credit_limit=plain(limit),
                                                          usage_policy=policy, tax_rate=plain(rate))))
        for plan_id, kind, price in (("basic", "package", "31"), ("pro", "package", "62.000007"),
                                     ("ai", "addon", "9.333333")):
            self.attempt(None, lambda l: l.handle(CreatePlan(plan_id, kind=kind, name=plan_id, period="monthly",
                                                             currency="SGD", price=price)))
        self.subscription: str | None = None
        self.seen_rows = 0

    @rule(amount=amounts)
    def recharge(self, amount: Decimal) -> None:
        m = self.model
        error = "invalid_input" if amount <= 0 else None
        if self.attempt(error, lambda l: l.handle(Recharge("acc", amount=plain(amount),
                                                           reference="top-up"))) and not error:
            if m.invoice == "none":
                m.unbilled += amount
            else:
                m.money_in(amount)

    @rule(key=keys, amount=amounts, priced=st.booleans(), quantity=st.decimals(min_value=1, max_value=1000, places=2))
    def usage(self, key: str, amount: Decimal, priced: bool, quantity: Decimal) -> None:
        m = self.model
        request: dict[str, Any] = (
            {"quantity": plain(quantity), "unit_price": plain(abs(amount) / 1000)} if priced else {"amount": plain(amount)}
        )
        cost = (quantity * abs(amount) / 1000).quantize(MICRO, rounding=ROUND_HALF_EVEN) if priced else amount
        error = self._keyed_error(("usage", key), request)
        if error is None and ("usage", key) not in m.keys:
            if cost < 0:
                error = "invalid_input"
            elif m.policy == "block" and m.usable - cost < 0:
                error = "insufficient_credits"
        line = UsageLine("sms", quantity=request.get("quantity"))
        price = {k: v for k, v in request.items() if k != "quantity"}
        booking = self.attempt(error, lambda l: l.handle(RecordUsage("acc", idempotency_key=key, line=line, **price)))
        if booking is None:
            return
        if booking.replayed:
            assert booking.amount == m.keys[("usage", key)][1]
            return
        m.keys[("usage", key)] = (request, cost)
        m.book_cost(cost)
        if m.policy == "block":
            assert m.usable >= 0  # invariant 3: a blocking account never goes below zero by usage

    @rule(key=keys, amount=amounts, kind=st.sampled_from(["subscription", "addon", "service", "hardware"]))
    def charge(self, key: str, amount: Decimal, kind: str) -> None:
        m = self.model
        request = {"kind": kind, "description": "plan", "amount": plain(amount)}
        error = self._keyed_error(("charge", key), request)
        if error is None and ("charge", key) not in m.keys and amount < 0:
            error = "invalid_input"
        booking = self.attempt(error, lambda l: l.handle(PostCharge("acc", idempotency_key=key, **request)))
        if booking is None or booking.replayed:
            return
        m.keys[("charge", key)] = (request, amount)
        if m.invoice == "itemized":  # invoiced at once, on its own invoice
            m.unbilled -= amount
            m.issue(amount, Decimal(0))
        else:
            m.book_cost(amount)

    @rule(rid=reservation_ids, amount=amounts, expires_in=st.none() | st.integers(1, 3600))
    def reserve(self, rid: str, amount: Decimal, expires_in: int | None) -> None:
        m = self.model
        expires_at = None if expires_in is None else self.clock.now + timedelta(seconds=expires_in)
        if rid in m.holds or rid in m.closed:
            error: str | None = "reservation_exists"
        elif amount <= 0:
            error = "invalid_input"
        elif m.usable - amount < 0:
            error = "insufficient_credits"
        else:
            error = None
        if self.attempt(error, lambda l: l.handle(Reserve("acc", reservation_id=rid, amount=plain(amount),
                                                          expires_at=expires_at))):
            m.holds[rid] = (amount, expires_at)
            assert m.usable >= 0  # invariant 3 for holds

    @rule(rid=reservation_ids, fraction=st.decimals(min_value=0, max_value="1.2", places=2))
    def settle(self, rid: str, fraction: Decimal) -> None:
        m = self.model
        hold, expires_at = m.holds.get(rid, (Decimal(1), None))
        amount = (hold * fraction).quantize(MICRO)
        if rid in m.closed:
            error: str | None = "reservation_closed"
        elif rid not in m.holds:
            error = "reservation_not_found"
        elif amount > hold:
            error = "settle_exceeds_hold"
        elif expires_at is not None and self.clock.now >= expires_at:
            error = "reservation_expired"
        else:
            error = None
        if self.attempt(error, lambda l: l.handle(Settle("acc", rid, amount=plain(amount),
                                                         line=UsageLine(product="call")))):
            del m.holds[rid]
            m.closed[rid] = "settled"
            m.book_cost(amount)

    @rule(rid=reservation_ids, reason=st.sampled_from(["failed", "cancelled", "expired"]))
    def release(self, rid: str, reason: str) -> None:
        m = self.model
        error = "reservation_closed" if rid in m.closed else None if rid in m.holds else "reservation_not_found"
        if self.attempt(error, lambda l: l.handle(Release("acc", rid, reason=reason))):
            del m.holds[rid]
            m.closed[rid] = "released"

    @rule(seconds=st.integers(0, 2000))
    def expire(self, seconds: int) -> None:
        self.clock.advance(seconds)
        m = self.model
        due = sorted(rid for rid, (_, at) in m.holds.items() if at is not None and at <= self.clock.now)
        expired = self.service.expire_due_reservations()
        assert sorted(expired.get("acc", [])) == due
        for rid in due:
            del m.holds[rid]
            m.closed[rid] = "released"

    @rule(limit=amounts)
    def change_credit_limit(self, limit: Decimal) -> None:
        error = "invalid_input" if limit < 0 else None
        if self.attempt(error, lambda l: l.handle(UpdateAccount("acc", credit_limit=plain(limit)))) and not error:
            self.model.limit = limit

    @rule(mode=st.sampled_from(["itemized", "consolidated", "none"]))
    def change_invoice_mode(self, mode: str) -> None:
        m = self.model
        blocked = mode == "none" and m.invoice != "none" and (m.billed != 0 or m.drafts)
        error = "invoice_mode_change_blocked" if blocked else None
        self.attempt(error, lambda l: l.handle(UpdateAccount("acc", invoice_mode=mode)))
        if error or mode == m.invoice:
            return
        if mode == "none":  # everything stays unbilled for good
            m.pending, m.carried = [], Decimal(0)
        elif m.invoice == "none":  # what stayed unbilled goes on the next invoice, untaxed
            m.carried = -m.unbilled
        m.invoice = mode

    @rule(mode=st.sampled_from(["prepaid", "postpaid"]))
    def change_billing_mode(self, mode: str) -> None:
        """No money moves; a prepaid account in overdraft settles it before moving to postpaid."""
        m = self.model
        in_overdraft = m.billing == "prepaid" and m.unbilled + m.billed < 0
        error = "billing_mode_change_blocked" if mode == "postpaid" and in_overdraft else None
        self.attempt(error, lambda l: l.handle(UpdateAccount("acc", billing_mode=mode)))
        if not error:
            m.billing = mode

    # -- subscriptions -------------------------------------------------------------------
    # What each change costs is proration's (tests/unit/test_proration.py proves it against its
    # own model); here the money it posts must keep every invariant of the books, so the
    # model books the movements the ledger listed, by the money model's rules.
    @rule(plan=st.sampled_from(["basic", "pro"]))
    def subscribe_or_change_package(self, plan: str) -> None:
        sub = self.subscription
        self._subscription_step(Subscribe("acc", plan_id=plan) if sub is None else ChangePackage("acc", sub,
                                                                                                  plan_id=plan))

    @rule(add=st.booleans())
    def add_or_remove_addon(self, add: bool) -> None:
        if self.subscription is not None:
            kind = AddAddon if add else RemoveAddon
            self._subscription_step(kind("acc", self.subscription, plan_id="ai"))

    @rule(step=st.sampled_from(["cancel", "reactivate", "renew"]))
    def cancel_reactivate_or_renew(self, step: str) -> None:
        sub = self.subscription
        if sub is not None:
            self._subscription_step({"cancel": CancelSubscription("acc", sub, at_period_end=False),
                                     "reactivate": ReactivateSubscription("acc", sub),
                                     "renew": RenewSubscription("acc", sub)}[step])

    def _subscription_step(self, command: Any) -> None:
        try:
            booking = self.service.run(lambda l: l.handle(command))
        except LedgerError as error:  # a change the subscription's state refuses changes nothing
            assert error.code in ("subscription_not_active", "invalid_input"), error.message
            return
        self.subscription = booking.transaction_no
        rows = self.service.view.transactions(TransactionFilter("acc"), limit=500).rows
        for row in reversed(rows[: len(rows) - self.seen_rows]):
            if row.reference.startswith(f"{self.subscription}:"):
                self._book_subscription_movement(-row.amount)
        self.seen_rows = len(rows)

    def _book_subscription_movement(self, cost: Decimal) -> None:
        """A charge (cost > 0) or a credit (cost < 0), by the rules of charges."""
        m = self.model
        if m.invoice == "itemized":  # on an invoice (or credit note) of its own, at once
            m.unbilled -= cost
            m.issue(cost, Decimal(0))
        else:
            m.book_cost(cost)

    # -- invoicing -----------------------------------------------------------------------
    @rule()
    def close_cycle(self) -> None:
        m = self.model
        now = self.clock.now
        self.clock.now = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, 0, 0, 1, tzinfo=timezone.utc)
        made = self.attempt(None, lambda l: l.handle(CloseCycles("acc")))
        if m.invoice == "none" or (not m.pending and m.carried == 0):
            assert made == []
            return
        [invoice_id] = made
        taxed, carried = sum(m.pending, Decimal(0)), m.carried
        m.pending, m.carried = [], Decimal(0)
        if m.approval:  # recurring postpaid invoices wait for approval
            m.drafts[invoice_id] = (taxed, carried)
        else:
            m.issue(taxed, carried)

    @rule(pick=st.integers(0, 3))
    def approve(self, pick: int) -> None:
        m = self.model
        if not m.drafts:
            return
        invoice_id = sorted(m.drafts)[pick % len(m.drafts)]
        self.attempt(None, lambda l: l.handle(ApproveInvoice(invoice_id)))
        m.issue(*m.drafts.pop(invoice_id))
        self.attempt("invoice_not_draft", lambda l: l.handle(VoidInvoice(invoice_id)))

    @rule(pick=st.integers(0, 3))
    def void(self, pick: int) -> None:
        m = self.model
        if not m.drafts:
            return
        invoice_id = sorted(m.drafts)[pick % len(m.drafts)]
        self.attempt(None, lambda l: l.handle(VoidInvoice(invoice_id)))
        taxed, carried = m.drafts.pop(invoice_id)
        m.pending.append(taxed)
        m.carried += carried

    @rule(amount=amounts)
    def payment(self, amount: Decimal) -> None:
        m = self.model
        error = "invoicing_not_available" if m.invoice == "none" else "invalid_input" if amount <= 0 else None
        if self.attempt(error, lambda l: l.handle(RecordPayment("acc", payment_id=uuid.uuid4().hex,
                                                                amount=plain(amount)))):
            m.money_in(amount)

    @rule(policy=st.sampled_from(["allow_overdraft", "block"]))
    def change_usage_policy(self, policy: str) -> None:
        self.attempt(None, lambda l: l.handle(UpdateAccount("acc", usage_policy=policy)))
        self.model.policy = policy

    def _keyed_error(self, key: tuple[str, str], request: dict[str, Any]) -> str | None:
        first = self.model.keys.get(key)
        return None if first is None or first[0] == request else "idempotency_key_reused"

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def figures_match_the_model_and_the_aggregate(self) -> None:
        if not hasattr(self, "model"):
            return
        m, row = self.model, self.service.account_row("acc")
        f = row.figures
        assert (f.expecting_invoice, f.amount_due, f.reserved, f.credit_limit) == (m.unbilled, m.billed, m.reserved, m.limit)
        assert f.current_balance == f.expecting_invoice + f.amount_due  # invariant 1
        assert f.usable_credits == m.usable  # invariant 2 (formula)
        assert f.reserved >= 0
        assert sum(h.amount for h in self.service.view.holds("acc")) == f.reserved  # invariant 2 (holds)
        account = self.service.commands.account("acc")
        assert account.figures == f  # write model == read model
        account.check_books()  # unbilled == its entries + drafts; amount due == credit - outstanding
        assert sorted(i.outstanding for i in account.book.open_invoices.values()) == sorted(m.open)
        assert account.book.unapplied_credit == m.credit
        if m.invoice == "none":
            assert f.amount_due == 0 or m.billed == f.amount_due  # carried over from an earlier mode only

    @invariant()
    def balance_details_add_up_to_the_current_balance(self) -> None:
        if not hasattr(self, "model"):
            return
        rows = self.service.view.transactions(TransactionFilter("acc"), limit=500).rows
        current = self.service.account_row("acc").figures.current_balance
        assert sum((r.amount for r in rows), Decimal(0)) == current
        assert not rows or rows[0].balance_after == current

    @invariant()
    def invoices_add_up_and_nothing_is_invoiced_twice(self) -> None:
        """Invariant 4: every invoice's total is its lines plus its tax; the costs on
        approved invoices, the drafts and what is still unbilled together are every cost
        booked while invoicing, each once."""
        if not hasattr(self, "model"):
            return
        rows, _ = self.service.view.invoices(InvoiceFilter(account_id="acc"), 500)
        for row in rows:
            lines = self.service.view.invoice_lines(row.invoice_id)
            assert sum((x.amount for x in lines), Decimal(0)) == row.subtotal
            assert row.subtotal + row.tax == row.total
            assert row.paid + row.outstanding == (max(row.total, 0) if row.status == "approved" else 0)
        assert {r.invoice_id for r in rows if r.status == "draft"} == set(self.model.drafts)

    @invariant()
    def remember_what_was_reported(self) -> None:
        if hasattr(self, "model"):
            row = self.service.account_row("acc")
            self.reported.append((row.position, row.updated_at, row.figures))

    def teardown(self) -> None:
        try:
            self._as_of_answers_match_what_was_reported()
            self._rebuild_matches_live()
        finally:
            self.service.close()
            self._cleanup()

    def _as_of_answers_match_what_was_reported(self) -> None:
        """Invariant 5, second half: the figures as of any past moment (a log position or
        a time) equal what the read model reported at that moment."""
        for position, time, figures in self.reported:
            assert figures_as_of(self.service, "acc", position=position).figures == figures
            assert figures_as_of(self.service, "acc", time=time).figures == figures

    def _rebuild_matches_live(self) -> None:
        """Invariant 5: replaying every event from the first gives the same read model."""
        fresh = make_view(self.service.commands, prefix="rebuilt")
        Projector(self.service.commands, fresh, batch_events=7).catch_up()
        assert fresh.dump() == self.service.view.dump()


def _sqlite_services(tmp_path: Path, clock_factory: Callable[[], FakeClock]) -> Callable[[], Any]:
    def make() -> tuple[LedgerService, Callable[[], None]]:
        folder = tmp_path / uuid.uuid4().hex
        svc = LedgerService(Settings(database=DatabaseConfig(f"sqlite:///{folder}/ledger.db")), clock=clock_factory())
        return svc, lambda: None

    return make


def _postgres_services(url: str, clock_factory: Callable[[], FakeClock]) -> Callable[[], Any]:
    def make() -> tuple[LedgerService, Callable[[], None]]:
        schema = "h_" + uuid.uuid4().hex[:12]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')

        def drop() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

        svc = LedgerService(Settings(database=DatabaseConfig(url, schema=schema, pool_size=2)), clock=clock_factory())
        return svc, drop

    return make


MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_command_sequences_on_sqlite(tmp_path: Path) -> None:
    LedgerMachine.make_service = staticmethod(_sqlite_services(tmp_path, FakeClock))
    run_state_machine_as_test(LedgerMachine, settings=MACHINE_SETTINGS)


@pytest.mark.postgres
def test_random_command_sequences_on_postgres(postgres_url: str) -> None:
    LedgerMachine.make_service = staticmethod(_postgres_services(postgres_url, FakeClock))
    run_state_machine_as_test(LedgerMachine, settings=MACHINE_SETTINGS)
