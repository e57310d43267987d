"""The write side: one eventsourcing Application and its one dispatcher.

Every edge builds a command value (ledger_core/commands.py) and hands it to ``handle``,
which runs the command's handler (commands/handlers.py, commands/invoicing.py) in a
write of its own; ``batch`` opens a LedgerBatch whose ``handle`` decides many commands
in memory and saves them in one atomic write. Batching is the dispatcher's business:
handlers only see the unit of work they are given (commands/unit_of_work.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import JSONTranscoder, Recording
from eventsourcing.utils import get_topic, strtobool

from commands import api_keys, handlers, invoicing, orders, payer_profiles, subscriptions, test_clocks
from commands.api_keys import KeyQueries
from commands.bookings import Clock, utc_now
from commands.unit_of_work import BatchState, BatchWrite, SingleWrite, WarmAccounts, created, load_account
from ledger_core import commands as c
from ledger_core.account import Account, account_uuid
from ledger_core.allowances import Grant
from ledger_core.catalog import Plan
from ledger_core.client_key import ClientKey, KeyKind
from ledger_core.errors import InvariantViolation, LedgerError, UnsafeText
from ledger_core.holds import Hold
from ledger_core.invoice_book import Draft, Entry, InvoiceBook, OpenInvoice, Topup
from ledger_core.order import Order
from ledger_core.payer_profile import PayerProfile
from ledger_core.subscription import Subscription
from ledger_core.test_clocks import TestClock
from persistence.appending import AppendExtras, KeyClaim, appending_with, current_along, saving
from persistence.bulk_load import load_aggregates
from persistence.recorders import RECORDER_TOPICS as AUDITED_RECORDERS
from persistence.repository import LedgerRepository
from persistence.transcodings import DateAsISO, FastJSONTranscoder, register_dataclasses

# Per context (a request, a thread): what its last save stored.
_written: ContextVar[Sequence[Recording]] = ContextVar("ledger_written", default=())

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_EVENTS = 200
AGGREGATE_CACHE_SIZE = 10_000  # aggregates kept in memory, unless the env says otherwise (Settings.warm_accounts)
MAX_PLANS = 10_000

# The typed parts of the Account's state, by the names snapshots store them under (fixed once stored).
SNAPSHOT_TYPES: dict[str, type] = {
    "ledger_hold": Hold, "ledger_invoice_book": InvoiceBook, "ledger_unbilled_entry": Entry,
    "ledger_draft": Draft, "ledger_open_invoice": OpenInvoice, "ledger_topup": Topup, "ledger_allowance_grant": Grant,
}

# The one handler of each command.
HANDLERS: dict[type[c.Command], Callable[[Any, Any], Any]] = {
    c.OpenAccount: handlers.open_account,
    c.UpdateAccount: handlers.update_account,
    c.Recharge: handlers.recharge,
    c.RecordUsage: handlers.record_usage,
    c.PostCharge: handlers.post_charge,
    c.Reserve: handlers.reserve,
    c.Settle: handlers.settle,
    c.Release: handlers.release,
    c.ExpireHolds: handlers.expire_holds,
    c.CloseCycles: invoicing.close_cycles,
    c.ApproveInvoice: invoicing.approve_invoice,
    c.VoidInvoice: invoicing.void_invoice,
    c.InvoiceUsage: invoicing.invoice_usage,
    c.InvoiceTopup: invoicing.invoice_topup,
    c.RecordPayment: invoicing.record_payment,
    c.RefundOverpayment: invoicing.refund_overpayment,
    c.SetInvoiceDefaults: invoicing.set_invoice_defaults,
    c.CreateTestClock: test_clocks.create_test_clock,
    c.AdvanceTestClock: test_clocks.advance_test_clock,
    c.CreatePlan: subscriptions.create_plan,
    c.RepricePlan: subscriptions.reprice_plan,
    c.RetirePlan: subscriptions.retire_plan,
    c.Subscribe: subscriptions.subscribe,
    c.AddAddon: subscriptions.add_addon,
    c.RemoveAddon: subscriptions.remove_addon,
    c.ChangePackage: subscriptions.change_package,
    c.CancelSubscription: subscriptions.cancel_subscription,
    c.ReactivateSubscription: subscriptions.reactivate_subscription,
    c.DeleteSubscription: subscriptions.delete_subscription,
    c.RenewSubscription: subscriptions.renew_subscription,
    c.ApplyNewPrice: subscriptions.apply_new_price,
    c.PreviewSubscriptionChange: subscriptions.preview_subscription_change,
    c.PlaceOrder: orders.place_order,
    c.PayOrder: orders.pay_order,
    c.CancelOrder: orders.cancel_order,
    c.ReportPower: orders.report_power,
    c.MeterRunningFee: orders.meter_running_fee,
    c.SaveAddress: payer_profiles.save_address,
    c.RemoveAddress: payer_profiles.remove_address,
    c.SavePaymentMethod: payer_profiles.save_payment_method,
    c.RemovePaymentMethod: payer_profiles.remove_payment_method,
    c.IssueKey: api_keys.issue_key,
    c.IssueBootstrapKey: api_keys.issue_bootstrap_key,
    c.RevokeKey: api_keys.revoke_key,
}


def handler_of(command: c.Command) -> Callable[[Any, Any], Any]:
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise InvariantViolation(f"no handler for {type(command).__name__}")
    return handler


class _Collected(ProcessingEvent):
    """The library's collection of pending events, with a nominal check first: its own
    checks are against runtime protocols, about 10 us each, twice per aggregate saved."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        others = []
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                others.append(obj)
        super().collect_events(*others, **kwargs)


class LedgerBatch:
    """Commands decided against aggregates held in memory, saved together when the batch ends."""

    def __init__(self, ledger: Ledger, state: BatchState) -> None:
        self.ledger = ledger
        self.state = state
        self.unit = BatchWrite(ledger, ledger.clock, state)
        self.position: int | None = None  # of the last event written, once saved; None if nothing was
        self.recordings: list[Recording] = []  # what was written, once saved

    @property
    def warm(self) -> set[str]:
        return self.state.warm

    def handle(self, command: c.Command) -> Any:
        """Decides the command in this batch: a refusal raises and changes nothing of it."""
        handler, real = handler_of(command), self.ledger.clock
        self.unit.clock = clock = self.ledger.account_clocks.clock_of(self.ledger, command, real, self.state.accounts)
        with test_clocks.running_at(clock, real):
            return handler(command, self.unit)


class Ledger(KeyQueries):
    name = "Ledger"
    snapshotting_intervals = {Account: SNAPSHOT_INTERVAL_EVENTS}
    env = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE)}

    def __init__(self, env: dict[str, str] | None = None, clock: Clock = utc_now) -> None:
        env = dict(env or {})
        module = env.get("PERSISTENCE_MODULE", "")
        if module in AUDITED_RECORDERS:  # every stored event gets its audit record and chain link
            env.setdefault("APPLICATION_RECORDER_TOPIC", AUDITED_RECORDERS[module])
        super().__init__(env)
        self.clock = clock
        self.account_clocks = test_clocks.AccountClocks()
        if module in AUDITED_RECORDERS and env.get("CREATE_TABLE", "y").lower() not in ("n", "no", "0", "false", "off"):
            self.recorder.ensure_keys_table(self._legacy_claims)  # type: ignore[attr-defined]
        self.conflicts_retried = 0  # observable count of lost races that were retried

    def construct_repository(self) -> LedgerRepository:
        """As the library's, with loads that replay without its per-event protocol check."""
        cache_maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return LedgerRepository(
            event_store=self.events, snapshot_store=self.snapshots,
            cache_maxsize=int(cache_maxsize) if cache_maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def construct_transcoder(self) -> FastJSONTranscoder:
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_dataclasses(transcoder, SNAPSHOT_TYPES)
        transcoder.register(DateAsISO())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording]:
        """As the library's (Application.save, less its deprecated no-op ``notify``), with
        the cheaper collection of _Collected and snapshots taken from memory. A lone
        surrogate in any text cannot be encoded to UTF-8 and fails the encoding of the
        events, before anything is written: a coded 400. Where a writer of the read model
        goes along (persistence/appending.py ``written_along``), it is handed the domain
        events saved, to write in their transaction."""
        collected = _Collected()
        collected.collect_events(*objs, **kwargs)
        try:
            with saving(collected.events) if current_along() is not None else nullcontext():
                recordings = self._record(collected)
        except UnicodeEncodeError:
            raise UnsafeText("a text field holds a lone surrogate; nothing was stored") from None
        self._snapshot_in_memory(collected)
        self._notify(recordings)
        _written.set(recordings)
        return recordings

    def _snapshot_in_memory(self, collected: ProcessingEvent) -> None:
        """Each aggregate whose events in this save reached a multiple of its snapshotting
        interval is snapshotted as it stands in memory, at its last version. The library
        loads it back from the store at that multiple instead: up to an interval of events
        read and replayed again, about one extra replay for each event written. It runs
        after the commit, so a failure is logged and the write stands: a missing snapshot
        only makes later loads of the aggregate read further back."""
        if self.snapshots is None:
            return
        spans: dict[Any, tuple[int, int]] = {}
        for event in collected.events:
            first = spans.get(event.originator_id, (event.originator_version, 0))[0]
            spans[event.originator_id] = (first, event.originator_version)
        for aggregate_id, (first, last) in spans.items():
            aggregate = collected.aggregates.get(aggregate_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None or last // interval == (first - 1) // interval or aggregate.version != last:
                continue
            try:
                snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                self.snapshots.put([snapshot_class.take(aggregate)])
            except Exception:  # noqa: BLE001 - after the commit: the write stands whatever happens here
                log.warning("no snapshot of %s at version %d (the write stands)", aggregate_id, last, exc_info=True)

    @staticmethod
    def written() -> Sequence[Recording]:
        """What the last save in this context stored: the caller's own write, whose events
        catch the read model up without being read back from the log."""
        return _written.get()

    def account(self, account_id: str) -> Account:
        return load_account(self, account_id)

    def payer_profile(self, account_id: str) -> PayerProfile:
        load_account(self, account_id)  # an unknown account has no profile either
        return payer_profiles.load_profile(self, account_id, to_change=False)

    def order(self, account_id: str, order_id: str) -> Order:
        return orders.load_order(self, order_id, account_id, to_change=False)

    def plan(self, plan_id: str) -> Plan:
        return subscriptions.load_plan(self, plan_id, to_change=False)

    def plans(self) -> list[Plan]:
        """Every plan, oldest first (a catalog is small: at most MAX_PLANS are listed)."""
        return [p for p in created(self, Plan.Created, MAX_PLANS) if isinstance(p, Plan)]  # type: ignore[attr-defined]

    def subscription(self, account_id: str, subscription_id: str) -> Subscription:
        return subscriptions.load_subscription(self, subscription_id, account_id, to_change=False)

    def test_clock(self, clock_id: str) -> TestClock:
        return test_clocks.load_test_clock(self, clock_id, to_change=False)

    # -- the dispatcher ------------------------------------------------------------
    def handle(self, command: c.Command) -> Any:
        """Runs the command's handler in a write of its own (retried on a lost race), at
        the time of its account: the test clock's, if it has one."""
        handler = handler_of(command)
        loaded = self._first_touch(command)
        clock = self.account_clocks.clock_of(self, command, self.clock, loaded)
        with test_clocks.running_at(clock, self.clock):
            return handler(command, SingleWrite(self, clock, self._retried, loaded))

    def _first_touch(self, command: c.Command) -> dict[str, Account]:
        """The command's account, loaded once for its clock and its write, when this process
        has not seen it yet (else the clock's lookup and the write each read it)."""
        account_id = self.account_clocks.unknown_account(command)
        if account_id is None:
            return {}
        try:
            return {account_id: load_account(self, account_id)}
        except LedgerError:  # a bad id, no such account: the handler answers for it
            return {}

    @contextmanager
    def batch(self, extras: AppendExtras, accounts: Iterable[str] = (),
              keys: Iterable[tuple[str, KeyKind, str]] = (), warm: WarmAccounts | None = None) -> Iterator[LedgerBatch]:
        """Commands handled by the batch inside this block decide against aggregates held
        in memory (each account loaded once, ``accounts`` all at once up front, its
        commands applied in order) and are saved when it ends, in one atomic write
        together with ``extras``. ``keys`` (account, kind, key) that the commands will
        use are looked up at once, so repeats are answered without a race. A command
        refused inside changes nothing; if the write loses a race (another writer, or a
        key claimed by an earlier write) it raises IntegrityError and nothing at all is
        written. With ``warm``, accounts come from it when they can and all of the
        batch's accounts go back to it once the batch is stored."""
        state = BatchState(extras)
        wanted_accounts = set(accounts)
        if warm is not None:
            state.accounts = warm.take(wanted_accounts)
            state.warm = set(state.accounts)
        cold = wanted_accounts - state.warm
        if cold:
            loaded = load_aggregates(self, (account_uuid(a) for a in cold))
            state.accounts.update({a.account_id: a for a in loaded.values() if isinstance(a, Account)})
        wanted = [(a, k.value, key) for a, k, key in keys]
        if wanted:
            state.keys = {(k.account_id, k.kind, k.key): k for k in self.recorder.claimed(wanted)}  # type: ignore[attr-defined]
        batch = LedgerBatch(self, state)
        yield batch
        if state.changed:
            with appending_with(extras):
                recordings = self.save(*state.changed.values())
            batch.position = recordings[-1].notification.id
            batch.recordings = recordings
        if warm is not None:
            warm.keep(state.accounts.values())

    def _retried(self) -> None:
        self.conflicts_retried += 1

    def _legacy_claims(self) -> Iterator[KeyClaim]:
        """Usage and charge keys claimed as ClientKey aggregates, before the keys table
        existed: copied into it once, when it is created."""
        topic = get_topic(ClientKey.KeyClaimed)
        position = 0
        while True:
            notifications = self.recorder.select_notifications(start=position + 1, limit=1_000, topics=[topic])
            if not notifications:
                return
            for n in notifications:
                claimed = self.mapper.to_domain_event(n)
                if claimed.kind in (KeyKind.USAGE.value, KeyKind.CHARGE.value):
                    yield KeyClaim(claimed.account_id, claimed.kind, claimed.key, claimed.request_fingerprint,
                                   claimed.transaction_no, claimed.amount)
            position = notifications[-1].id
