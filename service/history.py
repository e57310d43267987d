"""What auditors ask: an account's events, and its figures as they stood at a past moment.

As-of figures are computed by replaying the account's own events up to the last one at
that position or time (the library starts from the nearest snapshot at or below that
version, which by construction equals a full replay). The read model's event index
only finds that version; the numbers come from the events themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger_core.account import Account, account_uuid
from ledger_core.errors import AccountNotFound
from ledger_core.figures import Figures
from projections.rows import EventFilter, EventRow
from service.ledger_service import LedgerService

HIDDEN_ATTRIBUTES = ("originator_id", "originator_version", "originator_topic", "timestamp")


@dataclass(frozen=True)
class FiguresAsOf:
    account_id: str
    currency: str
    figures: Figures
    version: int
    as_of: datetime  # time of the last event included


def figures_as_of(service: LedgerService, account_id: str, *, position: int | None = None,
                  time: datetime | None = None) -> FiguresAsOf:
    version = service.view.version_at(account_id, position=position, time=time)
    if version is None:
        raise AccountNotFound(f"account {account_id!r} did not exist then", account_id=account_id,
                              as_of=position if position is not None else time)
    account = service.commands.repository.get(account_uuid(account_id), version=version)
    assert isinstance(account, Account) and account.version == version
    return FiguresAsOf(account_id, account.currency, account.figures, version, account.modified_on)


@dataclass(frozen=True)
class HistoryItem:
    position: int
    version: int
    type: str
    time: datetime
    recorded_at: str
    cause: dict[str, Any]
    link: str
    payload: dict[str, Any]


def account_events(service: LedgerService, query: EventFilter, limit: int) -> tuple[list[HistoryItem], int | None]:
    """A page of an account's events in log order, and the cursor of the next page."""
    service.account_row(query.account_id)
    rows = service.view.events(query, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return _with_stored_events(service, query.account_id, page), (page[-1].position if more else None)


def _with_stored_events(service: LedgerService, account_id: str, rows: list[EventRow]) -> list[HistoryItem]:
    if not rows:
        return []
    aggregate_id = account_uuid(account_id)
    recorder: Any = service.commands.recorder
    stored = {e.version: e for e in recorder.audit_trail(aggregate_id, (rows[0].version, rows[-1].version))}
    items = []
    for row in rows:
        entry = stored[row.version]
        event = service.commands.mapper.to_domain_event(
            StoredEvent(originator_id=aggregate_id, originator_version=entry.version, topic=entry.topic,
                        state=entry.state))
        payload = {k: plain(v) for k, v in vars(event).items() if k not in HIDDEN_ATTRIBUTES}
        items.append(HistoryItem(row.position, row.version, row.type, row.time, entry.recorded_at, entry.cause,
                                 entry.link, payload))
    return items


def plain(value: Any) -> Any:
    """Event values as JSON: exact decimal text, UTC times, ids as text; never a float."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
