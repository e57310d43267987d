"""Balance details (an account's money movements) as export rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from exporters.rows import BalanceDetailRow
from projections.rows import TransactionRow


def balance_detail_rows(transactions: Iterable[TransactionRow], currency: str) -> Iterator[BalanceDetailRow]:
    for row in transactions:
        yield BalanceDetailRow(
            time=row.booked_at,
            transaction_no=row.transaction_no,
            type=row.type.value,
            item=row.item,
            application=row.application_id or "",
            amount=row.amount,
            balance_after=row.balance_after,
            currency=currency,
        )
