"""Included allowances (chatbot sessions, minutes, messages...) that usage draws on before
it is charged: what the Account keeps of the grants its subscriptions give.

A subscription grants, per period, each allowance its package and add-ons include
(an extra pack bought mid-period adds to it at once). Usage of a product named like an
allowance, priced per unit, takes its free units from the grants still valid when it
occurred (the one ending soonest first) and is charged for the rest only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger_core.errors import InvalidInput

MAX_GRANTS = 1_000  # (allowance, subscription) pairs per account; a snapshot carries them all
ZERO = Decimal(0)

# allowance name -> subscription id -> its grant
Grants = dict[str, dict[str, "Grant"]]


@dataclass(frozen=True)
class Grant:
    granted: Decimal  # for the period
    used: Decimal
    until: datetime  # the end of the subscription period (exclusive): unused units lapse then

    def __deepcopy__(self, memo: dict[int, Any]) -> Grant:
        return self  # frozen, of immutable values

    def left_at(self, moment: datetime) -> Decimal:
        return max(self.granted - self.used, ZERO) if moment < self.until else ZERO


def regranted(grants: Grants, subscription_id: str, amounts: dict[str, Decimal], until: datetime) -> Grants:
    """The grants once a subscription's allowances are ``amounts`` for the period ending
    ``until``: in the same period what was used stays used; a new period starts unused."""
    result = {name: {s: g for s, g in by_sub.items() if s != subscription_id} for name, by_sub in grants.items()}
    for name, amount in amounts.items():
        earlier = grants.get(name, {}).get(subscription_id)
        used = earlier.used if earlier is not None and earlier.until == until else ZERO
        result.setdefault(name, {})[subscription_id] = Grant(amount, used, until)
    result = {name: by_sub for name, by_sub in result.items() if by_sub}
    if sum(len(by_sub) for by_sub in result.values()) > MAX_GRANTS:
        raise InvalidInput(f"an account holds at most {MAX_GRANTS} allowance grants", field="allowances")
    return result


def drawn(grants: Grants, name: str, quantity: Decimal, at: datetime) -> list[tuple[str, Decimal]]:
    """(subscription id, free units) the usage of ``quantity`` units at ``at`` takes,
    from the grant that ends soonest first; what they do not cover is charged."""
    taken, wanted = [], quantity
    for subscription_id, grant in sorted(grants.get(name, {}).items(), key=lambda item: (item[1].until, item[0])):
        free = min(grant.left_at(at), wanted)
        if free > 0:
            taken.append((subscription_id, free))
            wanted -= free
        if wanted == 0:
            break
    return taken


def used_up(grants: Grants, name: str, taken: list[tuple[str, Decimal]]) -> None:
    """Records what a usage took (the event body calls this)."""
    by_sub = grants[name]
    for subscription_id, free in taken:
        by_sub[subscription_id] = replace(by_sub[subscription_id], used=by_sub[subscription_id].used + free)
